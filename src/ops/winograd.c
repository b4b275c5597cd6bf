/* winograd.c — Winograd F(m×m, 3×3) forward convolution on nChw16c, stride 1 (m = 4, 5, 6) and 2 (m = 2, 4)
 * (winograd.h). Vectors
 * of 16 floats (GCC vector extensions: one AVX-512 register each) hold one pixel's 16 channels of a block. */
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

#define ROWS 12 /* tiles per register block of the products: 12 × 2 vectors of accumulators */
#define NMAX 9  /* positions of the largest transform, per side (stride 2, m = 4) */

/* The transforms for the interpolation points 0, 1, −1, 2, −2, 1/2, −1/2 (the first m + 1 of them, stride 1;
 * the first m, stride 2) and ∞, as scripts/winograd_matrices.py derives them (Toom-Cook, exact fractions;
 * wincnn's convention: G holds the Lagrange denominators, Aᵀ is the Vandermonde matrix of the points). m = 4
 * gives Lavin and Gray's matrices. Stride 2 splits the input by parity: the even samples meet the taps
 * g0, g2 through Toom-Cook F(m, 2), the odd ones g1 alone (the last m positions: the identity). Input tiles
 * d (n × n: n = m + 2, stride 2: 2m + 1) become Bᵀ d B, products M become outputs Aᵀ M A. */
