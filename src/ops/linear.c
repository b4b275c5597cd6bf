/* linear.c — fully connected layer on oneDNN's inner product. The input may be any c×h×w
 * tensor: the product runs over its flattened values (channel-major, as torch.flatten), so the
 * weight is PyTorch's (out, c*h*w) matrix. The output is plain batch×out. */
#include "core/error.h"
#include "core/plan.h"
#include "ops/ops.h"
#include <stdlib.h>

typedef struct linear_attr {
    int out;
} linear_attr;

typedef struct linear_state {
    int fwd, bwd_data, bwd_weights;
    int w_fwd_view, w_bwd_view, dw_view, db_view;
} linear_state;

static void weights_md(plan *p, int nid, dnnl_memory_desc_t *md, dnnl_format_tag_t tag) {
    node *n = &plan_graph(p)->nodes[nid];
    const dnnl_memory_desc_t *src = plan_md(p, n->in[0]);
    linear_attr *a = n->attr;
    dnnl_dims_t d = {a->out};
    for (int i = 1; i < src->ndims; i++) d[i] = src->dims[i];
    dnnl_memory_desc_init_by_tag(md, src->ndims, d, dnnl_f32, tag);
}

static cnn_status linear_compile(plan *p, int nid) {
    graph *g = plan_graph(p);
    node *n = &g->nodes[nid];
    linear_attr *a = n->attr;
    linear_state *s = calloc(1, sizeof *s);
    if (!s) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    s->bwd_data = s->bwd_weights = -1;
    s->w_fwd_view = s->w_bwd_view = s->dw_view = s->db_view = -1;
    plan_set_state(p, nid, s);
    const dnnl_memory_desc_t *src = plan_md(p, n->in[0]), *dst = plan_md(p, n->out[0]);
    dnnl_memory_desc_t w, b;
    weights_md(p, nid, &w, dnnl_format_tag_any);
    dnnl_dims_t bd = {a->out};
    dnnl_memory_desc_init_by_tag(&b, 1, bd, dnnl_f32, dnnl_x);
    bool train = plan_is_train(p);
    dnnl_inner_product_desc_t id;
    dnnl_primitive_desc_t fpd = NULL, pd = NULL;
    CNN_TRY(be_check(dnnl_inner_product_forward_desc_init(&id, train ? dnnl_forward_training : dnnl_forward_inference,
                                                          src, &w, &b, dst),
                     "inner product forward"));
    CNN_TRY(be_pd(&fpd, &id, NULL, NULL, 0, "inner product forward"));
    cnn_status st = CNN_OK;
    int unused;
    s->fwd = plan_prim(p, fpd, &st);
    if (!st) st = plan_param_use(p, nid, 0, be_query_md(fpd, dnnl_query_weights_md, 0), &s->w_fwd_view);
    if (!st) st = plan_param_use(p, nid, 1, &b, &unused);
    if (!st && train && plan_needs_grad(p, n->in[0])) {
        plan_grad_overwrites(p, nid);
        st = be_check(dnnl_inner_product_backward_data_desc_init(&id, src, &w, dst), "inner product backward data");
        if (!st) st = be_pd(&pd, &id, NULL, fpd, 0, "inner product backward data");
        if (!st) s->bwd_data = plan_prim(p, pd, &st);
        if (!st) st = plan_param_use(p, nid, 0, be_query_md(pd, dnnl_query_weights_md, 0), &s->w_bwd_view);
        if (pd) dnnl_primitive_desc_destroy(pd);
        pd = NULL;
    }
    if (!st && train) {
        plan_keep_input(p, nid, 0);
        st = be_check(dnnl_inner_product_backward_weights_desc_init(&id, src, &w, &b, dst),
                      "inner product backward weights");
        if (!st) st = be_pd(&pd, &id, NULL, fpd, 0, "inner product backward weights");
        if (!st) s->bwd_weights = plan_prim(p, pd, &st);
        if (!st) st = plan_param_grad_use(p, nid, 0, be_query_md(pd, dnnl_query_diff_weights_md, 0), &s->dw_view);
        if (!st) st = plan_param_grad_use(p, nid, 1, &b, &s->db_view);
        if (pd) dnnl_primitive_desc_destroy(pd);
    }
    dnnl_primitive_desc_destroy(fpd);
    return st;
}

