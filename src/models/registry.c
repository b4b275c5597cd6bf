/* registry.c — names to builders, defaults, and model construction. */
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "models/models.h"
#include "ops/ops.h"

static const model_def *const families[] = {
    convnet_models, plain_residual_models, resnet_cifar_models, resnet_models, vgg_models,
    googlenet_models, efficientnet_models, ghostnet_models, regnet_models,
};

const model_def *model_at(int i) {
    for (size_t f = 0; f < sizeof families / sizeof *families; f++)
        for (const model_def *m = families[f]; m->name; m++)
            if (i-- == 0) return m;
    return NULL;
}

const model_def *model_find(const char *name) {
    for (int i = 0; model_at(i); i++)
        if (strcmp(model_at(i)->name, name) == 0) return model_at(i);
    return NULL;
}

void model_defaults(model_cfg *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->dropout = -1;
    cfg->dropout_aux = -1;
    cfg->stochastic_depth = -1;
}

bool model_small_input(const model_cfg *cfg) { return cfg->in_h < 64 || cfg->in_w < 64; }

float model_param(float value, float model_default) { return value >= 0 ? value : model_default; }

static bool has_drop_path(const graph *g) {
    for (int i = 0; i < g->nnodes; i++)
        if (strcmp(g->nodes[i].op->type, "drop_path") == 0) return true;
    return false;
}

cnn_status model_resolve_regulator(model_cfg *cfg) {
    const model_def *m = model_find(cfg->name);
    if (!m) return cnn_fail(CNN_ERR_ARG, "unknown model '%s' (cnn models lists them)", cfg->name ? cfg->name : "");
    if (!m->stages) {
        if (cfg->regulator != REGULATOR_DEFAULT || cfg->regulated_stages)
            return cnn_fail(CNN_ERR_ARG, "%s has no regulator: --regulator and --regulated-stages apply to the regnet "
                            "models", m->name);
        return CNN_OK;
    }
    unsigned all = (1u << m->stages) - 1;
    if (cfg->regulator == REGULATOR_DEFAULT) cfg->regulator = REGULATOR_CONVLSTM;
    if (!cfg->regulated_stages) cfg->regulated_stages = all;
    if (cfg->regulated_stages & ~all) {
        char list[64];
        model_format_stages(cfg->regulated_stages & ~all, list, sizeof list);
        return cnn_fail(CNN_ERR_ARG, "regulated stages %s: %s has stages 1 to %d", list, m->name, m->stages);
    }
    return CNN_OK;
}

cnn_status model_resolve(model_cfg *cfg) {
    const model_def *m = model_find(cfg->name);
    if (!m) return cnn_fail(CNN_ERR_ARG, "unknown model '%s' (cnn models lists them)", cfg->name);
    if (!cfg->in_c) cfg->in_c = m->c;
    if (!cfg->in_h) cfg->in_h = m->h;
    if (!cfg->in_w) cfg->in_w = m->w;
    if (!cfg->classes) cfg->classes = m->classes;
    if (cfg->stochastic_depth < 0) cfg->stochastic_depth = m->stochastic_depth;
    if (cfg->in_c <= 0 || cfg->in_h <= 0 || cfg->in_w <= 0 || cfg->in_c > 4096 || cfg->in_h > 8192 || cfg->in_w > 8192)
        return cnn_fail(CNN_ERR_ARG, "%s: input %dx%dx%d is not a valid image shape", m->name, cfg->in_c, cfg->in_h,
                        cfg->in_w);
    if (cfg->classes < 2 || cfg->classes > 1000000)
        return cnn_fail(CNN_ERR_ARG, "%s: %d classes (want at least 2)", m->name, cfg->classes);
    if (!(cfg->stochastic_depth >= 0 && cfg->stochastic_depth < 1))
        return cnn_fail(CNN_ERR_ARG, "%s: stochastic depth %g is not a drop probability in [0, 1)", m->name,
                        cfg->stochastic_depth);
    return model_resolve_regulator(cfg);
}

cnn_status model_build(model_cfg *cfg, graph **out) {
    *out = NULL;
    CNN_TRY(model_resolve(cfg));
    const model_def *m = model_find(cfg->name);
    graph *g = graph_new();
    if (!g) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    g->seed = cfg->seed;
    g->model_name = strdup(m->name);
    int x = graph_input(g, cfg->in_c, cfg->in_h, cfg->in_w);
    int y = m->build(g, x, cfg, m->arg);
    graph_set_output(g, y, OUTPUT_MAIN, 1.0f);
    if (graph_ok(g) && cfg->stochastic_depth > 0 && !has_drop_path(g))
        graph_fail(g, cnn_fail(CNN_ERR_ARG, "%s has no residual branches for stochastic depth (the ResNet "
                                            "families and efficientnet_b0 have)", m->name));
    if (!graph_ok(g)) {
        cnn_status st = cnn_fail_context(g->error, "building %s for input %dx%dx%d", m->name, cfg->in_c, cfg->in_h,
                                         cfg->in_w);
        graph_free(g);
        return st;
    }
    *out = g;
    return CNN_OK;
}

void model_list(FILE *f) {
    for (int i = 0; model_at(i); i++) {
        const model_def *m = model_at(i);
        char shape[32];
        snprintf(shape, sizeof shape, "%dx%dx%d", m->c, m->h, m->w);
        fprintf(f, "  %-16s %-10s %s\n", m->name, shape, m->about);
    }
}

static const char *const regulator_names[] = {"default", "none", "convlstm", "convgru"};

const char *model_regulator_name(model_regulator r) {
    return r >= REGULATOR_DEFAULT && r <= REGULATOR_CONVGRU ? regulator_names[r] : "?";
}

cnn_status model_parse_regulator(const char *s, model_regulator *r) {
    for (int i = REGULATOR_NONE; i <= REGULATOR_CONVGRU; i++)
        if (!strcmp(s, regulator_names[i])) {
            *r = (model_regulator)i;
            return CNN_OK;
        }
    return cnn_fail(CNN_ERR_ARG, "--regulator %s: expected one of convlstm|convgru|none", s);
}

cnn_status model_parse_stages(const char *s, unsigned *mask) {
    *mask = 0;
    const char *p = s;
    for (;;) {
        char *end = (char *)p;
        long v = *p >= '0' && *p <= '9' ? strtol(p, &end, 10) : 0; /* no blanks, signs */
        if (end == p || v < 1 || v > 16 || (*end && *end != ','))
            return cnn_fail(CNN_ERR_ARG, "--regulated-stages %s: expected stage numbers from 1 separated by commas, "
                            "e.g. 1,2,3", s);
        *mask |= 1u << (v - 1);
        if (!*end) return CNN_OK;
        p = end + 1;
    }
}

void model_format_stages(unsigned mask, char *buf, size_t size) {
    size_t len = 0;
    buf[0] = 0;
    for (int s = 0; s < 16; s++)
        if (mask & (1u << s) && len < size)
            len += (size_t)snprintf(buf + len, size - len, "%s%d", len ? "," : "", s + 1);
}
