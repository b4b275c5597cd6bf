/* plot.h — PNG charts drawn with cairo: learning curves of one or several runs (loss and top-1
 * per epoch, training solid, validation dashed, one colour per run) and the loss of an LR range
 * test on a logarithmic lr axis. Files are replaced atomically. */
#ifndef CNN_TRAIN_PLOT_H
#define CNN_TRAIN_PLOT_H
#include <stdbool.h>
#include "train/history.h"

typedef struct plot_run {
    const char *name;          /* legend label */
    const history *h;
} plot_run;

/* Two panels (loss; top-1 accuracy in %) over epochs, 1200×540 pixels. */
cnn_status plot_curves(const char *path, const plot_run *runs, int n, const char *title);

/* The LR range test: raw and smoothed loss against lr (log axis), a mark at the suggested lr
 * (0: none). */
cnn_status plot_lr_range(const char *path, const double *lr, const double *loss, const double *smoothed, int n,
                         double suggested, const char *title);
#endif
