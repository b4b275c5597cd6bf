/* adaptive_pool.c — adaptive average pooling to a fixed oh×ow, as PyTorch's AdaptiveAvgPool2d:
 * output cell i averages input rows [floor(i·H/oh), ceil((i+1)·H/oh)) (columns alike), so bins
 * overlap when H is not a multiple of oh, and repeat input cells when H < oh (VGG's classifier
 * reads a 7×7 map whatever the input size: a 1×1 map becomes 49 copies). C over the blocked layout. */
#include "core/error.h"
#include "core/plan.h"
#include "ops/layout.h"
#include "ops/ops.h"
#include <stdlib.h>
#include <string.h>

typedef struct apool_attr {
    int ih, iw, oh, ow;
} apool_attr;

static int bin_lo(int i, int in, int out) { return i * in / out; }
static int bin_hi(int i, int in, int out) { return ((i + 1) * in + out - 1) / out; }

static cnn_status apool_compile(plan *p, int nid) { return CNN_OK; }

static void apool_forward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    const apool_attr *a = n->attr;
    const float *x = plan_val(p, n->in[0]);
    float *y = plan_val(p, n->out[0]);
    blk kx = blk_of(p, n->in[0]), ky = blk_of(p, n->out[0]);
    int nb = kx.cp / kx.b, b = kx.b;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n0 = 0; n0 < kx.n; n0++)
        for (int cb = 0; cb < nb; cb++) {
            const float *xs = x + blk_at(kx, n0, cb * b, 0);
            float *ys = y + blk_at(ky, n0, cb * b, 0);
            for (int i = 0; i < a->oh; i++)
                for (int j = 0; j < a->ow; j++) {
                    int r0 = bin_lo(i, a->ih, a->oh), r1 = bin_hi(i, a->ih, a->oh);
                    int c0 = bin_lo(j, a->iw, a->ow), c1 = bin_hi(j, a->iw, a->ow);
                    float sum[64] = {0}, inv = 1.0f / (float)((r1 - r0) * (c1 - c0));
                    for (int r = r0; r < r1; r++)
                        for (int c = c0; c < c1; c++)
                            for (int k = 0; k < b; k++) sum[k] += xs[((size_t)r * a->iw + c) * b + k];
                    float *o = ys + ((size_t)i * a->ow + j) * b;
                    for (int k = 0; k < b; k++) o[k] = sum[k] * inv;
                }
        }
}

/* each output cell spreads dy/count over its bin; threads own whole (sample, channel block) slabs */
static void apool_backward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    if (!plan_needs_grad(p, n->in[0])) return;
    const apool_attr *a = n->attr;
    const float *dy = plan_grad(p, n->out[0]);
    float *dx = plan_grad(p, n->in[0]);
    bool acc = plan_grad_accum(p, nid, 0);
    blk kx = blk_of(p, n->in[0]), ky = blk_of(p, n->out[0]);
    int nb = kx.cp / kx.b, b = kx.b;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n0 = 0; n0 < kx.n; n0++)
        for (int cb = 0; cb < nb; cb++) {
            float *xs = dx + blk_at(kx, n0, cb * b, 0);
            const float *ys = dy + blk_at(ky, n0, cb * b, 0);
            if (!acc) memset(xs, 0, sizeof(float) * (size_t)kx.s * b);
            for (int i = 0; i < a->oh; i++)
                for (int j = 0; j < a->ow; j++) {
                    int r0 = bin_lo(i, a->ih, a->oh), r1 = bin_hi(i, a->ih, a->oh);
                    int c0 = bin_lo(j, a->iw, a->ow), c1 = bin_hi(j, a->iw, a->ow);
                    float inv = 1.0f / (float)((r1 - r0) * (c1 - c0));
                    const float *g = ys + ((size_t)i * a->ow + j) * b;
                    for (int r = r0; r < r1; r++)
                        for (int c = c0; c < c1; c++)
                            for (int k = 0; k < b; k++) xs[((size_t)r * a->iw + c) * b + k] += g[k] * inv;
                }
        }
}

static const op_def apool_op = {"adaptive_avgpool", apool_compile, apool_forward, apool_backward, NULL, NULL};

int op_adaptive_avgpool(graph *g, int x, int oh, int ow) {
    if (!graph_ok(g) || x < 0) return -1;
    if (oh <= 0 || ow <= 0)
        return graph_fail(g, cnn_fail(CNN_ERR_SHAPE, "%sadaptive_avgpool: output %dx%d is empty", g->scope, oh, ow));
    const tensor *t = graph_tensor(g, x);
    if (t->h == oh && t->w == ow) return x; /* every bin is one cell */
    x = op_to_blocked(g, x);
    if (x < 0) return -1;
    t = graph_tensor(g, x);
    apool_attr *a = malloc(sizeof *a);
    if (!a) return graph_fail(g, cnn_fail(CNN_ERR_NOMEM, "out of memory"));
    *a = (apool_attr){t->h, t->w, oh, ow};
    int nid = graph_add_node(g, &apool_op, "adaptive_avgpool", &x, 1, a);
    return graph_node_output(g, nid, t->c, oh, ow, LAYOUT_BLOCKED);
}
