/* test_fusion.c — the residual addition fused into the convolution before it (evaluation plans: a sum
 * post-op, the convolution's output taking the other addend's buffer), against a direct computation
 * in double precision by this test: convolutions 3×3 pad 1 (32 channels, so that AVX-512 runs them
 * with Winograd), batch norm with running statistics, addition, ReLU. Three graphs: the addend made two
 * convolutions earlier (fused), the addend read again after the addition (not fused: its buffer is
 * still needed), the addend being the convolution's own input (not fused: it reads it). Each checks
 * which way the plan went, so a rule that fuses where it must not, or never fuses, fails. On a CPU with
 * bf16 arithmetic the first graph runs in mixed precision too (bf16 convolutions, f32 addend), within
 * what bf16 operands allow. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "backend/dnnl_backend.h"
#include "core/error.h"
#include "core/plan.h"
#include "ops/ops.h"
#include "testutil.h"

#define N 2
#define C 32
#define H 6
#define W 5
#define SIZE (N * C * H * W)
#define TOL 1e-5      /* f32 (Winograd too) against double: ~1e-6 here */
#define TOL_BF16 1e-2 /* bf16 operands (8 significant bits) through three convolutions: ~2e-3 here */

enum shape { FUSED, READ_AFTER, OWN_INPUT };

typedef struct net {
    graph *g;
    int x, a, y, last_conv;   /* tensors; last_conv: the node that may absorb the addition */
    int conv[3], bn[3];       /* nodes, -1 if absent */
} net;

static int conv_bn(net *m, int x, int i, bool relu) {
    conv_cfg c = {C, 3, 1, 1, 1, 1, false, INIT_KAIMING_NORMAL_OUT};
    char name[8];
    snprintf(name, sizeof name, "conv%d", i);
    int y = op_conv2d(m->g, x, name, &c);
    m->conv[i] = y >= 0 ? m->g->tensors[y].producer : -1;
    snprintf(name, sizeof name, "bn%d", i);
    y = op_batchnorm(m->g, y, name);
    m->bn[i] = y >= 0 ? m->g->tensors[y].producer : -1;
    return relu ? op_relu(m->g, y) : y;
}

/* x → a = relu(bn0(conv0(x))) → then, by shape:
 *   FUSED:      y = relu(bn2(conv2(relu(bn1(conv1(a))))) + a)
 *   READ_AFTER: the same, then y + a
 *   OWN_INPUT:  y = relu(bn1(conv1(a)) + a) */
static void build(net *m, enum shape s, bool bf16) {
    memset(m, 0, sizeof *m);
    m->conv[2] = m->bn[2] = -1;
    m->g = graph_new();
    m->g->bf16 = bf16;
    m->x = graph_input(m->g, C, H, W);
    m->a = conv_bn(m, m->x, 0, true);
    int b = s == OWN_INPUT ? conv_bn(m, m->a, 1, false) : conv_bn(m, conv_bn(m, m->a, 1, true), 2, false);
    m->y = op_relu(m->g, op_add(m->g, b, m->a));
    if (s == READ_AFTER) m->y = op_add(m->g, m->y, m->a);
    m->last_conv = s == OWN_INPUT ? m->conv[1] : m->conv[2];
    graph_set_output(m->g, m->y, OUTPUT_MAIN, 1);
}

/* Batch-norm parameters and running statistics away from the identity, so that the fold matters. */
static void set_bn(net *m, int i, uint64_t seed) {
    const node *n = &m->g->nodes[m->bn[i]];
    float v[C];
    const float lo[4] = {0.5f, -0.5f, -0.3f, 0.5f}, hi[4] = {1.5f, 0.5f, 0.3f, 2.0f}; /* γ, β, mean, var */
    for (int k = 0; k < 4; k++) {
        fill_uniform(v, C, seed + k, lo[k], hi[k]);
        CHECK_OK(graph_param_write(m->g, n->params[k], v));
    }
}

