/* lerp.c — linear interpolation y = a + t·(b − a) = (1 − t)·a + t·b of three tensors of one shape,
 * as torch.lerp with a tensor weight: the highway block's mix of carry (a) and transform (b)
 * under its gate t. Gradients: da = (1 − t)·dy, db = t·dy, dt = (b − a)·dy. */
#include "core/error.h"
#include "core/plan.h"
#include "ops/layout.h"
#include "ops/ops.h"

static cnn_status lerp_compile(plan *p, int nid) {
    for (int slot = 0; slot < 3; slot++) plan_keep_input(p, nid, slot);
    return CNN_OK;
}

static void lerp_forward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    const float *a = plan_val(p, n->in[0]), *b = plan_val(p, n->in[1]), *t = plan_val(p, n->in[2]);
    float *y = plan_val(p, n->out[0]);
    size_t len = blk_size(blk_of(p, n->out[0]));
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < len; i++) y[i] = a[i] + t[i] * (b[i] - a[i]);
}

static void lerp_backward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    const float *a = plan_val(p, n->in[0]), *b = plan_val(p, n->in[1]), *t = plan_val(p, n->in[2]);
    const float *dy = plan_grad(p, n->out[0]);
    size_t len = blk_size(blk_of(p, n->out[0]));
    for (int slot = 0; slot < 3; slot++) {
        if (!plan_needs_grad(p, n->in[slot])) continue;
        float *dx = plan_grad(p, n->in[slot]);
        bool acc = plan_grad_accum(p, nid, slot);
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < len; i++) {
            float d = slot == 0 ? (1.0f - t[i]) * dy[i] : slot == 1 ? t[i] * dy[i] : (b[i] - a[i]) * dy[i];
            dx[i] = acc ? dx[i] + d : d;
        }
    }
}

static const op_def lerp_op = {"lerp", lerp_compile, lerp_forward, lerp_backward, NULL, NULL};

int op_lerp(graph *g, int a, int b, int t) {
    if (!graph_ok(g) || a < 0 || b < 0 || t < 0) return -1;
    a = op_to_blocked(g, a);
    b = op_to_blocked(g, b);
    t = op_to_blocked(g, t);
    if (a < 0 || b < 0 || t < 0) return -1;
    const tensor *ta = graph_tensor(g, a), *tb = graph_tensor(g, b), *tt = graph_tensor(g, t);
    if (ta->c != tb->c || ta->h != tb->h || ta->w != tb->w || ta->c != tt->c || ta->h != tt->h || ta->w != tt->w)
        return graph_fail(g, cnn_fail(CNN_ERR_SHAPE, "%slerp: shapes %dx%dx%d, %dx%dx%d and weight %dx%dx%d differ",
                                      g->scope, ta->c, ta->h, ta->w, tb->c, tb->h, tb->w, tt->c, tt->h, tt->w));
    int in[3] = {a, b, t};
    int nid = graph_add_node(g, &lerp_op, "lerp", in, 3, NULL);
    return graph_node_output(g, nid, ta->c, ta->h, ta->w, LAYOUT_BLOCKED);
}
