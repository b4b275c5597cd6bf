/* session.h — what the trainer and the training tools (sanity checks) share: the data (training
 * split, the range trained on, normalization from the training images only, as data sources), the
 * model compiled for training, its optimizer and a deterministic shuffling loader; one call is one
 * step. In-memory sets (IDX, CIFAR) and image folders (DIR/train, DIR/val) alike. */
#ifndef CNN_TRAIN_SESSION_H
#define CNN_TRAIN_SESSION_H
#include "core/plan.h"
#include "data/dataset.h"
#include "data/folder.h"
#include "data/loader.h"
#include "dist/dist.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

typedef struct session {
    const train_cfg *cfg;
    bool folder;                     /* --dataset folder */
    data_set train, test;            /* in-memory data sets */
    folder_set ftrain, ftest;        /* or image folders */
    image_transform ttrain, ttest;   /* folders: torchvision's ImageNet transforms */
    int64_t first, count;            /* the training range (in-memory: after the held-out images) */
    float mean[CKPT_MAX_CHANNELS], std[CKPT_MAX_CHANNELS];
    int c, h, w, classes;            /* one sample, and the classes */
    char *const *class_names;
    data_source *val_src;            /* the held-out images (--val), else NULL */
    data_source *test_src;           /* the test split (folders: val/), when asked */
    data_source *loader_src;         /* what the loader draws from (session_loader) */
    int workers;
    graph *g;
    plan *p;
    optimizer *opt;
    data_loader *loader;
    int batch;                       /* of this process: the global batch / ranks */
    int rank, ranks;                 /* data-parallel: this process's shard of every batch (ranks <= 1: all) */
    dist_grads *sync;                /* ranks > 1: the gradients' all-reduce */
    double backward_s;               /* time in plan_backward over `backward_steps` steps */
    int64_t backward_steps;
    int crop_pad, flip;              /* augmentation, resolved by data set when the config says -1 */
    int64_t step;                    /* global training step: keys the dropout masks */
} session;

/* Load the data set cfg names (the test split too when `test`), fix the training range, the
 * normalization and the augmentation (CIFAR: crop 4 and flips unless the config says). */
cnn_status session_data(session *s, const train_cfg *cfg, bool test);
/* Build the model cfg describes (initialized from cfg->seed) for batches of `batch`, with its
 * losses and optimizer; replaces a previous one. With ranks > 1, `batch` is this process's share
 * of the global batch, gradients are averaged over the ranks (in buckets of CNN_BUCKET_KB, 1024 by
 * default, started during backward unless CNN_NO_OVERLAP is set: knobs for measuring). With
 * cfg->sync_bn batch norm takes every rank's statistics (in one process: its own, computed the same
 * way). */
cnn_status session_model(session *s, int batch);
/* Serve shuffled training batches of the first `count` images of the training range (all of it:
 * s->count), with the configured augmentation or none; replaces a previous loader. */
cnn_status session_loader(session *s, int64_t count, bool augment);
/* The next batch of the loader: training-mode forward; with `update`, backward and an optimizer
 * step at lr. Gives the batch's mean loss and its number of top-1 hits (of the global batch: summed
 * over the ranks). A non-finite loss or gradient is CNN_ERR_DIVERGED, with the op where it appeared
 * (diverge.h; in one process), before any update. */
cnn_status session_step(session *s, float lr, bool update, double *loss, int64_t *correct);
void session_close_model(session *s);
void session_close(session *s);
#endif
