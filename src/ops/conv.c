/* conv.c — 2-D convolution (stride, padding, dilation, groups, optional bias) on oneDNN:
 * forward, backward-data and backward-weights primitives created once per plan. The weights
 * keep the forward primitive's layout; backward-data gets a view in its own layout. */
#include "core/error.h"
#include "core/plan.h"
#include "ops/ops.h"
#include <stdlib.h>
#include <string.h>

typedef struct conv_attr {
    conv_cfg cfg;
    int in_c;
} conv_attr;

typedef struct conv_state {
    int fwd, bwd_data, bwd_weights;       /* primitive handles, -1 if absent */
    int w_fwd_view, w_bwd_view, dw_view, db_view;
    int src_blocked, to_blocked;          /* blocked copy of a plain input for backward weights, or -1 */
} conv_state;

static int out_size(int in, int k, int stride, int pad, int dil) {
    return (in + 2 * pad - dil * (k - 1) - 1) / stride + 1;
}

static void weights_dims(const conv_attr *a, dnnl_dims_t d, int *nd) {
    const conv_cfg *c = &a->cfg;
    if (c->groups == 1) {
        d[0] = c->out_c; d[1] = a->in_c; d[2] = c->k; d[3] = c->k;
        *nd = 4;
    } else {
        d[0] = c->groups; d[1] = c->out_c / c->groups; d[2] = a->in_c / c->groups; d[3] = c->k; d[4] = c->k;
        *nd = 5;
    }
}

typedef struct conv_descs {
    dnnl_memory_desc_t src, w, b, dst;
    dnnl_dims_t strides, dil, pad;
} conv_descs;

static void make_descs(plan *p, int nid, conv_descs *d) {
    node *n = &plan_graph(p)->nodes[nid];
    conv_attr *a = n->attr;
    dnnl_dims_t wd;
    int nd;
    weights_dims(a, wd, &nd);
    d->src = *plan_md(p, n->in[0]);
    d->dst = *plan_md(p, n->out[0]);
    dnnl_memory_desc_init_by_tag(&d->w, nd, wd, dnnl_f32, dnnl_format_tag_any);
    dnnl_dims_t bd = {a->cfg.out_c};
    dnnl_memory_desc_init_by_tag(&d->b, 1, bd, dnnl_f32, dnnl_x);
    d->strides[0] = d->strides[1] = a->cfg.stride;
    d->dil[0] = d->dil[1] = a->cfg.dilation - 1;
    d->pad[0] = d->pad[1] = a->cfg.pad;
}

static cnn_status try_bwd_weights(const conv_descs *d, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *bias,
                                  const_dnnl_primitive_desc_t fpd, int allow_ref, dnnl_primitive_desc_t *pd) {
    dnnl_convolution_desc_t cd;
    CNN_TRY(be_check(dnnl_dilated_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, src, &d->w, bias,
                                                                          &d->dst, d->strides, d->dil, d->pad, d->pad),
                     "convolution backward weights"));
    return be_pd(pd, &cd, NULL, fpd, allow_ref, "convolution backward weights");
}

/* On AVX2 the JIT backward-weights kernel reads a plain input only with exactly 3 channels; for
 * other first layers (1-channel MNIST) it reads a blocked copy of the input, made in backward. */
static cnn_status bwd_weights_pd(plan *p, int nid, const conv_descs *d, const dnnl_memory_desc_t *bias,
                                 const_dnnl_primitive_desc_t fpd, dnnl_primitive_desc_t *pd) {
    conv_state *s = plan_state(p, nid);
    CNN_TRY(try_bwd_weights(d, &d->src, bias, fpd, 1, pd));
    if (strncmp(be_impl(*pd), "ref", 3) != 0) return CNN_OK;
    if (d->src.format_desc.blocking.inner_nblks > 0) {
        be_warn_ref(*pd, "convolution backward weights");
        return CNN_OK;
    }
    dnnl_memory_desc_t blocked;
    be_md_act(&blocked, (int)d->src.dims[0], (int)d->src.dims[1], (int)d->src.dims[2], (int)d->src.dims[3],
              LAYOUT_BLOCKED);
    dnnl_primitive_desc_t alt = NULL;
    if (try_bwd_weights(d, &blocked, bias, fpd, 1, &alt) || strncmp(be_impl(alt), "ref", 3) == 0) {
        if (alt) dnnl_primitive_desc_destroy(alt);
        be_warn_ref(*pd, "convolution backward weights");
        return CNN_OK;
    }
    dnnl_primitive_desc_destroy(*pd);
    *pd = alt;
    s->src_blocked = plan_request(p, nid, LIFE_BWD, &blocked, 0);
    const backend *b = be_get();
    dnnl_primitive_desc_t rpd;
    CNN_TRY(be_check(dnnl_reorder_primitive_desc_create(&rpd, &d->src, b->engine, &blocked, b->engine, NULL), "reorder"));
    cnn_status st;
    s->to_blocked = plan_prim(p, rpd, &st);
    dnnl_primitive_desc_destroy(rpd);
    return st;
}

