/* rnn_cell.c — the elementwise gate math of ConvLSTM and ConvGRU cells (src/nn/convrnn.c), fused:
 * one pass over memory forward and one backward instead of a dozen slice/activation/mul/add nodes
 * (docs/regnet.md measures the difference). Backward recomputes the activations from the saved
 * pre-activations. Equations and gate order are those of src/nn/convrnn.h. */
#include "core/error.h"
#include "core/plan.h"
#include "ops/layout.h"
#include "ops/ops.h"
#include "ops/vmath.h"
#include <stdlib.h>

/* ---------- iterating over the lanes of several blocked tensors at once ---------- */

#define RNN_ARGS 12

/* The operands of a kernel: each is `hidden` consecutive channels, from channel c0, of a blocked
 * tensor (one gate of a gates tensor, a state, a gradient). NULL buffers are absent operands: the
 * kernel reads zeros from them and its writes to them go nowhere, so that it has no branches. */
typedef struct lanes {
    int n, hidden;
    float *p[RNN_ARGS];
    blk k[RNN_ARGS];
    int c0[RNN_ARGS];
    bool write[RNN_ARGS];
} lanes;

/* A kernel computes `count` lanes: x[t] points at operand t's values for them. */
typedef void (*lane_kernel)(float *const *x, int count, const void *ctx);

static void lanes_add(lanes *L, plan *p, int tid, bool grad, int c0, bool write) {
    L->p[L->n] = tid < 0 ? NULL : grad ? plan_grad(p, tid) : plan_val(p, tid);
    if (tid >= 0) L->k[L->n] = blk_of(p, tid);
    L->c0[L->n] = c0;
    L->write[L->n] = write;
    L->n++;
}

/* Where every operand's channels start on a block boundary (hidden a multiple of the block: the
 * networks' case), a block's lanes at consecutive positions are consecutive in every operand: the
 * kernel reads them in place, up to RNN_CHUNK lanes a call (a long loop to vectorize, little
 * per-call work). Otherwise the `count` lanes of one position are gathered into, and written back
 * from, a small buffer. */
enum { RNN_CHUNK = 512 };

static void lanes_run(const lanes *L, lane_kernel fn, const void *ctx) {
    int B = be_block(), nb = (L->hidden + B - 1) / B, first = 0;
    bool aligned = L->hidden % B == 0;
    while (!L->p[first]) first++;
    for (int t = 0; t < L->n; t++) aligned = aligned && (!L->p[t] || L->c0[t] % B == 0);
    blk k0 = L->k[first];
    int per = aligned ? RNN_CHUNK / B : 1; /* positions a call takes */
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < k0.n; n++)
        for (int cb = 0; cb < nb; cb++) {
            float buf[RNN_ARGS][64], zero[RNN_CHUNK] = {0}, sink[RNN_CHUNK];
            float *x[RNN_ARGS];
            int count = L->hidden - cb * B < B ? L->hidden - cb * B : B;
            for (int s = 0; s < k0.s; s += per) {
                int len = aligned ? (k0.s - s < per ? k0.s - s : per) * B : count;
                for (int t = 0; t < L->n; t++) {
                    x[t] = L->write[t] ? sink : zero;
                    if (!L->p[t]) continue;
                    if (aligned) {
                        x[t] = L->p[t] + blk_at(L->k[t], n, L->c0[t] + cb * B, s);
                        continue;
                    }
                    x[t] = buf[t];
                    for (int i = 0; i < count; i++) buf[t][i] = L->p[t][blk_at(L->k[t], n, L->c0[t] + cb * B + i, s)];
                }
                fn(x, len, ctx);
                if (aligned) continue;
                for (int t = 0; t < L->n; t++)
                    if (L->p[t] && L->write[t])
                        for (int i = 0; i < count; i++) L->p[t][blk_at(L->k[t], n, L->c0[t] + cb * B + i, s)] = buf[t][i];
            }
        }
}

/* A gradient written (not accumulated) over channels [c0, c1) of a tensor: zero the rest, padding included. */
static void zero_outside(float *dx, blk k, int c0, int c1) {
    blk_zero_channels(dx, k, 0, c0);
    blk_zero_channels(dx, k, c1, k.cp);
}

/* ---------- shared node plumbing ---------- */

typedef struct cell_attr {
    int hidden;
} cell_attr;

