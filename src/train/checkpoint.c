/* checkpoint.c — saving and loading models and training state (see checkpoint.h). */
#include "train/checkpoint.h"
#include <float.h>
#include <math.h>
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

/* A regnet's regulator and its stages, its default spelled out (other models have neither). */
static void write_regulator(json_writer *w, const model_cfg *model) {
    model_cfg m = *model;
    if (model_resolve_regulator(&m) || m.regulator == REGULATOR_DEFAULT) return;
    json_write_key(w, "regulator");
    json_write_string(w, model_regulator_name(m.regulator));
    json_write_key(w, "regulated_stages");
    json_begin_array(w);
    for (int s = 0; s < 16; s++)
        if (m.regulated_stages & (1u << s)) json_write_int(w, s + 1);
    json_end_array(w);
}

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
    json_write_key(&w, "dropout_aux");
    json_write_number(&w, info->model.dropout_aux);
    json_write_key(&w, "stochastic_depth");
    json_write_number(&w, info->model.stochastic_depth);
    write_regulator(&w, &info->model);
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
    if (info->resize > 0) {
        json_write_key(&w, "resize");
        json_write_int(&w, info->resize);
        json_write_key(&w, "full_decode");
        json_write_bool(&w, info->full_decode);
    }
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

/* Metadata comes from files: every member is checked for type and range before use (a number cast
   to int out of range is undefined behaviour; a name that does not fit would be cut silently). */

static cnn_status meta_int(const char *path, const json_value *o, const char *key, int64_t lo, int64_t hi, int *out) {
    const json_value *v = json_get(o, key);
    if (!v) return CNN_OK;
    if (v->type != JSON_NUMBER || !v->is_int || v->integer < lo || v->integer > hi)
        return cnn_fail(CNN_ERR_FORMAT, "%s: metadata %s (byte %zu) is not an integer in [%lld, %lld]", path, key, v->offset,
                        (long long)lo, (long long)hi);
    *out = (int)v->integer;
    return CNN_OK;
}

/* A number in [lo, hi); absent leaves *out as it is. */
static cnn_status meta_float(const char *path, const json_value *o, const char *key, double lo, double hi, float *out) {
    const json_value *v = json_get(o, key);
    if (!v) return CNN_OK;
    if (v->type != JSON_NUMBER || !(v->number >= lo && v->number < hi))
        return cnn_fail(CNN_ERR_FORMAT, "%s: metadata %s is not a number in [%g, %g)", path, key, lo, hi);
    *out = (float)v->number;
    return CNN_OK;
}

/* A string member that fits buf (cap bytes with the NUL); absent leaves buf as it is. */
static cnn_status meta_string(const char *path, const json_value *o, const char *key, char *buf, size_t cap, bool required) {
    const json_value *v = json_get(o, key);
    if (!v && !required) return CNN_OK;
    if (!v || v->type != JSON_STRING || v->length == 0 || v->length >= cap || strlen(v->string) != v->length)
        return cnn_fail(CNN_ERR_FORMAT, "%s: metadata %s is %s, expected a string of 1 to %zu characters", path, key,
                        !v ? "missing" : v->type != JSON_STRING ? json_type_name(v->type) : "empty, too long or holds a NUL",
                        cap - 1);
    memcpy(buf, v->string, v->length + 1);
    return CNN_OK;
}

/* A regnet's "regulator" and "regulated_stages" (whether the model has those stages, model_build
 * checks). */
static cnn_status meta_regulator(const char *path, const json_value *model, model_cfg *m) {
    char name[16] = "";
    CNN_TRY(meta_string(path, model, "regulator", name, sizeof name, false));
    if (name[0] && model_parse_regulator(name, &m->regulator))
        return cnn_fail(CNN_ERR_FORMAT, "%s: metadata regulator \"%s\" is not convlstm, convgru or none", path, name);
    const json_value *stages = json_get(model, "regulated_stages");
    if (!stages) return CNN_OK;
    if (stages->type != JSON_ARRAY || stages->length > 16)
        return cnn_fail(CNN_ERR_FORMAT, "%s: metadata regulated_stages is not an array of at most 16 stage numbers", path);
    for (size_t i = 0; i < stages->length; i++) {
        const json_value *v = &stages->items[i];
        if (v->type != JSON_NUMBER || !v->is_int || v->integer < 1 || v->integer > 16)
            return cnn_fail(CNN_ERR_FORMAT, "%s: metadata regulated_stages[%zu] (byte %zu) is not an integer in [1, 16]",
                            path, i, v->offset);
        m->regulated_stages |= 1u << (v->integer - 1);
    }
    return CNN_OK;
}