static cnn_status conv_compile(plan *p, int nid) {
    graph *g = plan_graph(p);
    node *n = &g->nodes[nid];
    conv_attr *a = n->attr;
    conv_state *s = calloc(1, sizeof *s);
    if (!s) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    s->fwd = s->bwd_data = s->bwd_weights = -1;
    s->w_fwd_view = s->w_bwd_view = s->dw_view = s->db_view = -1;
    s->src_blocked = s->to_blocked = -1;
    plan_set_state(p, nid, s);
    conv_descs d;
    make_descs(p, nid, &d);
    const dnnl_memory_desc_t *bias = a->cfg.bias ? &d.b : NULL;
    bool train = plan_is_train(p);
    dnnl_convolution_desc_t cd;
    CNN_TRY(be_check(dnnl_dilated_convolution_forward_desc_init(
                         &cd, train ? dnnl_forward_training : dnnl_forward_inference, dnnl_convolution_direct,
                         &d.src, &d.w, bias, &d.dst, d.strides, d.dil, d.pad, d.pad),
                     "convolution forward"));
    dnnl_primitive_desc_t fpd = NULL, pd = NULL;
    CNN_TRY(be_pd(&fpd, &cd, NULL, NULL, 0, "convolution forward"));
    cnn_status st = CNN_OK;
    s->fwd = plan_prim(p, fpd, &st);
    if (!st) st = plan_param_use(p, nid, 0, be_query_md(fpd, dnnl_query_weights_md, 0), &s->w_fwd_view);
    if (!st && a->cfg.bias) st = plan_param_use(p, nid, 1, &d.b, &(int){0});
    if (!st && train && plan_needs_grad(p, n->in[0])) {
        plan_grad_overwrites(p, nid);
        st = be_check(dnnl_dilated_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &d.src, &d.w,
                                                                       &d.dst, d.strides, d.dil, d.pad, d.pad),
                      "convolution backward data");
        /* a plain (first-layer) input never needs its gradient in training: tests only */
        bool plain_src = plan_graph(p)->tensors[n->in[0]].layout == LAYOUT_PLAIN;
        if (!st) st = be_pd(&pd, &cd, NULL, fpd, plain_src, "convolution backward data");
        if (!st) s->bwd_data = plan_prim(p, pd, &st);
        if (!st) st = plan_param_use(p, nid, 0, be_query_md(pd, dnnl_query_weights_md, 0), &s->w_bwd_view);
        if (pd) dnnl_primitive_desc_destroy(pd);
        pd = NULL;
    }
    if (!st && train) {
        plan_keep_input(p, nid, 0);
        st = bwd_weights_pd(p, nid, &d, bias, fpd, &pd);
        if (!st) s->bwd_weights = plan_prim(p, pd, &st);
        if (!st) st = plan_param_grad_use(p, nid, 0, be_query_md(pd, dnnl_query_diff_weights_md, 0), &s->dw_view);
        if (!st && a->cfg.bias) st = plan_param_grad_use(p, nid, 1, &d.b, &s->db_view);
        if (pd) dnnl_primitive_desc_destroy(pd);
    }
    dnnl_primitive_desc_destroy(fpd);
    return st;
}

static void conv_forward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    conv_state *s = plan_state(p, nid);
    dnnl_exec_arg_t args[4] = {
        {DNNL_ARG_SRC, plan_val_mem(p, n->in[0])},
        {DNNL_ARG_WEIGHTS, plan_param_mem(p, nid, 0, s->w_fwd_view)},
        {DNNL_ARG_DST, plan_val_mem(p, n->out[0])},
    };
    int na = 3;
    if (n->nparams > 1) args[na++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, plan_param_mem(p, nid, 1, -1)};
    plan_run(p, s->fwd, na, args);
}

