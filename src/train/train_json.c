/* train_json.c — training configuration and state to and from checkpoint metadata (see
 * train_json.h). The configuration is a table of fields, so adding an option is adding a row. */
#include "train/train_json.h"
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"

typedef enum ftype { F_STR, F_BOOL, F_FLOAT, F_INT, F_I64, F_U64, F_OPTIM, F_SCHED, F_METRIC, F_MODE, F_MILESTONES, F_REGULATOR,
               F_STAGES } ftype;

typedef struct field {
    const char *key;
    ftype type;
    size_t off;
    bool optional;             /* added later: runs saved before have no such key (the default applies) */
} field;

#define F(key, type, member) {key, type, offsetof(train_cfg, member), false}
#define F_LATER(key, type, member) {key, type, offsetof(train_cfg, member), true}
static const field fields[] = {
    F("model", F_STR, model.name), F("bn", F_BOOL, model.bn), F("dropout", F_FLOAT, model.dropout),
    F_LATER("dropout_aux", F_FLOAT, model.dropout_aux), F("stochastic_depth", F_FLOAT, model.stochastic_depth),
    F_LATER("regulator", F_REGULATOR, model.regulator), F_LATER("regulated_stages", F_STAGES, model.regulated_stages),
    F("dataset", F_STR, dataset), F("data_dir", F_STR, data_dir), F("epochs", F_INT, epochs),
    F("batch_size", F_INT, batch), F("eval_batch_size", F_INT, eval_batch), F("threads", F_INT, threads),
    F("optimizer", F_OPTIM, opt.kind), F("lr", F_FLOAT, opt.lr), F("momentum", F_FLOAT, opt.momentum),
    F("dampening", F_FLOAT, opt.dampening), F("nesterov", F_BOOL, opt.nesterov),
    F("weight_decay", F_FLOAT, opt.weight_decay), F("beta1", F_FLOAT, opt.beta1), F("beta2", F_FLOAT, opt.beta2),
    F("eps", F_FLOAT, opt.eps), F("no_decay_bn_bias", F_BOOL, opt.no_decay_bn_bias),
    F("clip_norm", F_FLOAT, opt.clip_norm), F("schedule", F_SCHED, sched.kind), F("gamma", F_FLOAT, sched.gamma),
    F("step_size", F_INT, sched.step_size), F("milestones", F_MILESTONES, sched),
    F("min_lr", F_FLOAT, sched.min_lr), F("warmup", F_FLOAT, sched.warmup_epochs),
    F("pct_start", F_FLOAT, sched.pct_start), F("div_factor", F_FLOAT, sched.div_factor),
    F("final_div_factor", F_FLOAT, sched.final_div_factor), F("monitor", F_METRIC, early.monitor),
    F("monitor_mode", F_MODE, early.mode), F("min_delta", F_FLOAT, early.min_delta),
    F("early_stop", F_INT, early.patience), F("restore_best", F_BOOL, early.restore_best),
    F("plateau_monitor", F_METRIC, plateau.monitor), F("plateau_mode", F_MODE, plateau.mode),
    F("plateau_factor", F_FLOAT, plateau.factor), F("plateau_patience", F_INT, plateau.patience),
    F("plateau_threshold", F_FLOAT, plateau.threshold), F("plateau_threshold_abs", F_BOOL, plateau.threshold_abs),
    F("plateau_cooldown", F_INT, plateau.cooldown), F("label_smoothing", F_FLOAT, label_smoothing),
    F("limit", F_I64, limit), F("val", F_I64, val), F("crop", F_INT, crop_pad), F("flip", F_INT, flip),
    F("image_size", F_INT, image_size), F("resize", F_INT, resize), F("full_decode", F_BOOL, full_decode),
    F("seed", F_U64, seed), F_LATER("checkpoint_every", F_INT, checkpoint_every),
    F_LATER("sync_bn", F_BOOL, sync_bn), F_LATER("bf16", F_BOOL, bf16),
    F_LATER("recompute", F_BOOL, recompute),
};
#undef F
#undef F_LATER
#define NFIELDS (int)(sizeof fields / sizeof *fields)
_Static_assert(sizeof(optim_kind) == sizeof(int) && sizeof(sched_kind) == sizeof(int) &&
                   sizeof(metric_id) == sizeof(int) && sizeof(monitor_mode) == sizeof(int) &&
                   sizeof(model_regulator) == sizeof(int),
               "enums are read and written as int");

