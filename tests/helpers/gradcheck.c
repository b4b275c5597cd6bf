/* gradcheck.c — finite-difference gradient checking of any subgraph (see gradcheck.h). */
#include "gradcheck.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/plan.h"
#include "core/rng.h"
#include "ops/layout.h"
#include "ops/ops.h"
#include "testutil.h"

/* ---- the probe: L = Σ r·y, r fixed and random, in y's physical layout ---- */

typedef struct probe_state {
    float *r;
    size_t n;
} probe_state;

static void probe_free(void *s) {
    free(((probe_state *)s)->r);
    free(s);
}

static cnn_status probe_compile(plan *p, int nid) {
    node *nd = &plan_graph(p)->nodes[nid];
    const tensor *t = graph_tensor(plan_graph(p), nd->in[0]);
    probe_state *s = calloc(1, sizeof *s);
    plan_set_state(p, nid, s);
    size_t canon = (size_t)plan_batch(p) * t->c * t->h * t->w;
    s->n = be_md_size(plan_md(p, nd->in[0])) / sizeof(float);
    float *rc = malloc(sizeof(float) * canon);
    s->r = calloc(s->n, sizeof(float));
    gc_probe_weights(rc, canon);
    dnnl_memory_desc_t plain;
    be_md_nchw(&plain, plan_batch(p), t->c, t->h, t->w);
    const dnnl_memory_desc_t *md = plan_md(p, nd->in[0]);
    cnn_status st = md->ndims == 2 ? (memcpy(s->r, rc, sizeof(float) * canon), CNN_OK)
                                   : be_reorder_once(&plain, rc, md, s->r);
    free(rc);
    return st;
}

static void probe_forward(plan *p, int nid) {
    probe_state *s = plan_state(p, nid);
    const float *y = plan_val(p, plan_graph(p)->nodes[nid].in[0]);
    double l = 0;
    for (size_t i = 0; i < s->n; i++) l += (double)s->r[i] * y[i];
    plan_report_loss(p, nid, l, 1.0f, true);
}

static void probe_backward(plan *p, int nid) {
    probe_state *s = plan_state(p, nid);
    float *dy = plan_grad(p, plan_graph(p)->nodes[nid].in[0]);
    bool acc = plan_grad_accum(p, nid, 0);
    for (size_t i = 0; i < s->n; i++) dy[i] = (acc ? dy[i] : 0) + s->r[i];
}

static const op_def probe_op = {"probe", probe_compile, probe_forward, probe_backward, probe_free, NULL};

void gc_probe_weights(float *r, int64_t n) { fill_uniform(r, n, 99, -1, 1); }

int gc_attach_probe(graph *g, int y) {
    if (!graph_ok(g)) return -1;
    int pn = graph_add_node(g, &probe_op, "probe", &y, 1, NULL);
    g->outputs[0].loss_node = pn;
    return pn;
}

/* ---- the check ---- */

static double loss_at(plan *p) {
    CHECK_OK(plan_forward(p, true, 1234));
    return plan_loss(p);
}

static void pick(int64_t n, int samples, uint64_t seed, int64_t *idx, int *count) {
    rng r = rng_stream(rng_key(seed, RNG_SPLIT, 5, (uint64_t)n));
    *count = n < samples ? (int)n : samples;
    for (int i = 0; i < *count; i++) idx[i] = n <= samples ? i : (int64_t)rng_below(&r, (uint32_t)n);
}

/* Compare analytic[idx] with central differences obtained through get/set of coordinate idx. */
typedef struct coord_access {
    plan *p;
    int pid;            /* -1: the input */
    float *canon;       /* parameter values in canonical layout */
} coord_access;

static void set_coord(coord_access *a, int64_t i, float v) {
    if (a->pid < 0) {
        plan_input(a->p)[i] = v;
    } else {
        a->canon[i] = v;
        graph_param_write(plan_graph(a->p), a->pid, a->canon);
    }
}

