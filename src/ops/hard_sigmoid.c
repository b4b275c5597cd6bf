/* hard_sigmoid.c — GhostNet's gate, relu6(x + 3) / 6 (timm's and the paper code's hard_sigmoid),
 * in C: oneDNN 2.6 has no such eltwise. The gradient is 1/6 strictly inside (-3, 3) and 0 outside
 * and at the kinks, as PyTorch's relu6 (hardtanh) backward. */
#include "core/error.h"
#include "core/plan.h"
#include "ops/layout.h"
#include "ops/ops.h"

static cnn_status hsig_compile(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    if (plan_is_train(p) && plan_needs_grad(p, n->in[0])) plan_keep_input(p, nid, 0);
    return CNN_OK;
}

static void hsig_forward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    const float *x = plan_val(p, n->in[0]);
    float *y = plan_val(p, n->out[0]);
    blk k = blk_of(p, n->out[0]);
    size_t len = blk_size(k);
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < len; i++) {
        float v = x[i] + 3.0f;
        v = v < 0.0f ? 0.0f : v > 6.0f ? 6.0f : v;
        y[i] = v / 6.0f;
    }
    blk_zero_channels(y, k, k.c, k.cp); /* hard_sigmoid(0) is 1/2: the padding must go back to zero */
}

static void hsig_backward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    if (!plan_needs_grad(p, n->in[0])) return;
    const float *x = plan_val(p, n->in[0]), *dy = plan_grad(p, n->out[0]);
    float *dx = plan_grad(p, n->in[0]);
    bool acc = plan_grad_accum(p, nid, 0);
    size_t len = blk_size(blk_of(p, n->out[0]));
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < len; i++) {
        float g = x[i] > -3.0f && x[i] < 3.0f ? dy[i] / 6.0f : 0.0f;
        dx[i] = acc ? dx[i] + g : g;
    }
}

static const op_def hard_sigmoid_op = {"hard_sigmoid", hsig_compile, hsig_forward, hsig_backward, NULL, NULL};

int op_hard_sigmoid(graph *g, int x) {
    if (!graph_ok(g) || x < 0) return -1;
    const tensor *t = graph_tensor(g, x);
    int c = t->c, h = t->h, w = t->w;
    enum layout layout = t->layout;
    int nid = graph_add_node(g, &hard_sigmoid_op, "hard_sigmoid", &x, 1, NULL);
    return graph_node_output(g, nid, c, h, w, layout);
}
