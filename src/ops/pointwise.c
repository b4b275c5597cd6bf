/* pointwise.c — cnn.c's own 1×1 convolution forward for evaluation plans with few input channels
 * (pointwise.h): AVX-512 intrinsics, register tiles of 3 output blocks × 8 pixels. */
#include "ops/pointwise.h"
#include "ops/silu.h"
#include "ops/stream.h"
#include <string.h>

#define PW_PIXELS 8   /* pixels of a tile */
#define PW_BLOCKS 3   /* output blocks of 16 channels of a tile */

size_t pw_weights_floats(const pw_shape *s) { return (size_t)((s->oc + 15) / 16) * s->ic * 16; }

void pw_weights(const pw_shape *s, const float *w, float *wt) {
    memset(wt, 0, sizeof(float) * pw_weights_floats(s));
    for (int o = 0; o < s->oc; o++)
        for (int i = 0; i < s->ic; i++) wt[((size_t)(o / 16) * s->ic + i) * 16 + o % 16] = w[(size_t)o * s->ic + i];
}

#ifdef __AVX512F__
bool pw_available(void) { return true; }

/* One tile: nb output blocks (≤ PW_BLOCKS) × np pixels (≤ PW_PIXELS), both constants where inlined.
 * x: the tile's first pixel in block 0 of the image (input blocks hw·16 floats apart); wt: block ob's rows;
 * y: the tile's first pixel in output block ob. */
static inline __attribute__((always_inline)) void tile(const pw_shape *s, const float *x, const float *wt,
                                                       const __m512 *bias, unsigned act, bool stream, float *y,
                                                       const int nb, const int np) {
    const size_t plane = (size_t)s->hw * 16, wrows = (size_t)s->ic * 16;
    __m512 acc[PW_BLOCKS][PW_PIXELS];
#pragma GCC unroll 3
    for (int j = 0; j < nb; j++)
#pragma GCC unroll 8
        for (int q = 0; q < np; q++) acc[j][q] = bias[j];
    for (int c0 = 0; c0 < s->ic; c0 += 16) {
        const float *xc = x + (size_t)(c0 / 16) * plane;
        const int cn = s->ic - c0 < 16 ? s->ic - c0 : 16;
        for (int i = 0; i < cn; i++) {
            __m512 w[PW_BLOCKS];
#pragma GCC unroll 3
            for (int j = 0; j < nb; j++) w[j] = _mm512_loadu_ps(wt + j * wrows + (size_t)(c0 + i) * 16);
#pragma GCC unroll 8
            for (int q = 0; q < np; q++) {
                const __m512 v = _mm512_set1_ps(xc[q * 16 + i]);
#pragma GCC unroll 3
                for (int j = 0; j < nb; j++) acc[j][q] = _mm512_fmadd_ps(v, w[j], acc[j][q]);
            }
        }
    }
    const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 3
    for (int j = 0; j < nb; j++)
#pragma GCC unroll 8
        for (int q = 0; q < np; q++) {
            __m512 v = acc[j][q];
            if (act == PW_SILU) v = silu_v16(v);
            else if (act == PW_RELU) v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), v, zero);
            float *o = y + j * plane + q * 16;
            if (stream) _mm512_stream_ps(o, v);
            else _mm512_storeu_ps(o, v);
        }
}

/* The tile for nb blocks, np pixels: full tiles inline the constants, a run's last partial tile goes a
 * pixel at a time. */
static void tile_any(const pw_shape *s, const float *x, const float *wt, const __m512 *bias, unsigned act, bool stream,
                     float *y, int nb, int np) {
    if (np == PW_PIXELS) {
        if (nb == 3) tile(s, x, wt, bias, act, stream, y, 3, PW_PIXELS);
        else if (nb == 2) tile(s, x, wt, bias, act, stream, y, 2, PW_PIXELS);
        else tile(s, x, wt, bias, act, stream, y, 1, PW_PIXELS);
        return;
    }
    for (int q = 0; q < np; q++) {
        if (nb == 3) tile(s, x + q * 16, wt, bias, act, stream, y + q * 16, 3, 1);
        else if (nb == 2) tile(s, x + q * 16, wt, bias, act, stream, y + q * 16, 2, 1);
        else tile(s, x + q * 16, wt, bias, act, stream, y + q * 16, 1, 1);
    }
}

void pw_forward(const pw_shape *s, const float *x, const float *wt, const float *bias, unsigned act, float *y) {
    const int ib = (s->ic + 15) / 16, ob = (s->oc + 15) / 16;
    const size_t plane = (size_t)s->hw * 16, runs = (size_t)(s->hw + PW_PIXELS - 1) / PW_PIXELS;
    const bool stream = stream_fits(y, (size_t)s->n * ob * plane) && s->hw % PW_PIXELS == 0;
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (size_t t = 0; t < (size_t)s->n * runs; t++) {
            const size_t img = t / runs, p0 = (t % runs) * PW_PIXELS;
            const int np = s->hw - (int)p0 < PW_PIXELS ? s->hw - (int)p0 : PW_PIXELS;
            const float *xt = x + img * ib * plane + p0 * 16;
            float *yt = y + img * ob * plane + p0 * 16;
            for (int b0 = 0; b0 < ob; b0 += PW_BLOCKS) {
                const int nb = ob - b0 < PW_BLOCKS ? ob - b0 : PW_BLOCKS;
                __m512 bv[PW_BLOCKS];
                for (int j = 0; j < nb; j++) {
                    const int o = (b0 + j) * 16, left = s->oc - o;
                    const __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
                    bv[j] = bias ? _mm512_maskz_loadu_ps(m, bias + o) : _mm512_setzero_ps();
                }
                tile_any(s, xt, wt + (size_t)b0 * s->ic * 16, bv, act, stream, yt + (size_t)b0 * plane, nb, np);
            }
        }
        if (stream) _mm_sfence();
    }
}
#else
bool pw_available(void) { return false; }
void pw_forward(const pw_shape *s, const float *x, const float *wt, const float *bias, unsigned act, float *y) {
    (void)s, (void)x, (void)wt, (void)bias, (void)act, (void)y;
}
#endif