static int hidden_of(plan *p, int nid) { return ((cell_attr *)plan_graph(p)->nodes[nid].attr)->hidden; }
static int input(plan *p, int nid, int slot) {
    node *n = &plan_graph(p)->nodes[nid];
    return slot < n->nin ? n->in[slot] : -1;
}
/* input slot's gradient tensor if it needs one, else -1; *acc: 1 if it accumulates, else 0 */
static int grad_of(plan *p, int nid, int slot, float *acc) {
    int t = input(p, nid, slot);
    if (t < 0 || !plan_needs_grad(p, t)) return -1;
    *acc = plan_grad_accum(p, nid, slot) ? 1.0f : 0.0f;
    return t;
}

static cnn_status keep_inputs(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    for (int s = 0; s < n->nin; s++) plan_keep_input(p, nid, s);
    return CNN_OK;
}

static void zero_padding(plan *p, int tid) {
    blk k = blk_of(p, tid);
    blk_zero_channels(plan_val(p, tid), k, k.c, k.cp);
}

static int cell_node(graph *g, const op_def *op, const int *in, int nin, int hidden) {
    cell_attr *a = malloc(sizeof *a);
    if (!a) return graph_fail(g, cnn_fail(CNN_ERR_NOMEM, "out of memory"));
    a->hidden = hidden;
    return graph_add_node(g, op, op->type, in, nin, a);
}

/* Inputs must be blocked, of one spatial size, with the channels the op expects. */
static bool cell_inputs(graph *g, const char *what, int *in, const int *want_c, int nin) {
    for (int i = 0; i < nin; i++) {
        if (in[i] < 0) return false;
        in[i] = op_to_blocked(g, in[i]);
        if (in[i] < 0) return false;
    }
    const tensor *t0 = graph_tensor(g, in[0]);
    for (int i = 0; i < nin; i++) {
        const tensor *t = graph_tensor(g, in[i]);
        if (t->c != want_c[i] || t->h != t0->h || t->w != t0->w) {
            graph_fail(g, cnn_fail(CNN_ERR_SHAPE, "%s%s: input %d is %dx%dx%d, expected %dx%dx%d", g->scope, what, i, t->c,
                                   t->h, t->w, want_c[i], t0->h, t0->w));
            return false;
        }
    }
    return true;
}

/* ---------- LSTM: gates f, i, o, g (with c_prev) or i, o, g (zero state) ---------- */

/* acc_*: 1 where the kernel adds to a gradient, 0 where it writes it (floats: see put()) */
typedef struct lstm_ctx {
    bool has_prev;
    float acc_gates, acc_prev;
} lstm_ctx;

enum { L_F, L_I, L_O, L_G, L_CP, L_H, L_C };

/* The kernels take has_prev as a constant (one instance each way), so their loops have no branch. */
static inline __attribute__((always_inline)) void lstm_fwd(float *const *x, int count, bool has_prev) {
    const float *af = x[L_F], *ai = x[L_I], *ao = x[L_O], *ag = x[L_G], *cp = x[L_CP];
    float *h = x[L_H], *cn = x[L_C];
#pragma omp simd
    for (int i = 0; i < count; i++) {
        float cell = vm_sigmoid(ai[i]) * vm_tanh(ag[i]);
        if (has_prev) cell += vm_sigmoid(af[i]) * cp[i];
        h[i] = vm_sigmoid(ao[i]) * vm_tanh(cell);
        cn[i] = cell;
    }
}
static void lstm_fwd_prev(float *const *x, int count, const void *ctx) { lstm_fwd(x, count, true); }
static void lstm_fwd_zero(float *const *x, int count, const void *ctx) { lstm_fwd(x, count, false); }

static cnn_status lstm_compile(plan *p, int nid) { return keep_inputs(p, nid); }

/* gate j of the gates tensor starts at channel j·hidden; without c_prev there is no f */
static void lstm_gate_operands(lanes *L, plan *p, int nid, bool grad) {
    int gates = input(p, nid, 0), h = L->hidden;
    bool prev = input(p, nid, 1) >= 0;
    lanes_add(L, p, prev ? gates : -1, grad, 0, grad);
    for (int j = 0; j < 3; j++) lanes_add(L, p, gates, grad, (j + prev) * h, grad);
}

static void lstm_forward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    lstm_ctx c = {input(p, nid, 1) >= 0, 0, 0};
    lanes L = {.hidden = hidden_of(p, nid)};
    lstm_gate_operands(&L, p, nid, false);
    lanes_add(&L, p, input(p, nid, 1), false, 0, false);
    lanes_add(&L, p, n->out[0], false, 0, true);
    lanes_add(&L, p, n->nout > 1 ? n->out[1] : -1, false, 0, true);
    lanes_run(&L, c.has_prev ? lstm_fwd_prev : lstm_fwd_zero, NULL);
    for (int k = 0; k < n->nout; k++) zero_padding(p, n->out[k]);
}

