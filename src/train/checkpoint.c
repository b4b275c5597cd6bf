/* checkpoint.c — saving and loading models and training state (see checkpoint.h). */
#include "train/checkpoint.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/plan.h"
#include "ops/ops.h"

void ckpt_info_free(ckpt_info *info) {
    if (info->class_names) {
        for (int i = 0; i < info->num_classes; i++) free(info->class_names[i]);
        free(info->class_names);
    }
    json_free(info->meta);
    info->class_names = NULL;
    info->meta = NULL;
}

cnn_status ckpt_info_set_classes(ckpt_info *info, char *const *names, int n) {
    info->class_names = calloc(n, sizeof(char *));
    if (!info->class_names) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    info->num_classes = n;
    for (int i = 0; i < n; i++) {
        info->class_names[i] = strdup(names && names[i] ? names[i] : "");
        if (!info->class_names[i]) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    }
    return CNN_OK;
}

/* ---------- saving ---------- */

static cnn_status meta_json(const ckpt_info *info, const char *train_json, char **out) {
    json_writer w;
    json_writer_init(&w);
    json_begin_object(&w);
    json_write_key(&w, "format");
    json_write_string(&w, "cnn.c checkpoint 1");
    json_write_key(&w, "model");
    json_begin_object(&w);
    json_write_key(&w, "name");
    json_write_string(&w, info->model.name);
    json_write_key(&w, "input");
    json_begin_array(&w);
    json_write_int(&w, info->model.in_c);
    json_write_int(&w, info->model.in_h);
    json_write_int(&w, info->model.in_w);
    json_end_array(&w);
    json_write_key(&w, "classes");
    json_write_int(&w, info->model.classes);
    json_write_key(&w, "bn");
    json_write_bool(&w, info->model.bn);
    json_write_key(&w, "dropout");
    json_write_number(&w, info->model.dropout);
    json_end_object(&w);
    json_write_key(&w, "data");
    json_begin_object(&w);
    json_write_key(&w, "dataset");
    json_write_string(&w, info->dataset);
    json_write_key(&w, "class_names");
    json_begin_array(&w);
    for (int i = 0; i < info->num_classes && info->class_names; i++) json_write_string(&w, info->class_names[i]);
    json_end_array(&w);
    json_write_key(&w, "mean");
    json_begin_array(&w);
    for (int i = 0; i < info->channels; i++) json_write_number(&w, info->mean[i]);
    json_end_array(&w);
    json_write_key(&w, "std");
    json_begin_array(&w);
    for (int i = 0; i < info->channels; i++) json_write_number(&w, info->std[i]);
    json_end_array(&w);
    json_end_object(&w);
    json_value *train = NULL;
    if (train_json) {
        cnn_status st = json_parse(train_json, strlen(train_json), NULL, &train, NULL);
        if (st) {
            json_writer_free(&w);
            return cnn_fail_context(st, "checkpoint training state");
        }
        json_write_key(&w, "train");
        json_write_value(&w, train);
        json_free(train);
    }
    json_end_object(&w);
    size_t len;
    return json_writer_finish(&w, out, &len);
}

typedef struct ckpt_buffers {
    float **bufs;
    int n, cap;
} ckpt_buffers;

static float *keep(ckpt_buffers *b, size_t floats) {
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 256;
        float **nb = realloc(b->bufs, sizeof(float *) * b->cap);
        if (!nb) return NULL;
        b->bufs = nb;
    }
    float *f = malloc(sizeof(float) * (floats ? floats : 1));
    if (f) b->bufs[b->n++] = f;
    return f;
}

static cnn_status add_canonical(st_writer *w, ckpt_buffers *keepers, const param *p, const char *name, const void *phys) {
    if (p->dtype == PDT_I64) return st_writer_add(w, name, ST_I64, 0, p->dims, phys);
    float *canon = keep(keepers, param_numel(p));
    if (!canon) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    CNN_TRY(param_to_canonical(p, phys, canon));
    return st_writer_add(w, name, ST_F32, p->ndim, p->dims, canon);
}