static cnn_status meta_model(const char *path, const json_value *model, ckpt_info *info) {
    if (!model || model->type != JSON_OBJECT)
        return cnn_fail(CNN_ERR_FORMAT, "%s: checkpoint metadata lacks the \"model\" object", path);
    model_defaults(&info->model);
    CNN_TRY(meta_string(path, model, "name", info->name_buf, sizeof info->name_buf, true));
    info->model.name = info->name_buf;
    const json_value *input = json_get(model, "input");
    static const int64_t max_dim[3] = {4096, 8192, 8192}; /* as model_build accepts */
    int *dims[3] = {&info->model.in_c, &info->model.in_h, &info->model.in_w};
    if (!input || input->type != JSON_ARRAY || input->length != 3)
        return cnn_fail(CNN_ERR_FORMAT, "%s: checkpoint metadata lacks the model's input shape [C, H, W]", path);
    for (int i = 0; i < 3; i++) {
        const json_value *d = &input->items[i];
        if (d->type != JSON_NUMBER || !d->is_int || d->integer < 1 || d->integer > max_dim[i])
            return cnn_fail(CNN_ERR_FORMAT, "%s: metadata input[%d] (byte %zu) is not an integer in [1, %lld]", path, i,
                            d->offset, (long long)max_dim[i]);
        *dims[i] = (int)d->integer;
    }
    CNN_TRY(meta_int(path, model, "classes", 2, 1000000, &info->model.classes));
    const json_value *bn = json_get(model, "bn");
    if (bn && bn->type != JSON_BOOL) return cnn_fail(CNN_ERR_FORMAT, "%s: metadata bn is not true or false", path);
    info->model.bn = bn && bn->boolean;
    CNN_TRY(meta_float(path, model, "dropout", -1, 1, &info->model.dropout));
    CNN_TRY(meta_float(path, model, "dropout_aux", -1, 1, &info->model.dropout_aux));
    CNN_TRY(meta_float(path, model, "stochastic_depth", -1, 1, &info->model.stochastic_depth));
    return meta_regulator(path, model, &info->model);
}

static cnn_status meta_class_names(const char *path, const json_value *names, ckpt_info *info) {
    if (names->type != JSON_ARRAY || names->length > 1000000)
        return cnn_fail(CNN_ERR_FORMAT, "%s: metadata class_names is not an array of at most 1000000 strings", path);
    if (info->model.classes && names->length && names->length != (size_t)info->model.classes)
        return cnn_fail(CNN_ERR_FORMAT, "%s: metadata has %zu class names for %d classes", path, names->length,
                        info->model.classes);
    for (size_t i = 0; i < names->length; i++)
        if (names->items[i].type != JSON_STRING || strlen(names->items[i].string) != names->items[i].length)
            return cnn_fail(CNN_ERR_FORMAT, "%s: metadata class_names[%zu] (byte %zu) is not a string without NUL", path,
                            i, names->items[i].offset);
    if (!names->length) return CNN_OK;
    if (!(info->class_names = calloc(names->length, sizeof(char *)))) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    info->num_classes = (int)names->length;
    for (size_t i = 0; i < names->length; i++)
        if (!(info->class_names[i] = strdup(names->items[i].string))) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    return CNN_OK;
}

