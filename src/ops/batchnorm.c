/* batchnorm.c — batch normalization on oneDNN. Training normalizes with the batch statistics and
 * updates the running ones as PyTorch does (momentum 0.1, unbiased variance for running_var,
 * num_batches_tracked); evaluation normalizes with the running statistics. Synchronized batch
 * norm (data-parallel training, graph.replica_sum) takes the statistics of every replica's batch,
 * as PyTorch's SyncBatchNorm: cnn.c computes per-channel sums (in double, in an order fixed by the
 * shapes alone), adds them over the replicas, and oneDNN normalizes with the result; backward adds
 * the share of the gradient that flows through the statistics. Over one replica it is ordinary
 * batch norm, and K replicas get, to the bit, the statistics one replica gets for their batches.
 * In training plans a SiLU right after batch norm is fused in, on cnn.c's own kernels (below). After a
 * convolution on cnn.c's own 16-channel kernels (conv16.h) the statistics come from the sums that
 * convolution's forward took of its output in registers (op_conv_output_sums): oneDNN's forward then
 * only normalizes (resnet20's first stage at batch 128: 0.76–0.85 → 0.46–0.57 ms per call), and its
 * backward, given those statistics, still differentiates through them. */
#include "core/error.h"
#include "core/plan.h"
#include "ops/layout.h"
#include "ops/ops.h"
#include "ops/silu.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct bn_attr {
    float eps, momentum;
} bn_attr;

typedef struct bn_state {
    int fwd_train, fwd_eval, bwd;   /* primitive handles */
    int mean, var;                  /* saved batch statistics (LIFE_SAVED) */
    int ws;                         /* ReLU mask when a ReLU is fused in (training), else -1 */
    bool sync;                      /* statistics over every replica (graph.replica_sum); then: */
    bool given;                     /* the sums come from the convolution before it (op_conv_output_sums); and */
    float *deferred;                /* non-NULL: the addition after it normalizes (op_batchnorm_deferred): the
                                       per-channel mean, scale γ/√(var + ε) and shift β it reads, nb·B each */
    double *sums;                   /* 2c+1 sums exchanged with the other replicas */
    double *part;                   /* partial sums per channel block and chunk of images */
    float *coef;                    /* 3c coefficients of the backward's correction */
    double count;                   /* values per channel in the global batch of the last forward */
} bn_state;

enum { BN_WEIGHT, BN_BIAS, BN_RMEAN, BN_RVAR, BN_COUNT };
/* The fused SiLU's per-channel vectors in bn_state.coef, nb·B entries each, zero in the padding channels
 * (whose outputs and gradients then stay zero). */
enum { CO_SCALE, CO_MEAN, CO_SHIFT, CO_ISTD, CO_K1, CO_K2, CO_COUNT };
/* Synchronized sums run over fixed chunks of images (in parallel, then added in chunk order): the
 * same bits whatever the thread count. */
enum { BN_CHUNKS = 8 };

static void bn_free(void *state) {
    bn_state *s = state;
    if (s) {
        free(s->sums);
        free(s->part);
        free(s->coef);
        free(s->deferred);
    }
    free(s);
}

/* Training primitives; synchronized, oneDNN normalizes with the statistics bn_forward gives it and
 * its backward takes them as constants (bn_backward adds the part that flows through them). fwd_flags:
 * the forward's alone (statistics given by the convolution before: its backward still differentiates
 * through them, given the statistics as any backward is). */
static cnn_status train_prims(plan *p, int nid, unsigned flags, unsigned fwd_flags, dnnl_primitive_desc_t *fpd,
                              dnnl_primitive_desc_t *bpd) {
    node *n = &plan_graph(p)->nodes[nid];
    float eps = ((bn_attr *)n->attr)->eps;
    const dnnl_memory_desc_t *src = plan_md(p, n->in[0]), *dst = plan_md(p, n->out[0]);
    dnnl_batch_normalization_desc_t bd;
    CNN_TRY(be_check(dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_training, src, eps, flags | fwd_flags),
                     "batch norm training"));
    CNN_TRY(be_pd(fpd, &bd, NULL, NULL, 0, "batch norm training"));
    CNN_TRY(be_check(dnnl_batch_normalization_backward_desc_init(&bd, dnnl_backward, dst, src, eps, flags),
                     "batch norm backward"));
    return be_pd(bpd, &bd, NULL, *fpd, 0, "batch norm backward");
}