static const char *enum_name(ftype t, int v) {
    switch (t) {
    case F_OPTIM: return optim_name((optim_kind)v);
    case F_SCHED: return sched_name((sched_kind)v);
    case F_METRIC: return metric_name((metric_id)v);
    case F_REGULATOR: return model_regulator_name((model_regulator)v);
    default: return mode_name((monitor_mode)v);
    }
}

static cnn_status enum_parse(ftype t, const char *s, int *v) {
    switch (t) {
    case F_OPTIM: return optim_parse_kind(s, (optim_kind *)v);
    case F_SCHED: return sched_parse_kind(s, (sched_kind *)v);
    case F_METRIC: return metric_parse(s, (metric_id *)v);
    case F_REGULATOR: /* "default": a regnet's own, resolved when the model is built */
        if (strcmp(s, "default") != 0) return model_parse_regulator(s, (model_regulator *)v);
        *v = REGULATOR_DEFAULT;
        return CNN_OK;
    default: return mode_parse(s, (monitor_mode *)v);
    }
}

/* The shortest decimal that reads back as the same float: 0.05, not 0.05000000074505806. */
static void write_float(json_writer *w, float v) {
    char buf[32];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, v);
        if ((float)strtod(buf, NULL) == v) break;
    }
    json_write_number(w, strtod(buf, NULL));
}

static void write_field(json_writer *w, const field *f, const train_cfg *c) {
    const void *p = (const char *)c + f->off;
    json_write_key(w, f->key);
    switch (f->type) {
    case F_STR:
        if (*(const char *const *)p) json_write_string(w, *(const char *const *)p);
        else json_write_null(w);
        break;
    case F_BOOL: json_write_bool(w, *(const bool *)p); break;
    case F_FLOAT: write_float(w, *(const float *)p); break;
    case F_INT: json_write_int(w, *(const int *)p); break;
    case F_I64: json_write_int(w, *(const int64_t *)p); break;
    case F_U64: json_write_int(w, (int64_t) * (const uint64_t *)p); break;
    case F_MILESTONES: {
        const sched_cfg *s = p;
        json_begin_array(w);
        for (int i = 0; i < s->nmilestones; i++) json_write_int(w, s->milestones[i]);
        json_end_array(w);
        break;
    }
    case F_STAGES:
        json_begin_array(w);
        for (int i = 0; i < 16; i++)
            if (*(const unsigned *)p & (1u << i)) json_write_int(w, i + 1);
        json_end_array(w);
        break;
    default: json_write_string(w, enum_name(f->type, *(const int *)p));
    }
}

static cnn_status read_milestones(const json_value *v, sched_cfg *s) {
    if (v->type != JSON_ARRAY || v->length > SCHED_MAX_MILESTONES) return CNN_ERR_FORMAT;
    s->nmilestones = (int)v->length;
    for (size_t i = 0; i < v->length; i++) {
        if (!v->items[i].is_int) return CNN_ERR_FORMAT;
        s->milestones[i] = (int)v->items[i].integer;
    }
    return CNN_OK;
}

static cnn_status read_stages(const json_value *v, unsigned *mask) {
    if (v->type != JSON_ARRAY || v->length > 16) return CNN_ERR_FORMAT;
    *mask = 0;
    for (size_t i = 0; i < v->length; i++) {
        if (!v->items[i].is_int || v->items[i].integer < 1 || v->items[i].integer > 16) return CNN_ERR_FORMAT;
        *mask |= 1u << (v->items[i].integer - 1);
    }
    return CNN_OK;
}

