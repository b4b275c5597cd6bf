/* silu.h — SiLU and its derivative per element (for silu.c and for batch norm with SiLU fused in,
 * batchnorm.c; files using them are compiled with -fno-trapping-math, ops/vmath.h), and silu.c's kernels:
 * y = z·σ(z) over n floats, and dz (+)= dy·σ(z)·(1 + z·(1 − σ(z))). exp is vmath.h's (within 2 ulp of
 * expf); σ and 1 − σ come without cancellation (sigmoid_pair). As in PyTorch: NaN stays NaN,
 * silu(±0) = ±0, silu(+inf) = +inf, silu(−inf) = NaN (−inf·0); padding channels stay zero. */
#ifndef CNN_OPS_SILU_H
#define CNN_OPS_SILU_H
#include <stdbool.h>
#include <stddef.h>
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

void silu_forward_kernel(float *y, const float *z, size_t n);
void silu_backward_kernel(float *dz, bool accumulate, const float *z, const float *dy, size_t n);
#endif