static int compare(const char *what, coord_access *a, const float *values, const float *analytic, int64_t n,
                   const gc_opts *o) {
    int64_t idx[256];
    int count;
    pick(n, o->samples, o->seed + (uint64_t)(a->pid + 7), idx, &count);
    float num[256], ana[256];
    for (int k = 0; k < count; k++) {
        int64_t i = idx[k];
        float v = values[i];
        set_coord(a, i, v + o->eps);
        double lp = loss_at(a->p);
        set_coord(a, i, v - o->eps);
        double lm = loss_at(a->p);
        set_coord(a, i, v);
        num[k] = (float)((lp - lm) / (2.0 * o->eps));
        ana[k] = analytic[i];
    }
    int before = test_failures;
    close_arrays(what, ana, num, count, o->rtol, o->atol);
    return test_failures - before;
}

/* Padded channels of blocked tensors must be exactly zero: every op's outputs right after its
 * forward, and the gradients of its inputs right after its backward. */
static int padding_errors;

static void check_tensor_padding(plan *p, int t, bool grad, const char *op) {
    graph *g = plan_graph(p);
    blk k = blk_of(p, t);
    if (g->tensors[t].layout != LAYOUT_BLOCKED || k.c == k.cp) return;
    const float *v = grad ? plan_grad(p, t) : plan_val(p, t);
    int bad = 0;
    for (int n = 0; n < k.n; n++)
        for (int c = k.c; c < k.cp; c++)
            for (int s = 0; s < k.s; s++) bad += v[blk_at(k, n, c, s)] != 0.0f;
    if (bad && padding_errors++ < 5)
        fprintf(stderr, "FAIL %s wrote %d non-zero padded %s (tensor %d, %d channels)\n", op, bad,
                grad ? "gradients" : "values", t, k.c);
}

/* ReLU decisions of the unperturbed pass (per node, over its physical buffer), then replayed. */
typedef struct relu_freeze {
    uint8_t **mask;     /* per node: NULL unless a ReLU */
    bool replay;
} relu_freeze;

static void freeze_relu(plan *p, int nid, relu_freeze *f) {
    node *n = &plan_graph(p)->nodes[nid];
    if (!f || strcmp(n->op->type, "relu") != 0) return;
    const float *x = plan_val(p, n->in[0]);
    float *y = plan_val(p, n->out[0]);
    size_t len = be_md_size(plan_md(p, n->out[0])) / sizeof(float);
    if (!f->replay) {
        f->mask[nid] = malloc(len);
        for (size_t i = 0; i < len; i++) f->mask[nid][i] = x[i] > 0;
        return;
    }
    for (size_t i = 0; i < len; i++) y[i] = f->mask[nid][i] ? x[i] : 0.0f;
}

/* A second reader of every ReLU's input, doing nothing: the plan then neither fuses the ReLU into
 * the batch norm or add before it nor runs it in place, so the hook sees its input and output. */
static cnn_status pin_compile(plan *p, int nid) {
    (void)p, (void)nid;
    return CNN_OK;
}

static void pin_forward(plan *p, int nid) { (void)p, (void)nid; }

static const op_def pin_op = {"relu_pin", pin_compile, pin_forward, NULL, NULL, NULL};

static void pin_relu_inputs(graph *g) {
    int n = g->nnodes;
    for (int i = 0; i < n && graph_ok(g); i++)
        if (strcmp(g->nodes[i].op->type, "relu") == 0) graph_add_node(g, &pin_op, "relu_pin", &g->nodes[i].in[0], 1, NULL);
}

static void relu_hook(plan *p, int nid, bool backward, void *ctx) {
    if (!backward) freeze_relu(p, nid, ctx);
}

static void padding_hook(plan *p, int nid, bool backward, void *ctx) {
    node *n = &plan_graph(p)->nodes[nid];
    if (!backward) {
        freeze_relu(p, nid, ctx);
        for (int i = 0; i < n->nout; i++) check_tensor_padding(p, n->out[i], false, n->op->type);
        return;
    }
    for (int i = 0; i < n->nin; i++)
        if (plan_needs_grad(p, n->in[i])) check_tensor_padding(p, n->in[i], true, n->op->type);
}

