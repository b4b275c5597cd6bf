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

#ifdef __AVX512F__
#include <immintrin.h>
/* silu_value for 16 lanes with what AVX-512 has and GCC does not derive from the scalar form:
 * y = z/(1 + e^−z), e^−z = 2^n·e^r as vm_exp (same reduction and polynomial, 2^n by scalef), the
 * reciprocal as rcp14 and a Newton step (relative error ~2^-28; a division costs 6+ cycles a vector).
 * Where z < −87 the result is z·0 (±0, or NaN for −inf, as silu_value); past z = 88 e^−z is below 2^-126
 * and y = z (+inf stays +inf); NaN propagates through the last product. On cached data 5.6 against 4.7
 * Gelem/s for GCC's vectorization of silu_value (2 threads, EPYC family 25). silu_forward_kernel and the
 * own 1×1 convolution (pointwise.c) use it. */
static inline __m512 silu_v16(__m512 z) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 x = _mm512_max_ps(_mm512_sub_ps(_mm512_setzero_ps(), z), _mm512_set1_ps(-88.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 e = _mm512_set1_ps(1.9875691500e-4f);
    e = _mm512_fmadd_ps(e, r, _mm512_set1_ps(1.3981999507e-3f));
    e = _mm512_fmadd_ps(e, r, _mm512_set1_ps(8.3334519073e-3f));
    e = _mm512_fmadd_ps(e, r, _mm512_set1_ps(4.1665795894e-2f));
    e = _mm512_fmadd_ps(e, r, _mm512_set1_ps(1.6666665459e-1f));
    e = _mm512_fmadd_ps(e, r, _mm512_set1_ps(5.0000001201e-1f));
    e = _mm512_scalef_ps(_mm512_fmadd_ps(_mm512_mul_ps(e, r), r, _mm512_add_ps(r, one)), n);
    __m512 d = _mm512_add_ps(one, e), q = _mm512_rcp14_ps(d);
    q = _mm512_mul_ps(q, _mm512_fnmadd_ps(d, q, _mm512_set1_ps(2.0f)));
    __mmask16 low = _mm512_cmp_ps_mask(z, _mm512_set1_ps(-87.0f), _CMP_LT_OQ);
    return _mm512_mask_mul_ps(_mm512_mul_ps(z, q), low, z, _mm512_setzero_ps());
}
#endif

void silu_forward_kernel(float *y, const float *z, size_t n);
void silu_backward_kernel(float *dz, bool accumulate, const float *z, const float *dy, size_t n);
#endif
