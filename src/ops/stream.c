/* stream.c — the streaming-store kernels of stream.h (AVX-512 intrinsics; see there for why). Each
 * thread fences its streaming stores before the parallel region ends, so the next op sees them. */
#include "ops/stream.h"
#ifdef __AVX512F__
#include <immintrin.h>

void stream_add(float *y, const float *a, const float *b, size_t n, bool relu) {
    const __m512 zero = _mm512_setzero_ps();
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (size_t i = 0; i < n; i += 16) {
            __m512 v = _mm512_add_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
            _mm512_stream_ps(y + i, relu ? _mm512_max_ps(v, zero) : v);
        }
        _mm_sfence();
    }
}

void stream_masked_copy2(float *dx0, float *dx1, const float *y, const float *dy, size_t n) {
    const __m512 zero = _mm512_setzero_ps();
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (size_t i = 0; i < n; i += 16) {
            __mmask16 pos = _mm512_cmp_ps_mask(_mm512_loadu_ps(y + i), zero, _CMP_GT_OQ);
            __m512 g = _mm512_maskz_mov_ps(pos, _mm512_loadu_ps(dy + i));
            _mm512_stream_ps(dx0 + i, g);
            _mm512_stream_ps(dx1 + i, g);
        }
        _mm_sfence();
    }
}

void stream_scale16(float *y, const float *a, const float *w, size_t blocks, size_t area) {
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (size_t blk = 0; blk < blocks; blk++) {
            const __m512 s = _mm512_loadu_ps(w + blk * 16);
            const size_t base = blk * area * 16;
            for (size_t j = 0; j < area; j++)
                _mm512_stream_ps(y + base + j * 16, _mm512_mul_ps(_mm512_loadu_ps(a + base + j * 16), s));
        }
        _mm_sfence();
    }
}
#else
/* without AVX-512 stream_fits is false; these plain loops keep the functions correct anyway */
void stream_add(float *y, const float *a, const float *b, size_t n, bool relu) {
    for (size_t i = 0; i < n; i++) {
        float v = a[i] + b[i];
        y[i] = relu && !(v > 0.0f) ? 0.0f : v;
    }
}

void stream_masked_copy2(float *dx0, float *dx1, const float *y, const float *dy, size_t n) {
    for (size_t i = 0; i < n; i++) dx0[i] = dx1[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void stream_scale16(float *y, const float *a, const float *w, size_t blocks, size_t area) {
    for (size_t e = 0; e < blocks * area * 16; e++) y[e] = a[e] * w[e / (area * 16) * 16 + e % 16];
}
#endif