static cnn_status alloc_sums(bn_state *s, int64_t c) {
    int64_t blocks = (c + be_block() - 1) / be_block();
    s->sums = calloc(2 * c + 1, sizeof(double));
    s->part = calloc(blocks * BN_CHUNKS * 2 * be_block(), sizeof(double));
    s->coef = calloc(CO_COUNT * blocks * be_block(), sizeof(float)); /* (sync_backward uses 3c of them) */
    return s->sums && s->part && s->coef ? CNN_OK : cnn_fail(CNN_ERR_NOMEM, "out of memory");
}

static cnn_status bn_compile(plan *p, int nid) {
    graph *g = plan_graph(p);
    node *n = &g->nodes[nid];
    bn_attr *a = n->attr;
    bn_state *s = calloc(1, sizeof *s);
    if (!s) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    plan_set_state(p, nid, s);
    s->fwd_eval = s->fwd_train = s->bwd = s->ws = -1;
    const dnnl_memory_desc_t *src = plan_md(p, n->in[0]);
    unsigned ss = dnnl_use_scale | dnnl_use_shift | (plan_fused(p, nid) & FUSED_RELU ? dnnl_fuse_norm_relu : 0);
    bool silu = plan_fused(p, nid) & FUSED_SILU; /* then cnn.c's own kernels, not oneDNN's, in every pass */
    dnnl_batch_normalization_desc_t bd;
    dnnl_primitive_desc_t fpd = NULL, pd = NULL;
    cnn_status st = CNN_OK;
    if (!silu) {
        CNN_TRY(be_check(dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_inference, src, a->eps,
                                                                     ss | dnnl_use_global_stats),
                         "batch norm inference"));
        CNN_TRY(be_pd(&pd, &bd, NULL, NULL, 0, "batch norm inference"));
        s->fwd_eval = plan_prim(p, pd, &st);
        dnnl_primitive_desc_destroy(pd);
        pd = NULL;
    }
    if (st || !plan_is_train(p)) return st;

    int64_t c = g->tensors[n->in[0]].c;
    s->sync = g->replica_sum != NULL;
    if (s->sync || silu) CNN_TRY(alloc_sums(s, c));
    const int producer = g->tensors[n->in[0]].producer;
    if (!s->sync && !silu && producer >= 0) {
        if (!(s->sums = calloc(2 * c + 1, sizeof(double)))) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
        s->given = op_conv_output_sums(p, producer, nid, s->sums);
        if (!s->given) { /* the sums are this batch norm's only where the convolution gives them */
            free(s->sums);
            s->sums = NULL;
        }
        int reader = -1;
        if (s->given && !(plan_fused(p, nid) & FUSED_RELU) && !g->recompute &&
            (reader = graph_sole_reader(g, n->out[0])) >= 0 && op_add_normalizes(p, reader, nid)) {
            const int nb = (int)((c + be_block() - 1) / be_block());
            if (!(s->deferred = calloc((size_t)3 * nb * be_block(), sizeof(float))))
                return cnn_fail(CNN_ERR_NOMEM, "out of memory");
        }
    }
    if (!silu) {
        st = train_prims(p, nid, ss | (s->sync ? dnnl_use_global_stats : 0), s->given ? dnnl_use_global_stats : 0,
                         &fpd, &pd);
        if (!st) s->fwd_train = plan_prim(p, fpd, &st);
        if (!st) s->bwd = plan_prim(p, pd, &st);
    }
    dnnl_memory_desc_t stat;
    be_md_plain(&stat, 1, &c, dnnl_x);
    s->mean = plan_request(p, nid, LIFE_SAVED, &stat, 0);
    s->var = plan_request(p, nid, LIFE_SAVED, &stat, 0);
    const dnnl_memory_desc_t *ws = fpd ? be_query_md(fpd, dnnl_query_workspace_md, 0) : NULL;
    if (ws && be_md_size(ws)) s->ws = plan_request(p, nid, LIFE_SAVED, ws, 0);
    plan_keep_input(p, nid, 0);
    plan_grad_overwrites(p, nid);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    return st;
}

