/* add.c — elementwise sum of two tensors of the same shape (residual connections). The
 * gradient passes unchanged to both inputs. A batch norm before it whose statistics a convolution gave may
 * leave it its normalization (op_add_normalizes): in training forwards the addition then reads that batch
 * norm's input and applies it, one pass where the batch norm's would have written an output for it to read. */
#include "core/error.h"
#include "core/plan.h"
#include "ops/layout.h"
#include "ops/ops.h"
#include "ops/stream.h"
#include <stdlib.h>
#include <string.h>

typedef struct add_state {
    int bn, slot; /* the batch norm that leaves its normalization to the addition, and its input slot (-1: none) */
} add_state;

/* made by whichever comes first: the addition's compile, or the batch norm's (op_add_normalizes) before it */
static add_state *state_of(plan *p, int nid) {
    add_state *s = plan_state(p, nid);
    if (!s && (s = malloc(sizeof *s))) {
        *s = (add_state){-1, -1};
        plan_set_state(p, nid, s);
    }
    return s;
}

static cnn_status add_compile(plan *p, int nid) {
    if (plan_fused(p, nid) & FUSED_RELU) plan_keep_output(p, nid, 0); /* the ReLU's mask */
    return state_of(p, nid) ? CNN_OK : cnn_fail(CNN_ERR_NOMEM, "out of memory");
}

bool op_add_normalizes(plan *p, int nid, int bn) {
    const graph *g = plan_graph(p);
    const node *n = &g->nodes[nid];
    if (strcmp(n->op->type, "add") != 0) return false;
    add_state *s = state_of(p, nid);
    const int slot = g->nodes[bn].out[0] == n->in[0] ? 0 : 1;
    /* an addition of two different tensors (the batch norm's input, which it keeps for its backward, is still
     * there when the addition runs) */
    if (!s || s->bn >= 0 || n->in[0] == n->in[1]) return false;
    s->bn = bn;
    s->slot = slot;
    return true;
}

static void add_forward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    const add_state *s = plan_state(p, nid);
    const float *a = plan_val(p, n->in[0]), *b = plan_val(p, n->in[1]);
    float *y = plan_val(p, n->out[0]);
    blk k = blk_of(p, n->out[0]);
    const float *mean, *scale, *shift;
    if (s->bn >= 0 && op_batchnorm_deferred(p, s->bn, &mean, &scale, &shift)) {
        const float *x = plan_val(p, plan_graph(p)->nodes[s->bn].in[0]); /* the batch norm's input */
        stream_affine_add(y, x, s->slot ? a : b, mean, scale, shift, (size_t)k.n * (k.cp / k.b), k.cp / k.b, k.s, k.b,
                          plan_fused(p, nid) & FUSED_RELU);
        return;
    }
    stream_add(y, a, b, blk_size(k), plan_fused(p, nid) & FUSED_RELU);
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
