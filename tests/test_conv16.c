/* test_conv16.c — cnn.c's own 16 → 16 channel 3×3 convolution kernels (src/ops/conv16.c): forward, backward
 * data (the taps flipped, the weights transposed; overwriting or adding) and backward weights, against the
 * same sums computed here in double precision from weights in PyTorch's layout (o, i, kh, kw), activations
 * nChw16c with 16 channels: every result within 1e-5 of the exact value relative to the sum of its terms'
 * magnitudes. Maps cover one tile of 16 pixels per row (both edges padding), two (left and right tiles),
 * three (an inner one), a single row (only the middle kernel row meets the map) and CIFAR's 32×32. The
 * forward's per-channel sums of its outputs and of their squares (for the batch norm after it) are checked
 * against the same sums of the outputs taken here in double. Outputs
 * that are overwritten are poisoned with NaN first (a position left unwritten fails); the added-to input
 * gradient starts from other values that must be kept. Forward and backward data are the same bit for bit
 * with 1 and 2 threads; the weight gradient (a sum over the batch split between threads) is the same with 2
 * threads whether the backward computes the input gradient, adds it or not at all. Plans use the kernels in
 * training (src/ops/conv.c, own16_fits): check_plan runs a residual block's convolution, batch norm (its
 * statistics from the convolution, its normalization left to the addition) and addition against the same
 * in double, on every build; test_parity_torch checks resnet20's training step there against PyTorch. The
 * kernel checks are skipped where the build has no AVX-512 (the plan check then runs oneDNN's convolution). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/plan.h"
#include "ops/conv16.h"
#include "ops/ops.h"
#include "testutil.h"

#define TOL 1e-5

static size_t at(const c16_shape *s, int n, int y, int x, int c) { return (((size_t)n * s->h + y) * s->w + x) * 16 + c; }

static bool inside(const c16_shape *s, int y, int x) { return y >= 0 && y < s->h && x >= 0 && x < s->w; }

/* worst |got − exact| / Σ|terms| so far; NaN counts as infinitely wrong */
static void track(double got, double want, double mag, double *worst, int *bad) {
    const double err = fabs(got - want) / (mag + 1e-30);
    if (!(err <= TOL)) (*bad)++;
    if (isnan(err) || err > *worst) *worst = isnan(err) ? INFINITY : err;
}

static void forward(const c16_shape *s, const float *x, const float *w, float *y, double *sums, int threads) {
    double *rows = malloc(sizeof(double) * c16_chunk_sums(s));
    for (size_t k = 0; k < c16_chunk_sums(s); k++) rows[k] = NAN;
    omp_set_num_threads(threads);
    c16_forward(s, x, w, y, sums, rows);
    free(rows);
}

