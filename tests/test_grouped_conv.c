/* test_grouped_conv.c — grouped convolutions with few channels per group (ResNeXt's), which cnn.c runs
 * as convolutions over merged groups with block-diagonal weights (conv.c: grouped_expansion), against a
 * direct computation in double precision by this test: the forward of training and evaluation plans, the
 * batch norm folded in evaluation, and weights written between two forwards (the derived weights must
 * follow). The backward passes are checked against finite differences by test_ops_gradcheck ("groups
 * merged"); test_cli checks that ResNeXt's grouped convolutions run oneDNN's blocked kernels. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/plan.h"
#include "ops/ops.h"
#include "testutil.h"

#define N 2
#define C 32
#define H 7
#define W 6
#define TOL 1e-5 /* f32 against double: ~1e-7 here */

typedef struct net {
    graph *g;
    int y, conv, bn; /* output tensor; nodes (bn -1 if absent) */
    conv_cfg cfg;
    int oh, ow;
} net;

static void build(net *m, int groups, int stride, bool bn) {
    memset(m, 0, sizeof *m);
    m->g = graph_new();
    m->cfg = (conv_cfg){C, 3, stride, 1, 1, groups, true, INIT_UNIFORM_FAN_IN};
    int x = graph_input(m->g, C, H, W);
    m->y = op_conv2d(m->g, x, "conv", &m->cfg);
    m->conv = m->y >= 0 ? m->g->tensors[m->y].producer : -1;
    m->bn = -1;
    if (bn) {
        m->y = op_batchnorm(m->g, m->y, "bn");
        m->bn = m->y >= 0 ? m->g->tensors[m->y].producer : -1;
    }
    graph_set_output(m->g, m->y, OUTPUT_MAIN, 1);
    m->oh = (H + 2 - 3) / stride + 1;
    m->ow = (W + 2 - 3) / stride + 1;
}

/* y = conv(x) + bias, then the batch norm with its running statistics (PyTorch's eps 1e-5) */
static void reference(const net *m, const float *x, double *y) {
    const int per = C / m->cfg.groups, s = m->cfg.stride;
    const node *cn = &m->g->nodes[m->conv];
    float *w = malloc(sizeof(float) * C * per * 9), b[C], p[4][C];
    CHECK_OK(graph_param_read(m->g, cn->params[0], w));
    CHECK_OK(graph_param_read(m->g, cn->params[1], b));
    if (m->bn >= 0)
        for (int k = 0; k < 4; k++) CHECK_OK(graph_param_read(m->g, m->g->nodes[m->bn].params[k], p[k]));
    for (int n = 0; n < N; n++)
        for (int o = 0; o < C; o++)
            for (int i = 0; i < m->oh; i++)
                for (int j = 0; j < m->ow; j++) {
                    double sum = b[o];
                    for (int c = 0; c < per; c++) {
                        const int ic = o / per * per + c; /* the input channels of o's group */
                        for (int kh = 0; kh < 3; kh++)
                            for (int kw = 0; kw < 3; kw++) {
                                int yy = i * s - 1 + kh, xx = j * s - 1 + kw;
                                if (yy >= 0 && yy < H && xx >= 0 && xx < W)
                                    sum += (double)x[((n * C + ic) * H + yy) * W + xx] * w[((o * per + c) * 3 + kh) * 3 + kw];
                            }
                    }
                    if (m->bn >= 0) sum = (sum - p[2][o]) / sqrt((double)p[3][o] + 1e-5) * p[0][o] + p[1][o];
                    y[((n * C + o) * m->oh + i) * m->ow + j] = sum;
                }
    free(w);
}

static void randomize(net *m, uint64_t seed) {
    const node *cn = &m->g->nodes[m->conv];
    float *w = malloc(sizeof(float) * C * C * 9), v[C];
    fill_uniform(w, (int64_t)C * (C / m->cfg.groups) * 9, seed, -0.5f, 0.5f);
    CHECK_OK(graph_param_write(m->g, cn->params[0], w));
    fill_uniform(v, C, seed + 1, -0.5f, 0.5f);
    CHECK_OK(graph_param_write(m->g, cn->params[1], v));
    if (m->bn >= 0) {
        const float lo[4] = {0.5f, -0.5f, -0.3f, 0.5f}, hi[4] = {1.5f, 0.5f, 0.3f, 2.0f}; /* γ, β, mean, var */
        for (int k = 0; k < 4; k++) {
            fill_uniform(v, C, seed + 2 + k, lo[k], hi[k]);
            CHECK_OK(graph_param_write(m->g, m->g->nodes[m->bn].params[k], v));
        }
    }
    free(w);
}

/* One forward of plan e (training plans: without the batch norm, whose batch statistics the reference
 * does not compute) against the reference; returns the relative error. */
static double forward_error(net *m, plan *e, bool training, const float *x) {
    const int size = N * C * m->oh * m->ow;
    float *got = malloc(sizeof(float) * size);
    double *want = malloc(sizeof(double) * size);
    plan_poison(e);
    memcpy(plan_input(e), x, sizeof(float) * N * C * H * W);
    CHECK_OK(plan_forward(e, training, 0));
    CHECK_OK(plan_read(e, m->y, false, got));
    reference(m, x, want);
    const double err = rel_error(got, want, size);
    free(got), free(want);
    return err;
}

static void check(int groups, int stride, bool bn, enum plan_mode mode) {
    char name[96];
    snprintf(name, sizeof name, "%d groups of %d channels, stride %d%s, %s", groups, C / groups, stride,
             bn ? ", batch norm folded" : "", mode == PLAN_TRAIN ? "training plan" : "evaluation plan");
    net m;
    build(&m, groups, stride, bn);
    plan *e = NULL;
    CHECK_OK(graph_ok(m.g) ? plan_create(m.g, N, mode, &e) : m.g->error);
    if (!e) {
        graph_free(m.g);
        return;
    }
    float *x = malloc(sizeof(float) * N * C * H * W);
    fill_uniform(x, N * C * H * W, 7, -1, 1);
    randomize(&m, 11);
    double first = forward_error(&m, e, mode == PLAN_TRAIN, x);
    randomize(&m, 23); /* new weights: the merged copy must be remade */
    double second = forward_error(&m, e, mode == PLAN_TRAIN, x);
    CHECK(first <= TOL && second <= TOL, "%s: max relative error %.2e, after new weights %.2e", name, first, second);
    printf("%s: max relative error %.2e, after new weights %.2e\n", name, first, second);
    free(x);
    plan_free(e);
    graph_free(m.g);
}

int main(void) {
    const int groups[3] = {8, 4, 16}; /* 4 and 8 channels a group; 2 (merging 8 would not pay: not merged) */
    for (int i = 0; i < 3; i++)
        for (int stride = 1; stride <= 2; stride++) {
            check(groups[i], stride, false, PLAN_TRAIN);
            check(groups[i], stride, false, PLAN_EVAL);
            check(groups[i], stride, true, PLAN_EVAL);
        }
    return test_report("test_grouped_conv");
}