static cnn_status read_field(const json_value *v, const field *f, train_cfg *c) {
    void *p = (char *)c + f->off;
    bool num = v->type == JSON_NUMBER, integer = num && v->is_int;
    switch (f->type) {
    case F_STR:
        if (v->type == JSON_NULL) *(const char **)p = NULL;
        else if (v->type == JSON_STRING) *(const char **)p = v->string;
        else return CNN_ERR_FORMAT;
        return CNN_OK;
    case F_BOOL:
        if (v->type != JSON_BOOL) return CNN_ERR_FORMAT;
        *(bool *)p = v->boolean;
        return CNN_OK;
    case F_FLOAT:
        if (!num) return CNN_ERR_FORMAT;
        *(float *)p = (float)v->number;
        return CNN_OK;
    case F_INT: if (integer) *(int *)p = (int)v->integer; return integer ? CNN_OK : CNN_ERR_FORMAT;
    case F_I64: if (integer) *(int64_t *)p = v->integer; return integer ? CNN_OK : CNN_ERR_FORMAT;
    case F_U64: if (integer) *(uint64_t *)p = (uint64_t)v->integer; return integer ? CNN_OK : CNN_ERR_FORMAT;
    case F_MILESTONES: return read_milestones(v, p);
    case F_STAGES: return read_stages(v, p);
    default:
        if (v->type != JSON_STRING) return CNN_ERR_FORMAT;
        return enum_parse(f->type, v->string, p);
    }
}

void train_state_init(train_state *s, const train_cfg *cfg) {
    memset(s, 0, sizeof *s);
    early_stop_init(&s->early, &cfg->early);
    plateau_init(&s->plat, &cfg->plateau, cfg->opt.lr, cfg->sched.min_lr);
}

void train_state_free(train_state *s) { history_free(&s->hist); }

static void write_best(json_writer *w, bool has, double best) {
    json_write_key(w, "best");
    if (has && isfinite(best)) json_write_number(w, best);
    else json_write_null(w);
}

static void write_state(json_writer *w, const train_state *s) {
    const train_position *p = &s->pos;
    json_write_key(w, "position");
    json_begin_object(w);
    const char *ikeys[] = {"epoch", "batch", "step", "optimizer_steps", "images", "correct"};
    int64_t ivals[] = {p->epoch, p->batch, p->step, p->optimizer_steps, p->images, p->correct};
    for (int i = 0; i < 6; i++) {
        json_write_key(w, ikeys[i]);
        json_write_int(w, ivals[i]);
    }
    json_write_key(w, "loss_sum");
    json_write_number(w, p->loss_sum);
    json_write_key(w, "seconds");
    json_write_number(w, p->seconds);
    json_end_object(w);
    json_write_key(w, "early_stop");
    json_begin_object(w);
    write_best(w, s->early.has_best, s->early.best);
    json_write_key(w, "best_epoch");
    json_write_int(w, s->early.best_epoch);
    json_write_key(w, "wait");
    json_write_int(w, s->early.wait);
    json_write_key(w, "stopped");
    json_write_bool(w, s->early.stopped);
    json_end_object(w);
    json_write_key(w, "plateau");
    json_begin_object(w);
    json_write_key(w, "lr");
    write_float(w, s->plat.lr);
    write_best(w, s->plat.has_best, s->plat.best);
    const char *pkeys[] = {"bad_epochs", "cooldown_counter", "reductions"};
    int pvals[] = {s->plat.bad_epochs, s->plat.cooldown_counter, s->plat.reductions};
    for (int i = 0; i < 3; i++) {
        json_write_key(w, pkeys[i]);
        json_write_int(w, pvals[i]);
    }
    json_end_object(w);
    json_write_key(w, "history");
    history_write_json(&s->hist, w);
}

