/* conv16.c — direct 3×3 convolutions of 16 → 16 channels, stride 1, padding 1 (conv16.h): AVX-512
 * intrinsics, one vector of 16 channels per pixel. */
#include "ops/conv16.h"
#include <string.h>

#define TAP 256 /* floats of one tap's weights: 16 × 16 */

bool c16_fits(int h, int w) { return h >= 1 && w >= C16_PIXELS && w % C16_PIXELS == 0; }
size_t c16_scratch_floats(int threads) { return (size_t)threads * 9 * TAP; }
size_t c16_chunk_sums(const c16_shape *s) { return (size_t)(s->n * s->h + C16_CHUNK - 1) / C16_CHUNK * 32; }

#ifdef __AVX512F__
#include "ops/direct3x3.h"
#include <immintrin.h>
#include <omp.h>

bool c16_available(void) { return true; }

/* Output pixels [ow0, ow0 + C16_PIXELS) of one row. rows[kh]: input row oh + kh − 1 (NULL: padding);
 * taps[kh][kw]: that tap's weights, [in][out]. Input pixel j of the tile (ow0 − 1 + j) meets output pixel
 * j − kw through tap kw: one broadcast, three multiply-adds. left, right (constants where inlined): the tile
 * touches the map's left or right edge, so that its first or last input pixel is padding. sums (NULL: none):
 * the per-channel sums of the outputs and of their squares (2 × 16 doubles) of the tile's chunk of rows,
 * added to. */
static inline __attribute__((always_inline)) void tile(const float *const rows[3], const float *const taps[3][3],
                                                       int ow0, bool accum, float *y, double *sums, const bool left,
                                                       const bool right) {
    enum { P = C16_PIXELS };
    __m512 acc[P];
#pragma GCC unroll 16
    for (int u = 0; u < P; u++) acc[u] = accum ? _mm512_loadu_ps(y + u * 16) : _mm512_setzero_ps();
    for (int kh = 0; kh < 3; kh++) {
        if (!rows[kh]) continue;
        const float *x = rows[kh] + (ptrdiff_t)(ow0 - 1) * 16;
        const float *w0 = taps[kh][0], *w1 = taps[kh][1], *w2 = taps[kh][2];
#pragma GCC unroll 1
        for (int ic = 0; ic < 16; ic++) {
            const __m512 a = _mm512_loadu_ps(w0 + ic * 16), b = _mm512_loadu_ps(w1 + ic * 16),
                         c = _mm512_loadu_ps(w2 + ic * 16);
#pragma GCC unroll 18
            for (int j = 0; j < P + 2; j++) {
                if ((left && j == 0) || (right && j == P + 1)) continue;
                const __m512 v = _mm512_set1_ps(x[j * 16 + ic]);
                if (j < P) acc[j] = _mm512_fmadd_ps(v, a, acc[j]);
                if (j >= 1 && j <= P) acc[j - 1] = _mm512_fmadd_ps(v, b, acc[j - 1]);
                if (j >= 2) acc[j - 2] = _mm512_fmadd_ps(v, c, acc[j - 2]);
            }
        }
    }
#pragma GCC unroll 16
    for (int u = 0; u < P; u++) _mm512_storeu_ps(y + u * 16, acc[u]);
    if (sums) { /* the tile's 16 pixels added in float, then into its chunk's sums in double */
        __m512 sum[P / 2], sq[P / 2]; /* pairwise: short dependency chains */
#pragma GCC unroll 8
        for (int u = 0; u < P / 2; u++) {
            sum[u] = _mm512_add_ps(acc[u], acc[u + P / 2]);
            sq[u] = _mm512_fmadd_ps(acc[u], acc[u], _mm512_mul_ps(acc[u + P / 2], acc[u + P / 2]));
        }
#pragma GCC unroll 3
        for (int h = P / 4; h >= 1; h /= 2)
#pragma GCC unroll 4
            for (int u = 0; u < h; u++) sum[u] = _mm512_add_ps(sum[u], sum[u + h]), sq[u] = _mm512_add_ps(sq[u], sq[u + h]);
        const __m512 v[2] = {sum[0], sq[0]};
        for (int k = 0; k < 2; k++) {
            double *d = sums + 16 * k;
            _mm512_storeu_pd(d, _mm512_add_pd(_mm512_loadu_pd(d), _mm512_cvtps_pd(_mm512_castps512_ps256(v[k]))));
            _mm512_storeu_pd(d + 8, _mm512_add_pd(_mm512_loadu_pd(d + 8), _mm512_cvtps_pd(_mm512_extractf32x8_ps(v[k], 1))));
        }
    }
}