static void check_shape(const c16_shape *s, uint64_t seed) {
    const size_t na = (size_t)s->n * s->h * s->w * 16;
    float *x = aligned_alloc(64, sizeof(float) * na), *dy = aligned_alloc(64, sizeof(float) * na);
    float *y1 = aligned_alloc(64, sizeof(float) * na), *y2 = aligned_alloc(64, sizeof(float) * na);
    float *r = aligned_alloc(64, sizeof(float) * na), *dx1 = aligned_alloc(64, sizeof(float) * na);
    float *dx2 = aligned_alloc(64, sizeof(float) * na), *dxa = aligned_alloc(64, sizeof(float) * na);
    float wt[16 * 16 * 9], io[9 * 256], oi[9 * 256], dw1[9 * 256], dw2[9 * 256], dw3[9 * 256],
        dw4[9 * 256];
    float *scratch = aligned_alloc(64, sizeof(float) * c16_scratch_floats(2));
    fill_uniform(x, (int64_t)na, seed, -1.0f, 1.0f);
    fill_uniform(dy, (int64_t)na, seed + 1, -1.0f, 1.0f);
    fill_uniform(r, (int64_t)na, seed + 2, -1.0f, 1.0f);
    fill_uniform(wt, 16 * 16 * 9, seed + 3, -0.3f, 0.3f);
    for (int o = 0; o < 16; o++) /* PyTorch's (o, i, kh, kw) into the kernels' two layouts */
        for (int i = 0; i < 16; i++)
            for (int t = 0; t < 9; t++) {
                io[(t * 16 + i) * 16 + o] = wt[(o * 16 + i) * 9 + t];
                oi[(t * 16 + o) * 16 + i] = wt[(o * 16 + i) * 9 + t];
            }
    for (size_t k = 0; k < na; k++) y1[k] = y2[k] = dx1[k] = dx2[k] = NAN;
    memcpy(dxa, r, sizeof(float) * na);
    double sums1[32], sums2[32];
    forward(s, x, io, y1, sums1, 1);
    forward(s, x, io, y2, sums2, 2);
    for (int k = 0; k < 9 * 256; k++) dw1[k] = dw2[k] = dw3[k] = dw4[k] = NAN;
    c16_backward(s, x, dy, oi, false, dx1, dw1, scratch, 1);
    c16_backward(s, x, dy, oi, false, dx2, dw2, scratch, 2);
    c16_backward(s, x, dy, oi, true, dxa, dw3, scratch, 2);
    c16_backward(s, x, dy, NULL, false, NULL, dw4, scratch, 2); /* no input gradient */

    double wf = 0, wb = 0, wa = 0, ww = 0, w1 = 0;
    int bf = 0, bb = 0, ba = 0, bw = 0, b1 = 0;
    for (int n = 0; n < s->n; n++)
        for (int yy = 0; yy < s->h; yy++)
            for (int xx = 0; xx < s->w; xx++)
                for (int c = 0; c < 16; c++) {
                    /* forward: y[o = c] = Σ x[i](yy + kh − 1, xx + kw − 1) · w[c][i][kh][kw];
                     * backward data: dx[i = c] = Σ dy[o](yy − kh + 1, xx − kw + 1) · w[o][c][kh][kw] */
                    double f = 0, fm = 0, b = 0, bm = 0;
                    for (int k = 0; k < 16; k++)
                        for (int t = 0; t < 9; t++) {
                            const int kh = t / 3, kw = t % 3;
                            if (inside(s, yy + kh - 1, xx + kw - 1)) {
                                const double term = (double)x[at(s, n, yy + kh - 1, xx + kw - 1, k)] * wt[(c * 16 + k) * 9 + t];
                                f += term, fm += fabs(term);
                            }
                            if (inside(s, yy - kh + 1, xx - kw + 1)) {
                                const double term = (double)dy[at(s, n, yy - kh + 1, xx - kw + 1, k)] * wt[(k * 16 + c) * 9 + t];
                                b += term, bm += fabs(term);
                            }
                        }
                    const size_t i = at(s, n, yy, xx, c);
                    track(y1[i], f, fm, &wf, &bf);
                    track(dx1[i], b, bm, &wb, &bb);
                    track(dxa[i], b + r[i], bm + fabs(r[i]), &wa, &ba);
                }
    for (int o = 0; o < 16; o++)
        for (int i = 0; i < 16; i++)
            for (int t = 0; t < 9; t++) {
                /* dw[o][i][kh][kw] = Σ over images and output pixels of x[i](pixel + tap offset) · dy[o](pixel) */
                const int kh = t / 3, kw = t % 3;
                double g = 0, gm = 0;
                for (int n = 0; n < s->n; n++)
                    for (int yy = 0; yy < s->h; yy++)
                        for (int xx = 0; xx < s->w; xx++)
                            if (inside(s, yy + kh - 1, xx + kw - 1)) {
                                const double term = (double)x[at(s, n, yy + kh - 1, xx + kw - 1, i)] * dy[at(s, n, yy, xx, o)];
                                g += term, gm += fabs(term);
                            }
                track(dw1[(t * 16 + o) * 16 + i], g, gm, &w1, &b1);
                track(dw2[(t * 16 + o) * 16 + i], g, gm, &ww, &bw);
            }
    CHECK(bf == 0, "batch %d, %dx%d: forward: %d outputs off, worst %.2e of their terms", s->n, s->h, s->w, bf, wf);
    /* the outputs' channel sums and sums of squares: those of the outputs as written, added here in double */
    double ws = 0;
    int bs = 0;
    for (int c = 0; c < 16; c++) {
        double sum = 0, mag = 0, sq = 0;
        for (size_t k = c; k < na; k += 16) sum += y1[k], mag += fabs(y1[k]), sq += (double)y1[k] * y1[k];
        track(sums1[c], sum, mag, &ws, &bs);
        track(sums1[16 + c], sq, sq, &ws, &bs);
    }
    CHECK(bs == 0 && memcmp(sums1, sums2, sizeof sums1) == 0,
          "batch %d, %dx%d: the forward's channel sums: %d off (worst %.2e of their terms), or 1 and 2 threads differ",
          s->n, s->h, s->w, bs, ws);
    CHECK(bb == 0, "batch %d, %dx%d: backward data: %d input gradients off, worst %.2e", s->n, s->h, s->w, bb, wb);
    CHECK(ba == 0, "batch %d, %dx%d: backward data added to a gradient: %d off, worst %.2e", s->n, s->h, s->w, ba, wa);
    CHECK(bw == 0 && b1 == 0, "batch %d, %dx%d: backward weights: %d (2 threads) and %d (1 thread) off, worst %.2e, %.2e",
          s->n, s->h, s->w, bw, b1, ww, w1);
    CHECK(memcmp(y1, y2, sizeof(float) * na) == 0 && memcmp(dx1, dx2, sizeof(float) * na) == 0,
          "batch %d, %dx%d: forward or backward data differ between 1 and 2 threads", s->n, s->h, s->w);
    CHECK(memcmp(dw2, dw3, sizeof dw2) == 0 && memcmp(dw2, dw4, sizeof dw2) == 0,
          "batch %d, %dx%d: backward weights differ between runs with 2 threads (with and without the input gradient)",
          s->n, s->h, s->w);
    printf("batch %d, %2dx%-2d: worst of the terms: forward %.2e (sums %.2e), backward data %.2e (added %.2e), weights %.2e (1 "
           "thread %.2e)\n", s->n, s->h, s->w, wf, ws, wb, wa, ww, w1);
    free(x), free(dy), free(y1), free(y2), free(r), free(dx1), free(dx2), free(dxa), free(scratch);
}

