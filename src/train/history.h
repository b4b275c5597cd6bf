/* history.h — the per-epoch record of a run: kept in the checkpoint (exact doubles, so a resumed
 * run rewrites metrics.csv identically), written as metrics.csv, read back from metrics.csv for
 * plotting any run. */
#ifndef CNN_TRAIN_HISTORY_H
#define CNN_TRAIN_HISTORY_H
#include "core/json.h"
#include "train/monitor.h"

typedef struct epoch_row {
    int epoch;                 /* 1-based */
    double lr;                 /* the learning rate of the epoch's last step */
    double train_loss, train_top1;
    double val_loss, val_top1, val_top5;
    double seconds;            /* wall time of the epoch and its validation */
} epoch_row;

typedef struct history {
    epoch_row *rows;
    int n, cap;
} history;

void history_free(history *h);
cnn_status history_add(history *h, const epoch_row *r);
/* Keep the first n rows. */
void history_truncate(history *h, int n);
double epoch_row_metric(const epoch_row *r, metric_id m);
/* The row with the highest val_top1 (NULL if empty). */
const epoch_row *history_best_top1(const history *h);

void history_write_json(const history *h, json_writer *w);
cnn_status history_from_json(const json_value *v, history *h);
/* metrics.csv, replaced atomically: header and one row per epoch. */
cnn_status history_write_csv(const history *h, const char *path);
/* Read a metrics.csv written by cnn train (columns found by name; unknown ones ignored). */
cnn_status history_read_csv(const char *path, history *h);
#endif
