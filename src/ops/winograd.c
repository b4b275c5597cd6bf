/* winograd.c — Winograd F(4×4, 3×3) forward convolution on nChw16c (winograd.h). Vectors of 16 floats
 * (GCC vector extensions: one AVX-512 register each) hold one pixel's 16 channels of a block. */
#include "ops/winograd.h"
#include <string.h>

typedef float v16 __attribute__((vector_size(64)));
typedef int mask16 __attribute__((vector_size(64)));

static inline v16 load16(const float *p) {
    v16 v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void store16(float *p, v16 v) { memcpy(p, &v, sizeof v); }

#define ROWS 12  /* tiles per register block of the products: 12 × 2 vectors of accumulators */
#define POS 36   /* positions of a transformed 6×6 tile */

size_t wino_weights_floats(const wino_shape *s) { return (size_t)POS * s->oc * s->ic; }

size_t wino_scratch_floats(const wino_shape *s) { return (size_t)POS * (s->ic + s->oc) * WINO_TILE_BLOCK; }

/* U[ξ][ob][ib][i][o] (ob, ib: blocks of 16 output and input channels; i, o within them) = (G g Gᵀ)[ξ]
 * for output channel ob·16+o and input channel ib·16+i: for each position, the weights as the products'
 * right-hand side in the blocked weights' own order. */
void wino_weights(const wino_shape *s, const float *w, float *u) {
    static const double G[6][3] = {{1 / 4., 0, 0},          {-1 / 6., -1 / 6., -1 / 6.}, {-1 / 6., 1 / 6., -1 / 6.},
                                   {1 / 24., 1 / 12., 1 / 6.}, {1 / 24., -1 / 12., 1 / 6.}, {0, 0, 1}};
    const int ib_n = s->ic / 16, ob_n = s->oc / 16;
#pragma omp parallel for schedule(static)
    for (int o = 0; o < s->oc; o++)
        for (int c = 0; c < s->ic; c++) {
            const float *g = w + ((size_t)o * s->ic + c) * 9;
            double t[6][3];
            for (int a = 0; a < 6; a++)
                for (int j = 0; j < 3; j++) t[a][j] = G[a][0] * g[j] + G[a][1] * g[3 + j] + G[a][2] * g[6 + j];
            for (int a = 0; a < 6; a++)
                for (int b = 0; b < 6; b++)
                    u[((((size_t)(a * 6 + b) * ob_n + o / 16) * ib_n + c / 16) * 16 + c % 16) * 16 + o % 16] =
                        (float)(t[a][0] * G[b][0] + t[a][1] * G[b][1] + t[a][2] * G[b][2]);
        }
}

/* r = Bᵀ d for one column (or row) of six: Bᵀ's rows [4 0 −5 0 1 0], [0 −4 −4 1 1 0], [0 4 −4 −1 1 0],
 * [0 −2 −1 2 1 0], [0 2 −1 −2 1 0], [0 4 0 −5 0 1] */
static inline void bt6(const v16 d[6], v16 r[6]) {
    const v16 a = d[4] - 4 * d[2], b = d[3] - 4 * d[1], c = d[4] - d[2], e = 2 * (d[3] - d[1]);
    r[0] = 4 * d[0] - 5 * d[2] + d[4];
    r[1] = a + b;
    r[2] = a - b;
    r[3] = c + e;
    r[4] = c - e;
    r[5] = 4 * d[1] - 5 * d[3] + d[5];
}

/* y = Aᵀ m for six: Aᵀ's rows [1 1 1 1 1 0], [0 1 −1 2 −2 0], [0 1 1 4 4 0], [0 1 −1 8 −8 1] */
static inline void at6(const v16 m[6], v16 y[4]) {
    const v16 s1 = m[1] + m[2], d1 = m[1] - m[2], s2 = m[3] + m[4], d2 = m[3] - m[4];
    y[0] = m[0] + s1 + s2;
    y[1] = d1 + 2 * d2;
    y[2] = s1 + 4 * s2;
    y[3] = d1 + 8 * d2 + m[5];
}

/* One input tile's 6×6 patch of one channel block (zeros outside the map) transformed into
 * v[ξ·vstride] (ξ = 0..35). */
static void input_tile(const float *x, int h, int w, int y0, int x0, float *v, size_t vstride) {
    v16 d[6][6], e[6][6], col[6], r[6];
    const bool inside = y0 >= 0 && x0 >= 0 && y0 + 6 <= h && x0 + 6 <= w;
#pragma GCC unroll 6
    for (int a = 0; a < 6; a++)
#pragma GCC unroll 6
        for (int b = 0; b < 6; b++) {
            const int yy = y0 + a, xx = x0 + b;
            d[a][b] = inside || (yy >= 0 && yy < h && xx >= 0 && xx < w) ? load16(x + ((size_t)yy * w + xx) * 16)
                                                                          : (v16){0};
        }
#pragma GCC unroll 6
    for (int b = 0; b < 6; b++) {
#pragma GCC unroll 6
        for (int a = 0; a < 6; a++) col[a] = d[a][b];
        bt6(col, r);
#pragma GCC unroll 6
        for (int a = 0; a < 6; a++) e[a][b] = r[a];
    }
#pragma GCC unroll 6
    for (int a = 0; a < 6; a++) {
        bt6(e[a], r);
#pragma GCC unroll 6
        for (int b = 0; b < 6; b++) store16(v + (size_t)(a * 6 + b) * vstride, r[b]);
    }
}

/* One output tile of one channel block from its products m[ξ·mstride]: + bias, + what y held, ReLU (post),
 * the part inside the map. */
static void output_tile(const float *m, size_t mstride, v16 bias, unsigned post, float *y, int h, int w, int y0,
                        int x0) {
    v16 t[6][6], e[4][6], col[6], r[4];
#pragma GCC unroll 6
    for (int a = 0; a < 6; a++)
#pragma GCC unroll 6
        for (int b = 0; b < 6; b++) t[a][b] = load16(m + (size_t)(a * 6 + b) * mstride);
#pragma GCC unroll 6
    for (int b = 0; b < 6; b++) {
#pragma GCC unroll 6
        for (int a = 0; a < 6; a++) col[a] = t[a][b];
        at6(col, r);
#pragma GCC unroll 4
        for (int a = 0; a < 4; a++) e[a][b] = r[a];
    }
    const int ha = h - y0 < 4 ? h - y0 : 4, wb = w - x0 < 4 ? w - x0 : 4; /* the part inside the map */
#pragma GCC unroll 4
    for (int a = 0; a < 4; a++) {
        at6(e[a], r);
#pragma GCC unroll 4
        for (int b = 0; b < 4; b++) {
            if (a >= ha || b >= wb) continue;
            float *at = y + ((size_t)(y0 + a) * w + x0 + b) * 16;
            v16 o = r[b] + bias;
            if (post & WINO_ADD) o += load16(at);
            if (post & WINO_RELU) o = (v16)((mask16)o & ((o > 0) | (o != o))); /* max(o, 0), NaN kept as PyTorch does */
            store16(at, o);
        }
    }
}

/* m[r][o] = Σ_k v[r][k] u[k][o] for `rows` tiles (≤ ROWS) and two blocks of 16 output channels: v holds
 * the tiles' transformed inputs by input block (vstride floats apart: [ib][tile][16]), u the two output
 * blocks' weights (ustride apart: [ib][i][16]), m the products (mstride apart: [tile][16]). The rows
 * argument is a literal in every call, so that the accumulators live in registers. */
static inline __attribute__((always_inline)) void product_rows(int rows, const float *v, size_t vstride,
                                                               const float *u, size_t ustride, int ib_n, float *m,
                                                               size_t mstride) {
    v16 acc[ROWS][2];
#pragma GCC unroll 12
    for (int r = 0; r < rows; r++) acc[r][0] = acc[r][1] = (v16){0};
    for (int ib = 0; ib < ib_n; ib++) {
        const float *vb = v + (size_t)ib * vstride, *ub = u + (size_t)ib * 256;
#pragma GCC unroll 2
        for (int i = 0; i < 16; i++) {
            const v16 w0 = load16(ub + i * 16), w1 = load16(ub + ustride + i * 16);
#pragma GCC unroll 12
            for (int r = 0; r < rows; r++) {
                const float a = vb[r * 16 + i];
                acc[r][0] += a * w0;
                acc[r][1] += a * w1;
            }
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < rows; r++) {
        store16(m + r * 16, acc[r][0]);
        store16(m + mstride + r * 16, acc[r][1]);
    }
}

static void products(int rows, const float *v, size_t vstride, const float *u, size_t ustride, int ib_n, float *m,
                     size_t mstride) {
    switch (rows) {
#define ROWS_CASE(k) case k: product_rows(k, v, vstride, u, ustride, ib_n, m, mstride); break;
        ROWS_CASE(1) ROWS_CASE(2) ROWS_CASE(3) ROWS_CASE(4) ROWS_CASE(5) ROWS_CASE(6)
        ROWS_CASE(7) ROWS_CASE(8) ROWS_CASE(9) ROWS_CASE(10) ROWS_CASE(11) ROWS_CASE(12)
#undef ROWS_CASE
    }
}

void wino_forward(const wino_shape *s, const float *x, const float *u, const float *bias, unsigned post, float *y,
                  float *scratch) {
    const int ib_n = s->ic / 16, ob_n = s->oc / 16, th = (s->h + 3) / 4, tw = (s->w + 3) / 4;
    const int tiles = s->n * th * tw, blocks = (tiles + WINO_TILE_BLOCK - 1) / WINO_TILE_BLOCK;
    const size_t map = (size_t)s->h * s->w * 16, ustride = (size_t)ib_n * 256;
    /* a block's transformed inputs V[ξ][ib][tile][16] and products M[ξ][ob][tile][16] */
    float *V = scratch, *M = scratch + (size_t)POS * s->ic * WINO_TILE_BLOCK;
    const size_t tstride = (size_t)WINO_TILE_BLOCK * 16; /* between channel blocks */
#pragma omp parallel
    for (int blk = 0; blk < blocks; blk++) {
        const int t0 = blk * WINO_TILE_BLOCK, nt = tiles - t0 < WINO_TILE_BLOCK ? tiles - t0 : WINO_TILE_BLOCK;
#pragma omp for schedule(static)
        for (int q = 0; q < nt * ib_n; q++) {
            const int t = q / ib_n, ib = q % ib_n, tile = t0 + t, n = tile / (th * tw), ty = tile / tw % th;
            input_tile(x + ((size_t)n * ib_n + ib) * map, s->h, s->w, ty * 4 - 1, tile % tw * 4 - 1,
                       V + ((size_t)ib * WINO_TILE_BLOCK + t) * 16, (size_t)ib_n * tstride);
        }
        const int row_blocks = (nt + ROWS - 1) / ROWS, pairs = ob_n / 2;
#pragma omp for schedule(static)
        for (int q = 0; q < POS * pairs * row_blocks; q++) {
            const int xi = q / (pairs * row_blocks), ob = q / row_blocks % pairs * 2, r0 = q % row_blocks * ROWS;
            const int rows = nt - r0 < ROWS ? nt - r0 : ROWS;
            products(rows, V + (size_t)xi * ib_n * tstride + r0 * 16, tstride, u + ((size_t)xi * ob_n + ob) * ustride,
                     ustride, ib_n, M + ((size_t)xi * ob_n + ob) * tstride + r0 * 16, tstride);
        }
#pragma omp for schedule(static)
        for (int q = 0; q < nt * ob_n; q++) {
            const int t = q / ob_n, ob = q % ob_n, tile = t0 + t, n = tile / (th * tw), ty = tile / tw % th;
            const v16 b = bias ? load16(bias + ob * 16) : (v16){0};
            output_tile(M + ((size_t)ob * WINO_TILE_BLOCK + t) * 16, (size_t)ob_n * tstride, b, post,
                        y + ((size_t)n * ob_n + ob) * map, s->h, s->w, ty * 4, tile % tw * 4);
        }
    }
}
