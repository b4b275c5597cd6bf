/* test_convrnn.c — ConvLSTM and ConvGRU against finite differences (gradcheck.h): the fused gate ops
 * alone, cells unrolled over one, two and three steps with shared weights (the first step reading a
 * window of them), RegNet blocks and a bottleneck RegNet block; then the cells' errors on inputs
 * that do not fit, and the parameters a stage shares. */
#include <string.h>
#include "core/error.h"
#include "gradcheck.h"
#include "models/models.h"
#include "nn/blocks.h"
#include "nn/convrnn.h"
#include "ops/ops.h"
#include "testutil.h"

/* ---- the gate ops on pre-activations made by convolutions of x ---- */

static int conv_to(graph *g, int x, const char *name, int c) { return op_conv(g, x, name, c, 3, 1); }

static int b_lstm_ops(graph *g, int x, void *ctx) {
    int h = *(int *)ctx, c;
    int cp = op_tanh(g, conv_to(g, x, "c_prev", h));
    int y = op_lstm_cell(g, conv_to(g, x, "gates", 4 * h), cp, &c);
    int parts[2] = {y, c};
    return op_concat(g, parts, 2);
}

static int b_lstm_ops_zero(graph *g, int x, void *ctx) {
    int h = *(int *)ctx;
    return op_lstm_cell(g, conv_to(g, x, "gates", 3 * h), -1, NULL);
}

static int b_gru_ops(graph *g, int x, void *ctx) {
    int h = *(int *)ctx;
    int hp = op_tanh(g, conv_to(g, x, "h_prev", h));
    int gates = conv_to(g, x, "gates", 2 * h);
    int rh = op_gru_reset(g, gates, hp);
    int y = op_gru_update(g, gates, conv_to(g, x, "cand", h), hp);
    int parts[2] = {y, rh};
    return op_concat(g, parts, 2);
}

static int b_gru_ops_zero(graph *g, int x, void *ctx) {
    int h = *(int *)ctx;
    return op_gru_update(g, conv_to(g, x, "gates", h), conv_to(g, x, "cand", h), -1);
}

/* ---- cells unrolled over `steps` inputs (x's channel thirds) with shared weights ---- */

typedef struct cell_case {
    convrnn_kind kind;
    int in_c, hidden, steps;
} cell_case;

static int b_cell(graph *g, int x, void *ctx) {
    const cell_case *cc = ctx;
    convrnn cell;
    convrnn_init(&cell, cc->kind, cc->in_c, cc->hidden, 3);
    convrnn_state s = convrnn_zero();
    graph_push(g, "rnn");
    for (int t = 0; t < cc->steps; t++) s = convrnn_step(g, &cell, op_slice(g, x, t * cc->in_c, (t + 1) * cc->in_c), s, true);
    graph_pop(g);
    if (s.c < 0) return s.h;
    int parts[2] = {s.h, s.c};
    return op_concat(g, parts, 2);
}

/* ---- a stage of RegNet blocks: the first one strided with a projection ---- */

typedef struct block_case {
    convrnn_kind kind;
    bool bottleneck;
} block_case;

static int b_stage(graph *g, int x, void *ctx) {
    const block_case *bc = ctx;
    int width = 8;
    regulator r;
    convrnn_init(&r.cell, bc->kind, width, width, 3);
    r.state = convrnn_zero();
    graph_push(g, "layer1");
    for (int b = 0; b < 2; b++)
        x = bc->bottleneck ? nn_regnet_bottleneck(g, x, b, width, b == 0 ? 2 : 1, &r, b == 1)
                           : nn_regnet_block(g, x, b, width, b == 0 ? 2 : 1, &r, b == 1);
    graph_pop(g);
    return op_linear(g, op_global_avgpool(g, x), "fc", 5, true);
}

static void gradchecks(void) {
    int aligned = 16, odd = 5; /* 16 fills whole channel blocks (8 or 16), 5 does not */
    gc_opts o = {.batch = 2, .c = 3, .h = 5, .w = 4};
    gradcheck("lstm_cell ops, hidden 16", b_lstm_ops, &aligned, o);
    gradcheck("lstm_cell ops, hidden 5", b_lstm_ops, &odd, o);
    gradcheck("lstm_cell ops, zero state, hidden 5", b_lstm_ops_zero, &odd, o);
    gradcheck("lstm_cell ops, zero state, hidden 16", b_lstm_ops_zero, &aligned, o);
    gradcheck("gru_reset + gru_update ops, hidden 16", b_gru_ops, &aligned, o);
    gradcheck("gru_reset + gru_update ops, hidden 5", b_gru_ops, &odd, o);
    gradcheck("gru_update op, zero state, hidden 5", b_gru_ops_zero, &odd, o);
    /* the first step alone reads a window of the weights: the rest of their gradient must be 0 */
    gc_opts many = o;
    many.samples = 96;
    for (int k = 0; k < 2; k++) {
        convrnn_kind kind = k ? CONVRNN_GRU : CONVRNN_LSTM;
        const char *nm = convrnn_name(kind);
        char name[64];
        cell_case one = {kind, 8, 5, 1}, two = {kind, 8, 5, 2}, three = {kind, 8, 16, 3};
        gc_opts x1 = many, x2 = o, x3 = o;
        x1.c = 8;
        x2.c = 16;
        x3.c = 24;
        snprintf(name, sizeof name, "%s, one step from zero", nm);
        gradcheck(name, b_cell, &one, x1);
        snprintf(name, sizeof name, "%s, two steps, shared weights", nm);
        gradcheck(name, b_cell, &two, x2);
        snprintf(name, sizeof name, "%s, three steps, hidden 16", nm);
        gradcheck(name, b_cell, &three, x3);
    }
    /* batch norm and six ReLUs per block: the perturbed passes keep the unperturbed ReLU decisions
     * (gradcheck.h, freeze_relus) */
    gc_opts net = {.batch = 4, .c = 6, .h = 6, .w = 6, .xent = true, .eps = 1e-3f, .freeze_relus = true};
    block_case lstm = {CONVRNN_LSTM, false}, gru = {CONVRNN_GRU, false}, bottleneck = {CONVRNN_LSTM, true};
    gradcheck("RegNet blocks (ConvLSTM), stride 2 then 1", b_stage, &lstm, net);
    gradcheck("RegNet blocks (ConvGRU), stride 2 then 1", b_stage, &gru, net);
    gradcheck("bottleneck RegNet blocks (ConvLSTM)", b_stage, &bottleneck, net);
}

