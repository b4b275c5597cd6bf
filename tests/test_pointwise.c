/* test_pointwise.c — cnn.c's own 1×1 convolution forward (src/ops/pointwise.c) against the convolution
 * computed here in double precision (weights oc × ic as PyTorch's, activations nChw16c): every output
 * within 1e-6 of the exact value relative to the sum of its terms' magnitudes (Σ|w·x| + |b|), the SiLU's
 * applied to the exact sum (then also within 1e-6 of |silu| itself: silu.h's arithmetic). Shapes cover
 * channel counts that are not multiples of 16 on both sides (the input's padding channels hold NaN, so
 * reading one fails; the output's must come out 0), output blocks beyond a multiple of the 3-block tile,
 * pixel counts that are not multiples of the 8-pixel run, a 1×1 map (SE's layers), several input blocks,
 * an output large enough for streaming stores, bias or none, SiLU, ReLU or none. Outputs are poisoned with
 * NaN first; the result is the same bit for bit with 1 and 2 threads. Plans use it in evaluation for 1×1
 * convolutions with a SiLU after them (src/ops/conv.c, own_pointwise_fits); test_parity_zoo checks
 * EfficientNet-B0's evaluation there against PyTorch. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ops/pointwise.h"
#include "testutil.h"

typedef struct tcase {
    int n, ic, oc, hw;
    bool bias;
    unsigned act;
} tcase;

static size_t at16(int c_total, int hw, int n, int c, int p) {
    const int blocks = (c_total + 15) / 16;
    return (((size_t)n * blocks + c / 16) * hw + p) * 16 + c % 16;
}

static void run(const pw_shape *s, const float *x, const float *wt, const float *b, unsigned act, float *y, size_t ny,
                int threads) {
    for (size_t i = 0; i < ny; i++) y[i] = NAN;
    omp_set_num_threads(threads);
    pw_forward(s, x, wt, b, act, y);
}

static void check_case(const tcase *t, uint64_t seed) {
    const pw_shape s = {t->n, t->ic, t->oc, t->hw};
    const int ib = (s.ic + 15) / 16, ob = (s.oc + 15) / 16;
    const size_t nx = (size_t)s.n * ib * 16 * s.hw, ny = (size_t)s.n * ob * 16 * s.hw, nw = (size_t)s.oc * s.ic;
    float *x = aligned_alloc(64, sizeof(float) * nx), *w = malloc(sizeof(float) * nw), *b = malloc(sizeof(float) * s.oc);
    float *wt = aligned_alloc(64, sizeof(float) * pw_weights_floats(&s));
    float *y1 = aligned_alloc(64, sizeof(float) * ny), *y2 = aligned_alloc(64, sizeof(float) * ny);
    fill_uniform(x, (int64_t)nx, seed, -2.0f, 2.0f);
    fill_uniform(w, (int64_t)nw, seed + 1, -0.5f, 0.5f);
    fill_uniform(b, s.oc, seed + 2, -1.0f, 1.0f);
    for (int n = 0; n < s.n; n++) /* the input's padding channels: never read */
        for (int c = s.ic; c < ib * 16; c++)
            for (int p = 0; p < s.hw; p++) x[at16(s.ic, s.hw, n, c, p)] = NAN;
    pw_weights(&s, w, wt);
    const float *bias = t->bias ? b : NULL;
    run(&s, x, wt, bias, t->act, y1, ny, 1);
    run(&s, x, wt, bias, t->act, y2, ny, 2);
    CHECK(memcmp(y1, y2, sizeof(float) * ny) == 0, "%d->%d on %d pixels: 1 and 2 threads differ", s.ic, s.oc, s.hw);
    int bad = 0;
    double worst = 0;
    for (int n = 0; n < s.n && bad < 5; n++)
        for (int o = 0; o < ob * 16 && bad < 5; o++)
            for (int p = 0; p < s.hw && bad < 5; p++) {
                const float got = y2[at16(s.oc, s.hw, n, o, p)];
                if (o >= s.oc) {
                    if (got != 0.0f) {
                        CHECK(false, "%d->%d: padding channel %d at pixel %d = %g, expected 0", s.ic, s.oc, o, p, got);
                        bad++;
                    }
                    continue;
                }
                double z = bias ? b[o] : 0, mag = bias ? fabs(b[o]) : 0;
                for (int c = 0; c < s.ic; c++) {
                    const double term = (double)w[(size_t)o * s.ic + c] * x[at16(s.ic, s.hw, n, c, p)];
                    z += term;
                    mag += fabs(term);
                }
                double want = z, scale = mag;
                if (t->act == PW_RELU) want = z > 0 ? z : 0;
                if (t->act == PW_SILU) {
                    want = z / (1.0 + exp(-z));
                    scale = mag + fabs(want);
                }
                const double err = fabs((double)got - want) / (scale > 0 ? scale : 1);
                if (err > worst || isnan(err)) worst = isnan(err) ? INFINITY : err;
                if (!(err <= 1e-6)) {
                    CHECK(false, "%d->%d on %d pixels, act %u: image %d channel %d pixel %d = %.9g, expected %.9g",
                          s.ic, s.oc, s.hw, t->act, n, o, p, got, want);
                    bad++;
                }
            }
    printf("%3d -> %4d channels, %5d pixels, batch %d, bias %d, act %u: worst %.2g of the terms' magnitudes\n", s.ic,
              s.oc, s.hw, s.n, t->bias, t->act, worst);
    free(x), free(w), free(b), free(wt), free(y1), free(y2);
}