/* In a training plan: y = relu(bn(conv(x)) + x), 16 channels on a 4×16 map, batch 3. The convolution runs
 * these kernels and gives the batch norm its statistics; the batch norm leaves its normalization to the
 * addition, so that its own output is not written (plan_read refuses it). y against the same computed here
 * in double (batch statistics, biased variance); then an evaluation pass of the same plan (running
 * statistics after that one step: momentum 0.1, unbiased variance), where the batch norm writes its output. */
static void check_plan(void) {
    enum { NB = 3, HH = 4, WW = 16, SZ = NB * 16 * HH * WW };
    graph *g = graph_new();
    const int x = graph_input(g, 16, HH, WW);
    conv_cfg cfg = {16, 3, 1, 1, 1, 1, false, INIT_KAIMING_NORMAL_OUT};
    const int c = op_conv2d(g, x, "conv", &cfg), b = op_batchnorm(g, c, "bn"), y = op_relu(g, op_add(g, b, x));
    graph_set_output(g, y, OUTPUT_MAIN, 1);
    plan *p = NULL;
    CHECK_OK(graph_ok(g) ? plan_create(g, NB, PLAN_TRAIN, &p) : g->error);
    if (!p) {
        graph_free(g);
        return;
    }
    const node *cn = &g->nodes[g->tensors[c].producer], *bn = &g->nodes[g->tensors[b].producer];
    float w[16 * 16 * 9], gamma[16], beta[16], in[SZ], got[SZ];
    fill_uniform(w, 16 * 16 * 9, 21, -0.3f, 0.3f);
    fill_uniform(gamma, 16, 22, 0.5f, 1.5f);
    fill_uniform(beta, 16, 23, -0.5f, 0.5f);
    fill_uniform(in, SZ, 24, -1.0f, 2.0f); /* a mean away from zero */
    CHECK_OK(graph_param_write(g, cn->params[0], w));
    CHECK_OK(graph_param_write(g, bn->params[0], gamma));
    CHECK_OK(graph_param_write(g, bn->params[1], beta));
    /* the reference: the convolution (nchw), its batch statistics, then both passes' outputs */
    static double conv[SZ];
    double mean[16] = {0}, var[16] = {0};
    for (int n = 0; n < NB; n++)
        for (int o = 0; o < 16; o++)
            for (int yy = 0; yy < HH; yy++)
                for (int xx = 0; xx < WW; xx++) {
                    double acc = 0;
                    for (int i = 0; i < 16; i++)
                        for (int t = 0; t < 9; t++) {
                            const int iy = yy + t / 3 - 1, ix = xx + t % 3 - 1;
                            if (iy >= 0 && iy < HH && ix >= 0 && ix < WW)
                                acc += (double)w[(o * 16 + i) * 9 + t] * in[((n * 16 + i) * HH + iy) * WW + ix];
                        }
                    conv[((n * 16 + o) * HH + yy) * WW + xx] = acc;
                    mean[o] += acc / (NB * HH * WW);
                }
    for (int k = 0; k < SZ; k++) var[k / (HH * WW) % 16] += pow(conv[k] - mean[k / (HH * WW) % 16], 2) / (NB * HH * WW);
    for (int pass = 0; pass < 2; pass++) { /* training, then evaluation */
        static double want[SZ];
        for (int k = 0; k < SZ; k++) {
            const int o = k / (HH * WW) % 16, count = NB * HH * WW;
            const double m = pass ? 0.1 * mean[o] : mean[o], v = pass ? 0.9 + 0.1 * var[o] * count / (count - 1) : var[o];
            const double z = gamma[o] * (conv[k] - m) / sqrt(v + 1e-5) + beta[o] + in[k];
            want[k] = z > 0 ? z : 0;
        }
        memcpy(plan_input(p), in, sizeof in);
        CHECK_OK(plan_forward(p, pass == 0, 1));
        CHECK_OK(plan_read(p, y, false, got));
        const double err = rel_error(got, want, SZ);
        CHECK(err <= TOL, "%s pass: max relative error %.2e", pass ? "evaluation" : "training", err);
        const cnn_status st = plan_read(p, b, false, got);
        cnn_clear_error();
        const char *knob = getenv("CNN_CONV16"); /* CNN_CONV16=0: oneDNN's convolution, the batch norm as usual */
        const bool deferred = pass == 0 && c16_available() && !(knob && !strcmp(knob, "0"));
        CHECK((st != CNN_OK) == deferred, "%s pass: the batch norm's output %s", pass ? "evaluation" : "training",
              st != CNN_OK ? "was refused" : "was readable");
        printf("plan, %s pass: max relative error %.2e, the batch norm's output %s\n", pass ? "evaluation" : "training",
               err, st != CNN_OK ? "left to the addition" : "written");
    }
    plan_free(p);
    graph_free(g);
}

