/* reorder.c — the same values in another layout: plain (network input, linear outputs) to the
 * blocked layout the other ops run in; the gradient goes back the other way. */
#include "core/error.h"
#include "core/plan.h"
#include "ops/ops.h"
#include <stdlib.h>

typedef struct reorder_state {
    int fwd, bwd;
    dnnl_memory_desc_t src4;    /* the source seen as 4-D (a 2-D n×c tensor is n×c×1×1) */
    dnnl_memory_t m4;           /* over the plain buffer; its pointer is set at each run */
} reorder_state;

static void reorder_free(void *state) {
    reorder_state *s = state;
    if (s->m4) dnnl_memory_destroy(s->m4);
    free(s);
}

static cnn_status reorder_compile(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    const tensor *t = graph_tensor(plan_graph(p), n->in[0]);
    reorder_state *s = calloc(1, sizeof *s);
    if (!s) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    s->bwd = -1;
    plan_set_state(p, nid, s);
    dnnl_dims_t d = {plan_batch(p), t->c, t->h, t->w};
    dnnl_memory_desc_init_by_tag(&s->src4, 4, d, dnnl_f32, dnnl_nchw);
    s->m4 = be_mem(&s->src4, NULL);
    if (!s->m4) return cnn_fail(CNN_ERR_BACKEND, "oneDNN: cannot create a memory object");
    const dnnl_memory_desc_t *dst = plan_md(p, n->out[0]);
    const backend *b = be_get();
    dnnl_primitive_desc_t pd;
    cnn_status st;
    CNN_TRY(be_check(dnnl_reorder_primitive_desc_create(&pd, &s->src4, b->engine, dst, b->engine, NULL), "reorder"));
    s->fwd = plan_prim(p, pd, &st);
    dnnl_primitive_desc_destroy(pd);
    if (st || !plan_needs_grad(p, n->in[0])) return st;
    plan_grad_overwrites(p, nid);
    CNN_TRY(be_check(dnnl_reorder_primitive_desc_create(&pd, dst, b->engine, &s->src4, b->engine, NULL), "reorder"));
    s->bwd = plan_prim(p, pd, &st);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

static void run(plan *p, int prim, reorder_state *s, void *plain, dnnl_memory_t blocked, bool to_blocked) {
    dnnl_memory_set_data_handle(s->m4, plain);
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, to_blocked ? s->m4 : blocked}, {DNNL_ARG_TO, to_blocked ? blocked : s->m4}};
    plan_run(p, prim, 2, args);
}

static void reorder_forward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    reorder_state *s = plan_state(p, nid);
    run(p, s->fwd, s, plan_val(p, n->in[0]), plan_val_mem(p, n->out[0]), true);
}

static void reorder_backward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    reorder_state *s = plan_state(p, nid);
    if (s->bwd < 0) return;
    run(p, s->bwd, s, plan_grad_in_ptr(p, nid, 0), plan_grad_mem(p, n->out[0]), false);
    plan_grad_in_end(p, nid, 0);
}

static const op_def reorder_op = {"to_blocked", reorder_compile, reorder_forward, reorder_backward, reorder_free, NULL};

int op_to_blocked(graph *g, int x) {
    if (!graph_ok(g) || x < 0) return -1;
    const tensor *t = graph_tensor(g, x);
    if (t->layout == LAYOUT_BLOCKED) return x;
    int c = t->c, h = t->h, w = t->w;
    int nid = graph_add_node(g, &reorder_op, "to_blocked", &x, 1, NULL);
    return graph_node_output(g, nid, c, h, w, LAYOUT_BLOCKED);
}