/* A memory object over a raw float vector of c entries (scale, shift, statistics). */
static dnnl_memory_t vec_mem(plan *p, int nid, int k) { return plan_param_mem(p, nid, k, -1); }

/* count: the values per channel the statistics were taken over. */
static void update_running(plan *p, int nid, const float *mean, const float *var, double count) {
    node *n = &plan_graph(p)->nodes[nid];
    bn_attr *a = n->attr;
    const tensor *t = &plan_graph(p)->tensors[n->in[0]];
    float *rm = plan_param_ptr(p, nid, BN_RMEAN), *rv = plan_param_ptr(p, nid, BN_RVAR);
    float unbias = count > 1 ? (float)(count / (count - 1)) : 1.0f;
    float m = a->momentum;
    for (int c = 0; c < t->c; c++) {
        rm[c] = (1 - m) * rm[c] + m * mean[c];
        rv[c] = (1 - m) * rv[c] + m * var[c] * unbias;
    }
    (*(int64_t *)plan_param_ptr(p, nid, BN_COUNT))++;
}

/* The kernels below go over a blocked activation block by block (hw positions × b channels), called
 * through BLK_DISPATCH (ops/layout.h). */
/* Adds one block's values and their squares to per-lane sums, position by position. */
static inline void block_sums(double *a, double *q, const float *v, int hw, int b) {
    for (int s = 0; s < hw; s++)
#pragma omp simd
        for (int j = 0; j < b; j++) {
            a[j] += v[s * b + j];
            q[j] += (double)v[s * b + j] * v[s * b + j];
        }
}

/* Adds up the per-chunk sums of part (2·B per chunk: sums, then the second sums) into sum[c] and sq[c], in
 * chunk order. */
static void chunk_totals(const double *part, int C, double *sum, double *sq) {
    int B = be_block();
    for (int c = 0; c < C; c++) {
        sum[c] = sq[c] = 0;
        for (int k = 0; k < BN_CHUNKS; k++) {
            const double *a = part + ((size_t)(c / B) * BN_CHUNKS + k) * 2 * B;
            sum[c] += a[c % B];
            sq[c] += a[B + c % B];
        }
    }
}

/* Per-channel sum and sum of squares of a blocked activation (nChw{B}c), padding skipped. */
static void channel_sums(plan *p, int tid, double *sum, double *sq, double *part) {
    const tensor *t = &plan_graph(p)->tensors[tid];
    const float *x = plan_val(p, tid);
    int B = be_block(), nb = (t->c + B - 1) / B, hw = t->h * t->w, n = plan_batch(p);
#pragma omp parallel for collapse(2) schedule(static)
    for (int cb = 0; cb < nb; cb++)
        for (int k = 0; k < BN_CHUNKS; k++) {
            double a[64] = {0}, q[64] = {0};
            for (int i = k * n / BN_CHUNKS; i < (k + 1) * n / BN_CHUNKS; i++) {
                const float *v = x + (size_t)(i * nb + cb) * hw * B;
#define SUMS(b) block_sums(a, q, v, hw, b)
                BLK_DISPATCH(B, SUMS);
#undef SUMS
            }
            double *out = part + ((size_t)cb * BN_CHUNKS + k) * 2 * B;
            memcpy(out, a, B * sizeof(double));
            memcpy(out + B, q, B * sizeof(double));
        }
    chunk_totals(part, t->c, sum, sq);
}

/* The batch's mean and biased variance (synchronized: every replica's batch) into the buffers the
 * primitives read, from cnn.c's own sums (synchronized batch norm, and batch norm with SiLU fused in) or
 * those the convolution before gave. */
static void batch_statistics(plan *p, int nid) {
    const node *n = &plan_graph(p)->nodes[nid];
    bn_state *s = plan_state(p, nid);
    const tensor *t = &plan_graph(p)->tensors[n->in[0]];
    int C = t->c;
    if (!s->given) channel_sums(p, n->in[0], s->sums, s->sums + C, s->part);
    s->sums[2 * C] = (double)plan_batch(p) * t->h * t->w;
    if (s->sync) plan_graph(p)->replica_sum(s->sums, 2 * C + 1, plan_graph(p)->replica_ctx);
    s->count = s->sums[2 * C];
    float *mean = plan_buf(p, s->mean), *var = plan_buf(p, s->var);
    for (int c = 0; c < C; c++) {
        double m = s->sums[c] / s->count, v = s->sums[C + c] / s->count - m * m;
        mean[c] = (float)m;
        var[c] = (float)(v > 0 ? v : 0);
    }
}

