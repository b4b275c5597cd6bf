/* conv_s2.c — direct 3×3 convolutions of stride 2, padding 1, on nChw16c (conv_s2.h): AVX-512 intrinsics, one
 * vector of 16 channels per pixel. */
#include "ops/conv_s2.h"
#include <string.h>

#define TAP 256  /* floats of one tap's weights between two blocks: 16 × 16 */
#define FWD_P 8  /* output pixels of a forward tile (in two output blocks) */
#define BWD_P 16 /* input-gradient pixels of a backward-data tile */

bool s2_fits(int ic, int oc, int h, int w) {
    return ic > 0 && ic % 16 == 0 && oc > 0 && oc % 32 == 0 && h >= 2 && h % 2 == 0 && w >= BWD_P && w % BWD_P == 0;
}

size_t s2_scratch_floats(const s2_shape *s, int threads) { return (size_t)threads * (s->ic / 16) * (s->oc / 16) * 9 * TAP; }

#ifdef __AVX512F__
#include "ops/direct3x3.h"
#include <immintrin.h>
#include <omp.h>

bool s2_available(void) { return true; }

/* Output pixels [ow0, ow0 + FWD_P) of row oh in output blocks ob and ob + 1 of one image (xi, yi: the image's
 * planes). Input column 2·ow0 − 1 + m meets output pixel m/2 through tap 0 and m/2 − 1 through tap 2 when m is
 * even, output pixel (m − 1)/2 through tap 1 when it is odd. left (a constant where inlined): the tile starts at
 * the map's left edge, so that its first input column is padding. */
static inline __attribute__((always_inline)) void fwd_tile(const s2_shape *s, const float *xi, const float *w, int ob,
                                                           int oh, int ow0, float *yi, const bool left) {
    enum { P = FWD_P };
    const int IB = s->ic / 16, H = s->h, W = s->w, OH = H / 2, OW = W / 2;
    __m512 acc0[P], acc1[P];
#pragma GCC unroll 8
    for (int j = 0; j < P; j++) acc0[j] = acc1[j] = _mm512_setzero_ps();
    for (int ib = 0; ib < IB; ib++)
        for (int kh = 0; kh < 3; kh++) {
            const int ih = 2 * oh + kh - 1;
            if (ih < 0 || ih >= H) continue;
            const float *x = xi + ((size_t)ib * H + ih) * W * 16 + (ptrdiff_t)(2 * ow0 - 1) * 16;
            const float *wa = w + (((size_t)ob * IB + ib) * 9 + kh * 3) * TAP, *wb = wa + (size_t)IB * 9 * TAP;
#pragma GCC unroll 1
            for (int i = 0; i < 16; i++) {
                const __m512 a0 = _mm512_loadu_ps(wa + i * 16), a1 = _mm512_loadu_ps(wa + TAP + i * 16),
                             a2 = _mm512_loadu_ps(wa + 2 * TAP + i * 16), b0 = _mm512_loadu_ps(wb + i * 16),
                             b1 = _mm512_loadu_ps(wb + TAP + i * 16), b2 = _mm512_loadu_ps(wb + 2 * TAP + i * 16);
#pragma GCC unroll 17
                for (int m = 0; m <= 2 * P; m++) {
                    if (left && m == 0) continue;
                    const __m512 v = _mm512_set1_ps(x[m * 16 + i]);
                    const int j = m / 2;
                    if (m % 2 == 0) {
                        if (j < P) acc0[j] = _mm512_fmadd_ps(v, a0, acc0[j]), acc1[j] = _mm512_fmadd_ps(v, b0, acc1[j]);
                        if (j >= 1)
                            acc0[j - 1] = _mm512_fmadd_ps(v, a2, acc0[j - 1]), acc1[j - 1] = _mm512_fmadd_ps(v, b2, acc1[j - 1]);
                    } else
                        acc0[j] = _mm512_fmadd_ps(v, a1, acc0[j]), acc1[j] = _mm512_fmadd_ps(v, b1, acc1[j]);
                }
            }
        }
    float *y0 = yi + ((size_t)ob * OH + oh) * OW * 16 + (size_t)ow0 * 16, *y1 = y0 + (size_t)OH * OW * 16;
#pragma GCC unroll 8
    for (int j = 0; j < P; j++) _mm512_storeu_ps(y0 + j * 16, acc0[j]), _mm512_storeu_ps(y1 + j * 16, acc1[j]);
}

__attribute__((noinline)) static void fwd_tile_left(const s2_shape *s, const float *xi, const float *w, int ob, int oh,
                                                    float *yi) {
    fwd_tile(s, xi, w, ob, oh, 0, yi, true);
}
__attribute__((noinline)) static void fwd_tile_inner(const s2_shape *s, const float *xi, const float *w, int ob, int oh,
                                                     int ow0, float *yi) {
    fwd_tile(s, xi, w, ob, oh, ow0, yi, false);
}

