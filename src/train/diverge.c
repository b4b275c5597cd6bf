/* diverge.c — naming where training diverged (see diverge.h): a pass over the parameters, then the
 * failed step once more with a hook that checks each op's outputs and gradients as they appear. */
#include "train/diverge.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "core/error.h"

bool diverge_finite(const float *a, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(a[i])) return false;
    return true;
}

int diverge_bad_param(const graph *g, bool buffers) {
    for (int i = 0; i < g->nparams; i++) {
        const param *p = &g->params[i];
        if (p->dtype != PDT_F32 || (!buffers && !param_trainable(p))) continue;
        if (!diverge_finite(graph_param_data(g, i), p->bytes / sizeof(float))) return i;
    }
    return -1;
}

const char *diverge_number(double v, char buf[32]) {
    if (isnan(v)) return "nan";
    snprintf(buf, 32, "%g", v);
    return buf;
}

typedef struct trace {
    float *buf;          /* a tensor read back in nchw order */
    size_t cap;
    bool found;
    char where[400];
} trace;

/* A tensor's value or gradient as plan_read gives it (the padding of blocked layouts left out). */
static bool tensor_finite(trace *t, plan *p, int tid, bool grad) {
    const tensor *x = graph_tensor(plan_graph(p), tid);
    size_t n = (size_t)plan_batch(p) * x->c * x->h * x->w;
    if (n > t->cap) {
        float *b = realloc(t->buf, n * sizeof(float));
        if (!b) return true; /* no memory to look: say nothing rather than something wrong */
        t->buf = b;
        t->cap = n;
    }
    if (plan_read(p, tid, grad, t->buf) != CNN_OK) return true; /* no such buffer in this plan */
    return diverge_finite(t->buf, n);
}

/* where = "<what> <op name> (<op type>)" */
static void found(trace *t, const node *n, const char *what) {
    snprintf(t->where, sizeof t->where, "%s %s (%s)", what, n->name, n->op->type);
    t->found = true;
}

static void check_node(plan *p, int nid, bool backward, void *ctx) {
    trace *t = ctx;
    const graph *g = plan_graph(p);
    const node *n = &g->nodes[nid];
    if (t->found) return;
    if (!backward) {
        for (int i = 0; i < n->nout && !t->found; i++)
            if (!tensor_finite(t, p, n->out[i], false)) found(t, n, "the first non-finite value is the output of");
        return;
    }
    for (int i = 0; i < n->nparams && !t->found; i++) {
        const param *q = &g->params[n->params[i]];
        if (!param_trainable(q) || diverge_finite(graph_param_grad(g, n->params[i]), q->bytes / sizeof(float)))
            continue;
        char what[300];
        snprintf(what, sizeof what, "the first non-finite gradient is that of parameter %s, from the backward of",
                 q->name);
        found(t, n, what);
    }
    for (int i = 0; i < n->nin && !t->found; i++)
        if (plan_needs_grad(p, n->in[i]) && !tensor_finite(t, p, n->in[i], true))
            found(t, n, "the first non-finite gradient is that of the input of");
}

/* Where: a parameter that is already not finite, else the first op in forward, then backward order. */
static void locate(plan *p, uint64_t key, bool grads, int64_t step, trace *t) {
    graph *g = plan_graph(p);
    int bad = diverge_bad_param(g, false);
    if (bad >= 0) {
        snprintf(t->where, sizeof t->where, "parameter %s is not finite any more (the update of step %lld made it so)",
                 g->params[bad].name, (long long)step - 1);
        return;
    }
    plan_set_hook(p, check_node, t);
    if (plan_forward(p, true, key) == CNN_OK && !t->found && grads) plan_backward(p);
    plan_set_hook(p, NULL, NULL);
    if (!t->found)
        snprintf(t->where, sizeof t->where, "no op's output or gradient was found non-finite when the step ran again");
}

cnn_status diverge_report(plan *p, uint64_t key, bool grads, int64_t step, const char *what) {
    trace t = {0};
    locate(p, key, grads, step, &t);
    free(t.buf);
    return cnn_fail(CNN_ERR_DIVERGED, "%s at step %lld: training diverged: %s; try a smaller --lr%s", what,
                    (long long)step, t.where, grads ? " or --clip-norm" : "");
}
