/* session.c — data, model, optimizer and loader for training steps (see session.h). */
#include "train/session.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/rng.h"
#include "ops/ops.h"
#include "train/diverge.h"
#include "train/evaluate.h"
#include "train/progress.h"

static cnn_status memory_data(session *s, bool test) {
    const train_cfg *c = s->cfg;
    const char *dir = c->data_dir ? c->data_dir : data_default_dir(c->dataset);
    if (!dir)
        return cnn_fail(CNN_ERR_ARG, "--dataset %s: unknown (fashion-mnist, mnist, cifar10, cifar100, folder)", c->dataset);
    if (c->image_size || c->resize || c->full_decode)
        return cnn_fail(CNN_ERR_ARG, "--image-size, --resize and --full-decode apply to --dataset folder");
    CNN_TRY(data_load(c->dataset, dir, 0, &s->train));
    if (test) CNN_TRY(data_load(c->dataset, dir, 1, &s->test));
    if (c->val < 0 || c->val >= s->train.n)
        return cnn_fail(CNN_ERR_ARG, "--val %lld: must leave training images (the training split has %lld)",
                        (long long)c->val, (long long)s->train.n);
    s->first = c->val;
    s->count = s->train.n - c->val;
    if (c->limit > 0 && c->limit < s->count) s->count = c->limit;
    bool cifar = strncmp(c->dataset, "cifar", 5) == 0;
    s->crop_pad = c->crop_pad >= 0 ? c->crop_pad : cifar ? 4 : 0;
    s->flip = c->flip >= 0 ? c->flip : cifar;
    if (s->train.c > CKPT_MAX_CHANNELS) return cnn_fail(CNN_ERR_SHAPE, "%d-channel images", s->train.c);
    /* normalization from the training images only (seed 002, question 20) */
    data_channel_stats(&s->train, s->first, s->count, s->mean, s->std);
    s->c = s->train.c, s->h = s->train.h, s->w = s->train.w;
    s->classes = s->train.num_classes;
    s->class_names = s->train.class_names;
    if (c->val > 0) CNN_TRY(memory_source_create(&s->train, 0, c->val, 0, 0, s->mean, s->std, &s->val_src));
    if (test) CNN_TRY(memory_source_create(&s->test, 0, s->test.n, 0, 0, s->mean, s->std, &s->test_src));
    return CNN_OK;
}

/* DIR/train and DIR/val with torchvision's ImageNet transforms; val keeps the training classes. */
static cnn_status folder_data(session *s, bool test) {
    const train_cfg *c = s->cfg;
    if (!c->data_dir)
        return cnn_fail(CNN_ERR_ARG, "--dataset folder needs --data DIR (with DIR/train/<class>/ and DIR/val/<class>/)");
    if (c->val || c->limit)
        return cnn_fail(CNN_ERR_ARG, "--val and --limit apply to the in-memory data sets; a folder has its own val/");
    if (c->crop_pad > 0)
        return cnn_fail(CNN_ERR_ARG, "--crop applies to the in-memory data sets; folders use RandomResizedCrop");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/train", c->data_dir);
    CNN_TRY(folder_scan(dir, NULL, 0, &s->ftrain));
    int size = c->image_size > 0 ? c->image_size : 224;
    transform_defaults(&s->ttrain, 1, size);
    transform_defaults(&s->ttest, 0, size);
    if (c->resize > 0) s->ttest.resize = c->resize;
    s->flip = c->flip != 0;
    s->crop_pad = 0;
    if (!s->flip) s->ttrain.flip = 0;
    s->ttrain.reduced_dct = s->ttest.reduced_dct = !c->full_decode;
    memcpy(s->mean, s->ttest.mean, sizeof s->ttest.mean);
    memcpy(s->std, s->ttest.std, sizeof s->ttest.std);
    s->first = 0;
    s->count = s->ftrain.n;
    CNN_TRY(transform_check(&s->ttrain));
    s->c = s->ttrain.channels, s->h = s->w = size;
    s->classes = s->ftrain.num_classes;
    s->class_names = s->ftrain.class_names;
    if (!test) return CNN_OK;
    snprintf(dir, sizeof dir, "%s/val", c->data_dir);
    CNN_TRY(folder_scan(dir, s->ftrain.class_names, s->ftrain.num_classes, &s->ftest));
    return folder_source_create(&s->ftest, &s->ttest, &s->test_src);
}

cnn_status session_data(session *s, const train_cfg *c, bool test) {
    s->cfg = c;
    s->folder = strcmp(c->dataset, "folder") == 0;
    s->workers = c->workers > 0 ? c->workers : data_default_workers(s->folder);
    return s->folder ? folder_data(s, test) : memory_data(s, test);
}

void session_close_model(session *s) {
    dist_grads_free(s->sync);
    s->sync = NULL;
    loader_destroy(s->loader);
    source_free(s->loader_src);
    optim_free(s->opt);
    plan_free(s->p);
    graph_free(s->g);
    s->loader = NULL;
    s->loader_src = NULL;
    s->opt = NULL;
    s->p = NULL;
    s->g = NULL;
}

