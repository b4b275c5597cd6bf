/* test_winograd.c — cnn.c's own Winograd F(m×m, 3×3) forward (src/ops/winograd.c), m = 4, 5 and 6, against
 * a direct convolution computed here in double precision (stride 1, padding 1, weights oihw, activations
 * nChw16c): every output within 1e-5 of the exact value relative to the sum of its terms' magnitudes
 * (Σ|w·x| + |b|; Winograd's transforms lose 1e-6 to 5e-6 of it in float, more with larger tiles). Every
 * shape runs with each tile size; shapes cover maps that are not multiples of the tile (partial tiles at
 * the right and bottom edges), a 1×1 map (all padding but the centre), several channel blocks, a tile
 * count that is not a multiple of the tile block or of the 12-row products, bias or none, a residual sum (what the output held added) or none, ReLU or none. The outputs are poisoned with
 * NaN first, or hold the residual addend (a position left unwritten fails either way), the
 * result is the same bit for bit with 1 and 2 threads, and a NaN bias reaches that channel's outputs through
 * the ReLU (as PyTorch's relu keeps NaN) without touching the others. Plans use it in evaluation on
 * AVX-512 (src/ops/conv.c, own_winograd_fits; the tile side by wino_tile, checked here on four maps);
 * test_parity_zoo checks ResNet-18 and ResNet-50 evaluation there against PyTorch (all three sizes). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "ops/winograd.h"
#include "testutil.h"

typedef struct tcase {
    int n, ic, oc, h, w;
    bool bias, add, relu;
} tcase;

/* element (n, c, y, x) of an nChw16c tensor of c_total channels on an h × w map */
static size_t at16(int c_total, int h, int w, int n, int c, int y, int x) {
    return ((((size_t)n * (c_total / 16) + c / 16) * h + y) * w + x) * 16 + c % 16;
}

/* the exact output (n, o, y, x) and the sum of its terms' magnitudes */
static void direct(const wino_shape *s, const float *x, const float *w, const float *b, int n, int o, int y, int xx,
                   double *out, double *mag) {
    double acc = b ? b[o] : 0, m = b ? fabs(b[o]) : 0;
    for (int c = 0; c < s->ic; c++)
        for (int ky = 0; ky < 3; ky++)
            for (int kx = 0; kx < 3; kx++) {
                const int iy = y * s->stride + ky - 1, ix = xx * s->stride + kx - 1;
                if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w) continue;
                const double t = (double)w[(((size_t)o * s->ic + c) * 3 + ky) * 3 + kx] *
                                 x[at16(s->ic, s->h, s->w, n, c, iy, ix)];
                acc += t;
                m += fabs(t);
            }
    *out = acc;
    *mag = m;
}

static size_t outputs(const wino_shape *s) {
    int oh, ow;
    wino_output(s, &oh, &ow);
    return (size_t)s->n * s->oc * oh * ow;
}

/* y: NaN, or the residual addend r with WINO_ADD */
static void run(const wino_shape *s, const float *x, const float *u, const float *b, unsigned post, const float *r,
                float *y, int threads) {
    const size_t ny = outputs(s);
    for (size_t i = 0; i < ny; i++) y[i] = post & WINO_ADD ? r[i] : NAN;
    float *scratch = aligned_alloc(64, sizeof(float) * wino_scratch_floats(s));
    omp_set_num_threads(threads);
    wino_forward(s, x, u, b, post, y, scratch);
    free(scratch);
}

static void check_case(const tcase *t, int stride, int m, uint64_t seed) {
    const wino_shape s = {t->n, t->ic, t->oc, t->h, t->w, m, stride};
    int oh, ow;
    wino_output(&s, &oh, &ow);
    const size_t nx = (size_t)s.n * s.ic * s.h * s.w, ny = outputs(&s), nw = (size_t)s.oc * s.ic * 9;
    float *x = aligned_alloc(64, sizeof(float) * nx), *w = malloc(sizeof(float) * nw), *b = malloc(sizeof(float) * s.oc);
    float *u = aligned_alloc(64, sizeof(float) * wino_weights_floats(&s));
    float *y1 = aligned_alloc(64, sizeof(float) * ny), *y2 = aligned_alloc(64, sizeof(float) * ny);
    float *r = aligned_alloc(64, sizeof(float) * ny);
    fill_uniform(r, (int64_t)ny, seed + 3, -1.0f, 1.0f);
    fill_uniform(x, (int64_t)nx, seed, -1.0f, 1.0f);
    fill_uniform(w, (int64_t)nw, seed + 1, -0.3f, 0.3f);
    fill_uniform(b, s.oc, seed + 2, -0.5f, 0.5f);
    wino_weights(&s, w, u);
    const float *bias = t->bias ? b : NULL;
    const unsigned post = (t->add ? WINO_ADD : 0) | (t->relu ? WINO_RELU : 0);
    run(&s, x, u, bias, post, r, y1, 1);
    run(&s, x, u, bias, post, r, y2, 2);
    double worst = 0;
    int bad = 0;
    for (int n = 0; n < s.n; n++)
        for (int o = 0; o < s.oc; o++)
            for (int yy = 0; yy < oh; yy++)
                for (int xx = 0; xx < ow; xx++) {
                    double want, mag;
                    const size_t i = at16(s.oc, oh, ow, n, o, yy, xx);
                    direct(&s, x, w, bias, n, o, yy, xx, &want, &mag);
                    if (t->add) want += r[i], mag += fabs(r[i]);
                    if (t->relu && want < 0) want = 0;
                    const double got = y1[i], err = fabs(got - want) / (mag + 1e-30);
                    if (!(err <= 1e-5) && bad++ < 3)
                        fprintf(stderr, "  n%d o%d (%d,%d): %.9g, exact %.9g (terms %.3g)\n", n, o, yy, xx, got, want, mag);
                    if (err > worst || isnan(err)) worst = isnan(err) ? INFINITY : err;
                }
    CHECK(bad == 0, "stride %d F(%d): %dx%dx%d -> %d channels, batch %d%s%s%s: %d outputs off, worst %.2e of their terms",
          stride, m, s.ic, s.h, s.w, s.oc, s.n, t->bias ? ", bias" : "", t->add ? ", sum" : "", t->relu ? ", relu" : "",
          bad, worst);
    CHECK(memcmp(y1, y2, sizeof(float) * ny) == 0, "stride %d F(%d): %dx%dx%d -> %d: 1 and 2 threads differ", stride, m,
          s.ic, s.h, s.w, s.oc);
    printf("stride %d F(%d): %3d x %2dx%-2d -> %3d, batch %d%s%s%s: worst %.2e of the terms\n", stride, m, s.ic, s.h,
           s.w, s.oc, s.n, t->bias ? ", bias" : "", t->add ? ", sum" : "", t->relu ? ", relu" : "", worst);
    free(x), free(w), free(b), free(u), free(y1), free(y2), free(r);
}