static void fill_input(float *x, int64_t n, const gc_opts *o) {
    fill_uniform(x, n, o->seed, -1, 1);
    if (!o->distinct_inputs) return;
    int32_t *perm = malloc(sizeof(int32_t) * n);
    for (int64_t i = 0; i < n; i++) perm[i] = (int32_t)i;
    rng r = rng_stream(rng_key(o->seed, RNG_SPLIT, 11, 0));
    rng_shuffle(&r, perm, n);
    for (int64_t i = 0; i < n; i++) x[i] = (perm[i] - n / 2.0f) * 3 * o->eps + 0.5f * o->eps;
    free(perm);
}

int gradcheck(const char *name, gc_build build, void *ctx, gc_opts o) {
    if (o.eps == 0) o.eps = 1e-2f;
    if (o.rtol == 0) o.rtol = 2e-2;
    if (o.atol == 0) o.atol = 2e-3;
    if (o.samples == 0) o.samples = 24;
    if (o.samples > 256) o.samples = 256;
    if (o.batch == 0) o.batch = 2;
    int fails_before = test_failures;
    graph *g = graph_new();
    int x = graph_input(g, o.c, o.h, o.w);
    g->tensors[x].requires_grad = true;
    int y = build(g, x, ctx);
    graph_set_output(g, y, OUTPUT_MAIN, 1);
    if (o.xent) {
        graph_attach_losses(g, o.smoothing);
    } else {
        gc_attach_probe(g, y);
    }
    if (o.freeze_relus) pin_relu_inputs(g);
    plan *p = NULL;
    cnn_status st = graph_ok(g) ? plan_create(g, o.batch, PLAN_TRAIN, &p) : g->error;
    if (st) {
        fprintf(stderr, "FAIL %s: build/compile: %s\n", name, cnn_last_error());
        test_failures++;
        graph_free(g);
        return 1;
    }
    int64_t nx = (int64_t)o.batch * o.c * o.h * o.w;
    plan_poison(p);
    fill_input(plan_input(p), nx, &o);
    if (o.xent) {
        int k = g->tensors[y].c;
        for (int i = 0; i < o.batch; i++) plan_labels(p)[i] = (int32_t)((i * 7 + 3) % k);
    }
    padding_errors = 0;
    relu_freeze freeze = {calloc(g->nnodes, sizeof(uint8_t *)), false};
    plan_set_hook(p, padding_hook, o.freeze_relus ? &freeze : NULL);
    loss_at(p);
    CHECK_OK(plan_backward(p));
    plan_set_hook(p, NULL, NULL);
    freeze.replay = true;
    if (o.freeze_relus) plan_set_hook(p, relu_hook, &freeze);
    CHECK(padding_errors == 0, "%s: ops wrote non-zero padded channels", name);
    float *xv = malloc(sizeof(float) * nx), *gx = malloc(sizeof(float) * nx);
    memcpy(xv, plan_input(p), sizeof(float) * nx);
    CHECK_OK(plan_read(p, x, true, gx));
    /* analytic gradients of parameters, read before any perturbation */
    float **gp = calloc(g->nparams, sizeof(float *));
    for (int i = 0; i < g->nparams; i++) {
        if (!param_trainable(&g->params[i])) continue;
        gp[i] = malloc(sizeof(float) * param_numel(&g->params[i]));
        CHECK_OK(graph_param_grad_read(g, i, gp[i]));
    }
    char what[300];
    snprintf(what, sizeof what, "%s: d/d input", name);
    coord_access acc = {p, -1, NULL};
    compare(what, &acc, xv, gx, nx, &o);
    for (int i = 0; i < g->nparams; i++) {
        if (!gp[i]) continue;
        int64_t n = param_numel(&g->params[i]);
        float *canon = malloc(sizeof(float) * n), *orig = malloc(sizeof(float) * n);
        graph_param_read(g, i, canon);
        memcpy(orig, canon, sizeof(float) * n);
        coord_access pa = {p, i, canon};
        snprintf(what, sizeof what, "%s: d/d %s", name, g->params[i].name);
        compare(what, &pa, orig, gp[i], n, &o);
        free(canon);
        free(orig);
        free(gp[i]);
    }
    free(gp);
    for (int i = 0; i < g->nnodes; i++) free(freeze.mask[i]);
    free(freeze.mask);
    free(xv);
    free(gx);
    plan_free(p);
    graph_free(g);
    int fails = test_failures - fails_before;
    printf("%-40s %s\n", name, fails ? "FAILED" : "ok");
    return fails;
}