enum { LB_DCP = L_CP + 1, LB_DH, LB_DC, LB_DF, LB_DI, LB_DO, LB_DG };

/* a gradient written (acc 0), or added to the one there (acc 1): the old value is loaded either way
 * and selected, with no branch. The flag is a float: GCC 12 vectorizes no select on a flag it can
 * trace back to a bool. */
static inline float put(float old, float v, float acc) { return (acc > 0.0f ? old : 0.0f) + v; }

static inline __attribute__((always_inline)) void lstm_bwd(float *const *x, int count, const lstm_ctx *c,
                                                           bool has_prev) {
    const float *af = x[L_F], *ai = x[L_I], *ao = x[L_O], *ag = x[L_G], *cp = x[L_CP], *dh = x[LB_DH], *dc = x[LB_DC];
    float *df = x[LB_DF], *di = x[LB_DI], *dout = x[LB_DO], *dg = x[LB_DG], *dcp = x[LB_DCP];
    float acc = c->acc_gates, acc_prev = c->acc_prev;
#pragma omp simd
    for (int i = 0; i < count; i++) {
        float f = has_prev ? vm_sigmoid(af[i]) : 0.0f, prev = has_prev ? cp[i] : 0.0f;
        float gi = vm_sigmoid(ai[i]), go = vm_sigmoid(ao[i]), gg = vm_tanh(ag[i]);
        float tc = vm_tanh(f * prev + gi * gg);
        float dcell = dh[i] * go * (1.0f - tc * tc) + dc[i];
        di[i] = put(di[i], dcell * gg * gi * (1.0f - gi), acc);
        dout[i] = put(dout[i], dh[i] * tc * go * (1.0f - go), acc);
        dg[i] = put(dg[i], dcell * gi * (1.0f - gg * gg), acc);
        if (has_prev) {
            df[i] = put(df[i], dcell * prev * f * (1.0f - f), acc);
            dcp[i] = put(dcp[i], dcell * f, acc_prev);
        }
    }
}
static void lstm_bwd_prev(float *const *x, int count, const void *ctx) { lstm_bwd(x, count, ctx, true); }
static void lstm_bwd_zero(float *const *x, int count, const void *ctx) { lstm_bwd(x, count, ctx, false); }

static void lstm_backward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    lstm_ctx c = {input(p, nid, 1) >= 0, 0, 0};
    int dgates = grad_of(p, nid, 0, &c.acc_gates), dprev = grad_of(p, nid, 1, &c.acc_prev);
    lanes L = {.hidden = hidden_of(p, nid)};
    lstm_gate_operands(&L, p, nid, false);
    lanes_add(&L, p, input(p, nid, 1), false, 0, false);
    lanes_add(&L, p, dprev, true, 0, true);
    lanes_add(&L, p, n->out[0], true, 0, false);
    lanes_add(&L, p, n->nout > 1 && plan_needs_grad(p, n->out[1]) ? n->out[1] : -1, true, 0, false);
    if (dgates >= 0) lstm_gate_operands(&L, p, nid, true);
    else L.n += 4;
    lanes_run(&L, c.has_prev ? lstm_bwd_prev : lstm_bwd_zero, &c);
    if (dgates >= 0 && !c.acc_gates) zero_outside(plan_grad(p, dgates), blk_of(p, dgates), 0, blk_of(p, dgates).c);
    if (dprev >= 0 && !c.acc_prev) zero_outside(plan_grad(p, dprev), blk_of(p, dprev), 0, L.hidden);
}

static const op_def lstm_op = {"lstm_cell", lstm_compile, lstm_forward, lstm_backward, NULL, NULL};

int op_lstm_cell(graph *g, int gates, int c_prev, int *c_out) {
    if (!graph_ok(g) || gates < 0) return -1;
    int hidden = c_prev >= 0 ? graph_tensor(g, c_prev)->c : graph_tensor(g, gates)->c / 3;
    int in[2] = {gates, c_prev}, nin = c_prev >= 0 ? 2 : 1;
    int want[2] = {(c_prev >= 0 ? 4 : 3) * hidden, hidden};
    if (!cell_inputs(g, "lstm_cell (gates, c_prev)", in, want, nin)) return -1;
    const tensor *t = graph_tensor(g, in[0]);
    int h = t->h, w = t->w;
    int nid = cell_node(g, &lstm_op, in, nin, hidden);
    int out = graph_node_output(g, nid, hidden, h, w, LAYOUT_BLOCKED);
    if (c_out) *c_out = graph_node_output(g, nid, hidden, h, w, LAYOUT_BLOCKED);
    return out;
}

