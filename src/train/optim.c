/* optim.c — the optimizers, following torch.optim (1.13) line by line. */
#include "train/optim.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"

void optim_defaults(optim_cfg *c, optim_kind kind) {
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->lr = kind == OPT_SGD ? 0.1f : 1e-3f;
    c->momentum = kind == OPT_SGD ? 0.9f : 0.0f;
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->eps = 1e-8f;
    c->weight_decay = kind == OPT_ADAMW ? 1e-2f : 0.0f;
}

const char *optim_name(optim_kind k) { return k == OPT_SGD ? "sgd" : k == OPT_ADAM ? "adam" : "adamw"; }

cnn_status optim_parse_kind(const char *s, optim_kind *k) {
    if (!strcmp(s, "sgd")) *k = OPT_SGD;
    else if (!strcmp(s, "adam")) *k = OPT_ADAM;
    else if (!strcmp(s, "adamw")) *k = OPT_ADAMW;
    else return cnn_fail(CNN_ERR_ARG, "--optimizer %s: expected sgd, adam or adamw", s);
    return CNN_OK;
}

cnn_status optim_create(graph *g, const optim_cfg *cfg, optimizer **out) {
    *out = NULL;
    if (!g->finalized) return cnn_fail(CNN_ERR_INTERNAL, "optimizer created before the model was compiled");
    if (!(cfg->lr >= 0) || !(cfg->momentum >= 0) || !(cfg->weight_decay >= 0) || !(cfg->beta1 >= 0 && cfg->beta1 < 1) ||
        !(cfg->beta2 >= 0 && cfg->beta2 < 1) || !(cfg->eps > 0) || (cfg->nesterov && cfg->momentum <= 0))
        return cnn_fail(CNN_ERR_ARG, "optimizer settings out of range (lr %g, momentum %g, weight decay %g, betas %g/%g, "
                                     "eps %g%s)", cfg->lr, cfg->momentum, cfg->weight_decay, cfg->beta1, cfg->beta2,
                        cfg->eps, cfg->nesterov && cfg->momentum <= 0 ? ", Nesterov needs momentum" : "");
    optimizer *o = calloc(1, sizeof *o);
    if (!o) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    o->cfg = *cfg;
    o->g = g;
    o->slots = cfg->kind == OPT_SGD ? (cfg->momentum > 0 ? 1 : 0) : 2;
    if (o->slots) {
        o->state = aligned_alloc(64, g->grads_bytes * o->slots + 64);
        if (!o->state) {
            free(o);
            return cnn_fail(CNN_ERR_NOMEM, "cannot allocate the optimizer state");
        }
        memset(o->state, 0, g->grads_bytes * o->slots);
    }
    *out = o;
    return CNN_OK;
}

void optim_free(optimizer *o) {
    if (!o) return;
    free(o->state);
    free(o);
}

float *optim_state(const optimizer *o, int slot, int pid) {
    const param *p = &o->g->params[pid];
    if (slot >= o->slots || !param_trainable(p)) return NULL;
    return (float *)((uint8_t *)o->state + (size_t)slot * o->g->grads_bytes + p->grad_off);
}

const char *optim_slot_name(const optimizer *o, int slot) {
    if (o->cfg.kind == OPT_SGD) return "momentum_buffer";
    return slot == 0 ? "exp_avg" : "exp_avg_sq";
}

double optim_grad_norm(const optimizer *o) {
    const float *gr = (const float *)(o->g->arena + o->g->grads_off);
    size_t n = o->g->grads_bytes / sizeof(float);
    /* per-thread partial sums added in thread order: the same bits for the same thread count */
    enum { MAX_THREADS = 256 };
    double part[MAX_THREADS] = {0}, s = 0;
    int nthreads = omp_get_max_threads() < MAX_THREADS ? omp_get_max_threads() : MAX_THREADS;
#pragma omp parallel num_threads(nthreads)
    {
        double local = 0;
#pragma omp for schedule(static)
        for (size_t i = 0; i < n; i++) local += (double)gr[i] * gr[i];
        part[omp_get_thread_num()] = local;
    }
    for (int t = 0; t < nthreads; t++) s += part[t];
    return sqrt(s);
}

static void sgd(const optimizer *o, float *w, float *g, float *buf, size_t n, float lr, float wd) {
    const optim_cfg *c = &o->cfg;
    float mom = c->momentum, damp = 1.0f - c->dampening;
    bool first = o->step == 0;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        float d = g[i] + wd * w[i];
        if (buf) {
            buf[i] = first ? d : mom * buf[i] + damp * d;
            d = c->nesterov ? d + mom * buf[i] : buf[i];
        }
        w[i] -= lr * d;
    }
}

static void adam(const optimizer *o, float *w, float *g, float *m, float *v, size_t n, float lr, float wd) {
    const optim_cfg *c = &o->cfg;
    double t = (double)(o->step + 1);
    float bc1 = (float)(1.0 - pow(c->beta1, t)), bc2_sqrt = (float)sqrt(1.0 - pow(c->beta2, t));
    float step_size = lr / bc1, b1 = c->beta1, b2 = c->beta2, eps = c->eps;
    bool decoupled = c->kind == OPT_ADAMW;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        if (decoupled) w[i] *= 1.0f - lr * wd;
        else gi += wd * w[i];
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        w[i] -= step_size * m[i] / (sqrtf(v[i]) / bc2_sqrt + eps);
    }
}

double optim_step(optimizer *o, float lr) {
    double norm = o->cfg.clip_norm > 0 ? optim_grad_norm(o) : 0;
    optim_step_norm(o, lr, norm);
    return norm;
}

void optim_step_norm(optimizer *o, float lr, double norm) {
    graph *g = o->g;
    if (o->cfg.clip_norm > 0) {
        double coef = o->cfg.clip_norm / (norm + 1e-6);
        if (coef < 1) {
            float *gr = (float *)(g->arena + g->grads_off);
            size_t n = g->grads_bytes / sizeof(float);
#pragma omp parallel for simd schedule(static)
            for (size_t i = 0; i < n; i++) gr[i] *= (float)coef;
        }
    }
    for (int pid = 0; pid < g->nparams; pid++) {
        param *p = &g->params[pid];
        if (!param_trainable(p)) continue;
        float wd = o->cfg.weight_decay;
        if (o->cfg.no_decay_bn_bias && (p->role == PARAM_BIAS || p->role == PARAM_NORM)) wd = 0;
        size_t n = p->bytes / sizeof(float);
        float *w = graph_param_data(g, pid), *gr = graph_param_grad(g, pid);
        if (o->cfg.kind == OPT_SGD) sgd(o, w, gr, optim_state(o, 0, pid), n, lr, wd);
        else adam(o, w, gr, optim_state(o, 0, pid), optim_state(o, 1, pid), n, lr, wd);
    }
    o->step++;
    g->version++;
}
