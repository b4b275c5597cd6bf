/* batchnorm.c — batch normalization on oneDNN. Training normalizes with the batch statistics and
 * updates the running ones as PyTorch does (momentum 0.1, unbiased variance for running_var,
 * num_batches_tracked); evaluation normalizes with the running statistics. Synchronized batch
 * norm (data-parallel training, graph.replica_sum) takes the statistics of every replica's batch,
 * as PyTorch's SyncBatchNorm: cnn.c computes per-channel sums (in double, in an order fixed by the
 * shapes alone), adds them over the replicas, and oneDNN normalizes with the result; backward adds
 * the share of the gradient that flows through the statistics. Over one replica it is ordinary
 * batch norm, and K replicas get, to the bit, the statistics one replica gets for their batches. */
#include "core/error.h"
#include "core/plan.h"
#include "ops/ops.h"
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
    double *sums;                   /* 2c+1 sums exchanged with the other replicas */
    double *part;                   /* partial sums per channel block and chunk of images */
    float *coef;                    /* 3c coefficients of the backward's correction */
    double count;                   /* values per channel in the global batch of the last forward */
} bn_state;

enum { BN_WEIGHT, BN_BIAS, BN_RMEAN, BN_RVAR, BN_COUNT };
/* Synchronized sums run over fixed chunks of images (in parallel, then added in chunk order): the
 * same bits whatever the thread count. */
enum { BN_CHUNKS = 8 };

static void bn_free(void *state) {
    bn_state *s = state;
    if (s) {
        free(s->sums);
        free(s->part);
        free(s->coef);
    }
    free(s);
}

/* Training primitives; synchronized, oneDNN normalizes with the statistics bn_forward gives it and
 * its backward takes them as constants (bn_backward adds the part that flows through them). */