/* ---- errors and sharing ---- */

/* A step on an input that does not fit fails the graph with a message naming both shapes. */
static void shape_errors(void) {
    for (int k = 0; k < 2; k++) {
        convrnn_kind kind = k ? CONVRNN_GRU : CONVRNN_LSTM;
        graph *g = graph_new();
        int x = graph_input(g, 3, 8, 8);
        convrnn cell;
        convrnn_init(&cell, kind, 4, 4, 3);
        graph_push(g, "layer2.rnn");
        int a = op_conv(g, x, "a", 4, 3, 1), b = op_conv(g, x, "b", 4, 3, 2);
        convrnn_state s = convrnn_step(g, &cell, a, convrnn_zero(), true);
        CHECK(graph_ok(g) && s.h >= 0, "%s: first step failed: %s", convrnn_name(kind), cnn_last_error());
        convrnn_step(g, &cell, b, s, true);
        CHECK(g->error == CNN_ERR_SHAPE, "%s: a 4x4x4 input on an 4x8x8 state gave %s", convrnn_name(kind),
              cnn_status_name(g->error));
        const char *msg = cnn_last_error();
        CHECK(strstr(msg, "layer2.rnn") && strstr(msg, "4x4x4") && strstr(msg, "4x8x8") && strstr(msg, convrnn_name(kind)),
              "message: %s", msg);
        graph_free(g);
        g = graph_new();
        x = graph_input(g, 3, 8, 8);
        convrnn_step(g, &cell, op_conv(g, x, "c", 6, 3, 1), convrnn_zero(), true);
        CHECK(g->error == CNN_ERR_SHAPE && strstr(cnn_last_error(), "6 channels") && strstr(cnn_last_error(), "for 4"),
              "6-channel input on a 4-channel cell: %s", cnn_last_error());
        graph_free(g);
    }
}

/* regnet20's stages each own one cell, used by their three blocks: 3 weights, 3 biases, read by 9
 * convolutions; the parameter counts are the hand-computed ones of convrnn.h's shapes. */
static void stage_sharing(void) {
    for (int k = 0; k < 2; k++) {
        model_cfg cfg;
        model_defaults(&cfg);
        cfg.name = "regnet20";
        cfg.regulator = k ? REGULATOR_CONVGRU : REGULATOR_CONVLSTM;
        graph *g;
        CHECK_OK(model_build(&cfg, &g));
        if (!g) continue;
        int rnn_params = 0, users = 0, expect = 0;
        int64_t rnn_numel = 0;
        for (int i = 0; i < g->nparams; i++)
            if (strstr(g->params[i].name, ".rnn.")) {
                rnn_params++;
                rnn_numel += param_numel(&g->params[i]);
            }
        for (int i = 0; i < g->nnodes; i++)
            for (int j = 0; j < g->nodes[i].nparams; j++) users += strstr(g->params[g->nodes[i].params[j]].name, ".rnn.") != NULL;
        for (int s = 0; s < 3; s++) {
            int w = 16 << s; /* hidden = input = width; 3×3 kernels with bias */
            expect += k ? (2 * w + w) * (2 * w * 9 + 1) : 4 * w * (2 * w * 9 + 1);
        }
        CHECK(rnn_params == (k ? 12 : 6), "%s: %d cell parameters", model_regulator_name(cfg.regulator), rnn_params);
        CHECK(users == (k ? 36 : 18), "%s: cell parameters read %d times, expected 3 blocks x %d", model_regulator_name(cfg.regulator), users, k ? 12 : 6);
        CHECK(rnn_numel == expect, "%s: %lld cell weights, expected %d", model_regulator_name(cfg.regulator), (long long)rnn_numel, expect);
        graph_free(g);
    }
}

int main(void) {
    gradchecks();
    shape_errors();
    stage_sharing();
    return test_report("test_convrnn");
}
