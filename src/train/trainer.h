/* trainer.h — the training loop behind `cnn train` and the C API: data, model, optimizer and
 * schedule from one configuration; per epoch a pass over the shuffled training split, a
 * validation pass, a row of metrics.csv, curves.png and the last/best checkpoints in the run
 * directory; early stopping and ReduceLROnPlateau; exact resume from the last checkpoint. */
#ifndef CNN_TRAIN_TRAINER_H
#define CNN_TRAIN_TRAINER_H
#include <signal.h>
#include <stdio.h>
#include "models/models.h"
#include "train/monitor.h"
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
    early_stop_cfg early;      /* the best epoch (--monitor), early stopping, restoring the best weights */
    plateau_cfg plateau;       /* with sched.kind == SCHED_PLATEAU (min lr: sched.min_lr) */
    float label_smoothing;
    int64_t limit;             /* train on the first `limit` training images after the held-out ones */
    int64_t val;               /* hold out the first `val` training images for validation (0: validate on test) */
    int crop_pad, flip;        /* augmentation; -1: by data set (CIFAR: pad 4 + flip; MNIST-like: none;
                                  folder: RandomResizedCrop + flip, flip only turned off by 0) */
    int image_size, resize;    /* folder: crop side (224) and evaluation shorter side (0: size * 256 / 224) */
    bool full_decode;          /* folder: never decode JPEGs at reduced scale (pixel-exact with PIL, slower) */
    int workers;               /* loader threads (0: 1 for in-memory sets, the cores up to 8 for folders) */
    int checkpoint_every;      /* also save last.safetensors after every N-th global step (0: at epoch ends only) */
    bool bf16;                 /* mixed precision: convolutions in bf16 (graph.bf16; --precision bf16) */
    bool recompute;            /* batch norm outputs recomputed in backward, not kept (graph.recompute; --recompute) */
    bool sync_bn;              /* data-parallel (mpirun): batch norm on the global batch's statistics
                                  (in one process: batch norm with statistics computed as the ranks do) */
    uint64_t seed;
    int progress;              /* -1: detect a terminal */
    FILE *log;                 /* where progress goes (stdout if NULL) */
    bool quiet;                /* only the first and last lines */
    bool plot;                 /* write curves.png after every epoch (default on) */
    /* Continue the run in this directory from its last.safetensors: everything is restored from
     * it (weights, optimizer, schedule position, monitors, history, data order, random streams),
     * and of this configuration only epochs (when > 0), threads, workers, data_dir, eval_batch,
     * checkpoint_every, progress, log, quiet, plot and stop are used. */
    const char *resume_dir;
    /* When it becomes non-zero (a signal handler's flag), stop after the current epoch with the
     * run saved and resumable. */
    volatile sig_atomic_t *stop;
} train_cfg;

typedef struct train_summary {
    int epochs_done;
    int best_epoch;                            /* by the monitor */
    bool stopped_early, interrupted;
    double train_loss, train_top1;
    double val_loss, val_top1, val_top5;       /* last epoch */
    double best_val_top1;                      /* the highest of the run, whatever the monitor */
    int best_val_top1_epoch;
    double test_top1, test_top5;               /* after training, when validation was a held-out split */
    double seconds, images_per_second;
    char run_dir[512];
} train_summary;

void train_defaults(train_cfg *c);
/* Settings that cannot train (ranges, combinations); train_run checks them too. */
cnn_status train_check(const train_cfg *c);
/* Under mpirun (the process joined the job with dist_init), every rank calls it with the same
 * configuration: each trains on its shard of every batch, rank 0 alone prints and writes. */
cnn_status train_run(const train_cfg *cfg, train_summary *out);
/* The configuration of the run in run_dir (from its last.safetensors), as train_run would resume
 * it. Its strings point into *keep, which the caller frees with json_free after use. */
struct json_value;
cnn_status train_load_config(const char *run_dir, train_cfg *cfg, struct json_value **keep);
#endif