cnn_status ckpt_save(const char *path, const graph *g, const ckpt_info *info, const char *train_json,
                     const optimizer *opt) {
    st_writer *w = st_writer_new();
    if (!w) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    ckpt_buffers keepers = {0};
    char *meta = NULL;
    cnn_status st = meta_json(info, train_json, &meta);
    if (!st) st = st_writer_meta(w, "cnn", meta);
    for (int i = 0; i < g->nparams && !st; i++)
        st = add_canonical(w, &keepers, &g->params[i], g->params[i].name, graph_param_data(g, i));
    for (int s = 0; opt && s < opt->slots && !st; s++)
        for (int i = 0; i < g->nparams && !st; i++) {
            const float *state = optim_state(opt, s, i);
            if (!state) continue;
            char name[512];
            snprintf(name, sizeof name, "optimizer.%s.%s", g->params[i].name, optim_slot_name(opt, s));
            st = add_canonical(w, &keepers, &g->params[i], name, state);
        }
    if (!st) st = st_writer_save(w, path);
    for (int i = 0; i < keepers.n; i++) free(keepers.bufs[i]);
    free(keepers.bufs);
    free(meta);
    st_writer_free(w);
    return st ? cnn_fail_context(st, "saving checkpoint %s", path) : CNN_OK;
}

/* ---------- loading ---------- */

static int json_int(const json_value *o, const char *k, int def) {
    const json_value *v = o ? json_get(o, k) : NULL;
    return v && v->type == JSON_NUMBER ? (int)v->number : def;
}

static cnn_status parse_meta(const char *path, const char *text, ckpt_info *info) {
    CNN_TRY(json_parse(text, strlen(text), NULL, &info->meta, NULL));
    const json_value *m = info->meta;
    const json_value *model = json_get(m, "model"), *data = json_get(m, "data");
    const json_value *name = model ? json_get(model, "name") : NULL;
    const json_value *input = model ? json_get(model, "input") : NULL;
    if (m->type != JSON_OBJECT || !model || !name || name->type != JSON_STRING || !input || input->type != JSON_ARRAY ||
        input->length != 3)
        return cnn_fail(CNN_ERR_FORMAT, "%s: checkpoint metadata lacks the model name or input shape", path);
    snprintf(info->name_buf, sizeof info->name_buf, "%s", name->string);
    model_defaults(&info->model);
    info->model.name = info->name_buf;
    info->model.in_c = (int)input->items[0].number;
    info->model.in_h = (int)input->items[1].number;
    info->model.in_w = (int)input->items[2].number;
    info->model.classes = json_int(model, "classes", 0);
    const json_value *bn = json_get(model, "bn"), *dropout = json_get(model, "dropout");
    info->model.bn = bn && bn->type == JSON_BOOL && bn->boolean;
    if (dropout && dropout->type == JSON_NUMBER) info->model.dropout = (float)dropout->number;
    if (!data) return CNN_OK;
    const json_value *ds = json_get(data, "dataset"), *names = json_get(data, "class_names");
    if (ds && ds->type == JSON_STRING) snprintf(info->dataset, sizeof info->dataset, "%s", ds->string);
    if (names && names->type == JSON_ARRAY && names->length > 0) {
        info->class_names = calloc(names->length, sizeof(char *));
        if (!info->class_names) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
        info->num_classes = (int)names->length;
        for (size_t i = 0; i < names->length; i++)
            info->class_names[i] = strdup(names->items[i].type == JSON_STRING ? names->items[i].string : "?");
    }
    const char *keys[2] = {"mean", "std"};
    for (int k = 0; k < 2; k++) {
        const json_value *a = json_get(data, keys[k]);
        if (!a || a->type != JSON_ARRAY) continue;
        if (a->length > CKPT_MAX_CHANNELS)
            return cnn_fail(CNN_ERR_FORMAT, "%s: %zu normalization channels", path, a->length);
        info->channels = (int)a->length;
        for (size_t i = 0; i < a->length; i++) (k ? info->std : info->mean)[i] = (float)a->items[i].number;
    }
    return CNN_OK;
}

cnn_status ckpt_open(const char *path, st_file *f, ckpt_info *info) {
    memset(info, 0, sizeof *info);
    CNN_TRY(st_read(path, f));
    const char *meta = st_meta(f, "cnn");
    if (!meta) return CNN_OK;
    cnn_status st = parse_meta(path, meta, info);
    if (st) {
        st_free(f);
        ckpt_info_free(info);
        return cnn_fail_context(st, "%s: metadata", path);
    }
    return CNN_OK;
}