/* Synchronized backward: oneDNN gave dx = γ·σ⁻¹·dy' (dy' after the fused ReLU's mask) and this
 * replica's Σdy' and Σdy'·x̂ (the bias and weight gradients, which the gradient all-reduce
 * averages later). The statistics' share of the gradient needs those sums over every replica:
 * dx -= γ·σ⁻¹·(Σdy' + x̂·Σdy'·x̂) / count. */
static void sync_backward(plan *p, int nid) {
    const node *n = &plan_graph(p)->nodes[nid];
    bn_state *s = plan_state(p, nid);
    const tensor *t = &plan_graph(p)->tensors[n->in[0]];
    int C = t->c, B = be_block(), nb = (C + B - 1) / B, hw = t->h * t->w, batch = plan_batch(p);
    const float *gb = plan_param_grad_ptr(p, nid, BN_BIAS), *gw = plan_param_grad_ptr(p, nid, BN_WEIGHT);
    for (int c = 0; c < C; c++) s->sums[c] = gb[c], s->sums[C + c] = gw[c];
    plan_graph(p)->replica_sum(s->sums, 2 * C, plan_graph(p)->replica_ctx);
    const float *mean = plan_buf(p, s->mean), *var = plan_buf(p, s->var), *gamma = plan_param_ptr(p, nid, BN_WEIGHT);
    float eps = ((bn_attr *)n->attr)->eps;
    float *is = s->coef, *a = s->coef + C, *b = s->coef + 2 * C; /* dx -= a + b·x̂ */
    for (int c = 0; c < C; c++) {
        is[c] = 1.0f / sqrtf(var[c] + eps);
        a[c] = (float)(gamma[c] * is[c] * s->sums[c] / s->count);
        b[c] = (float)(gamma[c] * is[c] * s->sums[C + c] / s->count);
    }
    const float *x = plan_val(p, n->in[0]);
    float *dx = plan_grad_in_ptr(p, nid, 0);
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < batch; i++)
        for (int cb = 0; cb < nb; cb++) {
            size_t base = (size_t)(i * nb + cb) * hw * B;
            for (int s0 = 0; s0 < hw * B; s0 += B)
                for (int j = 0; j < B && cb * B + j < C; j++) {
                    int c = cb * B + j;
                    dx[base + s0 + j] -= a[c] + b[c] * (x[base + s0 + j] - mean[c]) * is[c];
                }
        }
}

/* ---------- with the SiLU after it fused in (training plans) ---------- */
/* EfficientNet's convolution → batch norm → SiLU: oneDNN's batch norm cannot apply a SiLU, and alone it
 * wrote the normalized z, which SiLU read, wrote y from, and kept for its backward. Fused, the forward
 * takes the statistics (batch_statistics) and writes y = silu((x − mean)·γ/√(var + ε) + β) in one more
 * pass; z is never kept (it is recomputed from x, which batch norm keeps anyway: EfficientNet-B0 training
 * at 224×224, batch 32, keeps 1991 MB of activations instead of 2743). The backward's first pass makes
 * dz = silu'(z)·dy, writes it where dx goes and adds up Σdz and Σdz·x̂; the second turns dz into dx in
 * place. Measured (same machine and step): batch norm and SiLU forward 115–118 → 75–82 ms, backward 132–145
 * → 137–141 ms (computing dz again in the second pass instead of storing it: 166–188); the step 36.0–39.0
 * → 39.7–41.8 img/s. Streaming stores for y made the step slower (37.0–37.9 img/s). */

static float *coef(bn_state *s, int nb, int which) { return s->coef + (size_t)which * nb * be_block(); }

