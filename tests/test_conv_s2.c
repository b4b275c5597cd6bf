/* test_conv_s2.c — cnn.c's own 3×3 stride-2 convolution kernels (src/ops/conv_s2.c): forward, backward data
 * (overwriting or adding) and backward weights, against the same sums computed here in double precision from
 * weights in PyTorch's layout (o, i, kh, kw), activations nChw16c: every result within 1e-5 of the exact value
 * relative to the sum of its terms' magnitudes. Shapes: the CIFAR ResNets' two (16 → 32 channels on 32×32, 32 → 64
 * on 16×16, small batches), three input blocks into four output ones on a 2×16 map (a single output row, so that
 * kernel row 2 meets nothing below), and a 6×48 map (an inner backward tile, several forward ones). Outputs that
 * are overwritten are poisoned with NaN first (a position left unwritten fails); the added-to input gradient
 * starts from other values that must be kept. Forward and backward data are the same bit for bit with 1 and 2
 * threads; the weight gradient (a sum over the batch split between threads) is the same with 2 threads whether
 * the backward computes the input gradient, adds it or not at all. Plans use the kernels in training
 * (src/ops/conv.c, own_s2_fits): test_parity_torch checks resnet20's training step, whose stages start with
 * them, against PyTorch. Skipped where the build has no AVX-512. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ops/conv_s2.h"
#include "testutil.h"

#define TOL 1e-5

/* element (n, c, y, x) of an nChw16c tensor of `ch` channels on an h × w map */
static size_t at(int ch, int h, int w, int n, int c, int y, int x) {
    return ((((size_t)n * (ch / 16) + c / 16) * h + y) * w + x) * 16 + c % 16;
}

/* worst |got − exact| / Σ|terms| so far; NaN counts as infinitely wrong */
static void track(double got, double want, double mag, double *worst, int *bad) {
    const double err = fabs(got - want) / (mag + 1e-30);
    if (!(err <= TOL)) (*bad)++;
    if (isnan(err) || err > *worst) *worst = isnan(err) ? INFINITY : err;
}

static float *floats(size_t n) { return aligned_alloc(64, sizeof(float) * ((n + 15) / 16 * 16)); }