static void conv_backward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    conv_state *s = plan_state(p, nid);
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
    dnnl_memory_t src = plan_val_mem(p, n->in[0]);
    if (s->to_blocked >= 0) {
        dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, plan_buf_mem(p, s->src_blocked)}};
        plan_run(p, s->to_blocked, 2, r);
        src = plan_buf_mem(p, s->src_blocked);
    }
    dnnl_exec_arg_t args[4] = {
        {DNNL_ARG_SRC, src},
        {DNNL_ARG_DIFF_DST, dy},
        {DNNL_ARG_DIFF_WEIGHTS, plan_param_grad_begin(p, nid, 0, s->dw_view)},
    };
    int na = 3;
    if (n->nparams > 1) args[na++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_BIAS, plan_param_grad_begin(p, nid, 1, s->db_view)};
    plan_run(p, s->bwd_weights, na, args);
    plan_param_grad_end(p, nid, 0, s->dw_view);
    if (n->nparams > 1) plan_param_grad_end(p, nid, 1, s->db_view);
}

static int64_t conv_macs(const graph *g, const node *n) {
    const conv_attr *a = n->attr;
    const tensor *y = &g->tensors[n->out[0]];
    return (int64_t)y->c * y->h * y->w * (a->in_c / a->cfg.groups) * a->cfg.k * a->cfg.k;
}

static const op_def conv_op = {"conv2d", conv_compile, conv_forward, conv_backward, NULL, conv_macs};

int op_conv2d(graph *g, int x, const char *name, const conv_cfg *cfg) {
    if (!graph_ok(g) || x < 0) return -1;
    const tensor *t = graph_tensor(g, x);
    if (cfg->out_c <= 0 || cfg->k <= 0 || cfg->stride <= 0 || cfg->pad < 0 || cfg->dilation <= 0 || cfg->groups <= 0 ||
        t->c % cfg->groups || cfg->out_c % cfg->groups)
        return graph_fail(g, cnn_fail(CNN_ERR_SHAPE, "%s%s: conv %d->%d k%d s%d p%d d%d g%d does not fit", g->scope,
                                      name, t->c, cfg->out_c, cfg->k, cfg->stride, cfg->pad, cfg->dilation, cfg->groups));
    /* the JIT kernels read a plain input only for few input channels (the first layer) */
    if (t->layout == LAYOUT_PLAIN && (t->c >= be_block() || cfg->groups > 1)) {
        x = op_to_blocked(g, x);
        if (x < 0) return -1;
        t = graph_tensor(g, x);
    }
    int oh = out_size(t->h, cfg->k, cfg->stride, cfg->pad, cfg->dilation);
    int ow = out_size(t->w, cfg->k, cfg->stride, cfg->pad, cfg->dilation);
    if (oh <= 0 || ow <= 0)
        return graph_fail(g, cnn_fail(CNN_ERR_SHAPE, "%s%s: input %dx%d too small for a %dx%d kernel", g->scope, name,
                                      t->h, t->w, cfg->k, cfg->k));
    conv_attr *a = malloc(sizeof *a);
    if (!a) return graph_fail(g, cnn_fail(CNN_ERR_NOMEM, "out of memory"));
    a->cfg = *cfg;
    a->in_c = t->c;
    int nid = graph_add_node(g, &conv_op, name, &x, 1, a);
    int64_t wd[4] = {cfg->out_c, t->c / cfg->groups, cfg->k, cfg->k};
    int w = graph_add_param(g, nid, "weight", 4, wd, PARAM_WEIGHT, cfg->init, 0);
    if (w >= 0) {
        param *pw = &g->params[w];
        dnnl_dims_t d;
        int nd;
        weights_dims(a, d, &nd);
        dnnl_memory_desc_init_by_tag(&pw->canon_md, nd, d, dnnl_f32, nd == 4 ? dnnl_oihw : dnnl_goihw);
    }
    if (cfg->bias) {
        int64_t bd[1] = {cfg->out_c};
        int b = graph_add_param(g, nid, "bias", 1, bd, PARAM_BIAS, INIT_UNIFORM_FAN_IN, 0);
        if (b >= 0) g->params[b].fan_in = g->params[w].fan_in;
    }
    return graph_node_output(g, nid, cfg->out_c, oh, ow, LAYOUT_BLOCKED);
}

int op_conv(graph *g, int x, const char *name, int out_c, int k, int stride) {
    conv_cfg c = {out_c, k, stride, k / 2, 1, 1, false, INIT_KAIMING_NORMAL_OUT};
    return op_conv2d(g, x, name, &c);
}

int op_in_channels(const graph *g, int x) { return x >= 0 ? graph_tensor(g, x)->c : 0; }
