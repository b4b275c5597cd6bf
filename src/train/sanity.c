/* sanity.c — the sanity checks (see sanity.h). Each starts from a freshly built model. */
#include "train/sanity.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"

#define RANGE_BETA 0.9
#define INITIAL_BATCHES 4

void sanity_defaults(sanity_cfg *c) {
    c->sample = 64;
    c->overfit_steps = 300;
    c->range_steps = 100;
    c->range_start = 1e-7;
    c->range_end = 10;
}

/* Step i of a run that goes through as many epochs of the loader as it takes. */
static cnn_status step_at(session *s, int64_t i, float lr, bool update, double *loss, int64_t *correct) {
    int64_t per_epoch = loader_batches_per_epoch(s->loader);
    if (i % per_epoch == 0) loader_start_epoch(s->loader, (int)(i / per_epoch), 0);
    return session_step(s, lr, update, loss, correct);
}

/* Mean over the batch of the standard deviation of each image's logits across classes. */
static double logit_spread(const float *z, int n, int k) {
    double total = 0;
    for (int i = 0; i < n; i++) {
        double m = 0, v = 0;
        for (int j = 0; j < k; j++) m += z[(size_t)i * k + j];
        m /= k;
        for (int j = 0; j < k; j++) v += (z[(size_t)i * k + j] - m) * (z[(size_t)i * k + j] - m);
        total += sqrt(v / k);
    }
    return total / n;
}

cnn_status sanity_initial_loss(session *s, sanity_initial *r) {
    memset(r, 0, sizeof *r);
    CNN_TRY(session_model(s, s->cfg->batch));
    CNN_TRY(session_loader(s, s->count, true));
    int64_t batches = loader_batches_per_epoch(s->loader);
    if (batches > INITIAL_BATCHES) batches = INITIAL_BATCHES;
    r->classes = s->classes;
    for (int64_t i = 0; i < batches; i++) {
        double loss;
        int64_t correct;
        CNN_TRY(step_at(s, i, 0, false, &loss, &correct));
        r->loss += loss / batches;
        r->logit_std += logit_spread(plan_logits(s->p), s->batch, r->classes) / batches;
    }
    r->expected = log((double)r->classes);
    r->tolerance = 0.25; /* σ²/2 = 0.25 at σ ≈ 0.7 */
    r->pass = fabs(r->loss - r->expected) <= r->tolerance;
    return CNN_OK;
}

cnn_status sanity_overfit_sample(session *s, const sanity_cfg *c, sanity_overfit *r) {
    memset(r, 0, sizeof *r);
    if (c->sample < 1 || c->sample > s->count)
        return cnn_fail(CNN_ERR_ARG, "--sample %d: expected 1 to the %lld training images", c->sample, (long long)s->count);
    r->sample = c->sample;
    r->batch = s->cfg->batch < c->sample ? s->cfg->batch : c->sample;
    CNN_TRY(session_model(s, r->batch));
    CNN_TRY(session_loader(s, c->sample, false));
    int64_t per_pass = loader_batches_per_epoch(s->loader);
    double loss_sum = 0;
    int64_t hits = 0;
    for (int64_t i = 0; i < c->overfit_steps; i++) {
        double loss;
        int64_t correct;
        CNN_TRY(step_at(s, i, s->cfg->opt.lr, true, &loss, &correct));
        loss_sum += loss;
        hits += correct;
        r->steps = (int)(i + 1);
        if ((i + 1) % per_pass) continue;
        r->loss = loss_sum / per_pass;
        r->top1 = (double)hits / (per_pass * r->batch);
        loss_sum = 0;
        hits = 0;
        if (r->top1 == 1.0) break;
    }
    r->pass = r->top1 == 1.0;
    return CNN_OK;
}

void sanity_range_free(sanity_range *r) {
    free(r->lr);
    free(r->loss);
    free(r->smoothed);
    memset(r, 0, sizeof *r);
}

/* The lowest smoothed loss, the steepest fall before it, and the suggestion. */
static void range_suggest(sanity_range *r) {
    int imin = 0;
    for (int i = 1; i < r->n; i++)
        if (r->smoothed[i] < r->smoothed[imin]) imin = i;
    r->min_loss = r->smoothed[imin];
    r->lr_at_min = r->lr[imin];
    r->suggested = r->lr_at_min / 10;
    double best = 0;
    for (int i = 1; i < imin; i++) {
        double slope = (r->smoothed[i + 1] - r->smoothed[i - 1]) / (log(r->lr[i + 1]) - log(r->lr[i - 1]));
        if (slope < best) best = slope, r->steepest = r->lr[i];
    }
    int head = r->n < 5 ? r->n : 5;
    for (int i = 0; i < head; i++) r->start_loss += r->loss[i] / head;
    r->pass = r->min_loss < 0.9 * r->start_loss;
}

cnn_status sanity_lr_range(session *s, const sanity_cfg *c, sanity_range *r) {
    memset(r, 0, sizeof *r);
    int n = c->range_steps;
    if (n < 10 || !(c->range_start > 0 && c->range_end > c->range_start))
        return cnn_fail(CNN_ERR_ARG, "LR range test: %d steps from %g to %g (expected at least 10 steps, 0 < start < end)",
                        n, c->range_start, c->range_end);
    r->lr = malloc(sizeof(double) * n);
    r->loss = malloc(sizeof(double) * n);
    r->smoothed = malloc(sizeof(double) * n);
    if (!r->lr || !r->loss || !r->smoothed) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    CNN_TRY(session_model(s, s->cfg->batch));
    CNN_TRY(session_loader(s, s->count, true));
    double avg = 0, lowest = INFINITY;
    for (int i = 0; i < n; i++) {
        double lr = c->range_start * pow(c->range_end / c->range_start, (double)i / (n - 1)), loss;
        int64_t correct;
        cnn_status st = step_at(s, i, (float)lr, true, &loss, &correct);
        if (st == CNN_ERR_DIVERGED) {
            r->diverged = true;
            break;
        }
        CNN_TRY(st);
        avg = RANGE_BETA * avg + (1 - RANGE_BETA) * loss;
        r->lr[i] = lr;
        r->loss[i] = loss;
        r->smoothed[i] = avg / (1 - pow(RANGE_BETA, i + 1));
        r->n = i + 1;
        lowest = fmin(lowest, r->smoothed[i]);
        if (r->smoothed[i] > 4 * lowest) {
            r->diverged = true;
            break;
        }
    }
    if (r->n == 0) return cnn_fail(CNN_ERR_DIVERGED, "LR range test: the loss diverged at the first step");
    range_suggest(r);
    return CNN_OK;
}