static void linear_forward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    linear_state *s = plan_state(p, nid);
    dnnl_exec_arg_t args[4] = {
        {DNNL_ARG_SRC, plan_val_mem(p, n->in[0])},
        {DNNL_ARG_WEIGHTS, plan_param_mem(p, nid, 0, s->w_fwd_view)},
        {DNNL_ARG_BIAS, plan_param_mem(p, nid, 1, -1)},
        {DNNL_ARG_DST, plan_val_mem(p, n->out[0])},
    };
    plan_run(p, s->fwd, 4, args);
}

static void linear_backward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    linear_state *s = plan_state(p, nid);
    dnnl_memory_t dy = plan_grad_mem(p, n->out[0]);
    if (s->bwd_data >= 0) {
        dnnl_exec_arg_t args[3] = {
            {DNNL_ARG_DIFF_SRC, plan_grad_in_begin(p, nid, 0)},
            {DNNL_ARG_WEIGHTS, plan_param_mem(p, nid, 0, s->w_bwd_view)},
            {DNNL_ARG_DIFF_DST, dy},
        };
        plan_run(p, s->bwd_data, 3, args);
        plan_grad_in_end(p, nid, 0);
    }
    dnnl_exec_arg_t args[4] = {
        {DNNL_ARG_SRC, plan_val_mem(p, n->in[0])},
        {DNNL_ARG_DIFF_DST, dy},
        {DNNL_ARG_DIFF_WEIGHTS, plan_param_grad_begin(p, nid, 0, s->dw_view)},
        {DNNL_ARG_DIFF_BIAS, plan_param_grad_begin(p, nid, 1, s->db_view)},
    };
    plan_run(p, s->bwd_weights, 4, args);
    plan_param_grad_end(p, nid, 0, s->dw_view);
    plan_param_grad_end(p, nid, 1, s->db_view);
}

static int64_t linear_macs(const graph *g, const node *n) {
    const tensor *x = &g->tensors[n->in[0]];
    return (int64_t)x->c * x->h * x->w * ((const linear_attr *)n->attr)->out;
}

static const op_def linear_op = {"linear", linear_compile, linear_forward, linear_backward, NULL, linear_macs};

int op_linear(graph *g, int x, const char *name, int out, bool bias) {
    if (!graph_ok(g) || x < 0) return -1;
    if (!bias) return graph_fail(g, cnn_fail(CNN_ERR_INTERNAL, "%s%s: linear without bias is not supported", g->scope, name));
    if (out <= 0) return graph_fail(g, cnn_fail(CNN_ERR_SHAPE, "%s%s: %d outputs", g->scope, name, out));
    const tensor *t = graph_tensor(g, x);
    linear_attr *a = malloc(sizeof *a);
    if (!a) return graph_fail(g, cnn_fail(CNN_ERR_NOMEM, "out of memory"));
    a->out = out;
    int nid = graph_add_node(g, &linear_op, name, &x, 1, a);
    int64_t in = (int64_t)t->c * t->h * t->w;
    int64_t wd[2] = {out, in}, bd[1] = {out};
    int w = graph_add_param(g, nid, "weight", 2, wd, PARAM_WEIGHT, INIT_UNIFORM_FAN_IN, 0);
    if (w >= 0) {
        /* the canonical layout follows the input's rank (be_md_act): (out, c) after a linear layer,
         * else (out, c, h, w); known now, so that a head no plan compiles still has one */
        dnnl_dims_t d = {out, t->c, t->h, t->w};
        bool flat = t->layout == LAYOUT_PLAIN && t->h == 1 && t->w == 1;
        dnnl_memory_desc_init_by_tag(&g->params[w].canon_md, flat ? 2 : 4, d, dnnl_f32, flat ? dnnl_oi : dnnl_oihw);
    }
    int b = graph_add_param(g, nid, "bias", 1, bd, PARAM_BIAS, INIT_UNIFORM_FAN_IN, 0);
    if (b >= 0) g->params[b].fan_in = g->params[w].fan_in;
    return graph_node_output(g, nid, out, 1, 1, LAYOUT_PLAIN);
}
