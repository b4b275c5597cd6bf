/* pool.c — max and average pooling (PyTorch's padding and ceil_mode semantics) and global
 * average pooling, on oneDNN's pooling primitives. Max pooling keeps a workspace of argmax
 * positions from forward to backward. Global average pooling's backward is its own (gap_backward):
 * it adds dy/(h·w) straight into an input gradient that another consumer already wrote (the SE block's
 * product), where oneDNN's would write a whole temporary to be added afterwards. */
#include "core/error.h"
#include "core/plan.h"
#include "ops/layout.h"
#include "ops/ops.h"
#include <stdlib.h>

typedef struct pool_attr {
    dnnl_alg_kind_t alg;
    int kh, kw, stride, pad, pad_r_h, pad_r_w;
} pool_attr;

typedef struct pool_state {
    int fwd, bwd, ws;
} pool_state;

/* own_backward: the op's backward is not oneDNN's (global average pooling) */
static cnn_status compile(plan *p, int nid, bool own_backward) {
    node *n = &plan_graph(p)->nodes[nid];
    pool_attr *a = n->attr;
    pool_state *s = calloc(1, sizeof *s);
    if (!s) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    s->bwd = s->ws = -1;
    plan_set_state(p, nid, s);
    const dnnl_memory_desc_t *src = plan_md(p, n->in[0]), *dst = plan_md(p, n->out[0]);
    dnnl_dims_t strides = {a->stride, a->stride}, kernel = {a->kh, a->kw}, dil = {0, 0};
    dnnl_dims_t pl = {a->pad, a->pad}, pr = {a->pad_r_h, a->pad_r_w};
    bool train = plan_is_train(p);
    dnnl_pooling_v2_desc_t pdsc;
    dnnl_primitive_desc_t fpd = NULL, pd = NULL;
    CNN_TRY(be_check(dnnl_pooling_v2_forward_desc_init(&pdsc, train ? dnnl_forward_training : dnnl_forward_inference,
                                                       a->alg, src, dst, strides, kernel, dil, pl, pr),
                     "pooling forward"));
    CNN_TRY(be_pd(&fpd, &pdsc, NULL, NULL, 0, "pooling forward"));
    cnn_status st = CNN_OK;
    s->fwd = plan_prim(p, fpd, &st);
    const dnnl_memory_desc_t *ws = be_query_md(fpd, dnnl_query_workspace_md, 0);
    if (!st && train && ws && be_md_size(ws)) s->ws = plan_request(p, nid, LIFE_SAVED, ws, 0);
    if (!st && train && !own_backward && plan_needs_grad(p, n->in[0])) {
        plan_grad_overwrites(p, nid);
        st = be_check(dnnl_pooling_v2_backward_desc_init(&pdsc, a->alg, src, dst, strides, kernel, dil, pl, pr),
                      "pooling backward");
        if (!st) st = be_pd(&pd, &pdsc, NULL, fpd, 0, "pooling backward");
        if (!st) s->bwd = plan_prim(p, pd, &st);
        if (pd) dnnl_primitive_desc_destroy(pd);
    }
    dnnl_primitive_desc_destroy(fpd);
    return st;
}

static cnn_status pool_compile(plan *p, int nid) { return compile(p, nid, false); }
static cnn_status gap_compile(plan *p, int nid) { return compile(p, nid, true); }

static void pool_forward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    pool_state *s = plan_state(p, nid);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, plan_val_mem(p, n->in[0])}, {DNNL_ARG_DST, plan_val_mem(p, n->out[0])}};
    int na = 2;
    if (s->ws >= 0) args[na++] = (dnnl_exec_arg_t){DNNL_ARG_WORKSPACE, plan_buf_mem(p, s->ws)};
    plan_run(p, s->fwd, na, args);
}

static void pool_backward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    pool_state *s = plan_state(p, nid);
    if (s->bwd < 0) return;
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_DIFF_DST, plan_grad_mem(p, n->out[0])},
                               {DNNL_ARG_DIFF_SRC, plan_grad_in_begin(p, nid, 0)}};
    int na = 2;
    if (s->ws >= 0) args[na++] = (dnnl_exec_arg_t){DNNL_ARG_WORKSPACE, plan_buf_mem(p, s->ws)};
    plan_run(p, s->bwd, na, args);
    plan_grad_in_end(p, nid, 0);
}

/* dx[n, c, ·] (+)= dy[n, c] / (h·w) over one block of b channels × area positions; the channels past
 * the tensor's (c ≥ nc, the block's padding) stay zero. */