void s2_forward(const s2_shape *s, const float *x, const float *w, float *y) {
    const int OB = s->oc / 16, OH = s->h / 2, OW = s->w / 2;
    const size_t xplane = (size_t)s->ic * s->h * s->w, yplane = (size_t)s->oc * OH * OW;
    const int rows = s->n * (OB / 2) * OH; /* an image's rows, block pair by block pair */
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) {
        const int n = r / ((OB / 2) * OH), ob = r / OH % (OB / 2) * 2, oh = r % OH;
        fwd_tile_left(s, x + n * xplane, w, ob, oh, y + n * yplane);
        for (int ow0 = FWD_P; ow0 < OW; ow0 += FWD_P) fwd_tile_inner(s, x + n * xplane, w, ob, oh, ow0, y + n * yplane);
    }
}

/* Input-gradient pixels [iw0, iw0 + BWD_P) of row ih in block ib of one image (dyi, dxi: the image's planes).
 * Output pixel iw0/2 + t meets input pixel 2t − 1 + kw of the tile through tap kw. right (a constant where
 * inlined): the tile ends at the map's right edge, so that no output pixel lies past its last one. */
static inline __attribute__((always_inline)) void bwd_tile(const s2_shape *s, const float *dyi, const float *w, int ib,
                                                           int ih, int iw0, bool accum, float *dxi, const bool right) {
    enum { P = BWD_P };
    const int IB = s->ic / 16, OB = s->oc / 16, H = s->h, W = s->w, OH = H / 2, OW = W / 2;
    float *dx = dxi + ((size_t)ib * H + ih) * W * 16 + (size_t)iw0 * 16;
    __m512 acc[P];
#pragma GCC unroll 16
    for (int u = 0; u < P; u++) acc[u] = accum ? _mm512_loadu_ps(dx + u * 16) : _mm512_setzero_ps();
    /* the kernel rows meeting input row ih: kh with 2·oh + kh − 1 = ih */
    int khs[2], ohs[2], nk = 0;
    for (int kh = 0; kh < 3; kh++)
        if ((ih + 1 - kh) % 2 == 0 && (ih + 1 - kh) / 2 >= 0 && (ih + 1 - kh) / 2 < OH)
            khs[nk] = kh, ohs[nk++] = (ih + 1 - kh) / 2;
    for (int ob = 0; ob < OB; ob++)
        for (int k = 0; k < nk; k++) {
            const float *d = dyi + ((size_t)ob * OH + ohs[k]) * OW * 16 + (size_t)(iw0 / 2) * 16;
            const float *wt = w + (((size_t)ob * IB + ib) * 9 + khs[k] * 3) * TAP;
#pragma GCC unroll 1
            for (int o = 0; o < 16; o++) {
                const __m512 c0 = _mm512_loadu_ps(wt + o * 16), c1 = _mm512_loadu_ps(wt + TAP + o * 16),
                             c2 = _mm512_loadu_ps(wt + 2 * TAP + o * 16);
#pragma GCC unroll 9
                for (int t = 0; t <= P / 2; t++) {
                    if (right && t == P / 2) continue;
                    const __m512 v = _mm512_set1_ps(d[t * 16 + o]);
                    if (t >= 1) acc[2 * t - 1] = _mm512_fmadd_ps(v, c0, acc[2 * t - 1]);
                    if (t < P / 2) {
                        acc[2 * t] = _mm512_fmadd_ps(v, c1, acc[2 * t]);
                        acc[2 * t + 1] = _mm512_fmadd_ps(v, c2, acc[2 * t + 1]);
                    }
                }
            }
        }
#pragma GCC unroll 16
    for (int u = 0; u < P; u++) _mm512_storeu_ps(dx + u * 16, acc[u]);
}

__attribute__((noinline)) static void bwd_tile_inner(const s2_shape *s, const float *dyi, const float *w, int ib, int ih,
                                                     int iw0, bool accum, float *dxi) {
    bwd_tile(s, dyi, w, ib, ih, iw0, accum, dxi, false);
}
__attribute__((noinline)) static void bwd_tile_right(const s2_shape *s, const float *dyi, const float *w, int ib, int ih,
                                                     int iw0, bool accum, float *dxi) {
    bwd_tile(s, dyi, w, ib, ih, iw0, accum, dxi, true);
}

/* part[ob][ib][kh·3 + kw][o][i] += Σ over one image's output pixels of x[ib](2·pixel + tap offset)[i] · dy[ob](pixel)[o]
 * for the 8 output channels o of `half` and the three taps of kernel row kh: 24 vectors of sums (over i), each
 * output-gradient value broadcast once for its three taps. */