static void silu_coefficients(plan *p, int nid, const float *mean, const float *var) {
    const node *n = &plan_graph(p)->nodes[nid];
    bn_state *s = plan_state(p, nid);
    int C = plan_graph(p)->tensors[n->in[0]].c, B = be_block(), nb = (C + B - 1) / B;
    float eps = ((bn_attr *)n->attr)->eps;
    const float *gamma = plan_param_ptr(p, nid, BN_WEIGHT), *beta = plan_param_ptr(p, nid, BN_BIAS);
    float *scale = coef(s, nb, CO_SCALE), *m = coef(s, nb, CO_MEAN), *shift = coef(s, nb, CO_SHIFT),
          *istd = coef(s, nb, CO_ISTD);
    for (int c = 0; c < nb * B; c++) {
        bool real = c < C;
        istd[c] = real ? 1.0f / sqrtf(var[c] + eps) : 0.0f;
        scale[c] = real ? gamma[c] * istd[c] : 0.0f;
        m[c] = real ? mean[c] : 0.0f;
        shift[c] = real ? beta[c] : 0.0f;
    }
}

/* One block: y = silu((x − mean)·scale + shift). */
static inline void silu_block(float *y, const float *x, const float *sc, const float *m, const float *sh, int hw,
                              int b) {
    for (int s = 0; s < hw; s++)
#pragma omp simd
        for (int j = 0; j < b; j++) y[s * b + j] = silu_value((x[s * b + j] - m[j]) * sc[j] + sh[j]);
}

/* y = silu((x − mean)·scale + β) with the given statistics (the batch's, or the running ones) */
static void bn_silu_apply(plan *p, int nid, const float *mean, const float *var) {
    const node *n = &plan_graph(p)->nodes[nid];
    bn_state *s = plan_state(p, nid);
    const tensor *t = &plan_graph(p)->tensors[n->in[0]];
    int B = be_block(), nb = (t->c + B - 1) / B, hw = t->h * t->w, batch = plan_batch(p);
    silu_coefficients(p, nid, mean, var);
    const float *scale = coef(s, nb, CO_SCALE), *m = coef(s, nb, CO_MEAN), *shift = coef(s, nb, CO_SHIFT);
    const float *x = plan_val(p, n->in[0]);
    float *y = plan_val(p, n->out[0]);
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < batch; i++)
        for (int cb = 0; cb < nb; cb++) {
            size_t base = (size_t)(i * nb + cb) * hw * B;
#define APPLY(b) silu_block(y + base, x + base, scale + cb * B, m + cb * B, shift + cb * B, hw, b)
            BLK_DISPATCH(B, APPLY);
#undef APPLY
        }
}

static void bn_silu_forward(plan *p, int nid) {
    bn_state *s = plan_state(p, nid);
    if (!plan_training_pass(p)) {
        bn_silu_apply(p, nid, plan_param_ptr(p, nid, BN_RMEAN), plan_param_ptr(p, nid, BN_RVAR));
        return;
    }
    batch_statistics(p, nid);
    bn_silu_apply(p, nid, plan_buf(p, s->mean), plan_buf(p, s->var));
    update_running(p, nid, plan_buf(p, s->mean), plan_buf(p, s->var), s->count);
}

/* One block: dz = silu'(z)·dy (z = (x − mean)·scale + shift, from x), written to dz, and its share of Σdz
 * and Σdz·x̂ (x̂ = (x − mean)·istd), position by position. */
static inline void silu_grad_sums(double *a, double *q, float *dz, const float *x, const float *dy,
                                  const float *sc, const float *m, const float *sh, const float *is, int hw, int b) {
    for (int s = 0; s < hw; s++)
#pragma omp simd
        for (int j = 0; j < b; j++) {
            float d = x[s * b + j] - m[j];
            float g = silu_grad(d * sc[j] + sh[j], dy[s * b + j]);
            dz[s * b + j] = g;
            a[j] += g;
            q[j] += (double)g * (d * is[j]);
        }
}

/* One block, in place: dx = scale·(dz − k1 − x̂·k2). */
static inline void silu_grad_dx(float *dx, const float *x, const float *sc, const float *m, const float *is,
                                const float *k1, const float *k2, int hw, int b) {
    for (int s = 0; s < hw; s++)
#pragma omp simd
        for (int j = 0; j < b; j++)
            dx[s * b + j] = sc[j] * (dx[s * b + j] - k1[j] - (x[s * b + j] - m[j]) * is[j] * k2[j]);
}