cnn_status session_model(session *s, int batch) {
    const train_cfg *c = s->cfg;
    session_close_model(s);
    model_cfg m = c->model;
    m.in_c = s->c;
    m.in_h = s->h;
    m.in_w = s->w;
    m.classes = s->classes;
    m.seed = c->seed;
    CNN_TRY(model_build(&m, &s->g));
    graph_attach_losses(s->g, c->label_smoothing);
    if (!graph_ok(s->g)) return s->g->error;
    /* also in one process: its statistics are then computed as K processes compute theirs */
    if (c->sync_bn) s->g->replica_sum = dist_replica_sum;
    s->g->bf16 = c->bf16;
    s->g->recompute = c->recompute;
    CNN_TRY(plan_create(s->g, batch, PLAN_TRAIN, &s->p));
    s->batch = batch;
    s->step = 0;
    if (s->ranks > 1) {
        const char *kb = getenv("CNN_BUCKET_KB");
        size_t bytes = kb && atol(kb) > 0 ? (size_t)atol(kb) * 1024 : (size_t)1 << 20;
        CNN_TRY(dist_grads_create(s->p, bytes, !getenv("CNN_NO_OVERLAP"), &s->sync));
    }
    return optim_create(s->g, &c->opt, &s->opt);
}

cnn_status session_loader(session *s, int64_t count, bool augment) {
    const train_cfg *c = s->cfg;
    loader_destroy(s->loader);
    source_free(s->loader_src);
    s->loader = NULL;
    s->loader_src = NULL;
    int global = s->batch * (s->ranks > 1 ? s->ranks : 1);
    if (count < global)
        return cnn_fail(CNN_ERR_ARG, "%lld training images are fewer than one batch of %d", (long long)count, global);
    if (s->folder) CNN_TRY(folder_source_create(&s->ftrain, augment ? &s->ttrain : &s->ttest, &s->loader_src));
    else
        CNN_TRY(memory_source_create(&s->train, s->first, s->count, augment ? s->crop_pad : 0, augment ? s->flip : 0,
                                     s->mean, s->std, &s->loader_src));
    if (count < s->loader_src->count) s->loader_src->count = count;
    loader_config lc = {.src = s->loader_src, .batch = s->batch, .shuffle = 1, .drop_last = 1, .fill_bad = 1,
                        .workers = s->workers, .shard = s->rank, .shards = s->ranks, .seed = c->seed};
    return loader_create(&lc, &s->loader);
}

/* Names the op where the step diverged by running it again (diverge.h); not across processes, where
 * that second run would have to stay in step with the others' collectives: there the message says
 * what and when. */
static cnn_status diverged(session *s, uint64_t key, bool grads, const char *what) {
    if (s->ranks <= 1) return diverge_report(s->p, key, grads, s->step, what);
    return cnn_fail(CNN_ERR_DIVERGED, "%s at step %lld: training diverged; try a smaller --lr%s", what,
                    (long long)s->step, grads ? " or --clip-norm" : "");
}

cnn_status session_step(session *s, float lr, bool update, double *loss, int64_t *correct) {
    int n;
    CNN_TRY(loader_next(s->loader, plan_input(s->p), plan_labels(s->p), &n));
    if (n != s->batch) return cnn_fail(CNN_ERR_INTERNAL, "loader gave %d images, expected %d", n, s->batch);
    /* dropout masks of each rank's own samples (rank 0's: a single process's) */
    uint64_t key = rng_key(s->cfg->seed, RNG_DROPOUT, (uint64_t)s->step, (uint64_t)s->rank);
    CNN_TRY(plan_forward(s->p, true, key));
    *loss = plan_loss(s->p);
    char what[64], num[32];
    int64_t top5 = 0;
    *correct = 0;
    metrics_count(plan_logits(s->p), plan_labels(s->p), n, s->classes, correct, &top5, NULL);
    if (s->ranks > 1) { /* the global batch's: every rank sees the same numbers (and diverges with the others) */
        double v[2] = {*loss * n, (double)*correct};
        dist_sum(v, 2);
        *loss = v[0] / ((double)n * s->ranks);
        *correct = (int64_t)v[1];
    }
    if (!isfinite(*loss)) {
        snprintf(what, sizeof what, "the loss is %s", diverge_number(*loss, num));
        return diverged(s, key, false, what);
    }
    if (!update) return CNN_OK;
    double t0 = progress_now();
    CNN_TRY(plan_backward(s->p));
    s->backward_s += progress_now() - t0;
    s->backward_steps++;
    if (s->sync) dist_grads_finish(s->sync);
    /* one pass over the gradients, which clipping needs anyway: a NaN or infinity must not reach
       the weights (nor, through them, a checkpoint) */
    double norm = optim_grad_norm(s->opt);
    if (!isfinite(norm)) {
        snprintf(what, sizeof what, "the gradient norm is %s", diverge_number(norm, num));
        return diverged(s, key, true, what);
    }
    optim_step_norm(s->opt, lr, norm);
    s->step++;
    return CNN_OK;
}

void session_close(session *s) {
    session_close_model(s);
    source_free(s->val_src);
    source_free(s->test_src);
    s->val_src = s->test_src = NULL;
    data_free(&s->train);
    data_free(&s->test);
    folder_free(&s->ftrain);
    folder_free(&s->ftest);
}
