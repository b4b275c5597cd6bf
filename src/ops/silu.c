/* silu.c — SiLU, y = z·σ(z) (EfficientNet's activation), its backward dz = dy·σ(z)·(1 + z·(1 − σ(z))) (PyTorch's
 * formula), and the forward again for graph.recompute. cnn.c's own kernels: oneDNN's eltwise swish ran
 * at about 40% of this machine's memory bandwidth (compute-bound on its exp), and its output could not
 * be streamed. exp is ops/vmath.h's (within 2 ulp of expf); σ and 1 − σ come without cancellation
 * (sigmoid_pair). As in PyTorch: NaN stays NaN, silu(±0) = ±0, silu(+inf) = +inf, silu(−inf) = NaN (−inf·0).
 * Padding channels stay zero. In inference plans SiLU is a convolution's post-op (conv.c) and this op does not run.
 * Measured on EfficientNet-B0 training at 224×224, batch 32 (2-core EPYC family 25; `cnn bench --profile`):
 * forward 71–83 → 59–66 ms per step with plain stores and 53–58 with streaming stores, backward 73–100 →
 * 64–68 ms. */
#include "core/error.h"
#include "core/plan.h"
#include "ops/layout.h"
#include "ops/ops.h"
#include "ops/silu.h"
#include "ops/stream.h"
#include "ops/vmath.h"

/* σ(z) and 1 − σ(z), each without cancellation: with e = e^−|z| ≤ 1 and q = 1/(1 + e) they are q and e·q,
 * in one order or the other. e counts as 0 past |z| = 87 (vm_exp stops there), so silu(z) is ±0 below
 * z = −87, where its exact value is under 2e-36 in magnitude. Plain arithmetic and selects: vectorizes. */
static inline void sigmoid_pair(float z, float *s, float *one_minus_s) {
    float a = z < 0.0f ? z : -z; /* −|z| (NaN stays NaN) */
    float e = a < -87.0f ? 0.0f : vm_exp(a);
    float q = 1.0f / (1.0f + e);
    *s = z >= 0.0f ? q : e * q;
    *one_minus_s = z >= 0.0f ? e * q : q;
}
static inline float silu_value(float z) {
    float s, t;
    sigmoid_pair(z, &s, &t);
    return z * s;
}
static inline float silu_grad(float z, float dy) {
    float s, t;
    sigmoid_pair(z, &s, &t);
    return dy * s * (1.0f + z * t);
}

/* Large outputs: each thread computes chunks of CHUNK floats into a buffer in its cache and streams them
 * out (n a multiple of 16: stream_fits). */
#define CHUNK 1024

void silu_forward_kernel(float *y, const float *z, size_t n) {
    if (stream_fits(y, n)) {
#pragma omp parallel
        {
            float buf[CHUNK] __attribute__((aligned(64)));
#pragma omp for schedule(static)
            for (size_t c = 0; c < n; c += CHUNK) {
                size_t len = n - c < CHUNK ? n - c : CHUNK;
#pragma omp simd
                for (size_t i = 0; i < len; i++) buf[i] = silu_value(z[c + i]);
                stream_store(y + c, buf, len);
            }
            stream_fence();
        }
        return;
    }
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) y[i] = silu_value(z[i]);
}

/* (Streaming stores did not pay here: 67 → 71–77 ms per EfficientNet-B0 training step; batch norm's
 * backward reads dz right after.) */
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