/* dx = scale·(dz − (Σdz + x̂·Σdz·x̂)/count): k1 = Σdz/count, k2 = Σdz·x̂/count; dβ = Σdz and dγ = Σdz·x̂ over
 * this replica's batch (the gradient all-reduce averages them), the correction over every replica's when
 * synchronized. The sums in double over fixed chunks of images, as channel_sums. */
static void bn_silu_backward(plan *p, int nid) {
    const node *n = &plan_graph(p)->nodes[nid];
    bn_state *s = plan_state(p, nid);
    const tensor *t = &plan_graph(p)->tensors[n->in[0]];
    int C = t->c, B = be_block(), nb = (C + B - 1) / B, hw = t->h * t->w, batch = plan_batch(p);
    silu_coefficients(p, nid, plan_buf(p, s->mean), plan_buf(p, s->var));
    const float *scale = coef(s, nb, CO_SCALE), *m = coef(s, nb, CO_MEAN), *shift = coef(s, nb, CO_SHIFT),
                *istd = coef(s, nb, CO_ISTD);
    const float *x = plan_val(p, n->in[0]), *dy = plan_grad(p, n->out[0]);
    float *dx = plan_grad_in_ptr(p, nid, 0); /* holds dz in between */
#pragma omp parallel for collapse(2) schedule(static)
    for (int cb = 0; cb < nb; cb++)
        for (int k = 0; k < BN_CHUNKS; k++) {
            double a[64] = {0}, q[64] = {0};
            int c0 = cb * B;
            for (int i = k * batch / BN_CHUNKS; i < (k + 1) * batch / BN_CHUNKS; i++) {
                size_t base = (size_t)(i * nb + cb) * hw * B;
#define SUMS(b) silu_grad_sums(a, q, dx + base, x + base, dy + base, scale + c0, m + c0, shift + c0, istd + c0, hw, b)
                BLK_DISPATCH(B, SUMS);
#undef SUMS
            }
            double *out = s->part + ((size_t)cb * BN_CHUNKS + k) * 2 * B;
            memcpy(out, a, B * sizeof(double));
            memcpy(out + B, q, B * sizeof(double));
        }
    chunk_totals(s->part, C, s->sums, s->sums + C);
    float *gb = plan_param_grad_ptr(p, nid, BN_BIAS), *gw = plan_param_grad_ptr(p, nid, BN_WEIGHT);
    for (int c = 0; c < C; c++) gb[c] = (float)s->sums[c], gw[c] = (float)s->sums[C + c];
    if (s->sync) plan_graph(p)->replica_sum(s->sums, 2 * C, plan_graph(p)->replica_ctx);
    float *k1 = coef(s, nb, CO_K1), *k2 = coef(s, nb, CO_K2);
    for (int c = 0; c < nb * B; c++) {
        k1[c] = c < C ? (float)(s->sums[c] / s->count) : 0.0f;
        k2[c] = c < C ? (float)(s->sums[C + c] / s->count) : 0.0f;
    }
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < batch; i++)
        for (int cb = 0; cb < nb; cb++) {
            size_t base = (size_t)(i * nb + cb) * hw * B;
            int c0 = cb * B;
#define DX(b) silu_grad_dx(dx + base, x + base, scale + c0, m + c0, istd + c0, k1 + c0, k2 + c0, hw, b)
            BLK_DISPATCH(B, DX);
#undef DX
        }
    plan_grad_in_end(p, nid, 0);
}

/* The arguments of a forward: input, output, γ, β, then the statistics. */
static void fwd_args(plan *p, int nid, dnnl_memory_t mean, dnnl_memory_t var, dnnl_exec_arg_t *args) {
    node *n = &plan_graph(p)->nodes[nid];
    args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, plan_val_mem(p, n->in[0])};
    args[1] = (dnnl_exec_arg_t){DNNL_ARG_DST, plan_val_mem(p, n->out[0])};
    args[2] = (dnnl_exec_arg_t){DNNL_ARG_SCALE, vec_mem(p, nid, BN_WEIGHT)};
    args[3] = (dnnl_exec_arg_t){DNNL_ARG_SHIFT, vec_mem(p, nid, BN_BIAS)};
    args[4] = (dnnl_exec_arg_t){DNNL_ARG_MEAN, mean};
    args[5] = (dnnl_exec_arg_t){DNNL_ARG_VARIANCE, var};
}

