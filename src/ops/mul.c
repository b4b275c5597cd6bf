/* mul.c — elementwise product of two tensors of the same shape, or of a tensor by per-channel
 * weights of shape c×1×1 broadcast over space (squeeze-and-excitation, gates). */
#include "core/error.h"
#include "core/plan.h"
#include "ops/layout.h"
#include "ops/ops.h"
#include "ops/stream.h"

static cnn_status mul_compile(plan *p, int nid) {
    plan_keep_input(p, nid, 0);
    plan_keep_input(p, nid, 1);
    return CNN_OK;
}

static bool broadcast(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    const tensor *a = graph_tensor(plan_graph(p), n->in[0]), *b = graph_tensor(plan_graph(p), n->in[1]);
    return a->h * a->w != b->h * b->w;
}

/* Its backward: da (+)= dy · w[channel]; dw[channel] (+)= Σ dy · a. */
static inline void scale_block_backward(float *da, bool acc_a, float *dw, bool acc_w, const float *dy,
                                        const float *a, const float *w, int area, int b) {
    float sum[64] = {0};
    for (int s = 0; s < area; s++)
        for (int i = 0; i < b; i++) {
            size_t e = (size_t)s * b + i;
            if (da) da[e] = (acc_a ? da[e] : 0.0f) + dy[e] * w[i];
            sum[i] += dy[e] * a[e];
        }
    if (dw)
        for (int i = 0; i < b; i++) dw[i] = (acc_w ? dw[i] : 0.0f) + sum[i];
}

static void mul_forward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    const float *a = plan_val(p, n->in[0]), *b = plan_val(p, n->in[1]);
    float *y = plan_val(p, n->out[0]);
    blk k = blk_of(p, n->out[0]);
    if (!broadcast(p, nid)) {
        size_t len = blk_size(k);
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < len; i++) y[i] = a[i] * b[i];
        return;
    }
    /* b is n × cp contiguous (blocked with 1×1 spatial) */
    stream_scale(y, a, b, (size_t)k.n * (k.cp / k.b), k.s, k.b);
}

static void mul_backward_same(plan *p, int nid, const float *dy, size_t len) {
    node *n = &plan_graph(p)->nodes[nid];
    for (int slot = 0; slot < 2; slot++) {
        if (!plan_needs_grad(p, n->in[slot])) continue;
        const float *other = plan_val(p, n->in[1 - slot]);
        float *dx = plan_grad(p, n->in[slot]);
        if (plan_grad_accum(p, nid, slot)) {
#pragma omp parallel for simd schedule(static)
            for (size_t i = 0; i < len; i++) dx[i] += dy[i] * other[i];
        } else {
#pragma omp parallel for simd schedule(static)
            for (size_t i = 0; i < len; i++) dx[i] = dy[i] * other[i];
        }
    }
}

static void mul_backward_bcast(plan *p, int nid, const float *dy, blk k) {
    node *n = &plan_graph(p)->nodes[nid];
    const float *a = plan_val(p, n->in[0]), *b = plan_val(p, n->in[1]);
    int nb = k.cp / k.b;
    bool ga = plan_needs_grad(p, n->in[0]), gb = plan_needs_grad(p, n->in[1]);
    float *da = ga ? plan_grad(p, n->in[0]) : NULL, *db = gb ? plan_grad(p, n->in[1]) : NULL;
    bool acc_a = ga && plan_grad_accum(p, nid, 0), acc_b = gb && plan_grad_accum(p, nid, 1);
#pragma omp parallel for collapse(2) schedule(static)
    for (int n0 = 0; n0 < k.n; n0++)
        for (int cb = 0; cb < nb; cb++) {
            const float *w = b + ((size_t)n0 * nb + cb) * k.b;
            size_t base = blk_at(k, n0, cb * k.b, 0);
            float *dab = da ? da + base : NULL, *dw = db ? db + ((size_t)n0 * nb + cb) * k.b : NULL;
#define SCALE(b) scale_block_backward(dab, acc_a, dw, acc_b, dy + base, a + base, w, k.s, b)
            BLK_DISPATCH(k.b, SCALE);
#undef SCALE
        }
}

static void mul_backward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    const float *dy = plan_grad(p, n->out[0]);
    blk k = blk_of(p, n->out[0]);
    if (broadcast(p, nid)) mul_backward_bcast(p, nid, dy, k);
    else mul_backward_same(p, nid, dy, blk_size(k));
}

/* both factors are kept for the backward: the product can be computed again (graph.recompute) */
static const op_def mul_op = {"mul", mul_compile, mul_forward, mul_backward, NULL, NULL, .recompute = mul_forward};

int op_mul(graph *g, int a, int b) {
    if (!graph_ok(g) || a < 0 || b < 0) return -1;
    a = op_to_blocked(g, a);
    b = op_to_blocked(g, b);
    if (a < 0 || b < 0) return -1;
    const tensor *ta = graph_tensor(g, a), *tb = graph_tensor(g, b);
    bool same = ta->c == tb->c && ta->h == tb->h && ta->w == tb->w;
    bool bcast = ta->c == tb->c && tb->h == 1 && tb->w == 1;
    if (!same && !bcast)
        return graph_fail(g, cnn_fail(CNN_ERR_SHAPE, "%smul: shapes %dx%dx%d and %dx%dx%d do not fit", g->scope, ta->c,
                                      ta->h, ta->w, tb->c, tb->h, tb->w));
    int in[2] = {a, b};
    int nid = graph_add_node(g, &mul_op, "mul", in, 2, NULL);
    return graph_node_output(g, nid, ta->c, ta->h, ta->w, LAYOUT_BLOCKED);
}