cnn_status train_json_write(const train_cfg *cfg, const train_state *s, char **out) {
    json_writer w;
    json_writer_init(&w);
    json_begin_object(&w);
    json_write_key(&w, "config");
    json_begin_object(&w);
    for (int i = 0; i < NFIELDS; i++) write_field(&w, &fields[i], cfg);
    json_end_object(&w);
    write_state(&w, s);
    json_end_object(&w);
    size_t len;
    return json_writer_finish(&w, out, &len);
}

/* ---------- reading ---------- */

typedef struct reader {
    const json_value *obj;
    const char *what;
    cnn_status st;
} reader;

static const json_value *member(reader *r, const char *key, json_type type) {
    const json_value *v = r->st ? NULL : json_get(r->obj, key);
    if (!r->st && (!v || (v->type != type && !(type == JSON_NUMBER && v->type == JSON_NULL))))
        r->st = cnn_fail(CNN_ERR_FORMAT, "training state: %s.%s is missing or not a %s", r->what, key, json_type_name(type));
    return r->st ? NULL : v;
}

static int64_t get_int(reader *r, const char *key) {
    const json_value *v = member(r, key, JSON_NUMBER);
    return v && v->is_int ? v->integer : 0;
}

static double get_num(reader *r, const char *key, bool *present) {
    const json_value *v = member(r, key, JSON_NUMBER);
    if (present) *present = v && v->type == JSON_NUMBER;
    return v && v->type == JSON_NUMBER ? v->number : NAN;
}

static cnn_status read_state(const json_value *v, train_state *s) {
    reader r = {json_get(v, "position"), "position", CNN_OK};
    train_position *p = &s->pos;
    p->epoch = (int)get_int(&r, "epoch");
    p->batch = get_int(&r, "batch");
    p->step = get_int(&r, "step");
    p->optimizer_steps = get_int(&r, "optimizer_steps");
    p->images = get_int(&r, "images");
    p->correct = get_int(&r, "correct");
    p->loss_sum = get_num(&r, "loss_sum", NULL);
    p->seconds = get_num(&r, "seconds", NULL);
    reader e = {json_get(v, "early_stop"), "early_stop", r.st};
    s->early.best = get_num(&e, "best", &s->early.has_best);
    s->early.best_epoch = (int)get_int(&e, "best_epoch");
    s->early.wait = (int)get_int(&e, "wait");
    const json_value *stopped = member(&e, "stopped", JSON_BOOL);
    s->early.stopped = stopped && stopped->boolean;
    reader q = {json_get(v, "plateau"), "plateau", e.st};
    s->plat.lr = (float)get_num(&q, "lr", NULL);
    s->plat.best = get_num(&q, "best", &s->plat.has_best);
    s->plat.bad_epochs = (int)get_int(&q, "bad_epochs");
    s->plat.cooldown_counter = (int)get_int(&q, "cooldown_counter");
    s->plat.reductions = (int)get_int(&q, "reductions");
    if (q.st) return q.st;
    return history_from_json(json_get(v, "history"), &s->hist);
}

cnn_status train_json_read(const json_value *v, train_cfg *cfg, train_state *s) {
    const json_value *c = v ? json_get(v, "config") : NULL;
    if (!c || c->type != JSON_OBJECT)
        return cnn_fail(CNN_ERR_FORMAT, "no training configuration (written by an older cnn, or not by cnn train)");
    train_defaults(cfg);
    for (int i = 0; i < NFIELDS; i++) {
        const json_value *f = json_get(c, fields[i].key);
        if (!f && fields[i].optional) continue;
        if (!f) return cnn_fail(CNN_ERR_FORMAT, "training configuration: \"%s\" is missing", fields[i].key);
        if (read_field(f, &fields[i], cfg))
            return cnn_fail(CNN_ERR_FORMAT, "training configuration: \"%s\" has a bad value", fields[i].key);
    }
    if (!cfg->model.name || !cfg->dataset) return cnn_fail(CNN_ERR_FORMAT, "training configuration: no model or data set");
    if (!s) return CNN_OK;
    train_state_init(s, cfg);
    cnn_status st = read_state(v, s);
    if (st) train_state_free(s);
    return st;
}