static void bn_forward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    bn_state *s = plan_state(p, nid);
    if (plan_fused(p, nid) & FUSED_SILU) {
        bn_silu_forward(p, nid);
        return;
    }
    dnnl_exec_arg_t args[7];
    if (!plan_training_pass(p)) {
        plan_value_unwritten(p, n->out[0], false);
        fwd_args(p, nid, vec_mem(p, nid, BN_RMEAN), vec_mem(p, nid, BN_RVAR), args);
        plan_run(p, s->fwd_eval, 6, args);
        return;
    }
    fwd_args(p, nid, plan_buf_mem(p, s->mean), plan_buf_mem(p, s->var), args);
    if (s->ws >= 0) args[6] = (dnnl_exec_arg_t){DNNL_ARG_WORKSPACE, plan_buf_mem(p, s->ws)};
    const tensor *t = &plan_graph(p)->tensors[n->in[0]];
    if (s->sync || s->given) batch_statistics(p, nid);
    plan_value_unwritten(p, n->out[0], s->deferred != NULL);
    if (s->deferred) { /* the addition after it normalizes, with these (its output is not written); the scale as
                          γ/√(var + ε), not silu_coefficients' γ·(1/√(var + ε)): the bits of oneDNN's own
                          normalization, which plans that do not defer (--recompute) run (test_recompute) */
        const int C = t->c, B = be_block(), nb = (C + B - 1) / B;
        const float *mean = plan_buf(p, s->mean), *var = plan_buf(p, s->var);
        const float *gamma = plan_param_ptr(p, nid, BN_WEIGHT), *beta = plan_param_ptr(p, nid, BN_BIAS);
        const float eps = ((bn_attr *)n->attr)->eps;
        for (int c = 0; c < C; c++) {
            s->deferred[c] = mean[c];
            s->deferred[nb * B + c] = gamma[c] / sqrtf(var[c] + eps);
            s->deferred[2 * nb * B + c] = beta[c];
        }
    } else
        plan_run(p, s->fwd_train, s->ws >= 0 ? 7 : 6, args);
    update_running(p, nid, plan_buf(p, s->mean), plan_buf(p, s->var),
                   s->sync ? s->count : (double)plan_batch(p) * t->h * t->w);
}

static void bn_backward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    bn_state *s = plan_state(p, nid);
    if (plan_fused(p, nid) & FUSED_SILU) {
        bn_silu_backward(p, nid);
        return;
    }
    dnnl_exec_arg_t args[11] = {
        {DNNL_ARG_SRC, plan_val_mem(p, n->in[0])},
        {DNNL_ARG_MEAN, plan_buf_mem(p, s->mean)},
        {DNNL_ARG_VARIANCE, plan_buf_mem(p, s->var)},
        {DNNL_ARG_DIFF_DST, plan_grad_mem(p, n->out[0])},
        {DNNL_ARG_SCALE, vec_mem(p, nid, BN_WEIGHT)},
        {DNNL_ARG_SHIFT, vec_mem(p, nid, BN_BIAS)},
        {DNNL_ARG_DIFF_SRC, plan_grad_in_begin(p, nid, 0)},
        {DNNL_ARG_DIFF_SCALE, plan_param_grad_begin(p, nid, BN_WEIGHT, -1)},
        {DNNL_ARG_DIFF_SHIFT, plan_param_grad_begin(p, nid, BN_BIAS, -1)},
    };
    if (s->ws >= 0) args[9] = (dnnl_exec_arg_t){DNNL_ARG_WORKSPACE, plan_buf_mem(p, s->ws)};
    plan_run(p, s->bwd, s->ws >= 0 ? 10 : 9, args);
    if (s->sync) sync_backward(p, nid);
    plan_grad_in_end(p, nid, 0);
}

/* graph.recompute: the output again (ReLU included) from the input and the batch statistics the
 * backward keeps, by the evaluation primitive given those statistics: the same arithmetic as the
 * training forward's normalization. */
