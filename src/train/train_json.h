/* train_json.h — the "train" section of a checkpoint's metadata: the run's whole configuration,
 * its position (epoch, batch within the epoch, global step), the monitors' state and the history,
 * everything a resumed run needs to continue exactly where the saved one was. */
#ifndef CNN_TRAIN_TRAIN_JSON_H
#define CNN_TRAIN_TRAIN_JSON_H
#include "core/json.h"
#include "train/history.h"
#include "train/monitor.h"
#include "train/trainer.h"

/* Where training stands: the next batch to run is batch `batch` of epoch `epoch` (both 0-based;
 * batch 0 at an epoch boundary, so `epoch` is then the number of epochs done). A mid-epoch
 * position carries the epoch's partial sums. */
typedef struct train_position {
    int epoch;
    int64_t batch, step, optimizer_steps;
    int64_t images, correct;
    double loss_sum, seconds;
} train_position;

typedef struct train_state {
    train_position pos;
    early_stop early;
    plateau plat;
    history hist;
} train_state;

/* Fresh state for cfg: position 0, monitors initialized, empty history. */
void train_state_init(train_state *s, const train_cfg *cfg);
void train_state_free(train_state *s);
/* {"config": ..., "position": ..., "early_stop": ..., "plateau": ..., "history": ...} */
cnn_status train_json_write(const train_cfg *cfg, const train_state *s, char **out);
/* Read the configuration (strings point into v) and, if s is not NULL, the state. */
cnn_status train_json_read(const json_value *v, train_cfg *cfg, train_state *s);
#endif