static void ref_conv(const double *x, const float *w, double *y) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < C; o++)
            for (int i = 0; i < H; i++)
                for (int j = 0; j < W; j++) {
                    double sum = 0;
                    for (int c = 0; c < C; c++)
                        for (int kh = 0; kh < 3; kh++)
                            for (int kw = 0; kw < 3; kw++) {
                                int yy = i - 1 + kh, xx = j - 1 + kw;
                                if (yy >= 0 && yy < H && xx >= 0 && xx < W)
                                    sum += x[((n * C + c) * H + yy) * W + xx] * w[((o * C + c) * 3 + kh) * 3 + kw];
                            }
                    y[((n * C + o) * H + i) * W + j] = sum;
                }
}

/* conv i, then batch norm i with its running statistics (PyTorch's eps 1e-5), ReLU if asked */
static void ref_conv_bn(const net *m, int i, const double *x, double *y, bool relu) {
    const node *cn = &m->g->nodes[m->conv[i]], *bn = &m->g->nodes[m->bn[i]];
    float *w = malloc(sizeof(float) * C * C * 9), p[4][C];
    CHECK_OK(graph_param_read(m->g, cn->params[0], w));
    for (int k = 0; k < 4; k++) CHECK_OK(graph_param_read(m->g, bn->params[k], p[k]));
    ref_conv(x, w, y);
    for (int e = 0; e < SIZE; e++) {
        int c = e / (H * W) % C;
        double v = (y[e] - p[2][c]) / sqrt((double)p[3][c] + 1e-5) * p[0][c] + p[1][c];
        y[e] = relu && v < 0 ? 0 : v;
    }
    free(w);
}

static void reference(const net *m, enum shape s, const float *x, double *y) {
    double *in = malloc(sizeof(double) * SIZE), *a = malloc(sizeof(double) * SIZE), *t = malloc(sizeof(double) * SIZE);
    for (int e = 0; e < SIZE; e++) in[e] = x[e];
    ref_conv_bn(m, 0, in, a, true);
    if (s == OWN_INPUT) {
        ref_conv_bn(m, 1, a, y, false);
    } else {
        ref_conv_bn(m, 1, a, t, true);
        ref_conv_bn(m, 2, t, y, false);
    }
    for (int e = 0; e < SIZE; e++) {
        double v = y[e] + a[e];
        y[e] = v > 0 ? v : 0;
        if (s == READ_AFTER) y[e] += a[e];
    }
    free(in), free(a), free(t);
}

static void check_shape(enum shape s, const char *name, bool bf16) {
    net m;
    build(&m, s, bf16);
    plan *e = NULL;
    CHECK_OK(graph_ok(m.g) ? plan_create(m.g, N, PLAN_EVAL, &e) : m.g->error);
    if (!e) {
        graph_free(m.g);
        return;
    }
    for (int i = 0; i < 3; i++)
        if (m.bn[i] >= 0) set_bn(&m, i, 10 * i + 1);
    float *x = malloc(sizeof(float) * SIZE), *got = malloc(sizeof(float) * SIZE);
    double *want = malloc(sizeof(double) * SIZE);
    fill_uniform(x, SIZE, 7, -1, 1);
    plan_poison(e);
    memcpy(plan_input(e), x, sizeof(float) * SIZE);
    CHECK_OK(plan_forward(e, false, 0));
    CHECK_OK(plan_read(e, m.y, false, got));
    reference(&m, s, x, want);
    const double err = rel_error(got, want, SIZE);
    bool fused = plan_fused(e, m.last_conv) & FUSED_ADD;
    CHECK(err <= (bf16 ? TOL_BF16 : TOL), "%s: max relative error %.2e", name, err);
    CHECK(fused == (s == FUSED), "%s: the addition is %s", name, fused ? "fused" : "not fused");
    printf("%s: %s, max relative error %.2e\n", name, fused ? "fused" : "not fused", err);
    free(x), free(got), free(want);
    plan_free(e);
    graph_free(m.g);
}

int main(void) {
    check_shape(FUSED, "addend made two convolutions earlier", false);
    check_shape(READ_AFTER, "addend read again after the addition", false);
    check_shape(OWN_INPUT, "addend is the convolution's input", false);
    if (be_precision_check("bf16", NULL) == CNN_OK)
        check_shape(FUSED, "addend made two convolutions earlier, bf16", true);
    else
        cnn_clear_error();
    return test_report("test_fusion");
}