static void bn_recompute(plan *p, int nid) {
    bn_state *s = plan_state(p, nid);
    if (plan_fused(p, nid) & FUSED_SILU) {
        bn_silu_apply(p, nid, plan_buf(p, s->mean), plan_buf(p, s->var));
        return;
    }
    dnnl_exec_arg_t args[6];
    fwd_args(p, nid, plan_buf_mem(p, s->mean), plan_buf_mem(p, s->var), args);
    plan_run(p, s->fwd_eval, 6, args);
}

bool op_batchnorm_deferred(plan *p, int nid, const float **mean, const float **scale, const float **shift) {
    const bn_state *s = plan_state(p, nid);
    if (!s->deferred || !plan_training_pass(p)) return false;
    const int B = be_block(), nb = (plan_graph(p)->tensors[plan_graph(p)->nodes[nid].in[0]].c + B - 1) / B;
    *mean = s->deferred;
    *scale = s->deferred + (size_t)nb * B;
    *shift = s->deferred + (size_t)2 * nb * B;
    return true;
}

void op_batchnorm_fold(plan *p, int nid, float *scale, float *shift) {
    node *n = &plan_graph(p)->nodes[nid];
    bn_attr *a = n->attr;
    int c = plan_graph(p)->tensors[n->in[0]].c;
    const float *w = plan_param_ptr(p, nid, BN_WEIGHT), *b = plan_param_ptr(p, nid, BN_BIAS);
    const float *rm = plan_param_ptr(p, nid, BN_RMEAN), *rv = plan_param_ptr(p, nid, BN_RVAR);
    for (int i = 0; i < c; i++) {
        scale[i] = w[i] / sqrtf(rv[i] + a->eps);
        shift[i] = b[i] - rm[i] * scale[i];
    }
}

/* oneDNN applies a ReLU after the normalization itself (and masks the gradient with a workspace); a SiLU
 * in training plans cnn.c's fused kernels apply (above; in evaluation plans the convolution before takes
 * both, conv.c). */
static bool bn_absorb(plan *p, int nid, int next) {
    if (plan_fused(p, nid)) return false;
    const char *type = plan_graph(p)->nodes[next].op->type;
    if (!strcmp(type, "relu")) plan_set_fused(p, nid, FUSED_RELU);
    else if (!strcmp(type, "silu") && plan_is_train(p)) plan_set_fused(p, nid, FUSED_SILU);
    else return false;
    return true;
}

static const op_def bn_op = {"batchnorm", bn_compile, bn_forward, bn_backward, bn_free, NULL, bn_absorb,
                             .recompute = bn_recompute, .kind = plan_fused_activation};

int op_batchnorm_ex(graph *g, int x, const char *name, float eps, float momentum) {
    if (!graph_ok(g) || x < 0) return -1;
    x = op_to_blocked(g, x);
    if (x < 0) return -1;
    const tensor *t = graph_tensor(g, x);
    bn_attr *a = malloc(sizeof *a);
    if (!a) return graph_fail(g, cnn_fail(CNN_ERR_NOMEM, "out of memory"));
    a->eps = eps;
    a->momentum = momentum;
    int nid = graph_add_node(g, &bn_op, name, &x, 1, a);
    int64_t c[1] = {t->c}, one[1] = {1};
    graph_add_param(g, nid, "weight", 1, c, PARAM_NORM, INIT_ONES, 0);
    graph_add_param(g, nid, "bias", 1, c, PARAM_NORM, INIT_ZEROS, 0);
    graph_add_param(g, nid, "running_mean", 1, c, PARAM_BUFFER, INIT_ZEROS, 0);
    graph_add_param(g, nid, "running_var", 1, c, PARAM_BUFFER, INIT_ONES, 0);
    int nb = graph_add_param(g, nid, "num_batches_tracked", 0, one, PARAM_BUFFER, INIT_ZEROS, 0);
    if (nb >= 0) g->params[nb].dtype = PDT_I64;
    return graph_node_output(g, nid, t->c, t->h, t->w, LAYOUT_BLOCKED);
}

int op_batchnorm(graph *g, int x, const char *name) { return op_batchnorm_ex(g, x, name, 1e-5f, 0.1f); }
