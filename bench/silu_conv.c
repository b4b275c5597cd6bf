/* silu_conv.c — cnn.c's own convolutions with the SiLU in registers, 1×1 (src/ops/pointwise.c) and
 * depthwise (src/ops/depthwise.c), against oneDNN's with its SiLU post-op (CNN_OWN_SILU=0), side by side
 * in one process, on the shapes of EfficientNet-B0 at 224×224 (docs/design.md reports it):
 *
 *   build/bench/silu_conv [--batch N] [--steps N]     (threads: OMP_NUM_THREADS)
 *
 * Each graph is an evaluation plan of x → convolution → batch norm → SiLU (batch norm folded into the
 * convolution, the SiLU absorbed by it, as in the network) and a small head; the figure is the
 * convolution's time per forward, the two plans' forwards alternated. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/plan.h"
#include "core/rng.h"
#include "ops/ops.h"
#include "train/progress.h"

typedef struct timing {
    double conv, last;
    bool on;
} timing;

static void hook(plan *p, int nid, bool backward, void *ctx) {
    (void)backward;
    timing *t = ctx;
    double now = progress_now();
    if (t->on && !strcmp(plan_graph(p)->nodes[nid].op->type, "conv2d")) t->conv += now - t->last;
    t->last = now;
}

typedef struct bench {
    graph *g;
    plan *p;
    timing t;
} bench;

/* a convolution of EfficientNet-B0: 1×1 from ic to oc channels, or depthwise (oc 0) k×k */
typedef struct shape {
    int ic, oc, side, k, stride;
} shape;

static cnn_status make(bench *b, bool own, const shape *sh, int batch) {
    const int ic = sh->ic, side = sh->side;
    memset(b, 0, sizeof *b);
    b->g = graph_new();
    if (!b->g) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    int x = graph_input(b->g, ic, side, side);
    conv_cfg c = {sh->oc ? sh->oc : ic, sh->k, sh->stride, sh->k / 2, 1, sh->oc ? 1 : ic, false, INIT_KAIMING_NORMAL_OUT};
    int y = op_silu(b->g, op_batchnorm(b->g, op_conv2d(b->g, x, "conv", &c), "bn"));
    graph_set_output(b->g, op_linear(b->g, op_global_avgpool(b->g, y), "fc", 10, true), OUTPUT_MAIN, 1.0f);
    graph_attach_losses(b->g, 0);
    if (!graph_ok(b->g)) return b->g->error;
    setenv("CNN_OWN_SILU", own ? "1" : "0", 1); /* read when the plan is compiled */
    CNN_TRY(plan_create(b->g, batch, PLAN_EVAL, &b->p));
    rng r = rng_stream(rng_key(1, RNG_SPLIT, 0, 0));
    for (size_t i = 0, n = (size_t)batch * ic * side * side; i < n; i++) plan_input(b->p)[i] = rng_normal(&r);
    for (int i = 0; i < batch; i++) plan_labels(b->p)[i] = (int32_t)rng_below(&r, 10);
    plan_set_hook(b->p, hook, &b->t);
    return CNN_OK;
}

/* the own kernel's and oneDNN's plans of one shape, their forwards alternated; ms[0] own, ms[1] oneDNN */
static cnn_status compare(const shape *sh, int batch, int steps, double ms[2]) {
    bench b[2];
    cnn_status st = make(&b[0], true, sh, batch);
    if (!st) st = make(&b[1], false, sh, batch);
    for (int i = 0; !st && i < steps + 1; i++)
        for (int k = 0; k < 2 && !st; k++) {
            b[k].t.on = i > 0;
            b[k].t.last = progress_now();
            st = plan_forward(b[k].p, false, 0);
        }
    for (int k = 0; k < 2; k++) {
        ms[k] = 1e3 * b[k].t.conv / steps;
        plan_free(b[k].p);
        graph_free(b[k].g);
    }
    return st;
}

int main(int argc, char **argv) {
    int batch = 32, steps = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: silu_conv [--batch N] [--steps N]\n");
            return 2;
        }
    }
    if (batch < 1 || steps < 1) {
        fprintf(stderr, "silu_conv: batch and steps at least 1\n");
        return 2;
    }
    /* EfficientNet-B0's convolutions followed by a SiLU at 224×224 (input map side): its 1×1 expansions and
     * head, then its stride-1 depthwise convolutions (each shape once, whatever the number of blocks that
     * have it; at stride 2 plans keep oneDNN's: conv.c, own_depthwise_fits) */
    static const shape shapes[] = {{16, 96, 112, 1, 1},  {24, 144, 56, 1, 1}, {40, 240, 28, 1, 1},
                                   {80, 480, 14, 1, 1},  {112, 672, 14, 1, 1}, {192, 1152, 7, 1, 1},
                                   {320, 1280, 7, 1, 1}, {32, 0, 112, 3, 1},   {144, 0, 56, 3, 1},
                                   {240, 0, 28, 5, 1},   {480, 0, 14, 3, 1},   {480, 0, 14, 5, 1},
                                   {672, 0, 14, 5, 1},   {1152, 0, 7, 5, 1},   {1152, 0, 7, 3, 1}};
    printf("convolution + batch norm + SiLU, evaluation, ms per forward (batch %d, %d threads, %d steps each, "
           "alternated)\n%-28s %10s %10s %8s\n", batch, omp_get_max_threads(), steps, "convolution, input map", "own",
           "oneDNN", "ratio");
    double total[2][2] = {{0}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const shape *sh = &shapes[s];
        double ms[2];
        cnn_status st = compare(sh, batch, steps, ms);
        if (st) {
            fprintf(stderr, "silu_conv: %s\n", cnn_last_error());
            return 1;
        }
        char name[64];
        if (sh->oc) snprintf(name, sizeof name, "1x1 %d->%d, %dx%d", sh->ic, sh->oc, sh->side, sh->side);
        else snprintf(name, sizeof name, "%dx%d s%d depthwise %d, %dx%d", sh->k, sh->k, sh->stride, sh->ic, sh->side, sh->side);
        printf("%-28s %10.2f %10.2f %7.2fx\n", name, ms[0], ms[1], ms[1] / ms[0]);
        for (int k = 0; k < 2; k++) total[sh->oc == 0][k] += ms[k];
    }
    printf("%-28s %10.2f %10.2f %7.2fx\n%-28s %10.2f %10.2f %7.2fx\n", "sum of the 1x1", total[0][0], total[0][1],
           total[0][1] / total[0][0], "sum of the depthwise", total[1][0], total[1][1], total[1][1] / total[1][0]);
    return 0;
}