/* a NaN bias of one channel: its outputs NaN through the ReLU, every other channel finite */
static void nan_bias(int stride, int m) {
    const wino_shape s = {2, 16, 32, 5, 6, m, stride};
    int oh, ow;
    wino_output(&s, &oh, &ow);
    const size_t nx = (size_t)s.n * s.ic * s.h * s.w, ny = outputs(&s), nw = (size_t)s.oc * s.ic * 9;
    float *x = aligned_alloc(64, sizeof(float) * nx), *w = malloc(sizeof(float) * nw), *b = calloc(s.oc, sizeof(float));
    float *u = aligned_alloc(64, sizeof(float) * wino_weights_floats(&s)), *y = aligned_alloc(64, sizeof(float) * ny);
    fill_uniform(x, (int64_t)nx, 7, -1.0f, 1.0f);
    fill_uniform(w, (int64_t)nw, 8, -0.3f, 0.3f);
    b[19] = NAN;
    wino_weights(&s, w, u);
    run(&s, x, u, b, WINO_RELU, NULL, y, 2);
    int wrong = 0;
    for (int n = 0; n < s.n; n++)
        for (int o = 0; o < s.oc; o++)
            for (int i = 0; i < oh * ow; i++) wrong += isnan(y[at16(s.oc, oh, ow, n, o, i / ow, i % ow)]) != (o == 19);
    CHECK(wrong == 0, "stride %d F(%d): NaN bias of channel 19 with ReLU: %d outputs NaN where they should not be or "
          "not where they should", stride, m, wrong);
    free(x), free(w), free(b), free(u), free(y);
}

int main(void) {
    /* input maps: at stride 2 the odd sides leave the last input row and column to the last output alone */
    static const tcase cases[] = {
        {2, 16, 32, 7, 7, true, false, true},     /* partial tiles on both edges */
        {3, 48, 64, 13, 9, true, true, false},    /* three input blocks, a non-square map */
        {1, 32, 32, 1, 1, false, false, true},    /* one output: the tile is all padding but its centre */
        {2, 16, 32, 4, 4, true, false, false},    /* exactly one tile per image at stride 1 */
        {5, 32, 96, 20, 20, true, true, true},    /* 125 tiles at stride 1: a full block of 96 and one of 29 */
        {1, 128, 64, 6, 11, false, false, false}, /* eight input blocks */
        {2, 64, 64, 10, 10, false, true, true},   /* a residual sum without bias (ResNet's basic blocks) */
        {1, 256, 32, 14, 14, true, false, true},  /* ResNet-50's third stage: the sums of 256 channels */
        {2, 32, 32, 28, 28, true, false, true},   /* stride 2: 14×14 outputs, 49 tiles of 2×2 per image */
    };
    static const int sizes[][2] = {{1, 4}, {1, 5}, {1, 6}, {2, 2}, {2, 4}}; /* stride, m */
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            check_case(&cases[i], sizes[k][0], sizes[k][1], 100 + 10 * i);
        nan_bias(sizes[k][0], sizes[k][1]);
    }
    /* the tile side with the fewest products (n² per tile: n = m + 2, at stride 2 2m + 1), counted by hand */
    CHECK(wino_tile(7, 7, 1) == 4 && wino_tile(14, 14, 1) == 5 && wino_tile(28, 28, 1) == 6 && wino_tile(16, 16, 1) == 4,
          "tile sides: 7x7 %d (want 4: 144 products against 196 and 256), 14x14 %d (5: 441 against 576), 28x28 %d "
          "(6: 1600 against 1764), 16x16 %d (4: 576, as many as 6 and fewer than 5's 784)",
          wino_tile(7, 7, 1), wino_tile(14, 14, 1), wino_tile(28, 28, 1), wino_tile(16, 16, 1));
    CHECK(wino_tile(28, 28, 2) == 4 && wino_tile(14, 14, 2) == 2 && wino_tile(7, 7, 2) == 4,
          "stride-2 tile sides: 28x28 outputs %d (want 4: 3969 products against 4900), 14x14 %d (2: 1225 against "
          "1296), 7x7 %d (4: 324 against 400)", wino_tile(28, 28, 2), wino_tile(14, 14, 2), wino_tile(7, 7, 2));
    return test_report("test_winograd");
}