static void check_shape(const s2_shape *s, uint64_t seed) {
    const int IC = s->ic, OC = s->oc, H = s->h, W = s->w, OH = H / 2, OW = W / 2;
    const size_t nx = (size_t)s->n * IC * H * W, ny = (size_t)s->n * OC * OH * OW, nw = (size_t)OC * IC * 9;
    float *x = floats(nx), *dy = floats(ny), *y1 = floats(ny), *y2 = floats(ny), *r = floats(nx), *dx1 = floats(nx),
          *dx2 = floats(nx), *dxa = floats(nx), *wt = floats(nw), *io = floats(nw), *oi = floats(nw), *dw1 = floats(nw),
          *dw2 = floats(nw), *dw3 = floats(nw), *dw4 = floats(nw), *scratch = floats(s2_scratch_floats(s, 2));
    fill_uniform(x, (int64_t)nx, seed, -1.0f, 1.0f);
    fill_uniform(dy, (int64_t)ny, seed + 1, -1.0f, 1.0f);
    fill_uniform(r, (int64_t)nx, seed + 2, -1.0f, 1.0f);
    fill_uniform(wt, (int64_t)nw, seed + 3, -0.3f, 0.3f);
    const int IB = IC / 16;
    for (int o = 0; o < OC; o++) /* PyTorch's (o, i, kh, kw) into the kernels' two layouts */
        for (int i = 0; i < IC; i++)
            for (int t = 0; t < 9; t++) {
                const size_t blk = ((size_t)(o / 16) * IB + i / 16) * 9 + t;
                io[(blk * 16 + i % 16) * 16 + o % 16] = wt[((size_t)o * IC + i) * 9 + t];
                oi[(blk * 16 + o % 16) * 16 + i % 16] = wt[((size_t)o * IC + i) * 9 + t];
            }
    for (size_t k = 0; k < ny; k++) y1[k] = y2[k] = NAN;
    for (size_t k = 0; k < nx; k++) dx1[k] = dx2[k] = NAN;
    for (size_t k = 0; k < nw; k++) dw1[k] = dw2[k] = dw3[k] = dw4[k] = NAN;
    memcpy(dxa, r, sizeof(float) * nx);
    omp_set_num_threads(1);
    s2_forward(s, x, io, y1);
    omp_set_num_threads(2);
    s2_forward(s, x, io, y2);
    s2_backward(s, x, dy, oi, false, dx1, dw1, scratch, 1);
    s2_backward(s, x, dy, oi, false, dx2, dw2, scratch, 2);
    s2_backward(s, x, dy, oi, true, dxa, dw3, scratch, 2);
    s2_backward(s, x, dy, NULL, false, NULL, dw4, scratch, 2); /* no input gradient */

    double wf = 0, wb = 0, wa = 0, ww = 0, w1 = 0;
    int bf = 0, bb = 0, ba = 0, bw = 0, b1 = 0;
    /* forward: y[o](oy, ox) = Σ x[i](2·oy + kh − 1, 2·ox + kw − 1) · w[o][i][kh][kw] */
    for (int n = 0; n < s->n; n++)
        for (int o = 0; o < OC; o++)
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++) {
                    double f = 0, fm = 0;
                    for (int i = 0; i < IC; i++)
                        for (int t = 0; t < 9; t++) {
                            const int iy = 2 * oy + t / 3 - 1, ix = 2 * ox + t % 3 - 1;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            const double term = (double)x[at(IC, H, W, n, i, iy, ix)] * wt[((size_t)o * IC + i) * 9 + t];
                            f += term, fm += fabs(term);
                        }
                    track(y1[at(OC, OH, OW, n, o, oy, ox)], f, fm, &wf, &bf);
                }
    /* backward data: dx[i](iy, ix) = Σ dy[o](oy, ox) · w[o][i][kh][kw] over 2·oy + kh − 1 = iy, 2·ox + kw − 1 = ix */
    for (int n = 0; n < s->n; n++)
        for (int i = 0; i < IC; i++)
            for (int iy = 0; iy < H; iy++)
                for (int ix = 0; ix < W; ix++) {
                    double b = 0, bm = 0;
                    for (int o = 0; o < OC; o++)
                        for (int t = 0; t < 9; t++) {
                            const int ty = iy + 1 - t / 3, tx = ix + 1 - t % 3;
                            if (ty < 0 || tx < 0 || ty % 2 || tx % 2 || ty / 2 >= OH || tx / 2 >= OW) continue;
                            const double term = (double)dy[at(OC, OH, OW, n, o, ty / 2, tx / 2)] * wt[((size_t)o * IC + i) * 9 + t];
                            b += term, bm += fabs(term);
                        }
                    const size_t k = at(IC, H, W, n, i, iy, ix);
                    track(dx1[k], b, bm, &wb, &bb);
                    track(dxa[k], b + r[k], bm + fabs(r[k]), &wa, &ba);
                }
    /* backward weights: dw[o][i][kh][kw] = Σ over images and output pixels of x[i](2·pixel + tap offset) · dy[o](pixel) */
    for (int o = 0; o < OC; o++)
        for (int i = 0; i < IC; i++)
            for (int t = 0; t < 9; t++) {
                double g = 0, gm = 0;
                for (int n = 0; n < s->n; n++)
                    for (int oy = 0; oy < OH; oy++)
                        for (int ox = 0; ox < OW; ox++) {
                            const int iy = 2 * oy + t / 3 - 1, ix = 2 * ox + t % 3 - 1;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            const double term = (double)x[at(IC, H, W, n, i, iy, ix)] * dy[at(OC, OH, OW, n, o, oy, ox)];
                            g += term, gm += fabs(term);
                        }
                const size_t k = ((((size_t)(o / 16) * IB + i / 16) * 9 + t) * 16 + o % 16) * 16 + i % 16;
                track(dw1[k], g, gm, &w1, &b1);
                track(dw2[k], g, gm, &ww, &bw);
            }
    CHECK(bf == 0, "batch %d, %d -> %d, %dx%d: forward: %d outputs off, worst %.2e of their terms", s->n, IC, OC, H, W, bf, wf);
    CHECK(bb == 0, "batch %d, %d -> %d, %dx%d: backward data: %d input gradients off, worst %.2e", s->n, IC, OC, H, W, bb, wb);
    CHECK(ba == 0, "batch %d, %d -> %d, %dx%d: backward data added to a gradient: %d off, worst %.2e", s->n, IC, OC, H, W,
          ba, wa);
    CHECK(bw == 0 && b1 == 0, "batch %d, %d -> %d, %dx%d: backward weights: %d (2 threads) and %d (1 thread) off, worst %.2e, "
          "%.2e", s->n, IC, OC, H, W, bw, b1, ww, w1);
    CHECK(memcmp(y1, y2, sizeof(float) * ny) == 0 && memcmp(dx1, dx2, sizeof(float) * nx) == 0,
          "batch %d, %d -> %d, %dx%d: forward or backward data differ between 1 and 2 threads", s->n, IC, OC, H, W);
    CHECK(memcmp(dw2, dw3, sizeof(float) * nw) == 0 && memcmp(dw2, dw4, sizeof(float) * nw) == 0,
          "batch %d, %d -> %d, %dx%d: backward weights differ between runs with 2 threads (with and without the input "
          "gradient)", s->n, IC, OC, H, W);
    printf("batch %d, %2d -> %2d, %2dx%-2d: worst of the terms: forward %.2e, backward data %.2e (added %.2e), weights "
           "%.2e (1 thread %.2e)\n", s->n, IC, OC, H, W, wf, wb, wa, ww, w1);
    free(x), free(dy), free(y1), free(y2), free(r), free(dx1), free(dx2), free(dxa), free(wt), free(io), free(oi);
    free(dw1), free(dw2), free(dw3), free(dw4), free(scratch);
}

int main(void) {
    if (!s2_available()) {
        printf("test_conv_s2: no AVX-512 in this build: skipped\n");
        return 77;
    }
    CHECK(!s2_fits(16, 16, 32, 32) && !s2_fits(8, 32, 32, 32) && !s2_fits(16, 32, 31, 32) && !s2_fits(16, 32, 32, 24) &&
          s2_fits(16, 32, 32, 32) && s2_fits(32, 64, 16, 16), "s2_fits: which shapes the kernels take");
    const s2_shape shapes[] = {{3, 16, 32, 32, 32}, {3, 32, 64, 16, 16}, {2, 48, 64, 2, 16}, {3, 16, 32, 6, 48}};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) check_shape(&shapes[k], 100 + 10 * k);
    return test_report("test_conv_s2");
}