int main(void) {
    if (!pw_available()) {
        printf("no AVX-512 in this build: the kernel is not compiled (plans do not use it)\n");
        return test_report("test_pointwise");
    }
    const tcase cases[] = {
        {2, 16, 96, 100, true, PW_SILU},    /* EfficientNet's first expansion; 100 = 12 runs of 8 + 4 */
        {3, 24, 144, 49, true, PW_SILU},    /* 9 output blocks, a 7×7 map */
        {2, 40, 20, 64, false, PW_SILU},    /* padding on both sides, no bias */
        {4, 8, 8, 1, true, PW_SILU},        /* SE's first layer: 1×1 map, 8 channels */
        {2, 72, 64, 37, true, PW_RELU},     /* 5 input blocks (the last partial), 4 output blocks = 3 + 1 */
        {2, 33, 50, 9, true, 0},            /* 3 + 1 output blocks with padding; 1 run of 8 + 1 */
        {2, 16, 96, 112 * 112, true, PW_SILU}, /* 9.6 MB of output: streaming stores */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(&cases[i], 100 + 10 * i);

    /* SiLU's special values through the kernel: a NaN or an infinite input reaches its pixel's outputs only */
    const pw_shape s = {1, 1, 16, 8};
    float *x = aligned_alloc(64, sizeof(float) * 16 * 8), *y = aligned_alloc(64, sizeof(float) * 16 * 8);
    float *wt = aligned_alloc(64, sizeof(float) * pw_weights_floats(&s)), w[16];
    for (int o = 0; o < 16; o++) w[o] = 1.0f;
    pw_weights(&s, w, wt);
    memset(x, 0, sizeof(float) * 16 * 8);
    const float in[8] = {NAN, INFINITY, -INFINITY, -100.0f, 0.0f, -0.0f, 1.0f, 100.0f};
    for (int p = 0; p < 8; p++) x[p * 16] = in[p];
    run(&s, x, wt, NULL, PW_SILU, y, 16 * 8, 2);
    CHECK(isnan(y[0]) && isinf(y[16]) && y[16] > 0 && isnan(y[32]), "silu(NaN, +inf, -inf) = %g %g %g", y[0], y[16],
          y[32]);
    CHECK(y[48] == 0.0f && signbit(y[48]), "silu(-100) = %a, expected -0", y[48]);
    CHECK(y[64] == 0.0f && y[80] == 0.0f, "silu(±0) = %g %g", y[64], y[80]);
    CHECK(fabsf(y[96] - 0.7310586f) < 1e-6f && y[112] == 100.0f, "silu(1), silu(100) = %.9g %.9g", y[96], y[112]);
    free(x), free(y), free(wt);
    return test_report("test_pointwise");
}
