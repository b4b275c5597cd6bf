/* test_bf16.c — convolutions in bf16 (graph.bf16, --precision bf16) against a direct convolution in
 * double precision of the same operands, rounded to bf16 by this test (round to nearest even): the
 * forward output (training and evaluation plans), the input gradient and the weight and bias
 * gradients, the backward pass starting from dL/dy = r (the gradcheck probe; r rounded too, as the
 * output gradient is); then, after the weights are negated (new values: the bf16 view must follow),
 * the training forward again. For each case the same convolution in f32 is checked to lie far outside the
 * tolerance of that reference, so the test fails if the rounding is not done.
 * Exit 77 (skipped) on a CPU without bf16 arithmetic. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "backend/dnnl_backend.h"
#include "core/error.h"
#include "core/plan.h"
#include "gradcheck.h"
#include "ops/ops.h"
#include "testutil.h"

#define BATCH 3
#define TOL 2e-5   /* f32 accumulation against double: ~1e-6 here */
#define APART 2e-4 /* f32 operands against bf16 ones: ~1e-3 here */

typedef struct conv_case {
    const char *name;
    int in_c, h, w;
    conv_cfg cfg;
} conv_case;

/* Round to bf16 (nearest, ties to even), kept in a float. */
static float bf16(float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    u = (u + 0x7fff + ((u >> 16) & 1)) & 0xffff0000u;
    memcpy(&v, &u, 4);
    return v;
}

static void round_all(float *v, int64_t n) {
    for (int64_t i = 0; i < n; i++) v[i] = bf16(v[i]);
}

/* Direct convolution, its input gradient and its weight and bias gradients (all nchw / oihw). */
typedef struct reference {
    double *y, *dx, *dw, *db;
} reference;

static void reference_conv(const conv_case *c, int oh, int ow, const float *x, const float *w, const float *b,
                           const float *dy, reference *r) {
    const conv_cfg *k = &c->cfg;
    const int icg = c->in_c / k->groups, ocg = k->out_c / k->groups, oc = k->out_c;
    memset(r->dx, 0, sizeof(double) * BATCH * c->in_c * c->h * c->w);
    memset(r->dw, 0, sizeof(double) * oc * icg * k->k * k->k);
    memset(r->db, 0, sizeof(double) * oc);
    for (int n = 0; n < BATCH; n++)
        for (int o = 0; o < oc; o++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++) {
                    const int64_t yi = (((int64_t)n * oc + o) * oh + i) * ow + j;
                    double sum = b ? b[o] : 0;
                    for (int ci = 0; ci < icg; ci++) {
                        const int ch = o / ocg * icg + ci;
                        for (int kh = 0; kh < k->k; kh++)
                            for (int kw = 0; kw < k->k; kw++) {
                                const int yy = i * k->stride - k->pad + kh * k->dilation;
                                const int xx = j * k->stride - k->pad + kw * k->dilation;
                                if (yy < 0 || yy >= c->h || xx < 0 || xx >= c->w) continue;
                                const int64_t xi = (((int64_t)n * c->in_c + ch) * c->h + yy) * c->w + xx;
                                const int64_t wi = ((o * icg + ci) * k->k + kh) * k->k + kw;
                                sum += (double)x[xi] * w[wi];
                                r->dx[xi] += (double)dy[yi] * w[wi];
                                r->dw[wi] += (double)dy[yi] * x[xi];
                            }
                    }
                    r->y[yi] = sum;
                    r->db[o] += dy[yi];
                }
}

typedef struct result {
    float *y, *y_eval, *dx, *dw, *db;
    float *y_neg; /* output after the weights were negated */
} result;

/* The convolution in a graph with the given precision: outputs and gradients for the input x,
 * with the weights and bias the graph's initialization gives (returned in w, b). */
static int run_graph(const conv_case *c, bool use_bf16, const float *x, float *w, float *b, result *out, int *oh,
                     int *ow) {
    graph *g = graph_new();
    int in = graph_input(g, c->in_c, c->h, c->w);
    g->tensors[in].requires_grad = true;
    int y = op_conv2d(g, in, "conv", &c->cfg);
    graph_set_output(g, y, OUTPUT_MAIN, 1);
    gc_attach_probe(g, y);
    g->bf16 = use_bf16;
    plan *p = NULL, *e = NULL;
    cnn_status st = graph_ok(g) ? plan_create(g, BATCH, PLAN_TRAIN, &p) : g->error;
    if (!st) st = plan_create(g, BATCH, PLAN_EVAL, &e);
    if (st) {
        fprintf(stderr, "FAIL %s: compile: %s\n", c->name, cnn_last_error());
        test_failures++;
        plan_free(p);
        graph_free(g);
        return 1;
    }
    *oh = g->tensors[y].h;
    *ow = g->tensors[y].w;
    const int64_t nx = (int64_t)BATCH * c->in_c * c->h * c->w;
    memcpy(plan_input(p), x, sizeof(float) * nx);
    memcpy(plan_input(e), x, sizeof(float) * nx);
    CHECK_OK(plan_forward(p, true, 1));
    CHECK_OK(plan_backward(p));
    CHECK_OK(plan_forward(e, false, 1));
    CHECK_OK(plan_read(p, y, false, out->y));
    CHECK_OK(plan_read(e, y, false, out->y_eval));
    CHECK_OK(plan_read(p, in, true, out->dx));
    const node *nd = &g->nodes[g->tensors[y].producer];
    CHECK_OK(graph_param_read(g, nd->params[0], w));
    CHECK_OK(graph_param_grad_read(g, nd->params[0], out->dw));
    if (nd->nparams > 1) {
        CHECK_OK(graph_param_read(g, nd->params[1], b));
        CHECK_OK(graph_param_grad_read(g, nd->params[1], out->db));
    }
    const int64_t nw = (int64_t)c->cfg.out_c * (c->in_c / c->cfg.groups) * c->cfg.k * c->cfg.k;
    float *neg = malloc(sizeof(float) * nw);
    for (int64_t i = 0; i < nw; i++) neg[i] = -w[i]; /* exact, and exact in bf16 too */
    CHECK_OK(graph_param_write(g, nd->params[0], neg));
    free(neg);
    CHECK_OK(plan_forward(p, true, 2));
    CHECK_OK(plan_read(p, y, false, out->y_neg));
    plan_free(e);
    plan_free(p);
    graph_free(g);
    return 0;
}

