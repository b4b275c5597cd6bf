/* add.c — elementwise sum of two tensors of the same shape (residual connections). The
 * gradient passes unchanged to both inputs. */
#include "core/error.h"
#include "core/plan.h"
#include "ops/layout.h"
#include "ops/ops.h"
#include "ops/stream.h"
#include <string.h>

static cnn_status add_compile(plan *p, int nid) {
    if (plan_fused(p, nid) & FUSED_RELU) plan_keep_output(p, nid, 0); /* the ReLU's mask */
    return CNN_OK;
}

static void add_forward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    const float *a = plan_val(p, n->in[0]), *b = plan_val(p, n->in[1]);
    float *y = plan_val(p, n->out[0]);
    size_t len = blk_size(blk_of(p, n->out[0]));
    stream_add(y, a, b, len, plan_fused(p, nid) & FUSED_RELU);
}

/* dx (+)= dy over the whole buffer; with a fused ReLU, only where the output is positive */
static void pass_grad(plan *p, int nid, int slot, const float *dy, const float *y, size_t len) {
    node *n = &plan_graph(p)->nodes[nid];
    if (!plan_needs_grad(p, n->in[slot])) return;
    float *dx = plan_grad(p, n->in[slot]);
    bool acc = plan_grad_accum(p, nid, slot);
    /* (dx may hold garbage when not accumulating: never read it then) */
    if (y && acc) {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < len; i++) dx[i] += y[i] > 0.0f ? dy[i] : 0.0f;
    } else if (y) {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < len; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
    } else if (acc) {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < len; i++) dx[i] += dy[i];
    } else {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < len; i++) dx[i] = dy[i];
    }
}

static void add_backward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    const float *dy = plan_grad(p, n->out[0]);
    const float *y = plan_fused(p, nid) & FUSED_RELU ? plan_val(p, n->out[0]) : NULL;
    size_t len = blk_size(blk_of(p, n->out[0]));
    if (y && plan_needs_grad(p, n->in[0]) && plan_needs_grad(p, n->in[1]) && !plan_grad_accum(p, nid, 0) &&
        !plan_grad_accum(p, nid, 1)) {
        /* the residual block's usual case: both inputs get the masked gradient, in one pass */
        stream_masked_copy2(plan_grad(p, n->in[0]), plan_grad(p, n->in[1]), y, dy, len);
        return;
    }
    pass_grad(p, nid, 0, dy, y, len);
    pass_grad(p, nid, 1, dy, y, len);
}

/* The residual addition and the ReLU after it in one pass (forward and backward). */
static bool add_absorb(plan *p, int nid, int next) {
    if (plan_fused(p, nid) & FUSED_RELU || strcmp(plan_graph(p)->nodes[next].op->type, "relu") != 0) return false;
    plan_set_fused(p, nid, FUSED_RELU);
    return true;
}

static const op_def add_op = {"add", add_compile, add_forward, add_backward, NULL, NULL, add_absorb,
                              .kind = plan_fused_activation};

int op_add(graph *g, int a, int b) {
    if (!graph_ok(g) || a < 0 || b < 0) return -1;
    a = op_to_blocked(g, a);
    b = op_to_blocked(g, b);
    if (a < 0 || b < 0) return -1;
    const tensor *ta = graph_tensor(g, a), *tb = graph_tensor(g, b);
    if (ta->c != tb->c || ta->h != tb->h || ta->w != tb->w)
        return graph_fail(g, cnn_fail(CNN_ERR_SHAPE, "%sadd: shapes %dx%dx%d and %dx%dx%d differ", g->scope, ta->c,
                                      ta->h, ta->w, tb->c, tb->h, tb->w));
    int in[2] = {a, b};
    int nid = graph_add_node(g, &add_op, "add", in, 2, NULL);
    return graph_node_output(g, nid, ta->c, ta->h, ta->w, LAYOUT_BLOCKED);
}
