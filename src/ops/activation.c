/* activation.c — ReLU, sigmoid and tanh on oneDNN's eltwise primitives, which keep the padded
 * channels of blocked layouts at zero; each differentiates from its output. (SiLU: silu.c.) */
#include "core/error.h"
#include "core/plan.h"
#include "ops/ops.h"
#include <stdlib.h>

/* the node's attribute: oneDNN's *_use_dst_for_bwd algorithm (the same forward; the backward reads y) */
typedef struct act_attr {
    dnnl_alg_kind_t alg;
} act_attr;

typedef struct act_state {
    int fwd, bwd;
} act_state;

static cnn_status act_compile(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    act_attr *a = n->attr;
    act_state *s = calloc(1, sizeof *s);
    if (!s) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    s->bwd = -1;
    plan_set_state(p, nid, s);
    const dnnl_memory_desc_t *md = plan_md(p, n->in[0]);
    bool train = plan_is_train(p);
    dnnl_eltwise_desc_t ed;
    dnnl_primitive_desc_t fpd = NULL, pd = NULL;
    CNN_TRY(be_check(dnnl_eltwise_forward_desc_init(&ed, train ? dnnl_forward_training : dnnl_forward_inference,
                                                    a->alg, md, 0.0f, 0.0f),
                     "eltwise forward"));
    CNN_TRY(be_pd(&fpd, &ed, NULL, NULL, 0, "eltwise forward"));
    cnn_status st = CNN_OK;
    s->fwd = plan_prim(p, fpd, &st);
    if (!st && train && plan_needs_grad(p, n->in[0])) {
        plan_grad_overwrites(p, nid);
        plan_keep_output(p, nid, 0);
        st = be_check(dnnl_eltwise_backward_desc_init(&ed, a->alg, md, md, 0.0f, 0.0f), "eltwise backward");
        if (!st) st = be_pd(&pd, &ed, NULL, fpd, 0, "eltwise backward");
        if (!st) s->bwd = plan_prim(p, pd, &st);
        if (pd) dnnl_primitive_desc_destroy(pd);
    }
    dnnl_primitive_desc_destroy(fpd);
    return st;
}

static void act_forward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    act_state *s = plan_state(p, nid);
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_SRC, plan_val_mem(p, n->in[0])}, {DNNL_ARG_DST, plan_val_mem(p, n->out[0])}};
    plan_run(p, s->fwd, 2, args);
}

static void act_backward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    act_state *s = plan_state(p, nid);
    if (s->bwd < 0) return;
    dnnl_exec_arg_t args[3] = {
        {DNNL_ARG_DST, plan_val_mem(p, n->out[0])},
        {DNNL_ARG_DIFF_DST, plan_grad_mem(p, n->out[0])},
        {DNNL_ARG_DIFF_SRC, plan_grad_in_begin(p, nid, 0)},
    };
    plan_run(p, s->bwd, 3, args);
    plan_grad_in_end(p, nid, 0);
}

static const op_def relu_op = {"relu", act_compile, act_forward, act_backward, NULL, NULL, NULL, true};
static const op_def sigmoid_op = {"sigmoid", act_compile, act_forward, act_backward, NULL, NULL, NULL, true};
static const op_def tanh_op = {"tanh", act_compile, act_forward, act_backward, NULL, NULL, NULL, true};

static int act(graph *g, int x, const op_def *op, dnnl_alg_kind_t alg) {
    if (!graph_ok(g) || x < 0) return -1;
    const tensor *t = graph_tensor(g, x);
    act_attr *a = malloc(sizeof *a);
    if (!a) return graph_fail(g, cnn_fail(CNN_ERR_NOMEM, "out of memory"));
    a->alg = alg;
    int nid = graph_add_node(g, op, op->type, &x, 1, a);
    return graph_node_output(g, nid, t->c, t->h, t->w, t->layout);
}

int op_relu(graph *g, int x) { return act(g, x, &relu_op, dnnl_eltwise_relu_use_dst_for_bwd); }
int op_sigmoid(graph *g, int x) { return act(g, x, &sigmoid_op, dnnl_eltwise_logistic_use_dst_for_bwd); }
int op_tanh(graph *g, int x) { return act(g, x, &tanh_op, dnnl_eltwise_tanh_use_dst_for_bwd); }