int main(void) {
    check_plan(); /* any build: with oneDNN's convolution where these kernels are missing */
    if (!c16_available()) {
        printf("the kernels themselves skipped: this build has no AVX-512 kernels\n");
        return test_report("test_conv16");
    }
    static const c16_shape shapes[] = {
        {2, 5, 16},  /* one tile per row: its first and last input pixels both padding */
        {3, 1, 32},  /* one row: only the middle kernel row meets the map; two tiles */
        {2, 7, 48},  /* three tiles: left, inner, right */
        {1, 32, 32}, /* CIFAR's map */
        {5, 4, 64},  /* odd batch between two threads, two inner tiles */
    };
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) check_shape(&shapes[k], 50 + 10 * k);
    CHECK(c16_fits(32, 32) && c16_fits(1, 16) && c16_fits(7, 48) && !c16_fits(8, 8) && !c16_fits(32, 24) &&
              !c16_fits(0, 16),
          "c16_fits: widths that are multiples of 16 only (32x32 %d, 1x16 %d, 7x48 %d, 8x8 %d, 32x24 %d, 0x16 %d)",
          c16_fits(32, 32), c16_fits(1, 16), c16_fits(7, 48), c16_fits(8, 8), c16_fits(32, 24), c16_fits(0, 16));
    return test_report("test_conv16");
}
