/* convrnn.c — ConvLSTM and ConvGRU cells as graph steps (convrnn.h has the equations): shared
 * convolutions for the gates, the fused gate math of src/ops/rnn_cell.c for the rest. */
#include "nn/convrnn.h"
#include "core/error.h"

void convrnn_init(convrnn *cell, convrnn_kind kind, int in_c, int hidden, int k) {
    cell->kind = kind;
    cell->in_c = in_c;
    cell->hidden = hidden;
    cell->k = k;
    cell->gates = (conv_shared){(kind == CONVRNN_LSTM ? 4 : 2) * hidden, in_c + hidden, -1, -1};
    cell->cand = (conv_shared){hidden, in_c + hidden, -1, -1};
}

const char *convrnn_name(convrnn_kind kind) { return kind == CONVRNN_LSTM ? "ConvLSTM" : "ConvGRU"; }

/* The gate convolution: rows [row0, row0 + rows) of w over x (whose channels pick the columns). */
static int gate_conv(graph *g, const convrnn *cell, int x, const char *name, conv_shared *w, int row0, int rows) {
    conv_cfg cfg = {rows, cell->k, 1, cell->k / 2, 1, 1, true, INIT_UNIFORM_FAN_IN};
    return op_conv2d_shared(g, x, name, &cfg, w, row0);
}

static int concat2(graph *g, int a, int b) {
    int parts[2] = {a, b};
    return op_concat(g, parts, 2);
}

static bool check_input(graph *g, const convrnn *cell, int x, convrnn_state s) {
    if (!graph_ok(g) || x < 0) return false;
    const tensor *t = graph_tensor(g, x);
    if (t->c != cell->in_c) {
        graph_fail(g, cnn_fail(CNN_ERR_SHAPE, "%s%s: input has %d channels, the cell was made for %d", g->scope,
                               convrnn_name(cell->kind), t->c, cell->in_c));
        return false;
    }
    if (s.h < 0) return true;
    const tensor *h = graph_tensor(g, s.h);
    if (h->c != cell->hidden || h->h != t->h || h->w != t->w) {
        graph_fail(g, cnn_fail(CNN_ERR_SHAPE,
                               "%s%s: input %dx%dx%d does not match the hidden state %dx%dx%d (a state carries %d "
                               "channels at its input's resolution: a stride or a new stage needs a fresh state)",
                               g->scope, convrnn_name(cell->kind), t->c, t->h, t->w, h->c, h->h, h->w, cell->hidden));
        return false;
    }
    return true;
}

static convrnn_state lstm_step(graph *g, convrnn *cell, int x, convrnn_state s, bool keep_c) {
    int hid = cell->hidden, c = -1, h;
    if (s.h < 0) {
        int a = gate_conv(g, cell, x, "conv", &cell->gates, hid, 3 * hid); /* rows i, o, g; columns of x */
        h = op_lstm_cell(g, a, -1, keep_c ? &c : NULL);
    } else {
        int a = gate_conv(g, cell, concat2(g, x, s.h), "conv", &cell->gates, 0, 4 * hid);
        h = op_lstm_cell(g, a, s.c, keep_c ? &c : NULL);
    }
    return (convrnn_state){h, c};
}

static convrnn_state gru_step(graph *g, convrnn *cell, int x, convrnn_state s) {
    int hid = cell->hidden, h;
    if (s.h < 0) {
        int z = gate_conv(g, cell, x, "conv_gates", &cell->gates, hid, hid); /* row block z; columns of x */
        int n = gate_conv(g, cell, x, "conv_cand", &cell->cand, 0, hid);
        h = op_gru_update(g, z, n, -1);
    } else {
        int a = gate_conv(g, cell, concat2(g, x, s.h), "conv_gates", &cell->gates, 0, 2 * hid);
        int rh = op_gru_reset(g, a, s.h);
        int n = gate_conv(g, cell, concat2(g, x, rh), "conv_cand", &cell->cand, 0, hid);
        h = op_gru_update(g, a, n, s.h);
    }
    return (convrnn_state){h, -1};
}

convrnn_state convrnn_step(graph *g, convrnn *cell, int x, convrnn_state s, bool keep_c) {
    if (!check_input(g, cell, x, s)) return (convrnn_state){-1, -1};
    return cell->kind == CONVRNN_LSTM ? lstm_step(g, cell, x, s, keep_c) : gru_step(g, cell, x, s);
}
