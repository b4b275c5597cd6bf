/* depthwise.c — cnn.c's own depthwise convolution forward for evaluation plans with a SiLU after it
 * (depthwise.h): AVX-512 intrinsics, runs of 8 output pixels of one row and channel block. */
#include "ops/depthwise.h"
#include "ops/silu.h"
#include "ops/stream.h"
#include <omp.h>
#include <string.h>

#define DW_RUN 8 /* output pixels of a run */

size_t dw_weights_floats(const dw_shape *s) { return (size_t)((s->c + 15) / 16) * s->k * s->k * 16; }

void dw_weights(const dw_shape *s, const float *w, float *wt) {
    const int taps = s->k * s->k;
    memset(wt, 0, sizeof(float) * dw_weights_floats(s));
    for (int c = 0; c < s->c; c++)
        for (int t = 0; t < taps; t++) wt[((size_t)(c / 16) * taps + t) * 16 + c % 16] = w[(size_t)c * taps + t];
}

#ifdef __AVX512F__
bool dw_available(void) { return true; }

static inline void put(float *o, __m512 v, unsigned act, bool stream) {
    if (act == DW_SILU) v = silu_v16(v);
    if (stream) _mm512_stream_ps(o, v);
    else _mm512_storeu_ps(o, v);
}

/* DW_RUN outputs of row oy from ox0 whose windows lie inside the input's columns (of which the first np
 * are written): xb, wb, y the channel block's input plane, weights and output row. k and stride are
 * constants where inlined. */
static inline __attribute__((always_inline)) void run_inside(const dw_shape *s, const float *xb, const float *wb,
                                                             __m512 bias, unsigned act, bool stream, float *y, int oy,
                                                             int ox0, int np, const int k, const int stride) {
    __m512 acc[DW_RUN];
#pragma GCC unroll 8
    for (int j = 0; j < DW_RUN; j++) acc[j] = bias;
    for (int ky = 0; ky < k; ky++) {
        const int iy = oy * stride + ky - s->pad;
        if (iy < 0 || iy >= s->h) continue;
        const float *xr = xb + ((size_t)iy * s->w + (size_t)(ox0 * stride - s->pad)) * 16;
#pragma GCC unroll 5
        for (int kx = 0; kx < k; kx++) {
            const __m512 wv = _mm512_loadu_ps(wb + (ky * k + kx) * 16);
#pragma GCC unroll 8
            for (int j = 0; j < DW_RUN; j++)
                acc[j] = _mm512_fmadd_ps(_mm512_loadu_ps(xr + (size_t)(j * stride + kx) * 16), wv, acc[j]);
        }
    }
#pragma GCC unroll 8
    for (int j = 0; j < DW_RUN; j++)
        if (j < np) put(y + (size_t)(ox0 + j) * 16, acc[j], act, stream);
}

/* np ≤ DW_RUN outputs of row oy from ox0 where some windows reach into the padding, whose taps read
 * zeros (the map's edges, and small maps). k and stride are constants where inlined. */
static inline __attribute__((always_inline)) void run_edge(const dw_shape *s, const float *xb, const float *wb,
                                                           __m512 bias, unsigned act, bool stream, float *y, int oy,
                                                           int ox0, int np, const int k, const int stride) {
    __m512 acc[DW_RUN];
    __mmask16 m[5][DW_RUN]; /* per column tap and pixel: all lanes, or none where the tap is padding */
#pragma GCC unroll 8
    for (int j = 0; j < DW_RUN; j++) {
        acc[j] = bias;
        for (int kx = 0; kx < k; kx++) {
            const int ix = (ox0 + j) * stride + kx - s->pad;
            m[kx][j] = j < np && ix >= 0 && ix < s->w ? (__mmask16)0xFFFF : 0;
        }
    }
    for (int ky = 0; ky < k; ky++) {
        const int iy = oy * stride + ky - s->pad;
        if (iy < 0 || iy >= s->h) continue;
        const float *xr = xb + ((ptrdiff_t)iy * s->w + ox0 * stride - s->pad) * 16;
#pragma GCC unroll 5
        for (int kx = 0; kx < k; kx++) {
            const __m512 wv = _mm512_loadu_ps(wb + (ky * k + kx) * 16);
#pragma GCC unroll 8
            for (int j = 0; j < DW_RUN; j++) /* masked loads: no fault, zeros, where the tap is padding */
                acc[j] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m[kx][j], xr + (ptrdiff_t)(j * stride + kx) * 16), wv,
                                         acc[j]);
        }
    }
    for (int j = 0; j < np; j++) put(y + (size_t)(ox0 + j) * 16, acc[j], act, stream);
}

static void row(const dw_shape *s, const float *xb, const float *wb, __m512 bias, unsigned act, bool stream, float *y,
                int oy) {
    const int k = s->k, st = s->stride;
    for (int ox = 0; ox < s->ow; ox += DW_RUN) {
        const int np = s->ow - ox < DW_RUN ? s->ow - ox : DW_RUN;
        const bool inside = np == DW_RUN && ox * st - s->pad >= 0 && (ox + DW_RUN - 1) * st + k - 1 - s->pad < s->w;
        if (k == 3 && st == 1) {
            if (inside) run_inside(s, xb, wb, bias, act, stream, y, oy, ox, DW_RUN, 3, 1);
            else run_edge(s, xb, wb, bias, act, stream, y, oy, ox, np, 3, 1);
        } else if (k == 3) {
            if (inside) run_inside(s, xb, wb, bias, act, stream, y, oy, ox, DW_RUN, 3, 2);
            else run_edge(s, xb, wb, bias, act, stream, y, oy, ox, np, 3, 2);
        } else if (st == 1) {
            if (inside) run_inside(s, xb, wb, bias, act, stream, y, oy, ox, DW_RUN, 5, 1);
            else run_edge(s, xb, wb, bias, act, stream, y, oy, ox, np, 5, 1);
        } else {
            if (inside) run_inside(s, xb, wb, bias, act, stream, y, oy, ox, DW_RUN, 5, 2);
            else run_edge(s, xb, wb, bias, act, stream, y, oy, ox, np, 5, 2);
        }
    }
}