static void image_row_taps(const s2_shape *s, const float *xi, const float *dyi, int ib, int ob, int kh, int half,
                           const float *next_x, const float *next_dy, float *part) {
    const int IB = s->ic / 16, H = s->h, W = s->w, OH = H / 2, OW = W / 2;
    __m512 acc[3][8];
    for (int kw = 0; kw < 3; kw++)
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) acc[kw][j] = _mm512_setzero_ps();
    for (int oh = 0; oh < OH; oh++) {
        const int ih = 2 * oh + kh - 1;
        if (ih < 0 || ih >= H) continue;
        const float *xr = xi + ((size_t)ib * H + ih) * W * 16, *dr = dyi + ((size_t)ob * OH + oh) * OW * 16 + half * 8;
        if (next_x) /* its block ib's rows 2·oh and 2·oh + 1 */
            for (int k = 0; k < 2 * W; k++)
                _mm_prefetch((const char *)(next_x + ((size_t)ib * H + 2 * oh) * W * 16 + (size_t)k * 16), _MM_HINT_T1);
        if (next_dy) /* its block ob's row oh */
            for (int k = 0; k < OW; k++)
                _mm_prefetch((const char *)(next_dy + ((size_t)ob * OH + oh) * OW * 16 + (size_t)k * 16), _MM_HINT_T1);
        for (int ow = 0; ow < OW; ow++) {
            const __m512 xm = ow > 0 ? _mm512_loadu_ps(xr + (size_t)(2 * ow - 1) * 16) : _mm512_setzero_ps(),
                         x0 = _mm512_loadu_ps(xr + (size_t)(2 * ow) * 16), xp = _mm512_loadu_ps(xr + (size_t)(2 * ow + 1) * 16);
            taps3_by8(acc, xm, x0, xp, dr + (size_t)ow * 16);
        }
    }
    for (int kw = 0; kw < 3; kw++)
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            float *pj = part + ((((size_t)ob * IB + ib) * 9 + kh * 3 + kw) * 16 + half * 8 + j) * 16;
            _mm512_storeu_ps(pj, _mm512_add_ps(_mm512_loadu_ps(pj), acc[kw][j]));
        }
}

void s2_backward(const s2_shape *s, const float *x, const float *dy, const float *w, bool accum, float *dx, float *dw,
                 float *scratch, int threads) {
    const int IB = s->ic / 16, OB = s->oc / 16, H = s->h, W = s->w;
    const size_t xplane = (size_t)s->ic * H * W, yplane = (size_t)s->oc * (H / 2) * (W / 2);
    const size_t wfloats = (size_t)IB * OB * 9 * TAP;
#pragma omp parallel num_threads(threads)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        float *part = scratch + (size_t)t * wfloats;
        memset(part, 0, sizeof(float) * wfloats);
        /* whole images per thread: each image's output gradient, read by its input gradient's rows, and its input
         * stay in the cache through the passes of the weight gradient over them */
        const int n0 = (int)((long)s->n * t / nt), n1 = (int)((long)s->n * (t + 1) / nt);
        for (int n = n0; n < n1; n++) {
            const float *xi = x + n * xplane, *dyi = dy + n * yplane;
            if (dx)
                for (int ib = 0; ib < IB; ib++)
                    for (int ih = 0; ih < H; ih++) {
                        for (int iw0 = 0; iw0 + BWD_P < W; iw0 += BWD_P)
                            bwd_tile_inner(s, dyi, w, ib, ih, iw0, accum, dx + n * xplane);
                        bwd_tile_right(s, dyi, w, ib, ih, W - BWD_P, accum, dx + n * xplane);
                    }
            for (int ob = 0; ob < OB; ob++)
                for (int ib = 0; ib < IB; ib++)
                    for (int kh = 0; kh < 3; kh++)
                        for (int half = 0; half < 2; half++) {
                            /* the next image into L2, once: in the passes that meet every output row */
                            const bool pf = n + 1 < n1 && kh == 1 && half == 0;
                            image_row_taps(s, xi, dyi, ib, ob, kh, half, pf && ob == 0 ? xi + xplane : NULL,
                                           pf && ib == 0 ? dyi + yplane : NULL, part);
                        }
        }
        sum_thread_parts(dw, scratch, wfloats, nt);
    }
}
#else
bool s2_available(void) { return false; }
void s2_forward(const s2_shape *s, const float *x, const float *w, float *y) { (void)s, (void)x, (void)w, (void)y; }
void s2_backward(const s2_shape *s, const float *x, const float *dy, const float *w, bool accum, float *dx, float *dw,
                 float *scratch, int threads) {
    (void)s, (void)x, (void)dy, (void)w, (void)accum, (void)dx, (void)dw, (void)scratch, (void)threads;
}
#endif
