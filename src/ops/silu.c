/* silu.c — SiLU, y = z·σ(z) (EfficientNet's activation), its backward dz = dy·σ(z)·(1 + z·(1 − σ(z))) (PyTorch's
 * formula), and the forward again for graph.recompute, on cnn.c's own kernels (the arithmetic per element is
 * silu.h's). In training plans a SiLU right after batch norm is fused into it (batchnorm.c), and in
 * evaluation plans into the convolution before (conv.c): this op runs where neither applies (EfficientNet's
 * squeeze-excitation, user graphs). oneDNN's eltwise swish, which it replaces, ran at about 40% of this
 * machine's memory bandwidth (compute-bound on its exp): on EfficientNet-B0 training at 224×224, batch 32
 * (2-core EPYC family 25, `cnn bench --profile`), before the fusion, SiLU's forward took 71–83 → 59–66 ms per
 * step, its backward 73–100 → 64–68 ms. */
#include "core/error.h"
#include "core/plan.h"
#include "ops/layout.h"
#include "ops/ops.h"
#include "ops/silu.h"

void silu_forward_kernel(float *y, const float *z, size_t n) {
#ifdef __AVX512F__
    const size_t nv = n / 16;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < nv; i++) _mm512_storeu_ps(y + 16 * i, silu_v16(_mm512_loadu_ps(z + 16 * i)));
    for (size_t i = 16 * nv; i < n; i++) y[i] = silu_value(z[i]);
#else
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) y[i] = silu_value(z[i]);
#endif
}

void silu_backward_kernel(float *dz, bool accumulate, const float *z, const float *dy, size_t n) {
    if (accumulate) {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) dz[i] += silu_grad(z[i], dy[i]);
    } else {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) dz[i] = silu_grad(z[i], dy[i]);
    }
}

/* floats in the tensor's buffer, padding included */
static size_t floats_of(plan *p, int tid) { return blk_size(blk_of(p, tid)); }

static cnn_status silu_compile(plan *p, int nid) {
    plan_keep_input(p, nid, 0);
    return CNN_OK;
}

static void silu_forward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    silu_forward_kernel(plan_val(p, n->out[0]), plan_val(p, n->in[0]), floats_of(p, n->in[0]));
}

static void silu_backward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    if (!plan_needs_grad(p, n->in[0])) return;
    silu_backward_kernel(plan_grad(p, n->in[0]), plan_grad_accum(p, nid, 0), plan_val(p, n->in[0]),
                         plan_grad(p, n->out[0]), floats_of(p, n->in[0]));
}

/* SiLU keeps its input for the backward: its output can be computed again (graph.recompute) */
static const op_def silu_op = {"silu", silu_compile, silu_forward, silu_backward, NULL, NULL, NULL, true, silu_forward};

int op_silu(graph *g, int x) {
    if (!graph_ok(g) || x < 0) return -1;
    const tensor *t = graph_tensor(g, x);
    int nid = graph_add_node(g, &silu_op, silu_op.type, &x, 1, NULL);
    return graph_node_output(g, nid, t->c, t->h, t->w, t->layout);
}