/* Output maps at most DW_PLANE_MAX wide (edges are most of them) go a plane at a time: the channel block's
 * input is copied into `padded`, zeros around it, wide enough for whole runs, and every run reads inside. */
#define DW_PLANE_MAX 32

static int padded_width(const dw_shape *s) {
    const int runs_w = ((s->ow + DW_RUN - 1) / DW_RUN * DW_RUN - 1) * s->stride + s->k;
    return runs_w > s->w + 2 * s->pad ? runs_w : s->w + 2 * s->pad;
}

/* a thread's padded copy, in whole cache lines */
static size_t padded_floats(const dw_shape *s) { return (size_t)(s->h + 2 * s->pad) * padded_width(s) * 16; }

static void plane(const dw_shape *s, const float *xb, const float *wb, __m512 bias, unsigned act, bool stream,
                  float *yb, float *padded) {
    dw_shape q = *s;
    q.w = padded_width(s);
    q.h = s->h + 2 * s->pad;
    q.pad = 0;
    memset(padded, 0, sizeof(float) * q.h * q.w * 16);
    for (int iy = 0; iy < s->h; iy++)
        memcpy(padded + ((size_t)(iy + s->pad) * q.w + s->pad) * 16, xb + (size_t)iy * s->w * 16, sizeof(float) * s->w * 16);
    for (int oy = 0; oy < s->oh; oy++) {
        float *y = yb + (size_t)oy * s->ow * 16;
        for (int ox = 0; ox < s->ow; ox += DW_RUN) {
            const int np = s->ow - ox < DW_RUN ? s->ow - ox : DW_RUN;
            if (s->k == 3 && s->stride == 1) run_inside(&q, padded, wb, bias, act, stream, y, oy, ox, np, 3, 1);
            else if (s->k == 3) run_inside(&q, padded, wb, bias, act, stream, y, oy, ox, np, 3, 2);
            else if (s->stride == 1) run_inside(&q, padded, wb, bias, act, stream, y, oy, ox, np, 5, 1);
            else run_inside(&q, padded, wb, bias, act, stream, y, oy, ox, np, 5, 2);
        }
    }
}

static __m512 bias_of(const dw_shape *s, const float *bias, int b) {
    const int left = s->c - b * 16;
    const __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
    return bias ? _mm512_maskz_loadu_ps(m, bias + b * 16) : _mm512_setzero_ps();
}

size_t dw_scratch_floats(const dw_shape *s, int threads) {
    return s->ow <= DW_PLANE_MAX ? (size_t)threads * padded_floats(s) : 0;
}

void dw_forward(const dw_shape *s, const float *x, const float *wt, const float *bias, unsigned act, float *y,
                float *scratch, int threads) {
    const int blocks = (s->c + 15) / 16, taps = s->k * s->k;
    const size_t in_plane = (size_t)s->h * s->w * 16, out_plane = (size_t)s->oh * s->ow * 16;
    const bool stream = stream_fits(y, (size_t)s->n * blocks * out_plane);
    const size_t planes = (size_t)s->n * blocks; /* image · blocks + block */
    if (s->ow <= DW_PLANE_MAX) {
#pragma omp parallel
        {
            const int t = omp_get_thread_num();
            float *padded = scratch && t < threads ? scratch + (size_t)t * padded_floats(s) : NULL;
#pragma omp for schedule(static)
            for (size_t i = 0; i < planes; i++) {
                const int b = (int)(i % blocks);
                if (padded)
                    plane(s, x + i * in_plane, wt + (size_t)b * taps * 16, bias_of(s, bias, b), act, stream,
                          y + i * out_plane, padded);
                else /* more threads than the scratch has copies for: the same arithmetic, row by row */
                    for (int oy = 0; oy < s->oh; oy++)
                        row(s, x + i * in_plane, wt + (size_t)b * taps * 16, bias_of(s, bias, b), act, stream,
                            y + i * out_plane + (size_t)oy * s->ow * 16, oy);
            }
            if (stream) _mm_sfence();
        }
        return;
    }
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (size_t r = 0; r < planes * s->oh; r++) {
            const size_t i = r / s->oh;
            const int oy = (int)(r % s->oh), b = (int)(i % blocks);
            row(s, x + i * in_plane, wt + (size_t)b * taps * 16, bias_of(s, bias, b), act, stream,
                y + i * out_plane + (size_t)oy * s->ow * 16, oy);
        }
        if (stream) _mm_sfence();
    }
}
#else
bool dw_available(void) { return false; }
size_t dw_scratch_floats(const dw_shape *s, int threads) {
    (void)s, (void)threads;
    return 0;
}
void dw_forward(const dw_shape *s, const float *x, const float *wt, const float *bias, unsigned act, float *y,
                float *scratch, int threads) {
    (void)s, (void)x, (void)wt, (void)bias, (void)act, (void)y, (void)scratch, (void)threads;
}
#endif