static cnn_status meta_data(const char *path, const json_value *data, ckpt_info *info) {
    if (data->type != JSON_OBJECT) return cnn_fail(CNN_ERR_FORMAT, "%s: metadata data is not an object", path);
    CNN_TRY(meta_string(path, data, "dataset", info->dataset, sizeof info->dataset, false));
    CNN_TRY(meta_int(path, data, "resize", 1, 16384, &info->resize));
    const json_value *full = json_get(data, "full_decode");
    if (full && full->type != JSON_BOOL) return cnn_fail(CNN_ERR_FORMAT, "%s: metadata full_decode is not true or false", path);
    info->full_decode = full && full->boolean;
    const json_value *names = json_get(data, "class_names");
    if (names) CNN_TRY(meta_class_names(path, names, info));
    const char *keys[2] = {"mean", "std"};
    for (int k = 0; k < 2; k++) {
        const json_value *a = json_get(data, keys[k]);
        if (!a) continue;
        /* empty: no normalization (as files written without data statistics have) */
        if (a->type != JSON_ARRAY || (a->length && a->length != (size_t)info->model.in_c) ||
            a->length > CKPT_MAX_CHANNELS || (k && a->length != (size_t)info->channels))
            return cnn_fail(CNN_ERR_FORMAT, "%s: metadata %s is not an array of %d numbers (one per input channel, at most %d)",
                            path, keys[k], info->model.in_c, CKPT_MAX_CHANNELS);
        for (size_t i = 0; i < a->length; i++) {
            double v = a->items[i].number;
            if (a->items[i].type != JSON_NUMBER || !(fabs(v) <= FLT_MAX) || (k && !(v > 0)))
                return cnn_fail(CNN_ERR_FORMAT, "%s: metadata %s[%zu] (byte %zu) is not a finite%s number", path, keys[k],
                                i, a->items[i].offset, k ? " positive" : "");
            (k ? info->std : info->mean)[i] = (float)v;
        }
        info->channels = (int)a->length;
    }
    return CNN_OK;
}

cnn_status ckpt_parse_meta(const char *path, const char *text, size_t len, ckpt_info *info) {
    memset(info, 0, sizeof *info);
    cnn_status st = json_parse(text, len, NULL, &info->meta, NULL);
    if (st) st = cnn_fail_context(st, "%s: metadata", path);
    if (!st && info->meta->type != JSON_OBJECT)
        st = cnn_fail(CNN_ERR_FORMAT, "%s: checkpoint metadata is not a JSON object", path);
    if (!st) st = meta_model(path, json_get(info->meta, "model"), info);
    const json_value *data = st ? NULL : json_get(info->meta, "data");
    if (data) st = meta_data(path, data, info);
    if (st) ckpt_info_free(info);
    return st;
}

cnn_status ckpt_open(const char *path, st_file *f, ckpt_info *info) {
    memset(info, 0, sizeof *info);
    CNN_TRY(st_read(path, f));
    const char *meta = st_meta(f, "cnn");
    if (!meta) return CNN_OK;
    cnn_status st = ckpt_parse_meta(path, meta, strlen(meta), info);
    if (st) st_free(f);
    return st;
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

cnn_status ckpt_eval_transform(const ckpt_info *info, image_transform *t) {
    const model_cfg *m = &info->model;
    if (m->in_h != m->in_w || (m->in_c != 1 && m->in_c != 3))
        return cnn_fail(CNN_ERR_SHAPE, "the model takes %dx%dx%d inputs; image files need 1 or 3 channels and a square size",
                        m->in_c, m->in_h, m->in_w);
    transform_defaults(t, 0, m->in_h);
    t->channels = m->in_c;
    t->resize = info->resize > 0 ? info->resize : m->in_h;
    t->reduced_dct = !info->full_decode;
    for (int c = 0; c < 3; c++) {
        t->mean[c] = info->channels == m->in_c ? info->mean[c < m->in_c ? c : 0] : 0.0f;
        t->std[c] = info->channels == m->in_c ? info->std[c < m->in_c ? c : 0] : 1.0f;
    }
    return transform_check(t);
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
    if (st == CNN_ERR_ARG) /* the file's fault, not the caller's */
        st = cnn_fail_context(CNN_ERR_FORMAT, "%s: the model its metadata describes", path);
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
