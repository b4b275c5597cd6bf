/* session.c — data, model, optimizer and loader for training steps (see session.h). */
#include "train/session.h"
#include <math.h>
#include <string.h>
#include "core/error.h"
#include "core/rng.h"
#include "ops/ops.h"
#include "train/evaluate.h"

cnn_status session_data(session *s, const train_cfg *c, bool test) {
    s->cfg = c;
    const char *dir = c->data_dir ? c->data_dir : data_default_dir(c->dataset);
    if (!dir) return cnn_fail(CNN_ERR_ARG, "--dataset %s: unknown (fashion-mnist, mnist, cifar10, cifar100)", c->dataset);
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
    return CNN_OK;
}

void session_close_model(session *s) {
    loader_destroy(s->loader);
    optim_free(s->opt);
    plan_free(s->p);
    graph_free(s->g);
    s->loader = NULL;
    s->opt = NULL;
    s->p = NULL;
    s->g = NULL;
}

cnn_status session_model(session *s, int batch) {
    const train_cfg *c = s->cfg;
    session_close_model(s);
    model_cfg m = c->model;
    m.in_c = s->train.c;
    m.in_h = s->train.h;
    m.in_w = s->train.w;
    m.classes = s->train.num_classes;
    m.seed = c->seed;
    CNN_TRY(model_build(&m, &s->g));
    graph_attach_losses(s->g, c->label_smoothing);
    if (!graph_ok(s->g)) return s->g->error;
    CNN_TRY(plan_create(s->g, batch, PLAN_TRAIN, &s->p));
    s->batch = batch;
    s->step = 0;
    return optim_create(s->g, &c->opt, &s->opt);
}

cnn_status session_loader(session *s, int64_t first, int64_t count, bool augment) {
    const train_cfg *c = s->cfg;
    loader_destroy(s->loader);
    s->loader = NULL;
    if (count < s->batch)
        return cnn_fail(CNN_ERR_ARG, "%lld training images are fewer than one batch of %d", (long long)count, s->batch);
    loader_config lc = {
        .ds = &s->train, .first = first, .count = count, .batch = s->batch, .shuffle = 1, .drop_last = 1,
        .crop_pad = augment ? s->crop_pad : 0, .flip = augment ? s->flip : 0, .mean = s->mean, .std = s->std,
        .seed = c->seed,
    };
    return loader_create(&lc, &s->loader);
}

cnn_status session_step(session *s, float lr, bool update, double *loss, int64_t *correct) {
    int n = loader_next(s->loader, plan_input(s->p), plan_labels(s->p));
    if (n != s->batch) return cnn_fail(CNN_ERR_INTERNAL, "loader gave %d images, expected %d", n, s->batch);
    uint64_t key = rng_key(s->cfg->seed, RNG_DROPOUT, (uint64_t)s->step, 0);
    CNN_TRY(plan_forward(s->p, true, key));
    *loss = plan_loss(s->p);
    if (!isfinite(*loss))
        return cnn_fail(CNN_ERR_DIVERGED, "the loss is %g at step %lld: training diverged; try a smaller --lr", *loss,
                        (long long)s->step);
    int64_t top5 = 0;
    *correct = 0;
    metrics_count(plan_logits(s->p), plan_labels(s->p), n, s->train.num_classes, correct, &top5, NULL);
    if (!update) return CNN_OK;
    CNN_TRY(plan_backward(s->p));
    optim_step(s->opt, lr);
    s->step++;
    return CNN_OK;
}

void session_close(session *s) {
    session_close_model(s);
    data_free(&s->train);
    data_free(&s->test);
}