static inline void gap_block_backward(float *dx, bool acc, const float *dy, int c0, int nc, float inv, int area,
                                      int b) {
    float g[64];
    for (int i = 0; i < b; i++) g[i] = c0 + i < nc ? dy[i] * inv : 0.0f;
    for (int s = 0; s < area; s++)
        for (int i = 0; i < b; i++) dx[(size_t)s * b + i] = (acc ? dx[(size_t)s * b + i] : 0.0f) + g[i];
}

static void gap_backward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    if (!plan_needs_grad(p, n->in[0])) return;
    blk k = blk_of(p, n->in[0]), ko = blk_of(p, n->out[0]);
    const float *dy = plan_grad(p, n->out[0]);
    float *dx = plan_grad(p, n->in[0]);
    bool acc = plan_grad_accum(p, nid, 0);
    float inv = 1.0f / (float)k.s;
    int nb = k.cp / k.b;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n0 = 0; n0 < k.n; n0++)
        for (int cb = 0; cb < nb; cb++) {
            float *d = dx + blk_at(k, n0, cb * k.b, 0);
            const float *g = dy + blk_at(ko, n0, cb * k.b, 0);
#define GAP(b) gap_block_backward(d, acc, g, cb * (b), k.c, inv, k.s, b)
            BLK_DISPATCH(k.b, GAP);
#undef GAP
        }
}

static int64_t pool_macs(const graph *g, const node *n) { return 0; }

static const op_def maxpool_op = {"maxpool", pool_compile, pool_forward, pool_backward, NULL, pool_macs};
static const op_def avgpool_op = {"avgpool", pool_compile, pool_forward, pool_backward, NULL, pool_macs};
static const op_def gap_op = {"global_avgpool", gap_compile, pool_forward, gap_backward, NULL, pool_macs};

/* Output size and right padding as PyTorch computes them (ceil_mode: the last window may start
 * in the right padding only if it starts inside the input or left padding). */
static int pool_out(int in, int k, int s, int pad, bool ceil_mode, int *pad_r) {
    int span = in + 2 * pad - k;
    int out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (out - 1) * s >= in + pad) out--;
    *pad_r = (out - 1) * s + k - in - pad;
    return out;
}

static int pool(graph *g, int x, const op_def *op, dnnl_alg_kind_t alg, int kh, int kw, int stride, int pad,
                bool ceil_mode) {
    if (!graph_ok(g) || x < 0) return -1;
    x = op_to_blocked(g, x);
    if (x < 0) return -1;
    const tensor *t = graph_tensor(g, x);
    if (kh <= 0 || kw <= 0 || stride <= 0 || pad < 0 || 2 * pad > kh || 2 * pad > kw)
        return graph_fail(g, cnn_fail(CNN_ERR_SHAPE, "%s%s: bad pooling window k%d s%d p%d", g->scope, op->type, kh,
                                      stride, pad));
    pool_attr *a = malloc(sizeof *a);
    if (!a) return graph_fail(g, cnn_fail(CNN_ERR_NOMEM, "out of memory"));
    int oh = pool_out(t->h, kh, stride, pad, ceil_mode, &a->pad_r_h);
    int ow = pool_out(t->w, kw, stride, pad, ceil_mode, &a->pad_r_w);
    if (oh <= 0 || ow <= 0) {
        free(a);
        return graph_fail(g, cnn_fail(CNN_ERR_SHAPE, "%s%s: input %dx%d smaller than the %dx%d window", g->scope,
                                      op->type, t->h, t->w, kh, kw));
    }
    a->alg = alg;
    a->kh = kh;
    a->kw = kw;
    a->stride = stride;
    a->pad = pad;
    int nid = graph_add_node(g, op, op->type, &x, 1, a);
    return graph_node_output(g, nid, t->c, oh, ow, LAYOUT_BLOCKED);
}

int op_maxpool(graph *g, int x, int k, int stride, int pad, bool ceil_mode) {
    return pool(g, x, &maxpool_op, dnnl_pooling_max, k, k, stride, pad, ceil_mode);
}

int op_avgpool(graph *g, int x, int k, int stride, int pad, bool ceil_mode) {
    return pool(g, x, &avgpool_op, dnnl_pooling_avg_include_padding, k, k, stride, pad, ceil_mode);
}

int op_global_avgpool(graph *g, int x) {
    if (!graph_ok(g) || x < 0) return -1;
    const tensor *t = graph_tensor(g, x);
    return pool(g, x, &gap_op, dnnl_pooling_avg_exclude_padding, t->h, t->w, 1, 0, false);
}
