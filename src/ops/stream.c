/* stream.c — the elementwise kernels of stream.h: plain vectorized loops, and on AVX-512 streaming stores
 * for outputs that stream_fits (intrinsics; each thread fences its streaming stores before the parallel
 * region ends, so the next op sees them). */
#include "ops/stream.h"
#include "ops/layout.h" /* BLK_DISPATCH */
#include <math.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

void stream_add(float *y, const float *a, const float *b, size_t n, bool relu) {
#ifdef __AVX512F__
    if (stream_fits(y, n)) {
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
        return;
    }
#endif
    if (relu) {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) {
            float v = a[i] + b[i];
            y[i] = v > 0.0f ? v : 0.0f; /* (fmaxf would not vectorize without -ffast-math) */
        }
    } else {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
    }
}

void stream_masked_copy2(float *dx0, float *dx1, const float *y, const float *dy, size_t n) {
#ifdef __AVX512F__
    if (stream_fits(dx1, n)) {
        const __m512 zero = _mm512_setzero_ps();
#pragma omp parallel
        {
#pragma omp for schedule(static)
            for (size_t i = 0; i < n; i += 16) {
                __mmask16 pos = _mm512_cmp_ps_mask(_mm512_loadu_ps(y + i), zero, _CMP_GT_OQ);
                __m512 g = _mm512_maskz_mov_ps(pos, _mm512_loadu_ps(dy + i));
                _mm512_storeu_ps(dx0 + i, g); /* read next: kept in the cache (stream.h) */
                _mm512_stream_ps(dx1 + i, g);
            }
            _mm_sfence();
        }
        return;
    }
#endif
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) dx0[i] = dx1[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

/* One channel block: y = a · w[channel] over `area` positions of b channels (called through BLK_DISPATCH). */
static inline void scale_block(float *y, const float *a, const float *w, size_t area, int b) {
    for (size_t s = 0; s < area; s++)
        for (int i = 0; i < b; i++) y[s * b + i] = a[s * b + i] * w[i];
}

void stream_scale(float *y, const float *a, const float *w, size_t blocks, size_t area, int b) {
#ifdef __AVX512F__
    if (b == 16 && stream_fits(y, blocks * area * 16)) {
#pragma omp parallel
        {
#pragma omp for schedule(static)
            for (size_t bi = 0; bi < blocks; bi++) {
                const __m512 s = _mm512_loadu_ps(w + bi * 16);
                const size_t base = bi * area * 16;
                for (size_t j = 0; j < area; j++)
                    _mm512_stream_ps(y + base + j * 16, _mm512_mul_ps(_mm512_loadu_ps(a + base + j * 16), s));
            }
            _mm_sfence();
        }
        return;
    }
#endif
#pragma omp parallel for schedule(static)
    for (size_t bi = 0; bi < blocks; bi++) {
        const size_t base = bi * area * b;
#define SCALE(bw) scale_block(y + base, a + base, w + bi * (bw), area, bw)
        BLK_DISPATCH(b, SCALE);
#undef SCALE
    }
}

/* One channel block: y = act((x − mean)·scale + shift + r) over `area` positions of b channels. */
static inline void affine_add_block(float *y, const float *x, const float *r, const float *mean, const float *scale,
                                    const float *shift, size_t area, int b, bool relu) {
    for (size_t s = 0; s < area; s++)
#pragma omp simd
        for (int i = 0; i < b; i++) {
            const float v = fmaf(x[s * b + i] - mean[i], scale[i], shift[i]) + r[s * b + i];
            y[s * b + i] = relu && !(v > 0.0f) ? 0.0f : v;
        }
}

void stream_affine_add(float *y, const float *x, const float *r, const float *mean, const float *scale,
                       const float *shift, size_t blocks, int per_image, size_t area, int b, bool relu) {
#ifdef __AVX512F__
    if (b == 16 && stream_fits(y, blocks * area * 16)) {
        const __m512 zero = _mm512_setzero_ps();
#pragma omp parallel
        {
#pragma omp for schedule(static)
            for (size_t bi = 0; bi < blocks; bi++) {
                const size_t c = (bi % per_image) * 16, base = bi * area * 16;
                const __m512 m = _mm512_loadu_ps(mean + c), s = _mm512_loadu_ps(scale + c), t = _mm512_loadu_ps(shift + c);
                for (size_t j = base; j < base + area * 16; j += 16) {
                    __m512 v = _mm512_fmadd_ps(_mm512_sub_ps(_mm512_loadu_ps(x + j), m), s, t);
                    v = _mm512_add_ps(v, _mm512_loadu_ps(r + j));
                    _mm512_stream_ps(y + j, relu ? _mm512_max_ps(v, zero) : v);
                }
            }
            _mm_sfence();
        }
        return;
    }
#endif
#pragma omp parallel for schedule(static)
    for (size_t bi = 0; bi < blocks; bi++) {
        const size_t c = (bi % per_image) * b, base = bi * area * b;
#define AFFINE(bw) affine_add_block(y + base, x + base, r + base, mean + c, scale + c, shift + c, area, bw, relu)
        BLK_DISPATCH(b, AFFINE);
#undef AFFINE
    }
}
