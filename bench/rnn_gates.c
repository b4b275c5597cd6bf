/* rnn_gates.c — the ConvLSTM/ConvGRU gate math fused (src/ops/rnn_cell.c) against the same equations
 * written with the generic ops (slice, sigmoid, tanh, mul, add, lerp), forward and backward, side by
 * side in one process on the tensor shapes of regnet20's three stages. docs/regnet.md reports it.
 *
 *   build/bench/rnn_gates [--batch N] [--input HxW] [--steps N]     (threads: OMP_NUM_THREADS)
 *
 * One cell step as in a block past the first: the gates come from a 3×3 convolution of the block's
 * features x, the state from a 1×1 one (so that both formulations read the same tensors, in the
 * network's blocked layout). The convolutions, the concatenations and the small head that makes a loss
 * are the same in both graphs; the figure is the time of the other ops, the gate math. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/plan.h"
#include "core/rng.h"
#include "ops/ops.h"
#include "train/progress.h"

static const char *const shared_types[] = {"conv2d", "concat", "global_avgpool", "linear", "softmax_xent", "to_blocked"};

typedef struct timing {
    double gate, other, last;
    bool on;
} timing;

static void hook(plan *p, int nid, bool backward, void *ctx) {
    (void)backward;
    timing *t = ctx;
    double now = progress_now();
    if (t->on) {
        const char *type = plan_graph(p)->nodes[nid].op->type;
        bool shared = false;
        for (size_t i = 0; i < sizeof shared_types / sizeof *shared_types; i++) shared |= !strcmp(type, shared_types[i]);
        *(shared ? &t->other : &t->gate) += now - t->last;
    }
    t->last = now;
}

static int lstm(graph *g, int x, int hid, bool fused) {
    int gates = op_conv(g, x, "gates", 4 * hid, 3, 1), c_prev = op_conv(g, x, "state", hid, 1, 1), h, c;
    if (fused) {
        h = op_lstm_cell(g, gates, c_prev, &c);
    } else { /* rows f, i, o, g */
        int f = op_sigmoid(g, op_slice(g, gates, 0, hid)), i = op_sigmoid(g, op_slice(g, gates, hid, 2 * hid));
        int o = op_sigmoid(g, op_slice(g, gates, 2 * hid, 3 * hid)), gg = op_tanh(g, op_slice(g, gates, 3 * hid, 4 * hid));
        c = op_add(g, op_mul(g, f, c_prev), op_mul(g, i, gg));
        h = op_mul(g, o, op_tanh(g, c));
    }
    int parts[2] = {h, c};
    return op_concat(g, parts, 2);
}

static int gru(graph *g, int x, int hid, bool fused) {
    int a = op_conv(g, x, "gates", 2 * hid, 3, 1), h_prev = op_conv(g, x, "state", hid, 1, 1), rh;
    if (fused) rh = op_gru_reset(g, a, h_prev);
    else rh = op_mul(g, op_sigmoid(g, op_slice(g, a, 0, hid)), h_prev);
    int parts[2] = {x, rh};
    int cand = op_conv(g, op_concat(g, parts, 2), "cand", hid, 3, 1);
    if (fused) return op_gru_update(g, a, cand, h_prev);
    return op_lerp(g, h_prev, op_tanh(g, cand), op_sigmoid(g, op_slice(g, a, hid, 2 * hid)));
}

typedef struct bench {
    graph *g;
    plan *p;
    timing t;
} bench;

static cnn_status make(bench *b, bool gru_cell, bool fused, int hid, int h, int w, int batch) {
    memset(b, 0, sizeof *b);
    b->g = graph_new();
    if (!b->g) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    int x = graph_input(b->g, hid, h, w);
    int y = gru_cell ? gru(b->g, x, hid, fused) : lstm(b->g, x, hid, fused);
    graph_set_output(b->g, op_linear(b->g, op_global_avgpool(b->g, y), "fc", 10, true), OUTPUT_MAIN, 1.0f);
    graph_attach_losses(b->g, 0);
    if (!graph_ok(b->g)) return b->g->error;
    CNN_TRY(plan_create(b->g, batch, PLAN_TRAIN, &b->p));
    rng r = rng_stream(rng_key(1, RNG_SPLIT, 0, 0));
    for (size_t i = 0, n = (size_t)batch * hid * h * w; i < n; i++) plan_input(b->p)[i] = rng_normal(&r);
    for (int i = 0; i < batch; i++) plan_labels(b->p)[i] = (int32_t)rng_below(&r, 10);
    plan_set_hook(b->p, hook, &b->t);
    return CNN_OK;
}

static cnn_status step(bench *b, bool timed) {
    b->t.on = timed;
    b->t.last = progress_now();
    CNN_TRY(plan_forward(b->p, true, 0));
    return plan_backward(b->p);
}

/* The fused and the unfused graph of one cell and shape, their steps alternated. */
static cnn_status compare(bool gru_cell, int hid, int h, int w, int batch, int steps, double ms[2]) {
    bench b[2];
    cnn_status st = make(&b[0], gru_cell, true, hid, h, w, batch);
    if (!st) st = make(&b[1], gru_cell, false, hid, h, w, batch);
    for (int i = 0; !st && i < steps + 1; i++)
        for (int k = 0; k < 2 && !st; k++) st = step(&b[k], i > 0);
    for (int k = 0; k < 2; k++) {
        ms[k] = 1e3 * b[k].t.gate / steps;
        plan_free(b[k].p);
        graph_free(b[k].g);
    }
    return st;
}

int main(int argc, char **argv) {
    int batch = 128, steps = 10, h = 28, w = 28;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--input") && sscanf(argv[i + 1], "%dx%d", &h, &w) == 2) continue;
        else {
            fprintf(stderr, "usage: rnn_gates [--batch N] [--input HxW] [--steps N]\n");
            return 2;
        }
    }
    if (batch < 1 || steps < 1 || h < 4 || w < 4) {
        fprintf(stderr, "rnn_gates: batch and steps at least 1, input at least 4x4\n");
        return 2;
    }
    printf("gate math of one cell step, forward + backward, ms per step (batch %d, %d threads, %d steps each, "
           "alternated)\n%-9s %-16s %10s %10s %8s\n", batch, omp_get_max_threads(), steps, "cell", "stage shape",
           "fused", "unfused", "ratio");
    double total[2][2] = {{0}};
    for (int cell = 0; cell < 2; cell++)
        for (int s = 0; s < 3; s++) {
            int hid = 16 << s, sh = (h + (1 << s) - 1) >> s, sw = (w + (1 << s) - 1) >> s;
            double ms[2];
            cnn_status st = compare(cell == 1, hid, sh, sw, batch, steps, ms);
            if (st) {
                fprintf(stderr, "rnn_gates: %s\n", cnn_last_error());
                return 1;
            }
            char shape[32];
            snprintf(shape, sizeof shape, "%dx%dx%d", hid, sh, sw);
            printf("%-9s %-16s %10.2f %10.2f %7.2fx\n", cell ? "ConvGRU" : "ConvLSTM", shape, ms[0], ms[1], ms[1] / ms[0]);
            total[cell][0] += ms[0];
            total[cell][1] += ms[1];
        }
    for (int cell = 0; cell < 2; cell++)
        printf("%-9s %-16s %10.2f %10.2f %7.2fx\n", cell ? "ConvGRU" : "ConvLSTM", "three stages", total[cell][0],
               total[cell][1], total[cell][1] / total[cell][0]);
    return 0;
}
