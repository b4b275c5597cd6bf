/* drop_path.c — stochastic depth ("drop path"), as torchvision's StochasticDepth(p, "row"): in
 * training each sample's whole tensor is zeroed with probability p and the survivors scaled by
 * 1/(1-p); evaluation is the identity. Applied to a residual branch before the addition. The
 * per-sample decision is a pure function of (step key, node, sample): backward draws it again. */
#include "core/error.h"
#include "core/plan.h"
#include "core/rng.h"
#include "ops/layout.h"
#include "ops/ops.h"
#include <stdlib.h>
#include <string.h>

typedef struct drop_path_attr {
    float p;
} drop_path_attr;

static cnn_status drop_path_compile(plan *p, int nid) { return CNN_OK; }

static float sample_scale(plan *p, int nid, int n) {
    drop_path_attr *a = plan_graph(p)->nodes[nid].attr;
    uint64_t key = rng_key(plan_step_key(p), RNG_DROPOUT, (uint64_t)nid, 1);
    return rng_uniform_at(key, (uint64_t)n) >= a->p ? 1.0f / (1.0f - a->p) : 0.0f;
}

/* out (+)= in * scale(sample), every sample being a contiguous run of `per` floats; one parallel
 * region for the whole batch (a region per sample costs more than the work on small tensors) */
static void apply(plan *p, int nid, const float *in, float *out, blk k, bool train, bool accumulate) {
    size_t per = blk_size(k) / k.n;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < k.n; n++) {
        float s = train ? sample_scale(p, nid, n) : 1.0f;
        const float *i = in + per * n;
        float *o = out + per * n;
        if (accumulate) {
#pragma omp simd
            for (size_t e = 0; e < per; e++) o[e] += s * i[e];
        } else {
#pragma omp simd
            for (size_t e = 0; e < per; e++) o[e] = s * i[e];
        }
    }
}

static void drop_path_forward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    if (!plan_training_pass(p) && plan_val(p, n->in[0]) == plan_val(p, n->out[0])) return; /* the identity, in place */
    apply(p, nid, plan_val(p, n->in[0]), plan_val(p, n->out[0]), blk_of(p, n->out[0]), plan_training_pass(p), false);
}

static void drop_path_backward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    if (!plan_needs_grad(p, n->in[0])) return;
    apply(p, nid, plan_grad(p, n->out[0]), plan_grad(p, n->in[0]), blk_of(p, n->out[0]), true,
          plan_grad_accum(p, nid, 0));
}

static const op_def drop_path_op = {"drop_path", drop_path_compile, drop_path_forward, drop_path_backward, NULL, NULL, NULL, true};

int op_drop_path(graph *g, int x, float p) {
    if (!graph_ok(g) || x < 0) return -1;
    if (!(p >= 0 && p < 1)) return graph_fail(g, cnn_fail(CNN_ERR_ARG, "%sdrop path: p=%g is not in [0, 1)", g->scope, p));
    if (p == 0) return x;
    const tensor *t = graph_tensor(g, x);
    drop_path_attr *a = malloc(sizeof *a);
    if (!a) return graph_fail(g, cnn_fail(CNN_ERR_NOMEM, "out of memory"));
    a->p = p;
    int nid = graph_add_node(g, &drop_path_op, "drop_path", &x, 1, a);
    return graph_node_output(g, nid, t->c, t->h, t->w, t->layout);
}
