/* concat.c — channel concatenation of blocked tensors (Inception branches, ConvRNN inputs) and
 * its inverse, the channel slice (Ghost modules, RNN gates). Each one's backward is the other. */
#include "core/error.h"
#include "core/plan.h"
#include "ops/layout.h"
#include "ops/ops.h"
#include <stdlib.h>

typedef struct slice_attr {
    int c0, c1;
} slice_attr;

static cnn_status nothing_compile(plan *p, int nid) { return CNN_OK; }

/* Concatenation needs no input for its backward; with graph.recompute it keeps them (written again
 * themselves where they can be: batch norm outputs in GoogLeNet's branches, GhostNet's modules and the
 * ConvRNN cells) so that its output can be recomputed rather than kept. */
static cnn_status concat_compile(plan *p, int nid) {
    if (plan_is_train(p) && plan_graph(p)->recompute)
        for (int i = 0; i < plan_graph(p)->nodes[nid].nin; i++) plan_keep_input(p, nid, i);
    return CNN_OK;
}

static void concat_forward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    blk d = blk_of(p, n->out[0]);
    float *y = plan_val(p, n->out[0]);
    int off = 0;
    for (int i = 0; i < n->nin; i++) {
        blk s = blk_of(p, n->in[i]);
        blk_copy_channels(y, d, off, plan_val(p, n->in[i]), s, 0, s.c, false);
        off += s.c;
    }
    blk_zero_channels(y, d, d.c, d.cp);
}

static void concat_backward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    blk d = blk_of(p, n->out[0]);
    const float *dy = plan_grad(p, n->out[0]);
    int off = 0;
    for (int i = 0; i < n->nin; i++) {
        blk s = blk_of(p, n->in[i]);
        if (plan_needs_grad(p, n->in[i])) {
            float *dx = plan_grad(p, n->in[i]);
            bool acc = plan_grad_accum(p, nid, i);
            blk_copy_channels(dx, s, 0, dy, d, off, s.c, acc);
            if (!acc) blk_zero_channels(dx, s, s.c, s.cp);
        }
        off += s.c;
    }
}

static void slice_forward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    slice_attr *a = n->attr;
    blk d = blk_of(p, n->out[0]);
    float *y = plan_val(p, n->out[0]);
    blk_copy_channels(y, d, 0, plan_val(p, n->in[0]), blk_of(p, n->in[0]), a->c0, a->c1 - a->c0, false);
    blk_zero_channels(y, d, d.c, d.cp);
}

static void slice_backward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    slice_attr *a = n->attr;
    if (!plan_needs_grad(p, n->in[0])) return;
    blk s = blk_of(p, n->in[0]);
    float *dx = plan_grad(p, n->in[0]);
    bool acc = plan_grad_accum(p, nid, 0);
    if (!acc) {
        blk_zero_channels(dx, s, 0, a->c0);
        blk_zero_channels(dx, s, a->c1, s.cp);
    }
    blk_copy_channels(dx, s, a->c0, plan_grad(p, n->out[0]), blk_of(p, n->out[0]), 0, a->c1 - a->c0, acc);
    if (!acc) blk_zero_channels(dx, s, s.c, s.cp);
}

static const op_def concat_op = {"concat", concat_compile, concat_forward, concat_backward, NULL, NULL,
                                 .recompute = concat_forward};
static const op_def slice_op = {"slice", nothing_compile, slice_forward, slice_backward, NULL, NULL};

int op_concat(graph *g, const int *xs, int count) {
    if (!graph_ok(g)) return -1;
    if (count < 1) return graph_fail(g, cnn_fail(CNN_ERR_INTERNAL, "%sconcat: no inputs", g->scope));
    int *in = malloc(sizeof(int) * count);
    if (!in) return graph_fail(g, cnn_fail(CNN_ERR_NOMEM, "out of memory"));
    int c = 0;
    for (int i = 0; i < count; i++) {
        in[i] = op_to_blocked(g, xs[i]);
        if (in[i] < 0) {
            free(in);
            return -1;
        }
        const tensor *t = graph_tensor(g, in[i]), *t0 = graph_tensor(g, in[0]);
        if (t->h != t0->h || t->w != t0->w) {
            free(in);
            return graph_fail(g, cnn_fail(CNN_ERR_SHAPE, "%sconcat: input %d is %dx%d, input 0 is %dx%d", g->scope, i,
                                          t->h, t->w, t0->h, t0->w));
        }
        c += t->c;
    }
    const tensor *t0 = graph_tensor(g, in[0]);
    int h = t0->h, w = t0->w;
    int nid = graph_add_node(g, &concat_op, "concat", in, count, NULL);
    free(in);
    return graph_node_output(g, nid, c, h, w, LAYOUT_BLOCKED);
}

int op_slice(graph *g, int x, int c0, int c1) {
    if (!graph_ok(g) || x < 0) return -1;
    x = op_to_blocked(g, x);
    if (x < 0) return -1;
    const tensor *t = graph_tensor(g, x);
    if (c0 < 0 || c1 > t->c || c0 >= c1)
        return graph_fail(g, cnn_fail(CNN_ERR_SHAPE, "%sslice: channels [%d, %d) of %d", g->scope, c0, c1, t->c));
    if (c0 == 0 && c1 == t->c) return x;
    slice_attr *a = malloc(sizeof *a);
    if (!a) return graph_fail(g, cnn_fail(CNN_ERR_NOMEM, "out of memory"));
    a->c0 = c0;
    a->c1 = c1;
    int h = t->h, w = t->w;
    int nid = graph_add_node(g, &slice_op, "slice", &x, 1, a);
    return graph_node_output(g, nid, c1 - c0, h, w, LAYOUT_BLOCKED);
}