/* ---------- GRU: reset (r ⊙ h_prev) and update ((1 − z) ⊙ h_prev + z ⊙ tanh(candidate)) ---------- */

typedef struct gru_ctx {
    bool has_prev;
    float acc_a, acc_b, acc_prev;
} gru_ctx;

enum { R_A, R_HP, R_OUT, R_DOUT = 2, R_DA, R_DHP };

static void reset_fwd_lanes(float *const *x, int count, const void *ctx) {
    const float *ar = x[R_A], *hp = x[R_HP];
    float *out = x[R_OUT];
#pragma omp simd
    for (int i = 0; i < count; i++) out[i] = vm_sigmoid(ar[i]) * hp[i];
}

static void reset_bwd_lanes(float *const *x, int count, const void *ctx) {
    const gru_ctx *c = ctx;
    const float *ar = x[R_A], *hp = x[R_HP], *dout = x[R_DOUT];
    float *da = x[R_DA], *dhp = x[R_DHP];
    float acc_a = c->acc_a, acc_prev = c->acc_prev;
#pragma omp simd
    for (int i = 0; i < count; i++) {
        float r = vm_sigmoid(ar[i]);
        da[i] = put(da[i], dout[i] * hp[i] * r * (1.0f - r), acc_a);
        dhp[i] = put(dhp[i], dout[i] * r, acc_prev);
    }
}

static void reset_forward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    lanes L = {.hidden = hidden_of(p, nid)};
    lanes_add(&L, p, n->in[0], false, 0, false);
    lanes_add(&L, p, n->in[1], false, 0, false);
    lanes_add(&L, p, n->out[0], false, 0, true);
    lanes_run(&L, reset_fwd_lanes, NULL);
    zero_padding(p, n->out[0]);
}

static void reset_backward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    gru_ctx c = {true, 0, 0, 0};
    int da = grad_of(p, nid, 0, &c.acc_a), dhp = grad_of(p, nid, 1, &c.acc_prev);
    lanes L = {.hidden = hidden_of(p, nid)};
    lanes_add(&L, p, n->in[0], false, 0, false);
    lanes_add(&L, p, n->in[1], false, 0, false);
    lanes_add(&L, p, n->out[0], true, 0, false);
    lanes_add(&L, p, da, true, 0, true);
    lanes_add(&L, p, dhp, true, 0, true);
    lanes_run(&L, reset_bwd_lanes, &c);
    if (da >= 0 && !c.acc_a) zero_outside(plan_grad(p, da), blk_of(p, da), 0, L.hidden);
    if (dhp >= 0 && !c.acc_prev) zero_outside(plan_grad(p, dhp), blk_of(p, dhp), 0, L.hidden);
}

enum { U_Z, U_N, U_HP, U_OUT, U_DOUT = 3, U_DZ, U_DN, U_DHP };

static inline __attribute__((always_inline)) void update_fwd(float *const *x, int count, bool has_prev) {
    const float *az = x[U_Z], *an = x[U_N], *hp = x[U_HP];
    float *out = x[U_OUT];
#pragma omp simd
    for (int i = 0; i < count; i++) {
        float z = vm_sigmoid(az[i]), cand = vm_tanh(an[i]);
        out[i] = has_prev ? (1.0f - z) * hp[i] + z * cand : z * cand;
    }
}
static void update_fwd_prev(float *const *x, int count, const void *ctx) { update_fwd(x, count, true); }
static void update_fwd_zero(float *const *x, int count, const void *ctx) { update_fwd(x, count, false); }

