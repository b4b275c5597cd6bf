/* monitor.h — decisions taken on the metrics of each epoch, as pure state machines: which epoch is
 * the best, early stopping (Keras' EarlyStopping) and ReduceLROnPlateau (PyTorch's). The trainer
 * feeds them one value per epoch; tests feed them scripted sequences. */
#ifndef CNN_TRAIN_MONITOR_H
#define CNN_TRAIN_MONITOR_H
#include <stdbool.h>
#include "cnn.h"

/* The per-epoch metrics a monitor can watch (the columns of metrics.csv). */
typedef enum metric_id { METRIC_TRAIN_LOSS, METRIC_TRAIN_TOP1, METRIC_VAL_LOSS, METRIC_VAL_TOP1, METRIC_VAL_TOP5 } metric_id;
typedef enum monitor_mode { MODE_AUTO, MODE_MIN, MODE_MAX } monitor_mode;
#define METRIC_CHOICES "val_loss|val_top1|val_top5|train_loss|train_top1"
#define MODE_CHOICES "auto|min|max"

const char *metric_name(metric_id m);
cnn_status metric_parse(const char *name, metric_id *m);
const char *mode_name(monitor_mode m);
cnn_status mode_parse(const char *name, monitor_mode *m);
/* auto: losses are minimized, accuracies maximized (Keras' rule). */
monitor_mode mode_resolve(monitor_mode mode, metric_id m);

/* Early stopping and the best epoch, with Keras' EarlyStopping semantics: a value improves on the
 * best when it is better by more than min_delta (min: v < best − δ; max: v > best + δ); each
 * epoch without improvement counts one, an improvement resets the count; training stops when
 * the count reaches patience (never after the first epoch). NaN never improves. */
typedef struct early_stop_cfg {
    metric_id monitor;      /* default val_top1 */
    monitor_mode mode;      /* default auto */
    float min_delta;        /* >= 0 */
    int patience;           /* 0: never stop (only track the best epoch) */
    bool restore_best;      /* at the end, go back to the best epoch's weights */
} early_stop_cfg;

typedef struct early_stop {
    early_stop_cfg cfg;
    monitor_mode mode;      /* resolved: MIN or MAX */
    bool has_best;
    double best;
    int best_epoch;         /* 1-based epoch of the best value, 0 before any */
    int wait;               /* epochs since the last improvement */
    bool stopped;
} early_stop;

void early_stop_defaults(early_stop_cfg *c);
void early_stop_init(early_stop *e, const early_stop_cfg *c);
/* Feed epoch `epoch` (1-based)'s value; returns true when it is the new best. Sets e->stopped
 * when training should stop after this epoch. */
bool early_stop_update(early_stop *e, int epoch, double value);

/* ReduceLROnPlateau as torch.optim.lr_scheduler (1.13): after each epoch, step(value); when the
 * value has not improved for more than `patience` epochs (improvement: rel min v < best·(1−t),
 * abs min v < best − t, and mirrored for max), lr ← max(lr·factor, min_lr) unless that changes
 * it by less than 1e-8, then `cooldown` epochs during which bad epochs are not counted. */
typedef struct plateau_cfg {
    metric_id monitor;      /* default val_loss */
    monitor_mode mode;      /* default auto */
    float factor;           /* (0, 1), default 0.1 */
    int patience;           /* default 10 */
    float threshold;        /* default 1e-4 */
    bool threshold_abs;     /* default relative */
    int cooldown;           /* default 0 */
} plateau_cfg;

typedef struct plateau {
    plateau_cfg cfg;
    monitor_mode mode;
    float lr, min_lr;
    bool has_best;
    double best;
    int bad_epochs, cooldown_counter;
    int reductions;
} plateau;

void plateau_defaults(plateau_cfg *c);
void plateau_init(plateau *p, const plateau_cfg *c, float lr, float min_lr);
/* Feed one epoch's value; returns true when it reduced the learning rate (now p->lr). */
bool plateau_step(plateau *p, double value);
#endif
