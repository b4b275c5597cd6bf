/* test_stochastic_ops.c — what dropout and drop path do, from their definitions: in training every
 * output is 0 or input/(1-p) (per element for dropout, per whole sample for drop path), the
 * dropped fraction is p within sampling error, masks change from step to step and repeat for
 * the same step key; in evaluation both are the identity. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/plan.h"
#include "ops/ops.h"
#include "testutil.h"

typedef int (*op_fn)(graph *g, int x, float p);

static plan *build(op_fn fn, float p, int batch, int c, int hw, graph **gout, int *y) {
    graph *g = graph_new();
    int x = op_to_blocked(g, graph_input(g, c, hw, hw));
    *y = fn(g, x, p);
    graph_set_output(g, *y, OUTPUT_MAIN, 1);
    plan *pl = NULL;
    CHECK_OK(plan_create(g, batch, PLAN_TRAIN, &pl));
    size_t n = (size_t)batch * c * hw * hw;
    for (size_t i = 0; i < n; i++) plan_input(pl)[i] = 1.0f + (float)(i % 7);
    *gout = g;
    return pl;
}

/* fraction of zeros, and whether every non-zero equals input/(1-p) */
static double check_values(plan *pl, int y, size_t n, float p, bool *scaled) {
    float *out = malloc(sizeof(float) * n);
    CHECK_OK(plan_read(pl, y, false, out));
    size_t zeros = 0;
    *scaled = true;
    for (size_t i = 0; i < n; i++) {
        float in = 1.0f + (float)(i % 7);
        if (out[i] == 0) zeros++;
        else if (fabsf(out[i] - in / (1 - p)) > 1e-5f * in) *scaled = false;
    }
    free(out);
    return (double)zeros / n;
}

static void check_op(const char *name, op_fn fn, float p, int batch, int c, int hw, bool per_sample) {
    graph *g;
    int y;
    plan *pl = build(fn, p, batch, c, hw, &g, &y);
    size_t n = (size_t)batch * c * hw * hw, per = n / batch;
    float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
    CHECK_OK(plan_forward(pl, true, 7));
    bool scaled;
    double frac = check_values(pl, y, n, p, &scaled);
    double units = per_sample ? batch : (double)n, sd = sqrt(p * (1 - p) / units);
    CHECK(fabs(frac - p) < 4 * sd, "%s: dropped fraction %.4f, p %.2f (4 sd = %.4f)", name, frac, p, 4 * sd);
    CHECK(scaled, "%s: survivors are not input/(1-p)", name);
    CHECK_OK(plan_read(pl, y, false, a));
    if (per_sample)
        for (int s = 0; s < batch; s++) {
            int zeros = 0;
            for (size_t i = 0; i < per; i++) zeros += a[s * per + i] == 0;
            CHECK(zeros == 0 || zeros == (int)per, "%s: sample %d partly dropped (%d of %zu)", name, s, zeros, per);
        }
    CHECK_OK(plan_forward(pl, true, 7));
    CHECK_OK(plan_read(pl, y, false, b));
    CHECK(memcmp(a, b, sizeof(float) * n) == 0, "%s: same step key, different mask", name);
    CHECK_OK(plan_forward(pl, true, 8));
    CHECK_OK(plan_read(pl, y, false, b));
    CHECK(memcmp(a, b, sizeof(float) * n) != 0, "%s: next step key, same mask", name);
    CHECK_OK(plan_forward(pl, false, 8));
    CHECK_OK(plan_read(pl, y, false, b));
    bool identity = true;
    for (size_t i = 0; i < n; i++) identity = identity && b[i] == 1.0f + (float)(i % 7);
    CHECK(identity, "%s: evaluation is not the identity", name);
    printf("%s p=%.2f: dropped %.4f\n", name, p, frac);
    free(a);
    free(b);
    plan_free(pl);
    graph_free(g);
}

int main(void) {
    check_op("dropout", op_dropout, 0.3f, 8, 12, 6, false);
    check_op("dropout", op_dropout, 0.5f, 4, 16, 5, false);
    check_op("drop path", op_drop_path, 0.5f, 256, 3, 4, true);
    check_op("drop path", op_drop_path, 0.2f, 256, 8, 2, true);
    return test_report("test_stochastic_ops");
}
