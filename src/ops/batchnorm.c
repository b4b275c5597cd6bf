/* batchnorm.c — batch normalization on oneDNN. Training normalizes with the batch statistics and
 * updates the running ones as PyTorch does (momentum 0.1, unbiased variance for running_var,
 * num_batches_tracked); evaluation normalizes with the running statistics. */
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
} bn_state;

enum { BN_WEIGHT, BN_BIAS, BN_RMEAN, BN_RVAR, BN_COUNT };

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
    if (st || !plan_is_train(p)) return st;

    CNN_TRY(be_check(dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_training, src, a->eps, ss),
                     "batch norm training"));
    CNN_TRY(be_pd(&fpd, &bd, NULL, NULL, 0, "batch norm training"));
    s->fwd_train = plan_prim(p, fpd, &st);
    int64_t c = g->tensors[n->in[0]].c;
    dnnl_memory_desc_t stat;
    be_md_plain(&stat, 1, &c, dnnl_x);
    s->mean = plan_request(p, nid, LIFE_SAVED, &stat, 0);
    s->var = plan_request(p, nid, LIFE_SAVED, &stat, 0);
    const dnnl_memory_desc_t *ws = be_query_md(fpd, dnnl_query_workspace_md, 0);
    if (ws && be_md_size(ws)) s->ws = plan_request(p, nid, LIFE_SAVED, ws, 0);
    plan_keep_input(p, nid, 0);
    plan_grad_overwrites(p, nid);
    if (!st) st = be_check(dnnl_batch_normalization_backward_desc_init(&bd, dnnl_backward, plan_md(p, n->out[0]), src,
                                                                       a->eps, ss),
                           "batch norm backward");
    if (!st) st = be_pd(&pd, &bd, NULL, fpd, 0, "batch norm backward");
    if (!st) s->bwd = plan_prim(p, pd, &st);
    if (pd) dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_desc_destroy(fpd);
    return st;
}

/* A memory object over a raw float vector of c entries (scale, shift, statistics). */
static dnnl_memory_t vec_mem(plan *p, int nid, int k) { return plan_param_mem(p, nid, k, -1); }

static void update_running(plan *p, int nid, const float *mean, const float *var) {
    node *n = &plan_graph(p)->nodes[nid];
    bn_attr *a = n->attr;
    const tensor *t = &plan_graph(p)->tensors[n->in[0]];
    float *rm = plan_param_ptr(p, nid, BN_RMEAN), *rv = plan_param_ptr(p, nid, BN_RVAR);
    double count = (double)plan_batch(p) * t->h * t->w;
    float unbias = count > 1 ? (float)(count / (count - 1)) : 1.0f;
    float m = a->momentum;
    for (int c = 0; c < t->c; c++) {
        rm[c] = (1 - m) * rm[c] + m * mean[c];
        rv[c] = (1 - m) * rv[c] + m * var[c] * unbias;
    }
    (*(int64_t *)plan_param_ptr(p, nid, BN_COUNT))++;
}

static void bn_forward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    bn_state *s = plan_state(p, nid);
    dnnl_exec_arg_t args[7] = {
        {DNNL_ARG_SRC, plan_val_mem(p, n->in[0])},
        {DNNL_ARG_DST, plan_val_mem(p, n->out[0])},
        {DNNL_ARG_SCALE, vec_mem(p, nid, BN_WEIGHT)},
        {DNNL_ARG_SHIFT, vec_mem(p, nid, BN_BIAS)},
    };
    if (!plan_training_pass(p)) {
        args[4] = (dnnl_exec_arg_t){DNNL_ARG_MEAN, vec_mem(p, nid, BN_RMEAN)};
        args[5] = (dnnl_exec_arg_t){DNNL_ARG_VARIANCE, vec_mem(p, nid, BN_RVAR)};
        plan_run(p, s->fwd_eval, 6, args);
        return;
    }
    args[4] = (dnnl_exec_arg_t){DNNL_ARG_MEAN, plan_buf_mem(p, s->mean)};
    args[5] = (dnnl_exec_arg_t){DNNL_ARG_VARIANCE, plan_buf_mem(p, s->var)};
    if (s->ws >= 0) args[6] = (dnnl_exec_arg_t){DNNL_ARG_WORKSPACE, plan_buf_mem(p, s->ws)};
    plan_run(p, s->fwd_train, s->ws >= 0 ? 7 : 6, args);
    update_running(p, nid, plan_buf(p, s->mean), plan_buf(p, s->var));
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
    plan_grad_in_end(p, nid, 0);
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

static const op_def bn_op = {"batchnorm", bn_compile, bn_forward, bn_backward, NULL, NULL, bn_absorb};

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
