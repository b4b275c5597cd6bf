/* vmath.h — exp, sigmoid and tanh written so that `omp simd` loops vectorize them (for the fused RNN
 * gates, rnn_cell.c, and SiLU, silu.h: silu.c and batch norm with SiLU fused in, batchnorm.c).
 *
 * e^x (x clamped to [-87, 88]): 2^n · e^r with x = n·ln 2 + r, |r| ≤ ln 2 / 2, e^r by Cephes'
 * polynomial; within 2 ulp of expf. Branch-free (selects, a rounding by adding 1.5·2^23, whose low
 * mantissa bits then hold n) so that they vectorize; a file using them is compiled with
 * -fno-trapping-math (CMakeLists.txt), without which GCC keeps the selects as branches. NaN stays NaN.
 * The clamp makes σ(x) = 1/(1 + e^-x) at least 6e-39 (not smaller) for x < -88. */
#ifndef CNN_OPS_VMATH_H
#define CNN_OPS_VMATH_H
#include <stdint.h>

typedef union {
    float f;
    uint32_t u; /* unsigned: NaN inputs make any bits here, and their arithmetic must stay defined */
} vm_bits;

static inline float vm_exp(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    vm_bits m = {.f = x * 1.44269504088896341f + 12582912.0f};
    float n = m.f - 12582912.0f;
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    vm_bits scale = {.u = (m.u - 0x4B400000u + 127u) << 23};
    return p * scale.f;
}

static inline float vm_sigmoid(float x) { return 1.0f / (1.0f + vm_exp(-x)); }
static inline float vm_tanh(float x) { return 2.0f / (1.0f + vm_exp(-2.0f * x)) - 1.0f; }
#endif
