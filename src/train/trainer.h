/* trainer.h — the training loop behind `cnn train` and the C API: data, model, optimizer and
 * schedule from one configuration; per epoch a pass over the shuffled training split, a
 * validation pass, a row of metrics.csv and the last/best checkpoints in the run directory. */
#ifndef CNN_TRAIN_TRAINER_H
#define CNN_TRAIN_TRAINER_H
#include <stdio.h>
#include "models/models.h"
#include "train/optim.h"
#include "train/schedule.h"

typedef struct train_cfg {
    model_cfg model;
    const char *dataset;       /* fashion-mnist (default), mnist, cifar10, cifar100, folder */
    const char *data_dir;      /* NULL: the data set's default directory; folder: DIR with train/ and val/ */
    const char *out_dir;       /* NULL: runs/<model>-<dataset>[-N], never an existing one */
    int epochs, batch, eval_batch, threads;
    optim_cfg opt;
    sched_cfg sched;
    float label_smoothing;
    int64_t limit;             /* train on the first `limit` training images after the held-out ones */
    int64_t val;               /* hold out the first `val` training images for validation (0: validate on test) */
    int crop_pad, flip;        /* augmentation; -1: by data set (CIFAR: pad 4 + flip; MNIST-like: none;
                                  folder: RandomResizedCrop + flip, flip only turned off by 0) */
    int image_size, resize;    /* folder: crop side (224) and evaluation shorter side (0: size * 256 / 224) */
    bool full_decode;          /* folder: never decode JPEGs at reduced scale (pixel-exact with PIL, slower) */
    int workers;               /* loader threads (0: 1 for in-memory sets, the cores up to 8 for folders) */
    uint64_t seed;
    int progress;              /* -1: detect a terminal */
    FILE *log;                 /* where progress goes (stdout if NULL) */
} train_cfg;

typedef struct train_summary {
    int epochs_done;
    double train_loss, train_top1;
    double val_loss, val_top1, val_top5;       /* last epoch */
    double best_val_top1;
    double test_top1, test_top5;               /* after training, when validation was a held-out split */
    double seconds, images_per_second;
    char run_dir[512];
} train_summary;

void train_defaults(train_cfg *c);
/* Loader threads when --workers is not given: 1 for in-memory sets, the cores (at most 8) for files. */
int data_default_workers(bool files);
cnn_status train_run(const train_cfg *cfg, train_summary *out);
#endif