#define TILE_FN(name, l, r)                                                                                        \
    __attribute__((noinline)) static void name(const float *const rows[3], const float *const taps[3][3], int ow0, \
                                               bool accum, float *y, double *sums) {                              \
        tile(rows, taps, ow0, accum, y, sums, l, r);                                                               \
    }
TILE_FN(tile_inner, false, false)
TILE_FN(tile_left, true, false)
TILE_FN(tile_right, false, true)
TILE_FN(tile_both, true, true)

/* Output row oh of one image (x, y: the image's planes); sums: as tile's (its chunk's), or NULL. */
static void conv_row(const c16_shape *s, const float *x, const float *const taps[3][3], int oh, bool accum, float *y,
                     double *sums) {
    const int H = s->h, W = s->w;
    const size_t row = (size_t)W * 16;
    const float *rows[3];
    for (int kh = 0; kh < 3; kh++) {
        const int ih = oh + kh - 1;
        rows[kh] = ih < 0 || ih >= H ? NULL : x + (size_t)ih * row;
    }
    float *yr = y + (size_t)oh * row;
    for (int ow0 = 0; ow0 < W; ow0 += C16_PIXELS) {
        float *yt = yr + (size_t)ow0 * 16;
        if (W == C16_PIXELS) tile_both(rows, taps, ow0, accum, yt, sums);
        else if (ow0 == 0) tile_left(rows, taps, ow0, accum, yt, sums);
        else if (ow0 + C16_PIXELS == W) tile_right(rows, taps, ow0, accum, yt, sums);
        else tile_inner(rows, taps, ow0, accum, yt, sums);
    }
}

void c16_forward(const c16_shape *s, const float *x, const float *w, float *y, double *sums, double *chunk_sums) {
    const size_t plane = (size_t)s->h * s->w * 16;
    const int rows = s->n * s->h, chunks = (rows + C16_CHUNK - 1) / C16_CHUNK;
    const float *taps[3][3];
    for (int t = 0; t < 9; t++) taps[t / 3][t % 3] = w + (size_t)t * TAP;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < chunks; k++) {
        double *cs = sums ? chunk_sums + (size_t)k * 32 : NULL;
        if (cs) memset(cs, 0, sizeof(double) * 32);
        for (int r = k * C16_CHUNK; r < rows && r < (k + 1) * C16_CHUNK; r++)
            conv_row(s, x + r / s->h * plane, taps, r % s->h, false, y + r / s->h * plane, cs);
    }
    if (!sums) return;
    memset(sums, 0, sizeof(double) * 32); /* the chunks in order: the same sums whatever the thread count */
    for (int k = 0; k < chunks; k++)
        for (int j = 0; j < 32; j++) sums[j] += chunk_sums[(size_t)k * 32 + j];
}

/* part[tap][o][i] += Σ over one image's pixels of x[pixel + tap offset][i] · dy[pixel][o] (the image's sum
 * made apart, then added: shorter sums in float), for the 8 output channels o of `half` and the three taps of
 * kernel row kh: 24 vectors of accumulators (over i), each output-gradient value broadcast once for its
 * three taps, the input row's vectors slid along. */
