/* optim_run.c — the cnn.c half of tests/test_optim_torch.py: applies cnn.c's optimizer to a model's
 * parameters with gradients given from outside, step after step, and writes the final parameters.
 *
 *   optim_run CASE OUT
 *       CASE: safetensors with the model's initial parameters under their names, gradients
 *       "grad.<step>.<name>", and metadata "case" (JSON: model, input [c,h,w], classes, optimizer,
 *       lr, momentum, dampening, nesterov, weight_decay, beta1, beta2, eps, clip_norm,
 *       no_decay_bn_bias, steps). OUT: "final.<name>" for every trainable parameter. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/json.h"
#include "core/plan.h"
#include "models/models.h"
#include "train/checkpoint.h"
#include "train/optim.h"
#include "train/safetensors.h"

static double num(const json_value *o, const char *k) {
    const json_value *v = json_get(o, k);
    return v && v->type == JSON_NUMBER ? v->number : v && v->type == JSON_BOOL ? v->boolean : 0;
}

static cnn_status config(const json_value *c, model_cfg *m, optim_cfg *oc, int *steps) {
    const json_value *name = json_get(c, "model"), *in = json_get(c, "input"), *kind = json_get(c, "optimizer");
    if (!name || !in || !kind || in->length != 3) return cnn_fail(CNN_ERR_FORMAT, "case metadata incomplete");
    model_defaults(m);
    m->name = name->string;
    m->in_c = (int)in->items[0].number;
    m->in_h = (int)in->items[1].number;
    m->in_w = (int)in->items[2].number;
    m->classes = (int)num(c, "classes");
    m->bn = true;
    optim_kind k;
    CNN_TRY(optim_parse_kind(kind->string, &k));
    optim_defaults(oc, k);
    oc->lr = (float)num(c, "lr");
    oc->momentum = (float)num(c, "momentum");
    oc->dampening = (float)num(c, "dampening");
    oc->nesterov = num(c, "nesterov") != 0;
    oc->weight_decay = (float)num(c, "weight_decay");
    oc->beta1 = (float)num(c, "beta1");
    oc->beta2 = (float)num(c, "beta2");
    oc->eps = (float)num(c, "eps");
    oc->clip_norm = (float)num(c, "clip_norm");
    oc->no_decay_bn_bias = num(c, "no_decay_bn_bias") != 0;
    *steps = (int)num(c, "steps");
    return CNN_OK;
}

static cnn_status set_grads(const st_file *f, graph *g, int step) {
    for (int i = 0; i < g->nparams; i++) {
        if (!param_trainable(&g->params[i])) continue;
        char name[512];
        snprintf(name, sizeof name, "grad.%d.%s", step, g->params[i].name);
        const st_tensor *t = st_find(f, name);
        if (!t) return cnn_fail(CNN_ERR_FORMAT, "missing %s", name);
        float *canon = malloc(t->nbytes);
        memcpy(canon, t->data, t->nbytes);
        cnn_status st = param_from_canonical(&g->params[i], canon, graph_param_grad(g, i));
        free(canon);
        CNN_TRY(st);
    }
    return CNN_OK;
}

static cnn_status write_final(graph *g, const char *path) {
    st_writer *w = st_writer_new();
    float **bufs = calloc(g->nparams, sizeof(float *));
    cnn_status st = CNN_OK;
    for (int i = 0; i < g->nparams && !st; i++) {
        param *p = &g->params[i];
        if (!param_trainable(p)) continue;
        bufs[i] = malloc(sizeof(float) * param_numel(p));
        char name[512];
        snprintf(name, sizeof name, "final.%s", p->name);
        st = graph_param_read(g, i, bufs[i]);
        if (!st) st = st_writer_add(w, name, ST_F32, p->ndim, p->dims, bufs[i]);
    }
    if (!st) st = st_writer_save(w, path);
    for (int i = 0; i < g->nparams; i++) free(bufs[i]);
    free(bufs);
    st_writer_free(w);
    return st;
}

static cnn_status run(const char *case_path, const char *out) {
    st_file f;
    CNN_TRY(st_read(case_path, &f));
    json_value *meta = NULL;
    const char *text = st_meta(&f, "case");
    cnn_status st = text ? json_parse(text, strlen(text), NULL, &meta, NULL) : cnn_fail(CNN_ERR_FORMAT, "no case");
    model_cfg m;
    optim_cfg oc;
    int steps = 0;
    graph *g = NULL;
    plan *p = NULL;
    optimizer *o = NULL;
    if (!st) st = config(meta, &m, &oc, &steps);
    if (!st) st = model_build(&m, &g);
    if (!st) st = plan_create(g, 1, PLAN_TRAIN, &p);
    /* initial values by name (ckpt_load_params would refuse the extra grad.* tensors) */
    for (int i = 0; !st && i < g->nparams; i++) {
        const st_tensor *t = st_find(&f, g->params[i].name);
        if (!t) continue;
        float *canon = malloc(t->nbytes);
        memcpy(canon, t->data, t->nbytes);
        st = graph_param_write(g, i, canon);
        free(canon);
    }
    if (!st) st = optim_create(g, &oc, &o);
    for (int k = 0; !st && k < steps; k++) {
        st = set_grads(&f, g, k);
        if (!st) optim_step(o, oc.lr);
    }
    if (!st) st = write_final(g, out);
    optim_free(o);
    plan_free(p);
    graph_free(g);
    json_free(meta);
    st_free(&f);
    return st;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: optim_run CASE OUT\n");
        return 2;
    }
    cnn_status st = run(argv[1], argv[2]);
    if (st) fprintf(stderr, "optim_run: %s\n", cnn_last_error());
    return st ? 1 : 0;
}