static inline __attribute__((always_inline)) void update_bwd(float *const *x, int count, const gru_ctx *c,
                                                             bool has_prev) {
    const float *az = x[U_Z], *an = x[U_N], *hp = x[U_HP], *dout = x[U_DOUT];
    float *dz = x[U_DZ], *dn = x[U_DN], *dhp = x[U_DHP];
    float acc_z = c->acc_a, acc_n = c->acc_b, acc_prev = c->acc_prev;
#pragma omp simd
    for (int i = 0; i < count; i++) {
        float z = vm_sigmoid(az[i]), cand = vm_tanh(an[i]), prev = has_prev ? hp[i] : 0.0f;
        dz[i] = put(dz[i], dout[i] * (cand - prev) * z * (1.0f - z), acc_z);
        dn[i] = put(dn[i], dout[i] * z * (1.0f - cand * cand), acc_n);
        if (has_prev) dhp[i] = put(dhp[i], dout[i] * (1.0f - z), acc_prev);
    }
}
static void update_bwd_prev(float *const *x, int count, const void *ctx) { update_bwd(x, count, ctx, true); }
static void update_bwd_zero(float *const *x, int count, const void *ctx) { update_bwd(x, count, ctx, false); }

/* z is the last `hidden` channels of the gates tensor: rows r, z with h_prev, z alone without */
static int z_channel(plan *p, int nid) { return input(p, nid, 2) >= 0 ? hidden_of(p, nid) : 0; }

static void update_forward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    gru_ctx c = {input(p, nid, 2) >= 0, 0, 0, 0};
    lanes L = {.hidden = hidden_of(p, nid)};
    lanes_add(&L, p, n->in[0], false, z_channel(p, nid), false);
    lanes_add(&L, p, n->in[1], false, 0, false);
    lanes_add(&L, p, input(p, nid, 2), false, 0, false);
    lanes_add(&L, p, n->out[0], false, 0, true);
    lanes_run(&L, c.has_prev ? update_fwd_prev : update_fwd_zero, NULL);
    zero_padding(p, n->out[0]);
}

static void update_backward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    gru_ctx c = {input(p, nid, 2) >= 0, 0, 0, 0};
    int dz = grad_of(p, nid, 0, &c.acc_a), dn = grad_of(p, nid, 1, &c.acc_b), dhp = grad_of(p, nid, 2, &c.acc_prev);
    int zc = z_channel(p, nid), h = hidden_of(p, nid);
    lanes L = {.hidden = h};
    lanes_add(&L, p, n->in[0], false, zc, false);
    lanes_add(&L, p, n->in[1], false, 0, false);
    lanes_add(&L, p, input(p, nid, 2), false, 0, false);
    lanes_add(&L, p, n->out[0], true, 0, false);
    lanes_add(&L, p, dz, true, zc, true);
    lanes_add(&L, p, dn, true, 0, true);
    lanes_add(&L, p, dhp, true, 0, true);
    lanes_run(&L, c.has_prev ? update_bwd_prev : update_bwd_zero, &c);
    if (dz >= 0 && !c.acc_a) zero_outside(plan_grad(p, dz), blk_of(p, dz), zc, zc + h);
    if (dn >= 0 && !c.acc_b) zero_outside(plan_grad(p, dn), blk_of(p, dn), 0, h);
    if (dhp >= 0 && !c.acc_prev) zero_outside(plan_grad(p, dhp), blk_of(p, dhp), 0, h);
}

static const op_def reset_op = {"gru_reset", keep_inputs, reset_forward, reset_backward, NULL, NULL};
static const op_def update_op = {"gru_update", keep_inputs, update_forward, update_backward, NULL, NULL};

int op_gru_reset(graph *g, int gates, int h_prev) {
    if (!graph_ok(g) || h_prev < 0) return -1;
    int hidden = graph_tensor(g, h_prev)->c;
    int in[2] = {gates, h_prev}, want[2] = {2 * hidden, hidden};
    if (!cell_inputs(g, "gru_reset (gates, h_prev)", in, want, 2)) return -1;
    const tensor *t = graph_tensor(g, in[1]);
    int h = t->h, w = t->w;
    int nid = cell_node(g, &reset_op, in, 2, hidden);
    return graph_node_output(g, nid, hidden, h, w, LAYOUT_BLOCKED);
}

int op_gru_update(graph *g, int gates, int cand, int h_prev) {
    if (!graph_ok(g) || cand < 0) return -1;
    int hidden = graph_tensor(g, cand)->c;
    int in[3] = {gates, cand, h_prev}, nin = h_prev >= 0 ? 3 : 2;
    int want[3] = {(h_prev >= 0 ? 2 : 1) * hidden, hidden, hidden};
    if (!cell_inputs(g, "gru_update (gates, candidate, h_prev)", in, want, nin)) return -1;
    const tensor *t = graph_tensor(g, in[1]);
    int h = t->h, w = t->w;
    int nid = cell_node(g, &update_op, in, nin, hidden);
    return graph_node_output(g, nid, hidden, h, w, LAYOUT_BLOCKED);
}