static void image_row_taps(const c16_shape *s, const float *x, const float *dy, int kh, int half, const float *next_x,
                           const float *next_dy, float *part) {
    const int H = s->h, W = s->w;
    const size_t row = (size_t)W * 16;
    __m512 acc[3][8];
    for (int kw = 0; kw < 3; kw++)
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) acc[kw][j] = _mm512_setzero_ps();
    for (int oh = 0; oh < H; oh++) {
        const int ih = oh + kh - 1;
        if (ih < 0 || ih >= H) continue;
        const float *xr = x + (size_t)ih * row, *dr = dy + (size_t)oh * row + half * 8;
        if (next_x)
            for (int ow = 0; ow < W; ow++) {
                _mm_prefetch((const char *)(next_x + (size_t)oh * row + (size_t)ow * 16), _MM_HINT_T1);
                _mm_prefetch((const char *)(next_dy + (size_t)oh * row + (size_t)ow * 16), _MM_HINT_T1);
            }
        __m512 xm = _mm512_setzero_ps(), x0 = _mm512_loadu_ps(xr);
        for (int ow = 0; ow < W; ow++) {
            const __m512 xp = ow + 1 < W ? _mm512_loadu_ps(xr + (size_t)(ow + 1) * 16) : _mm512_setzero_ps();
            taps3_by8(acc, xm, x0, xp, dr + (size_t)ow * 16);
            xm = x0;
            x0 = xp;
        }
    }
    for (int kw = 0; kw < 3; kw++)
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            float *pj = part + ((size_t)(kh * 3 + kw) * 16 + half * 8 + j) * 16;
            _mm512_storeu_ps(pj, _mm512_add_ps(_mm512_loadu_ps(pj), acc[kw][j]));
        }
}

void c16_backward(const c16_shape *s, const float *x, const float *dy, const float *w, bool accum, float *dx,
                  float *dw, float *scratch, int threads) {
    const size_t plane = (size_t)s->h * s->w * 16;
    const float *taps[3][3]; /* the backward data: the transposed weights' taps in reverse order */
    for (int t = 0; t < 9; t++) taps[t / 3][t % 3] = w + (size_t)(8 - t) * TAP;
#pragma omp parallel num_threads(threads)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        float *part = scratch + (size_t)t * 9 * TAP;
        memset(part, 0, sizeof(float) * 9 * TAP);
        /* whole images per thread: each image's output gradient (64 KB at 32×32), read by its input gradient's
         * rows, and its input stay in the cache through the six passes of the weight gradient over them */
        const int n0 = (int)((long)s->n * t / nt), n1 = (int)((long)s->n * (t + 1) / nt);
        for (int n = n0; n < n1; n++) {
            if (dx)
                for (int oh = 0; oh < s->h; oh++) conv_row(s, dy + n * plane, taps, oh, accum, dx + n * plane, NULL);
            for (int kh = 0; kh < 3; kh++)
                for (int half = 0; half < 2; half++) {
                    const bool pf = n + 1 < n1 && kh == 1 && half == 0; /* the next image, into L2 */
                    image_row_taps(s, x + n * plane, dy + n * plane, kh, half, pf ? x + (n + 1) * plane : NULL,
                                   pf ? dy + (n + 1) * plane : NULL, part);
                }
        }
        sum_thread_parts(dw, scratch, 9 * TAP, nt);
    }
}
#else
bool c16_available(void) { return false; }
void c16_forward(const c16_shape *s, const float *x, const float *w, float *y, double *sums, double *chunk_sums) {
    (void)s, (void)x, (void)w, (void)y, (void)sums, (void)chunk_sums;
}
void c16_backward(const c16_shape *s, const float *x, const float *dy, const float *w, bool accum, float *dx,
                  float *dw, float *scratch, int threads) {
    (void)s, (void)x, (void)dy, (void)w, (void)accum, (void)dx, (void)dw, (void)scratch, (void)threads;
}
#endif
