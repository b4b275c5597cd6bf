/* train.c — the public training entry points (cnn.h): a flat configuration with defaults, mapped
 * onto the trainer's (src/train/trainer.h). */
#include <string.h>
#include "backend/dnnl_backend.h"
#include "cnn.h"
#include "core/error.h"
#include "train/trainer.h"

void cnn_train_defaults(cnn_train_config *c) {
    memset(c, 0, sizeof *c);
    c->model = "convnet";
    c->batch_norm = 1;
    c->dropout = -1;
    c->dataset = "fashion-mnist";
    c->epochs = 2;
    c->batch_size = 64;
    c->optimizer = "sgd";
    c->momentum = 0.9f;
    c->weight_decay = -1;
    c->schedule = "onecycle";
    c->seed = 1;
}

static cnn_status to_train_cfg(const cnn_train_config *c, train_cfg *t) {
    train_defaults(t);
    t->model.name = c->model ? c->model : "convnet";
    t->model.bn = c->batch_norm != 0;
    t->model.dropout = c->dropout;
    t->dataset = c->dataset ? c->dataset : "fashion-mnist";
    t->data_dir = c->data_dir;
    t->out_dir = c->out_dir;
    t->epochs = c->epochs;
    t->batch = c->batch_size;
    optim_kind kind;
    CNN_TRY(optim_parse_kind(c->optimizer ? c->optimizer : "sgd", &kind));
    optim_defaults(&t->opt, kind);
    t->opt.lr = c->lr > 0 ? c->lr : kind == OPT_SGD ? 0.05f : 1e-3f;
    if (kind == OPT_SGD) t->opt.momentum = c->momentum;
    if (c->weight_decay >= 0) t->opt.weight_decay = c->weight_decay;
    CNN_TRY(sched_parse_kind(c->schedule ? c->schedule : "onecycle", &t->sched.kind));
    t->label_smoothing = c->label_smoothing;
    t->image_size = c->image_size;
    t->resize = c->resize;
    t->full_decode = c->full_decode != 0;
    t->workers = c->workers;
    t->threads = c->threads;
    t->seed = c->seed;
    t->log = c->log;
    if (c->precision) CNN_TRY(be_precision_check(c->precision, &t->bf16));
    t->recompute = c->recompute != 0;
    return CNN_OK;
}

cnn_status cnn_train(const cnn_train_config *c, cnn_train_result *result) {
    if (!c) return cnn_fail(CNN_ERR_ARG, "cnn_train: no configuration");
    train_cfg t;
    CNN_TRY(to_train_cfg(c, &t));
    train_summary s;
    cnn_status st = train_run(&t, &s);
    if (result) {
        *result = (cnn_train_result){s.epochs_done, s.train_loss, s.train_top1, s.val_loss, s.val_top1, s.val_top5,
                                     s.best_val_top1, s.seconds, s.images_per_second, ""};
        memcpy(result->run_dir, s.run_dir, sizeof result->run_dir);
    }
    return st;
}