static float *floats(int64_t n) { return calloc((size_t)n, sizeof(float)); }
static double *doubles(int64_t n) { return calloc((size_t)n, sizeof(double)); }

static void check_case(const conv_case *c) {
    const conv_cfg *k = &c->cfg;
    const int64_t nx = (int64_t)BATCH * c->in_c * c->h * c->w, nw = (int64_t)k->out_c * (c->in_c / k->groups) * k->k * k->k;
    const int64_t ny_max = (int64_t)BATCH * k->out_c * c->h * c->w; /* stride >= 1, "same" padding at most */
    float *x = floats(nx), *w = floats(nw), *b = floats(k->out_c), *r = floats(ny_max);
    fill_uniform(x, nx, 7, -1, 1);
    result got[2];
    for (int i = 0; i < 2; i++)
        got[i] = (result){floats(ny_max), floats(ny_max), floats(nx), floats(nw), floats(k->out_c), floats(ny_max)};
    int oh = 0, ow = 0;
    if (run_graph(c, true, x, w, b, &got[1], &oh, &ow) || run_graph(c, false, x, w, b, &got[0], &oh, &ow)) return;
    const int64_t ny = (int64_t)BATCH * k->out_c * oh * ow;
    gc_probe_weights(r, ny);
    reference ref = {doubles(ny), doubles(nx), doubles(nw), doubles(k->out_c)};
    round_all(x, nx);
    round_all(w, nw);
    round_all(r, ny);
    reference_conv(c, oh, ow, x, w, k->bias ? b : NULL, r, &ref);
    double *y_neg = doubles(ny); /* conv(x, -w) + b = 2b - (conv(x, w) + b) */
    for (int64_t i = 0; i < ny; i++) y_neg[i] = (k->bias ? 2.0 * b[i / (oh * ow) % k->out_c] : 0.0) - ref.y[i];
    const char *names[] = {"output (training)", "output (evaluation)", "input gradient", "weight gradient",
                           "output, new weights", "bias gradient"};
    for (int q = 0; q < (k->bias ? 6 : 5); q++) {
        const double *want[] = {ref.y, ref.y, ref.dx, ref.dw, y_neg, ref.db};
        const int64_t n[] = {ny, ny, nx, nw, ny, k->out_c};
        const float *in16[] = {got[1].y, got[1].y_eval, got[1].dx, got[1].dw, got[1].y_neg, got[1].db};
        const float *in32[] = {got[0].y, got[0].y_eval, got[0].dx, got[0].dw, got[0].y_neg, got[0].db};
        double e16 = rel_error(in16[q], want[q], n[q]), e32 = rel_error(in32[q], want[q], n[q]);
        printf("%-52s %-20s bf16 %.1e  (f32 %.1e)\n", c->name, names[q], e16, e32);
        CHECK(e16 <= TOL, "%s, %s: bf16 %.2e from the bf16 reference (tolerance %.0e)", c->name, names[q], e16, TOL);
        CHECK(e32 >= APART, "%s, %s: f32 only %.2e from the bf16 reference: the case cannot tell them apart",
              c->name, names[q], e32);
    }
    free(x), free(w), free(b), free(r);
    for (int i = 0; i < 2; i++)
        free(got[i].y), free(got[i].y_eval), free(got[i].dx), free(got[i].dw), free(got[i].db), free(got[i].y_neg);
    free(ref.y), free(ref.dx), free(ref.dw), free(ref.db), free(y_neg);
}

int main(void) {
    if (be_precision_check("bf16", NULL) != CNN_OK) {
        printf("skipped: %s\n", cnn_last_error());
        return 77;
    }
    /* {out_c, k, stride, pad, dilation, groups, bias, init} */
    const conv_case cases[] = {
        {"conv 3x3, 16 -> 32 channels, 12x12, bias", 16, 12, 12, {32, 3, 1, 1, 1, 1, true, INIT_KAIMING_NORMAL_OUT}},
        {"conv 1x1 stride 2, 24 -> 40 channels (padded blocks)", 24, 14, 14, {40, 1, 2, 0, 1, 1, false, INIT_KAIMING_NORMAL_OUT}},
        {"conv 3x3 stride 2, 32 -> 64 channels, 16x16", 32, 16, 16, {64, 3, 2, 1, 1, 1, false, INIT_KAIMING_NORMAL_OUT}},
        {"conv 3x3 depthwise, 32 channels, 12x12, bias", 32, 12, 12, {32, 3, 1, 1, 1, 32, true, INIT_KAIMING_NORMAL_OUT}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) check_case(&cases[i]);
    return test_report("test_bf16");
}
