/* progress.h — what training prints: on a terminal, a Keras-like line per epoch redrawn as steps
 * go (step/steps, elapsed, ETA, img/s, loss, top-1); elsewhere one plain line per epoch. */
#ifndef CNN_TRAIN_PROGRESS_H
#define CNN_TRAIN_PROGRESS_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct progress {
    FILE *out;
    bool tty;
    int epoch, epochs;
    int64_t steps;
    double t0, last_draw;
} progress;

double progress_now(void);
void progress_init(progress *p, FILE *out, int tty /* -1: detect */);
void progress_begin(progress *p, int epoch, int epochs, int64_t steps);
void progress_step(progress *p, int64_t step, int64_t images, double loss, double top1);
/* The epoch's closing line; val_* < 0 are omitted. */
void progress_end(progress *p, int64_t images, double loss, double top1, double val_loss, double val_top1,
                  double val_top5, float lr, const char *note);
#endif
