/* test_depthwise.c — cnn.c's own depthwise convolution forward (src/ops/depthwise.c) against the
 * convolution computed here in double precision (weights c × 1 × k × k as PyTorch's, activations
 * nChw16c, zero padding): every output within 1e-6 of the exact value relative to the sum of its terms'
 * magnitudes (Σ|w·x| + |b|), the SiLU's applied to the exact sum (then also relative to |silu|). Shapes
 * cover 3×3 and 5×5 filters at strides 1 and 2, maps whose output is at most 32 wide (copied plane by plane
 * into a padded buffer) and wider ones (row by row: runs inside the map and runs at its edges), widths that
 * are not multiples of the 8-pixel run, a 1×1 output, channel counts that are not multiples of 16 (the
 * padding channels, zero in the input as everywhere in cnn.c, must come out 0), an output large enough for
 * streaming stores, bias or none, SiLU or none. Outputs are poisoned with NaN first and nothing past them
 * may change; the result is the same bit for bit with 1 and 2 threads. Plans use it in evaluation for depthwise convolutions with a SiLU after
 * them (src/ops/conv.c, own_depthwise_fits); test_parity_zoo checks EfficientNet-B0's evaluation there
 * against PyTorch. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ops/depthwise.h"
#include "testutil.h"

typedef struct tcase {
    int n, c, h, w, k, stride;
    bool bias;
    unsigned act;
} tcase;

static size_t at16(int c_total, int h, int w, int n, int c, int y, int x) {
    const int blocks = (c_total + 15) / 16;
    return ((((size_t)n * blocks + c / 16) * h + y) * w + x) * 16 + c % 16;
}

#define GUARD 256 /* floats after the output that must stay untouched */

static void run(const dw_shape *s, const float *x, const float *wt, const float *b, unsigned act, float *y, size_t ny,
                int threads) {
    for (size_t i = 0; i < ny; i++) y[i] = NAN;
    for (size_t i = ny; i < ny + GUARD; i++) y[i] = 12345.0f;
    omp_set_num_threads(threads);
    float *scratch = aligned_alloc(64, sizeof(float) * (dw_scratch_floats(s, threads) + 16));
    dw_forward(s, x, wt, b, act, y, scratch, threads);
    free(scratch);
    bool kept = true;
    for (size_t i = ny; i < ny + GUARD; i++) kept &= y[i] == 12345.0f;
    CHECK(kept, "%d channels %dx%d k%d s%d: written past the output", s->c, s->h, s->w, s->k, s->stride);
}

