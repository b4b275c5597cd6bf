/* test_silu.c — SiLU's arithmetic (src/ops/silu.h, through silu.c's kernels) against SiLU and its derivative
 * computed here in double precision with the C library's exp: silu(z) = z/(1 + e^−z),
 * d/dz = σ(z)·(1 + z·(1 − σ(z))). Over a million inputs spread over [−30, 30], plus ±100, ±1e30, values
 * near the thresholds ±87 and ±88, tiny and subnormal ones: each result within 1e-6 of the exact value
 * relative to the terms that make it (|silu| forward; |dy|·σ·(1 + |z|·(1 − σ)) backward) plus 4e-36
 * absolute (below z = −87 e^z counts as 0; PyTorch's silu is −0 from about z = −88.7, where its e^−z
 * overflows). The cases PyTorch defines: silu(±0) = ±0, silu(+inf) = +inf, silu(−inf) = NaN, NaN stays
 * NaN, NaN gradients at ±inf. Destinations are poisoned first; the backward accumulates onto what dz
 * held. Batch norm with SiLU fused in uses the same arithmetic; finite differences through plans, both
 * fused and not: test_ops_gradcheck. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ops/silu.h"
#include "testutil.h"

#define N ((size_t)1 << 20)

static double sigmoid_exact(double z) { return 1.0 / (1.0 + exp(-z)); }

static const float special[] = {0.0f,     -0.0f,   1e-30f,  -1e-30f, 1e-40f, -1e-40f, 87.0f,  -87.0f,
                                86.99f,   -86.99f, 87.01f,  -87.01f, 88.0f,  -88.0f,  88.5f,  -88.5f,
                                100.0f,   -100.0f, 1e30f,   -1e30f,  15.0f,  -15.0f,  -1.2785f, 1.0f};

/* within tol·scale + 4e-36 of want (below z = −87: |silu| < 2e-36, |silu'·dy| < 4e-36 with |dy| ≤ 2), or both NaN */
static bool close_to(float got, double want, double scale, double tol) {
    if (isnan(want)) return isnan(got);
    return fabs((double)got - want) <= tol * scale + 4e-36;
}

int main(void) {
    float *z = aligned_alloc(64, N * sizeof(float)), *dy = aligned_alloc(64, N * sizeof(float));
    float *y = aligned_alloc(64, N * sizeof(float));
    float *dz = aligned_alloc(64, N * sizeof(float)), *base = aligned_alloc(64, N * sizeof(float));
    fill_uniform(z, (int64_t)N, 1, -30.0f, 30.0f);
    fill_uniform(dy, (int64_t)N, 2, -2.0f, 2.0f);
    fill_uniform(base, (int64_t)N, 3, -1.0f, 1.0f);
    size_t ns = sizeof special / sizeof special[0];
    for (size_t i = 0; i < ns; i++) z[1000 + i] = special[i], z[N - 1 - i] = special[i];

    /* forward */
    for (size_t i = 0; i < N; i++) y[i] = NAN;
    silu_forward_kernel(y, z, N);
    int bad = 0;
    for (size_t i = 0; i < N && bad < 5; i++) {
        double want = (double)z[i] * sigmoid_exact(z[i]);
        if (!close_to(y[i], want, fabs(want), 1e-6)) {
            CHECK(false, "silu(%a) = %a, expected %.9g", z[i], y[i], want);
            bad++;
        }
    }
    /* PyTorch's special values */
    float zs[16] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, 1.0f}, ys[16];
    silu_forward_kernel(ys, zs, 16);
    CHECK(ys[0] == 0.0f && !signbit(ys[0]), "silu(+0) = %a", ys[0]);
    CHECK(ys[1] == 0.0f && signbit(ys[1]), "silu(-0) = %a, expected -0", ys[1]);
    CHECK(isinf(ys[2]) && ys[2] > 0, "silu(+inf) = %a", ys[2]);
    CHECK(isnan(ys[3]), "silu(-inf) = %a, expected NaN as in PyTorch", ys[3]);
    CHECK(isnan(ys[4]) && isnan(ys[5]), "silu(NaN) = %a, %a", ys[4], ys[5]);
    CHECK(ys[7] == 0.0f, "silu(0) in padding = %a", ys[7]);

    /* backward, overwriting */
    for (size_t i = 0; i < N; i++) dz[i] = NAN;
    silu_backward_kernel(dz, false, z, dy, N);
    bad = 0;
    for (size_t i = 0; i < N && bad < 5; i++) {
        double s = sigmoid_exact(z[i]), zi = z[i];
        double want = (double)dy[i] * s * (1.0 + zi * (1.0 - s));
        double scale = fabs((double)dy[i]) * s * (1.0 + fabs(zi) * (1.0 - s));
        if (!close_to(dz[i], want, scale, 1e-6)) {
            CHECK(false, "silu'(%a)·%a = %a, expected %.9g", z[i], dy[i], dz[i], want);
            bad++;
        }
    }
    /* accumulating: dz = base + the same gradient (to rounding: the addition may fuse into an FMA) */
    float *acc = aligned_alloc(64, N * sizeof(float));
    memcpy(acc, base, N * sizeof(float));
    silu_backward_kernel(acc, true, z, dy, N);
    bad = 0;
    for (size_t i = 0; i < N && bad < 5; i++) {
        double want = (double)base[i] + dz[i];
        if (!close_to(acc[i], want, fabs(base[i]) + fabs(dz[i]), 1e-6)) {
            CHECK(false, "accumulated gradient %zu: %a, expected %a + %a", i, acc[i], base[i], dz[i]);
            bad++;
        }
    }
    float gs[16], ones[16];
    for (int i = 0; i < 16; i++) ones[i] = 1.0f;
    silu_backward_kernel(gs, false, zs, ones, 16);
    CHECK(gs[0] == 0.5f && gs[1] == 0.5f, "silu'(±0) = %a, %a, expected 1/2", gs[0], gs[1]);
    CHECK(isnan(gs[2]) && isnan(gs[3]), "silu'(±inf) = %a, %a, expected NaN as in PyTorch", gs[2], gs[3]);
    CHECK(isnan(gs[4]), "silu'(NaN) = %a", gs[4]);
    float zero_dy[16] = {0};
    silu_backward_kernel(gs, false, zs, zero_dy, 16);
    CHECK(gs[7] == 0.0f && gs[6] == 0.0f, "padding's gradient stays 0: %a %a", gs[6], gs[7]);

    free(z), free(dy), free(y), free(dz), free(base), free(acc);
    return test_report("test_silu");
}