static cnn_status load_tensor(const st_file *f, const char *path, const param *p, const char *name, void *phys) {
    const st_tensor *t = st_find(f, name);
    if (!t) return cnn_fail(CNN_ERR_FORMAT, "%s: tensor %s is missing", path, name);
    bool shape_ok = t->ndim == p->ndim;
    for (int d = 0; shape_ok && d < p->ndim; d++) shape_ok = t->shape[d] == p->dims[d];
    if (!shape_ok) {
        char want[64] = "", got[64] = "";
        for (int d = 0; d < p->ndim; d++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? "x" : "", (long long)p->dims[d]);
        for (int d = 0; d < t->ndim && d < 8; d++) snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? "x" : "", (long long)t->shape[d]);
        return cnn_fail(CNN_ERR_SHAPE, "%s: tensor %s has shape [%s], the model wants [%s]", path, name, got, want);
    }
    if (p->dtype == PDT_I64) {
        if (t->dtype != ST_I64) return cnn_fail(CNN_ERR_FORMAT, "%s: tensor %s is %s, expected I64", path, name, st_dtype_name(t->dtype));
        memcpy(phys, t->data, 8);
        return CNN_OK;
    }
    if (t->dtype != ST_F32) return cnn_fail(CNN_ERR_FORMAT, "%s: tensor %s is %s, expected F32", path, name, st_dtype_name(t->dtype));
    float *canon = malloc(t->nbytes ? t->nbytes : 4);
    if (!canon) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    memcpy(canon, t->data, t->nbytes); /* foreign files need not be aligned */
    cnn_status st = param_from_canonical(p, canon, phys);
    free(canon);
    return st;
}

cnn_status ckpt_load_params(const st_file *f, const char *path, graph *g) {
    if (!g->finalized) return cnn_fail(CNN_ERR_INTERNAL, "loading weights into a model not compiled yet");
    for (int i = 0; i < g->nparams; i++)
        CNN_TRY(load_tensor(f, path, &g->params[i], g->params[i].name, graph_param_data(g, i)));
    for (int i = 0; i < f->count; i++) {
        const char *name = f->tensors[i].name;
        if (strncmp(name, "optimizer.", 10) == 0) continue;
        if (graph_find_param(g, name) < 0)
            return cnn_fail(CNN_ERR_FORMAT, "%s: unexpected tensor %s (is this checkpoint for another model?)", path, name);
    }
    g->version++;
    return CNN_OK;
}

cnn_status ckpt_load_optim(const st_file *f, const char *path, optimizer *o) {
    graph *g = o->g;
    for (int s = 0; s < o->slots; s++)
        for (int i = 0; i < g->nparams; i++) {
            float *state = optim_state(o, s, i);
            if (!state) continue;
            char name[512];
            snprintf(name, sizeof name, "optimizer.%s.%s", g->params[i].name, optim_slot_name(o, s));
            CNN_TRY(load_tensor(f, path, &g->params[i], name, state));
        }
    return CNN_OK;
}

cnn_status ckpt_load_model(const char *path, ckpt_info *info, graph **g_out, int batch, plan **plan_out) {
    *g_out = NULL;
    if (plan_out) *plan_out = NULL;
    st_file f;
    CNN_TRY(ckpt_open(path, &f, info));
    if (!info->meta) {
        st_free(&f);
        return cnn_fail(CNN_ERR_FORMAT, "%s: not a cnn.c checkpoint (no \"cnn\" metadata)", path);
    }
    graph *g = NULL;
    plan *p = NULL;
    cnn_status st = model_build(&info->model, &g);
    if (!st) {
        graph_attach_losses(g, 0); /* evaluation reports the cross-entropy too */
        st = graph_ok(g) ? plan_create(g, batch, PLAN_EVAL, &p) : g->error;
    }
    if (!st) st = ckpt_load_params(&f, path, g);
    st_free(&f);
    if (st) {
        plan_free(p);
        graph_free(g);
        ckpt_info_free(info);
        return st;
    }
    *g_out = g;
    if (plan_out) *plan_out = p;
    else plan_free(p);
    return CNN_OK;
}