static void check_case(const tcase *t, uint64_t seed) {
    const int pad = t->k / 2, oh = (t->h + 2 * pad - t->k) / t->stride + 1, ow = (t->w + 2 * pad - t->k) / t->stride + 1;
    const dw_shape s = {t->n, t->c, t->h, t->w, t->k, t->stride, pad, oh, ow};
    const int blocks = (s.c + 15) / 16, taps = s.k * s.k;
    const size_t nx = (size_t)s.n * blocks * 16 * s.h * s.w, ny = (size_t)s.n * blocks * 16 * oh * ow;
    float *x = aligned_alloc(64, sizeof(float) * nx), *w = malloc(sizeof(float) * s.c * taps), *b = malloc(sizeof(float) * s.c);
    float *wt = aligned_alloc(64, sizeof(float) * dw_weights_floats(&s));
    float *y1 = aligned_alloc(64, sizeof(float) * (ny + GUARD)), *y2 = aligned_alloc(64, sizeof(float) * (ny + GUARD));
    fill_uniform(x, (int64_t)nx, seed, -2.0f, 2.0f);
    fill_uniform(w, (int64_t)s.c * taps, seed + 1, -0.5f, 0.5f);
    fill_uniform(b, s.c, seed + 2, -1.0f, 1.0f);
    for (int n = 0; n < s.n; n++) /* the input's padding channels are 0 */
        for (int c = s.c; c < blocks * 16; c++)
            for (int yy = 0; yy < s.h; yy++)
                for (int xx = 0; xx < s.w; xx++) x[at16(s.c, s.h, s.w, n, c, yy, xx)] = 0.0f;
    dw_weights(&s, w, wt);
    const float *bias = t->bias ? b : NULL;
    run(&s, x, wt, bias, t->act, y1, ny, 1);
    run(&s, x, wt, bias, t->act, y2, ny, 2);
    CHECK(memcmp(y1, y2, sizeof(float) * ny) == 0, "%d channels %dx%d k%d s%d: 1 and 2 threads differ", s.c, s.h, s.w,
          s.k, s.stride);
    int bad = 0;
    double worst = 0;
    for (int n = 0; n < s.n && bad < 5; n++)
        for (int c = 0; c < blocks * 16 && bad < 5; c++)
            for (int oy = 0; oy < oh && bad < 5; oy++)
                for (int ox = 0; ox < ow && bad < 5; ox++) {
                    const float got = y2[at16(s.c, oh, ow, n, c, oy, ox)];
                    if (c >= s.c) {
                        if (got != 0.0f) {
                            CHECK(false, "padding channel %d at (%d,%d) = %g, expected 0", c, oy, ox, got);
                            bad++;
                        }
                        continue;
                    }
                    double z = bias ? b[c] : 0, mag = bias ? fabs(b[c]) : 0;
                    for (int ky = 0; ky < s.k; ky++)
                        for (int kx = 0; kx < s.k; kx++) {
                            const int iy = oy * s.stride + ky - pad, ix = ox * s.stride + kx - pad;
                            if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
                            const double term = (double)w[(size_t)c * taps + ky * s.k + kx] * x[at16(s.c, s.h, s.w, n, c, iy, ix)];
                            z += term;
                            mag += fabs(term);
                        }
                    double want = z, scale = mag;
                    if (t->act == DW_SILU) {
                        want = z / (1.0 + exp(-z));
                        scale = mag + fabs(want);
                    }
                    const double err = fabs((double)got - want) / (scale > 0 ? scale : 1);
                    if (err > worst || isnan(err)) worst = isnan(err) ? INFINITY : err;
                    if (!(err <= 1e-6)) {
                        CHECK(false, "%d channels %dx%d k%d s%d: image %d channel %d (%d,%d) = %.9g, expected %.9g", s.c,
                              s.h, s.w, s.k, s.stride, n, c, oy, ox, got, want);
                        bad++;
                    }
                }
    printf("%4d channels %3dx%-3d k%d s%d -> %3dx%-3d batch %d, bias %d, act %u: worst %.2g of the terms' magnitudes\n",
           s.c, s.h, s.w, s.k, s.stride, oh, ow, s.n, t->bias, t->act, worst);
    free(x), free(w), free(b), free(wt), free(y1), free(y2);
}

int main(void) {
    if (!dw_available()) {
        printf("no AVX-512 in this build: the kernel is not compiled (plans do not use it)\n");
        return test_report("test_depthwise");
    }
    const tcase cases[] = {
        {2, 20, 19, 21, 3, 1, true, DW_SILU},   /* plane by plane, runs of 8 + 5, padding channels */
        {2, 32, 15, 13, 5, 2, true, DW_SILU},   /* 8×7 output */
        {2, 16, 7, 7, 5, 1, false, DW_SILU},    /* EfficientNet's last maps, no bias */
        {3, 16, 1, 1, 3, 1, true, DW_SILU},     /* 1×1 map: every tap but the centre is padding */
        {2, 24, 40, 70, 3, 2, true, DW_SILU},   /* row by row: 35 wide (4 runs + 3) */
        {2, 16, 37, 45, 5, 1, true, 0},         /* row by row, 5×5: edge runs on both sides */
        {1, 40, 34, 34, 3, 1, true, DW_SILU},   /* 34 wide: row by row, a last run of 2 */
        {3, 32, 112, 112, 3, 1, true, DW_SILU}, /* 4.8 MB of output: streaming stores */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(&cases[i], 300 + 10 * i);
    return test_report("test_depthwise");
}
