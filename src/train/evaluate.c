/* evaluate.c — metrics and evaluation passes. */
#include "train/evaluate.h"
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/plan.h"
#include "data/loader.h"

void eval_result_free(eval_result *r) {
    free(r->confusion);
    r->confusion = NULL;
}

void metrics_count(const float *logits, const int32_t *labels, int n, int k, int64_t *top1, int64_t *top5,
                   int64_t *confusion) {
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * k;
        float target = z[labels[i]];
        int higher = 0, best = 0;
        for (int j = 0; j < k; j++) {
            higher += z[j] > target;
            if (z[j] > z[best]) best = j;
        }
        *top1 += higher == 0;
        *top5 += higher < 5;
        if (confusion) confusion[(size_t)labels[i] * k + best]++;
    }
}

struct evaluator {
    graph *g;
    int batch, shard, shards;
    plan *full, *rest;
};

cnn_status evaluator_create(graph *g, int batch, evaluator **out) {
    evaluator *e = calloc(1, sizeof *e);
    if (!e) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    e->g = g;
    e->batch = batch;
    cnn_status st = plan_create(g, batch, PLAN_EVAL, &e->full);
    if (st) {
        free(e);
        return st;
    }
    *out = e;
    return CNN_OK;
}

void evaluator_shard(evaluator *e, int shard, int shards) {
    e->shard = shard;
    e->shards = shards;
}

void evaluator_free(evaluator *e) {
    if (!e) return;
    plan_free(e->full);
    plan_free(e->rest);
    free(e);
}

static cnn_status plan_for(evaluator *e, int n, plan **p) {
    if (n == e->batch) {
        *p = e->full;
        return CNN_OK;
    }
    if (!e->rest || plan_batch(e->rest) != n) {
        plan_free(e->rest);
        e->rest = NULL;
        CNN_TRY(plan_create(e->g, n, PLAN_EVAL, &e->rest));
    }
    *p = e->rest;
    return CNN_OK;
}

static cnn_status run_batches(evaluator *e, data_loader *l, eval_result *r, float *images, int32_t *labels) {
    int k = r->classes;
    size_t image = (size_t)graph_tensor(e->g, e->g->input)->c * graph_tensor(e->g, e->g->input)->h *
                   graph_tensor(e->g, e->g->input)->w;
    int n;
    double loss = 0;
    for (;;) {
        CNN_TRY(loader_next(l, images, labels, &n));
        if (n == 0) break;
        plan *p;
        CNN_TRY(plan_for(e, n, &p));
        memcpy(plan_input(p), images, sizeof(float) * image * n);
        memcpy(plan_labels(p), labels, sizeof(int32_t) * n);
        CNN_TRY(plan_forward(p, false, 0));
        loss += plan_main_loss(p) * n;
        metrics_count(plan_logits(p), labels, n, k, &r->top1, &r->top5, r->confusion);
        r->n += n;
    }
    r->loss = r->n ? loss / r->n : 0;
    r->bad = loader_bad_count(l);
    return CNN_OK;
}

cnn_status evaluator_run(evaluator *e, const data_source *src, int workers, bool confusion, eval_result *r) {
    memset(r, 0, sizeof *r);
    int out = graph_main_output(e->g);
    r->classes = graph_tensor(e->g, out)->c;
    const tensor *in = graph_tensor(e->g, e->g->input);
    if (src->num_classes > r->classes)
        return cnn_fail(CNN_ERR_SHAPE, "the data has %d classes, the model %d", src->num_classes, r->classes);
    if (src->c != in->c || src->h != in->h || src->w != in->w)
        return cnn_fail(CNN_ERR_SHAPE, "the data has %dx%dx%d images, the model takes %dx%dx%d", src->c, src->h, src->w,
                        in->c, in->h, in->w);
    if (confusion && !(r->confusion = calloc((size_t)r->classes * r->classes, sizeof(int64_t))))
        return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    loader_config lc = {.src = src, .batch = e->batch, .workers = workers, .shard = e->shard, .shards = e->shards};
    data_loader *l;
    CNN_TRY(loader_create(&lc, &l));
    float *images = malloc(sizeof(float) * e->batch * src->c * src->h * src->w);
    int32_t *labels = malloc(sizeof(int32_t) * e->batch);
    cnn_status st = images && labels ? CNN_OK : cnn_fail(CNN_ERR_NOMEM, "out of memory");
    if (!st) {
        loader_start_epoch(l, 0, 0);
        st = run_batches(e, l, r, images, labels);
    }
    free(images);
    free(labels);
    loader_destroy(l);
    return st;
}