static const float BT4[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                                {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
static const float AT4[4][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
static const float BT5[7][7] = {{-2, 4, 2.5f, -5, -0.5f, 1, 0}, {0, 2, -2, -4.5f, 0.5f, 1, 0},
                                {0, -2, 6, -3.5f, -1.5f, 1, 0}, {0, 1, -1.5f, -2, 1.5f, 1, 0},
                                {0, -1, 2.5f, 0, -2.5f, 1, 0},  {0, 4, 0, -5, 0, 1, 0},
                                {0, -2, 4, 2.5f, -5, -0.5f, 1}};
static const float AT5[5][7] = {{1, 1, 1, 1, 1, 1, 0},           {0, 1, -1, 2, -2, 0.5f, 0},
                                {0, 1, 1, 4, 4, 0.25f, 0},       {0, 1, -1, 8, -8, 0.125f, 0},
                                {0, 1, 1, 16, 16, 0.0625f, 1}};
static const float BT6[8][8] = {{-1, 0, 5.25f, 0, -5.25f, 0, 1, 0},          {0, 1, 1, -4.25f, -4.25f, 1, 1, 0},
                                {0, -1, 1, 4.25f, -4.25f, -1, 1, 0},         {0, 0.5f, 0.25f, -2.5f, -1.25f, 2, 1, 0},
                                {0, -0.5f, 0.25f, 2.5f, -1.25f, -2, 1, 0},   {0, 2, 4, -2.5f, -5, 0.5f, 1, 0},
                                {0, -2, 4, 2.5f, -5, -0.5f, 1, 0},           {0, -1, 0, 5.25f, 0, -5.25f, 0, 1}};
static const float AT6[6][8] = {{1, 1, 1, 1, 1, 1, 1, 0},
                                {0, 1, -1, 2, -2, 0.5f, -0.5f, 0},
                                {0, 1, 1, 4, 4, 0.25f, 0.25f, 0},
                                {0, 1, -1, 8, -8, 0.125f, -0.125f, 0},
                                {0, 1, 1, 16, 16, 0.0625f, 0.0625f, 0},
                                {0, 1, -1, 32, -32, 0.03125f, -0.03125f, 1}};
static const float BT2_S2[5][5] = {{-1, 0, 1, 0, 0}, {0, 0, 1, 0, 0}, {0, 0, -1, 0, 1}, {0, 1, 0, 0, 0}, {0, 0, 0, 1, 0}};
static const float AT2_S2[2][5] = {{1, 1, 0, 1, 0}, {0, 1, 1, 0, 1}};
static const float BT4_S2[9][9] = {{2, 0, -1, 0, -2, 0, 1, 0, 0}, {0, 0, -2, 0, -1, 0, 1, 0, 0},
                                   {0, 0, 2, 0, -3, 0, 1, 0, 0},  {0, 0, -1, 0, 0, 0, 1, 0, 0},
                                   {0, 0, 2, 0, -1, 0, -2, 0, 1}, {0, 1, 0, 0, 0, 0, 0, 0, 0},
                                   {0, 0, 0, 1, 0, 0, 0, 0, 0},   {0, 0, 0, 0, 0, 1, 0, 0, 0},
                                   {0, 0, 0, 0, 0, 0, 0, 1, 0}};
static const float AT4_S2[4][9] = {{1, 1, 1, 1, 0, 1, 0, 0, 0}, {0, 1, -1, 2, 0, 0, 1, 0, 0},
                                   {0, 1, 1, 4, 0, 0, 0, 1, 0}, {0, 1, -1, 8, 1, 0, 0, 0, 1}};
static const double POINTS[] = {0, 1, -1, 2, -2, 0.5, -0.5};

/* positions per side of a tile of m outputs */
static int points(int m, int stride) { return stride == 1 ? m + 2 : 2 * m + 1; }

void wino_output(const wino_shape *s, int *oh, int *ow) {
    *oh = (s->h - 1) / s->stride + 1;
    *ow = (s->w - 1) / s->stride + 1;
}

size_t wino_weights_floats(const wino_shape *s) {
    const int n = points(s->m, s->stride);
    return (size_t)n * n * s->oc * s->ic;
}

size_t wino_scratch_floats(const wino_shape *s) {
    const int n = points(s->m, s->stride);
    return (size_t)n * n * (s->ic + s->oc) * WINO_TILE_BLOCK;
}

/* U[ξ][ob][ib][i][o] (ob, ib: blocks of 16 output and input channels; i, o within them) = (G g Gᵀ)[ξ]
 * for output channel ob·16+o and input channel ib·16+i: for each position, the weights as the products'
 * right-hand side in the blocked weights' own order. G's row for a finite point p is (1, p, p²) / Π_{q≠p}(p − q)
 * over the other finite points, (0, 0, 1) for ∞; at stride 2 the Toom-Cook rows hold (1, 0, p) / Π and
 * (0, 0, 1), the odd samples' rows (0, 1, 0). */
void wino_weights(const wino_shape *s, const float *w, float *u) {
    const int n = points(s->m, s->stride), finite = s->stride == 1 ? s->m + 1 : s->m;
    const int ib_n = s->ic / 16, ob_n = s->oc / 16;
    double G[NMAX][3] = {{0}};
    for (int j = 0; j < finite; j++) {
        double f = 1;
        for (int l = 0; l < finite; l++)
            if (l != j) f *= POINTS[j] - POINTS[l];
        if (s->stride == 1)
            G[j][0] = 1 / f, G[j][1] = POINTS[j] / f, G[j][2] = POINTS[j] * POINTS[j] / f;
        else
            G[j][0] = 1 / f, G[j][2] = POINTS[j] / f;
    }
    G[finite][2] = 1;
    for (int j = finite + 1; j < n; j++) G[j][1] = 1;
#pragma omp parallel for schedule(static)
    for (int o = 0; o < s->oc; o++)
        for (int c = 0; c < s->ic; c++) {
            const float *g = w + ((size_t)o * s->ic + c) * 9;
            double t[NMAX][3];
            for (int a = 0; a < n; a++)
                for (int j = 0; j < 3; j++) t[a][j] = G[a][0] * g[j] + G[a][1] * g[3 + j] + G[a][2] * g[6 + j];
            for (int a = 0; a < n; a++)
                for (int b = 0; b < n; b++)
                    u[((((size_t)(a * n + b) * ob_n + o / 16) * ib_n + c / 16) * 16 + c % 16) * 16 + o % 16] =
                        (float)(t[a][0] * G[b][0] + t[a][1] * G[b][1] + t[a][2] * G[b][2]);
        }
}

/* The transforms below are written once for any table: every call is inlined and unrolled with one of the
 * tables above, so that the tests on its entries are decided at compile time: zeros cost nothing, ±1 an
 * addition. (Sharing the partial sums of the rows for p and −p, as hand-written transforms do, measured
 * no faster.) */

/* term c·d with c known at compile time */
static inline __attribute__((always_inline)) v16 times(float c, v16 d) { return c == 1 ? d : c == -1 ? -d : c * d; }

/* Σ_j T[i][j] d[j] */
static inline __attribute__((always_inline)) v16 row_sum(int cols, const float *T, int i, const v16 *d) {
    v16 acc = {0};
    bool any = false;
#pragma GCC unroll 9
    for (int j = 0; j < cols; j++) {
        const float c = T[i * cols + j];
        if (c == 0) continue;
        acc = any ? acc + times(c, d[j]) : times(c, d[j]);
        any = true;
    }
    return acc;
}

/* r = T d for a rows × cols table T */
static inline __attribute__((always_inline)) void apply(int rows, int cols, const float *T, const v16 *d, v16 *r) {
#pragma GCC unroll 9
    for (int i = 0; i < rows; i++) r[i] = row_sum(cols, T, i, d);
}

/* r = T d Tᵀ for a rows × cols table T and a cols × cols tile d */
static inline __attribute__((always_inline)) void transform(int rows, int cols, const float *T,
                                                            v16 d[NMAX][NMAX], v16 r[NMAX][NMAX]) {
    v16 e[NMAX][NMAX], col[NMAX], t[NMAX];
#pragma GCC unroll 9
    for (int b = 0; b < cols; b++) { /* e = T d, column by column */
#pragma GCC unroll 9
        for (int a = 0; a < cols; a++) col[a] = d[a][b];
        apply(rows, cols, T, col, t);
#pragma GCC unroll 9
        for (int a = 0; a < rows; a++) e[a][b] = t[a];
    }
#pragma GCC unroll 9
    for (int a = 0; a < rows; a++) apply(rows, cols, T, e[a], r[a]); /* r = e Tᵀ, row by row */
}

/* One input tile's n×n patch of one channel block (zeros outside the map) transformed into
 * v[ξ·vstride] (ξ = 0..n²−1). */
static inline __attribute__((always_inline)) void input_tile(int m, int stride, const float *BT, const float *x, int h,
                                                             int w, int y0, int x0, float *v, size_t vstride) {
    const int n = points(m, stride);
    v16 d[NMAX][NMAX], r[NMAX][NMAX];
    const bool inside = y0 >= 0 && x0 >= 0 && y0 + n <= h && x0 + n <= w;
#pragma GCC unroll 9
    for (int a = 0; a < n; a++)
#pragma GCC unroll 9
        for (int b = 0; b < n; b++) {
            const int yy = y0 + a, xx = x0 + b;
            d[a][b] = inside || (yy >= 0 && yy < h && xx >= 0 && xx < w) ? load16(x + ((size_t)yy * w + xx) * 16)
                                                                          : (v16){0};
        }
    transform(n, n, BT, d, r);
#pragma GCC unroll 9
    for (int a = 0; a < n; a++)
#pragma GCC unroll 9
        for (int b = 0; b < n; b++) store16(v + (size_t)(a * n + b) * vstride, r[a][b]);
}

/* One output tile of one channel block from its products p[ξ·pstride]: + bias, + what y held, ReLU (post),
 * the part inside the (output) map h × w. */
static inline __attribute__((always_inline)) void output_tile(int m, int stride, const float *AT, const float *p,
                                                              size_t pstride, v16 bias, unsigned post, float *y, int h,
                                                              int w, int y0, int x0) {
    const int n = points(m, stride);
    v16 t[NMAX][NMAX], r[NMAX][NMAX];
#pragma GCC unroll 9
    for (int a = 0; a < n; a++)
#pragma GCC unroll 9
        for (int b = 0; b < n; b++) t[a][b] = load16(p + (size_t)(a * n + b) * pstride);
    transform(m, n, AT, t, r);
    const int ha = h - y0 < m ? h - y0 : m, wb = w - x0 < m ? w - x0 : m; /* the part inside the map */
#pragma GCC unroll 9
    for (int a = 0; a < m; a++)
#pragma GCC unroll 9
        for (int b = 0; b < m; b++) {
            if (a >= ha || b >= wb) continue;
            float *at = y + ((size_t)(y0 + a) * w + x0 + b) * 16;
            v16 o = r[a][b] + bias;
            if (post & WINO_ADD) o += load16(at);
            if (post & WINO_RELU) o = (v16)((mask16)o & ((o > 0) | (o != o))); /* max(o, 0), NaN kept as PyTorch does */
            store16(at, o);
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

typedef void input_fn(const float *x, int h, int w, int y0, int x0, float *v, size_t vstride);
typedef void output_fn(const float *p, size_t pstride, v16 bias, unsigned post, float *y, int h, int w, int y0, int x0);

/* The convolution for one tile size m and stride, run by every thread of wino_forward's team, with that
 * size's tile transforms */
static inline __attribute__((always_inline)) void blocks_m(int m, int stride, input_fn *input, output_fn *output,
                                                           const wino_shape *s, const float *x, const float *u,
                                                           const float *bias, unsigned post, float *y,
                                                           float *scratch) {
    const int n = points(m, stride), pos = n * n;
    int oh, ow;
    wino_output(s, &oh, &ow);
    const int ib_n = s->ic / 16, ob_n = s->oc / 16, th = (oh + m - 1) / m, tw = (ow + m - 1) / m;
    const int tiles = s->n * th * tw, blocks = (tiles + WINO_TILE_BLOCK - 1) / WINO_TILE_BLOCK;
    const size_t map = (size_t)s->h * s->w * 16, omap = (size_t)oh * ow * 16, ustride = (size_t)ib_n * 256;
    /* a block's transformed inputs V[ξ][ib][tile][16] and products M[ξ][ob][tile][16] */
    float *V = scratch, *M = scratch + (size_t)pos * s->ic * WINO_TILE_BLOCK;
    const size_t tstride = (size_t)WINO_TILE_BLOCK * 16; /* between channel blocks */
    for (int blk = 0; blk < blocks; blk++) {
        const int t0 = blk * WINO_TILE_BLOCK, nt = tiles - t0 < WINO_TILE_BLOCK ? tiles - t0 : WINO_TILE_BLOCK;
#pragma omp for schedule(static)
        for (int q = 0; q < nt * ib_n; q++) {
            const int t = q / ib_n, ib = q % ib_n, tile = t0 + t, img = tile / (th * tw), ty = tile / tw % th;
            input(x + ((size_t)img * ib_n + ib) * map, s->h, s->w, ty * m * stride - 1, tile % tw * m * stride - 1,
                       V + ((size_t)ib * WINO_TILE_BLOCK + t) * 16, (size_t)ib_n * tstride);
        }
        const int row_blocks = (nt + ROWS - 1) / ROWS, pairs = ob_n / 2;
#pragma omp for schedule(static)
        for (int q = 0; q < pos * pairs * row_blocks; q++) {
            const int xi = q / (pairs * row_blocks), ob = q / row_blocks % pairs * 2, r0 = q % row_blocks * ROWS;
            const int rows = nt - r0 < ROWS ? nt - r0 : ROWS;
            products(rows, V + (size_t)xi * ib_n * tstride + r0 * 16, tstride, u + ((size_t)xi * ob_n + ob) * ustride,
                     ustride, ib_n, M + ((size_t)xi * ob_n + ob) * tstride + r0 * 16, tstride);
        }
#pragma omp for schedule(static)
        for (int q = 0; q < nt * ob_n; q++) {
            const int t = q / ob_n, ob = q % ob_n, tile = t0 + t, img = tile / (th * tw), ty = tile / tw % th;
            const v16 b = bias ? load16(bias + ob * 16) : (v16){0};
            output(M + ((size_t)ob * WINO_TILE_BLOCK + t) * 16, (size_t)ob_n * tstride, b, post,
                        y + ((size_t)img * ob_n + ob) * omap, oh, ow, ty * m, tile % tw * m);
        }
    }
}

/* Each tile size's functions: its transforms with the tables as constants (as functions of their own:
 * inlined into blocks_m's loops they ran slower), and its convolution. */
#define TILE_SIZE(name, m, stride)                                                                                     \
    static __attribute__((noinline)) void input_tile##name(const float *x, int h, int w, int y0, int x0, float *v,   \
                                                            size_t vstride) {                                          \
        input_tile(m, stride, &BT##name[0][0], x, h, w, y0, x0, v, vstride);                                           \
    }                                                                                                                  \
    static __attribute__((noinline)) void output_tile##name(const float *p, size_t pstride, v16 bias, unsigned post, \
                                                             float *y, int h, int w, int y0, int x0) {                 \
        output_tile(m, stride, &AT##name[0][0], p, pstride, bias, post, y, h, w, y0, x0);                              \
    }                                                                                                                  \
    static void blocks##name(const wino_shape *s, const float *x, const float *u, const float *bias, unsigned post, \
                             float *y, float *scratch) {                                                               \
        blocks_m(m, stride, input_tile##name, output_tile##name, s, x, u, bias, post, y, scratch);                     \
    }
TILE_SIZE(4, 4, 1)
TILE_SIZE(5, 5, 1)
TILE_SIZE(6, 6, 1)
TILE_SIZE(2_S2, 2, 2)
TILE_SIZE(4_S2, 4, 2)
#undef TILE_SIZE

/* the kernels there are, the tile sizes of each stride in wino_tile's order of preference on a tie */
typedef void blocks_fn(const wino_shape *s, const float *x, const float *u, const float *bias, unsigned post,
                       float *y, float *scratch);
static const struct {
    int m, stride;
    blocks_fn *run;
} KERNELS[] = {{4, 1, blocks4}, {5, 1, blocks5}, {6, 1, blocks6}, {2, 2, blocks2_S2}, {4, 2, blocks4_S2}};
#define NKERNELS (int)(sizeof KERNELS / sizeof KERNELS[0])

int wino_tile(int oh, int ow, int stride) {
    int best = 0;
    long cost = -1;
    for (int k = 0; k < NKERNELS; k++) {
        if (KERNELS[k].stride != stride) continue;
        const int m = KERNELS[k].m, n = points(m, stride);
        const long c = (long)n * n * ((oh + m - 1) / m) * ((ow + m - 1) / m);
        if (cost < 0 || c < cost) best = m, cost = c;
    }
    return best;
}

void wino_forward(const wino_shape *s, const float *x, const float *u, const float *bias, unsigned post, float *y,
                  float *scratch) {
    blocks_fn *run = NULL;
    for (int k = 0; k < NKERNELS; k++)
        if (KERNELS[k].m == s->m && KERNELS[k].stride == s->stride) run = KERNELS[k].run;
#pragma omp parallel
    run(s, x, u, bias, post, y, scratch);
}
