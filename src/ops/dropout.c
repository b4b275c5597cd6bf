/* dropout.c — inverted dropout: in training each element is zeroed with probability p and the
 * others scaled by 1/(1-p); evaluation is the identity. The mask is not stored: it is a pure
 * function of (step key, node, element index) and backward draws it again. */
#include "core/error.h"
#include "core/plan.h"
#include "core/rng.h"
#include "ops/layout.h"
#include "ops/ops.h"
#include <stdlib.h>
#include <string.h>

typedef struct dropout_attr {
    float p;
} dropout_attr;

static cnn_status dropout_compile(plan *p, int nid) { return CNN_OK; }

static inline float keep_scale(uint64_t key, size_t i, float p, float scale) {
    return rng_uniform_at(key, i) >= p ? scale : 0.0f;
}

/* out = in * mask (or in, in evaluation); accumulate adds */
static void apply(plan *p, int nid, const float *in, float *out, size_t len, bool train, bool accumulate) {
    dropout_attr *a = plan_graph(p)->nodes[nid].attr;
    uint64_t key = rng_key(plan_step_key(p), RNG_DROPOUT, (uint64_t)nid, 0);
    float scale = 1.0f / (1.0f - a->p);
    if (!train) {
        if (accumulate) {
#pragma omp parallel for simd schedule(static)
            for (size_t i = 0; i < len; i++) out[i] += in[i];
        } else if (out != in) {
            memcpy(out, in, sizeof(float) * len);
        }
        return;
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < len; i++) {
        float v = in[i] * keep_scale(key, i, a->p, scale);
        out[i] = accumulate ? out[i] + v : v;
    }
}

static void dropout_forward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    apply(p, nid, plan_val(p, n->in[0]), plan_val(p, n->out[0]), blk_size(blk_of(p, n->out[0])),
          plan_training_pass(p), false);
}

static void dropout_backward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    if (!plan_needs_grad(p, n->in[0])) return;
    apply(p, nid, plan_grad(p, n->out[0]), plan_grad(p, n->in[0]), blk_size(blk_of(p, n->out[0])), true,
          plan_grad_accum(p, nid, 0));
}

static const op_def dropout_op = {"dropout", dropout_compile, dropout_forward, dropout_backward, NULL, NULL, NULL, true};

int op_dropout(graph *g, int x, float p) {
    if (!graph_ok(g) || x < 0) return -1;
    if (!(p >= 0 && p < 1)) return graph_fail(g, cnn_fail(CNN_ERR_ARG, "%sdropout: p=%g is not in [0, 1)", g->scope, p));
    if (p == 0) return x;
    const tensor *t = graph_tensor(g, x);
    dropout_attr *a = malloc(sizeof *a);
    if (!a) return graph_fail(g, cnn_fail(CNN_ERR_NOMEM, "out of memory"));
    a->p = p;
    int nid = graph_add_node(g, &dropout_op, "dropout", &x, 1, a);
    return graph_node_output(g, nid, t->c, t->h, t->w, t->layout);
}
