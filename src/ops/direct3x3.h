/* direct3x3.h — what the own direct 3×3 kernels' backward weights share (conv16.c, conv_s2.c): their inner step
 * and the sum of the threads' parts. AVX-512 builds only. */
#ifndef CNN_OPS_DIRECT3X3_H
#define CNN_OPS_DIRECT3X3_H
#ifdef __AVX512F__
#include <immintrin.h>

/* The three input vectors one output pixel meets through the taps of a kernel row (xm, x0, xp: over 16 input
 * channels), each of 8 output-gradient values d[0..8) broadcast once against them, into 24 vectors of sums
 * acc[tap][j]. */
static inline __attribute__((always_inline)) void taps3_by8(__m512 acc[3][8], __m512 xm, __m512 x0, __m512 xp,
                                                            const float *d) {
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
        const __m512 v = _mm512_set1_ps(d[j]);
        acc[0][j] = _mm512_fmadd_ps(xm, v, acc[0][j]);
        acc[1][j] = _mm512_fmadd_ps(x0, v, acc[1][j]);
        acc[2][j] = _mm512_fmadd_ps(xp, v, acc[2][j]);
    }
}

/* dw = the sum of the nt threads' parts (floats each, a multiple of 16, one after the other from `parts`), added in
 * thread order: the same bits for a given thread count. Called by every thread of a parallel region, after all
 * have written their parts. */
static inline void sum_thread_parts(float *dw, const float *parts, size_t floats, int nt) {
#pragma omp barrier
#pragma omp for schedule(static)
    for (size_t k = 0; k < floats; k += 16) {
        __m512 sum = _mm512_loadu_ps(parts + k);
        for (int u = 1; u < nt; u++) sum = _mm512_add_ps(sum, _mm512_loadu_ps(parts + (size_t)u * floats + k));
        _mm512_storeu_ps(dw + k, sum);
    }
}
#endif
#endif