static cnn_status train_prims(plan *p, int nid, unsigned flags, dnnl_primitive_desc_t *fpd, dnnl_primitive_desc_t *bpd) {
    node *n = &plan_graph(p)->nodes[nid];
    float eps = ((bn_attr *)n->attr)->eps;
    const dnnl_memory_desc_t *src = plan_md(p, n->in[0]), *dst = plan_md(p, n->out[0]);
    dnnl_batch_normalization_desc_t bd;
    CNN_TRY(be_check(dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_training, src, eps, flags),
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
    s->coef = calloc(3 * c, sizeof(float));
    return s->sums && s->part && s->coef ? CNN_OK : cnn_fail(CNN_ERR_NOMEM, "out of memory");
}

static cnn_status bn_compile(plan *p, int nid) {
    graph *g = plan_graph(p);
    node *n = &g->nodes[nid];
    bn_attr *a = n->attr;
    bn_state *s = calloc(1, sizeof *s);
    if (!s) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    plan_set_state(p, nid, s);
    s->fwd_train = s->bwd = s->ws = -1;
    const dnnl_memory_desc_t *src = plan_md(p, n->in[0]);
    unsigned ss = dnnl_use_scale | dnnl_use_shift | (plan_fused(p, nid) & FUSED_RELU ? dnnl_fuse_norm_relu : 0);
    dnnl_batch_normalization_desc_t bd;
    dnnl_primitive_desc_t fpd = NULL, pd = NULL;
    cnn_status st = CNN_OK;
    CNN_TRY(be_check(dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_inference, src, a->eps,
                                                                 ss | dnnl_use_global_stats),
                     "batch norm inference"));
    CNN_TRY(be_pd(&pd, &bd, NULL, NULL, 0, "batch norm inference"));
    s->fwd_eval = plan_prim(p, pd, &st);
    dnnl_primitive_desc_destroy(pd);
    pd = NULL;
    if (st || !plan_is_train(p)) return st;

    int64_t c = g->tensors[n->in[0]].c;
    s->sync = g->replica_sum != NULL;
    if (s->sync) CNN_TRY(alloc_sums(s, c));
    st = train_prims(p, nid, ss | (s->sync ? dnnl_use_global_stats : 0), &fpd, &pd);
    if (!st) s->fwd_train = plan_prim(p, fpd, &st);
    if (!st) s->bwd = plan_prim(p, pd, &st);
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

/* Per-channel sum and sum of squares of a blocked activation (nChw{B}c), padding skipped. */
static void channel_sums(plan *p, int tid, double *sum, double *sq, double *part) {
    const tensor *t = &plan_graph(p)->tensors[tid];
    const float *x = plan_val(p, tid);
    int B = be_block(), nb = (t->c + B - 1) / B, hw = t->h * t->w, n = plan_batch(p);
#pragma omp parallel for collapse(2) schedule(static)
    for (int cb = 0; cb < nb; cb++)
        for (int k = 0; k < BN_CHUNKS; k++) {
            double *a = part + ((size_t)cb * BN_CHUNKS + k) * 2 * B, *q = a + B;
            for (int j = 0; j < 2 * B; j++) a[j] = 0;
            for (int i = k * n / BN_CHUNKS; i < (k + 1) * n / BN_CHUNKS; i++) {
                const float *v = x + (size_t)(i * nb + cb) * hw * B;
                for (int s = 0; s < hw * B; s += B)
#pragma omp simd
                    for (int j = 0; j < B; j++) {
                        a[j] += v[s + j];
                        q[j] += (double)v[s + j] * v[s + j];
                    }
            }
        }
    for (int c = 0; c < t->c; c++) {
        sum[c] = sq[c] = 0;
        for (int k = 0; k < BN_CHUNKS; k++) {
            const double *a = part + ((size_t)(c / B) * BN_CHUNKS + k) * 2 * B;
            sum[c] += a[c % B];
            sq[c] += a[B + c % B];
        }
    }
}

/* Synchronized forward: the mean and biased variance of every replica's batch into the buffers the
 * primitives read. */
static void sync_statistics(plan *p, int nid) {
    const node *n = &plan_graph(p)->nodes[nid];
    bn_state *s = plan_state(p, nid);
    const tensor *t = &plan_graph(p)->tensors[n->in[0]];
    int C = t->c;
    channel_sums(p, n->in[0], s->sums, s->sums + C, s->part);
    s->sums[2 * C] = (double)plan_batch(p) * t->h * t->w;
    plan_graph(p)->replica_sum(s->sums, 2 * C + 1, plan_graph(p)->replica_ctx);
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
    dnnl_exec_arg_t args[7];
    if (!plan_training_pass(p)) {
        fwd_args(p, nid, vec_mem(p, nid, BN_RMEAN), vec_mem(p, nid, BN_RVAR), args);
        plan_run(p, s->fwd_eval, 6, args);
        return;
    }
    fwd_args(p, nid, plan_buf_mem(p, s->mean), plan_buf_mem(p, s->var), args);
    if (s->ws >= 0) args[6] = (dnnl_exec_arg_t){DNNL_ARG_WORKSPACE, plan_buf_mem(p, s->ws)};
    const tensor *t = &plan_graph(p)->tensors[n->in[0]];
    if (s->sync) sync_statistics(p, nid);
    plan_run(p, s->fwd_train, s->ws >= 0 ? 7 : 6, args);
    update_running(p, nid, plan_buf(p, s->mean), plan_buf(p, s->var),
                   s->sync ? s->count : (double)plan_batch(p) * t->h * t->w);
}

static void bn_backward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    bn_state *s = plan_state(p, nid);
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
    dnnl_exec_arg_t args[6];
    fwd_args(p, nid, plan_buf_mem(p, s->mean), plan_buf_mem(p, s->var), args);
    plan_run(p, s->fwd_eval, 6, args);
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

/* oneDNN applies a ReLU after the normalization itself (and masks the gradient with a workspace). */
static bool bn_absorb(plan *p, int nid, int next) {
    if (plan_fused(p, nid) & FUSED_RELU || strcmp(plan_graph(p)->nodes[next].op->type, "relu") != 0) return false;
    plan_set_fused(p, nid, FUSED_RELU);
    return true;
}

static const op_def bn_op = {"batchnorm", bn_compile, bn_forward, bn_backward, bn_free, NULL, bn_absorb,
                             .recompute = bn_recompute};

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
