/* pointwise.c — cnn.c's own 1×1 convolution with the SiLU in registers (src/ops/pointwise.c) against
 * oneDNN's with its SiLU post-op (CNN_OWN_POINTWISE=0), side by side in one process, on the shapes of
 * EfficientNet-B0's expansions and head at 224×224 (docs/design.md reports it):
 *
 *   build/bench/pointwise [--batch N] [--steps N]     (threads: OMP_NUM_THREADS)
 *
 * Each graph is an evaluation plan of x → 1×1 convolution → batch norm → SiLU (batch norm folded into the
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

static cnn_status make(bench *b, bool own, int ic, int oc, int side, int batch) {
    memset(b, 0, sizeof *b);
    b->g = graph_new();
    if (!b->g) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    int x = graph_input(b->g, ic, side, side);
    int y = op_silu(b->g, op_batchnorm(b->g, op_conv(b->g, x, "conv", oc, 1, 1), "bn"));
    graph_set_output(b->g, op_linear(b->g, op_global_avgpool(b->g, y), "fc", 10, true), OUTPUT_MAIN, 1.0f);
    graph_attach_losses(b->g, 0);
    if (!graph_ok(b->g)) return b->g->error;
    setenv("CNN_OWN_POINTWISE", own ? "1" : "0", 1); /* read when the plan is compiled */
    CNN_TRY(plan_create(b->g, batch, PLAN_EVAL, &b->p));
    rng r = rng_stream(rng_key(1, RNG_SPLIT, 0, 0));
    for (size_t i = 0, n = (size_t)batch * ic * side * side; i < n; i++) plan_input(b->p)[i] = rng_normal(&r);
    for (int i = 0; i < batch; i++) plan_labels(b->p)[i] = (int32_t)rng_below(&r, 10);
    plan_set_hook(b->p, hook, &b->t);
    return CNN_OK;
}

/* the own kernel's and oneDNN's plans of one shape, their forwards alternated; ms[0] own, ms[1] oneDNN */
static cnn_status compare(int ic, int oc, int side, int batch, int steps, double ms[2]) {
    bench b[2];
    cnn_status st = make(&b[0], true, ic, oc, side, batch);
    if (!st) st = make(&b[1], false, ic, oc, side, batch);
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
            fprintf(stderr, "usage: pointwise [--batch N] [--steps N]\n");
            return 2;
        }
    }
    if (batch < 1 || steps < 1) {
        fprintf(stderr, "pointwise: batch and steps at least 1\n");
        return 2;
    }
    /* EfficientNet-B0's 1×1 convolutions followed by a SiLU at 224×224: input channels, output, side */
    static const int shapes[][3] = {{16, 96, 112}, {24, 144, 56}, {40, 240, 28}, {80, 480, 14},
                                    {112, 672, 14}, {192, 1152, 7}, {320, 1280, 7}};
    printf("1x1 convolution + batch norm + SiLU, evaluation, ms per forward (batch %d, %d threads, %d steps each, "
           "alternated)\n%-22s %10s %10s %8s\n", batch, omp_get_max_threads(), steps, "channels, map", "own",
           "oneDNN", "ratio");
    double total[2] = {0};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        double ms[2];
        cnn_status st = compare(shapes[s][0], shapes[s][1], shapes[s][2], batch, steps, ms);
        if (st) {
            fprintf(stderr, "pointwise: %s\n", cnn_last_error());
            return 1;
        }
        char shape[48];
        snprintf(shape, sizeof shape, "%d->%d, %dx%d", shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][2]);
        printf("%-22s %10.2f %10.2f %7.2fx\n", shape, ms[0], ms[1], ms[1] / ms[0]);
        total[0] += ms[0];
        total[1] += ms[1];
    }
    printf("%-22s %10.2f %10.2f %7.2fx\n", "sum", total[0], total[1], total[1] / total[0]);
    return 0;
}
