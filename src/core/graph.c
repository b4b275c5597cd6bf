/* graph.c — building the DAG: tensors, nodes, named parameters and name scopes; the parameter
 * arena and its canonical (PyTorch-layout) access. */
#include "core/graph.h"
#include "core/error.h"
#include "core/rng.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

graph *graph_new(void) {
    graph *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->input = -1;
    return g;
}

/* bytes mapped for the parameter arena (parameters, then their gradients) */
static size_t arena_mapped(const graph *g) { return g->arena_bytes ? g->arena_bytes : 64; }

void graph_free(graph *g) {
    if (!g) return;
    for (int i = 0; i < g->nnodes; i++) {
        node *n = &g->nodes[i];
        free(n->name);
        free(n->in);
        free(n->out);
        free(n->params);
        free(n->attr);
    }
    for (int i = 0; i < g->nparams; i++) free(g->params[i].name);
    free(g->nodes);
    free(g->tensors);
    free(g->params);
    if (g->arena) munmap(g->arena, arena_mapped(g));
    free(g->model_name);
    free(g);
}

int graph_fail(graph *g, cnn_status st) {
    if (g->error == CNN_OK) g->error = st;
    return -1;
}

bool graph_ok(const graph *g) { return g->error == CNN_OK; }

static bool grow(void **p, int *cap, int need, size_t elem) {
    if (need <= *cap) return true;
    int nc = *cap ? *cap * 2 : 64;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q) return false;
    memset((char *)q + (size_t)*cap * elem, 0, (size_t)(nc - *cap) * elem);
    *p = q;
    *cap = nc;
    return true;
}

int graph_add_tensor(graph *g, int c, int h, int w, enum layout layout) {
    if (!graph_ok(g)) return -1;
    if (c <= 0 || h <= 0 || w <= 0)
        return graph_fail(g, cnn_fail(CNN_ERR_SHAPE, "%s: tensor shape %dx%dx%d is empty", g->scope, c, h, w));
    if (!grow((void **)&g->tensors, &g->cap_tensors, g->ntensors + 1, sizeof(tensor)))
        return graph_fail(g, cnn_fail(CNN_ERR_NOMEM, "graph: out of memory"));
    tensor *t = &g->tensors[g->ntensors];
    t->c = c;
    t->h = h;
    t->w = w;
    t->layout = layout;
    t->producer = -1;
    t->requires_grad = false;
    return g->ntensors++;
}

int graph_sole_reader(const graph *g, int t) {
    int reader = -1;
    for (int m = 0; m < g->nnodes; m++)
        for (int k = 0; k < g->nodes[m].nin; k++)
            if (g->nodes[m].in[k] == t) {
                if (reader >= 0 && reader != m) return -1;
                reader = m;
            }
    return reader;
}

int graph_input(graph *g, int c, int h, int w) {
    int t = graph_add_tensor(g, c, h, w, LAYOUT_PLAIN);
    if (t >= 0) g->input = t;
    return t;
}

void graph_set_output(graph *g, int t, enum output_kind kind, float loss_weight) {
    if (!graph_ok(g) || t < 0) return;
    if (g->noutputs == GRAPH_MAX_OUTPUTS) {
        graph_fail(g, cnn_fail(CNN_ERR_INTERNAL, "graph: too many outputs"));
        return;
    }
    g->outputs[g->noutputs++] = (graph_output){t, kind, loss_weight, -1};
}

int graph_main_output(const graph *g) {
    for (int i = 0; i < g->noutputs; i++)
        if (g->outputs[i].kind == OUTPUT_MAIN) return g->outputs[i].tensor;
    return -1;
}

void graph_push(graph *g, const char *name) {
    if (g->nscope == GRAPH_MAX_SCOPE) {
        graph_fail(g, cnn_fail(CNN_ERR_INTERNAL, "graph: name scopes nested too deep"));
        return;
    }
    size_t len = strlen(g->scope);
    g->scope_len[g->nscope++] = (int)len;
    snprintf(g->scope + len, sizeof g->scope - len, "%s.", name);
}

void graph_pushf(graph *g, const char *fmt, ...) {
    char name[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    graph_push(g, name);
}

void graph_pop(graph *g) {
    if (g->nscope > 0) g->scope[g->scope_len[--g->nscope]] = 0;
}

static char *scoped(const graph *g, const char *leaf) {
    size_t n = strlen(g->scope) + strlen(leaf) + 1;
    char *s = malloc(n);
    if (!s) return NULL;
    snprintf(s, n, "%s%s", g->scope, leaf);
    if (!leaf[0] && n > 1 && s[n - 2] == '.') s[n - 2] = 0; /* node named by its scope alone */
    return s;
}

int graph_add_node(graph *g, const op_def *op, const char *name, const int *in, int nin, void *attr) {
    if (!graph_ok(g)) {
        free(attr);
        return -1;
    }
    for (int i = 0; i < nin; i++)
        if (in[i] < 0 || in[i] >= g->ntensors) {
            free(attr);
            return graph_fail(g, cnn_fail(CNN_ERR_INTERNAL, "%s%s: input %d is not a tensor", g->scope, name, i));
        }
    if (!grow((void **)&g->nodes, &g->cap_nodes, g->nnodes + 1, sizeof(node))) {
        free(attr);
        return graph_fail(g, cnn_fail(CNN_ERR_NOMEM, "graph: out of memory"));
    }
    node *n = &g->nodes[g->nnodes];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->name = scoped(g, name);
    n->in = malloc(sizeof(int) * (nin ? nin : 1));
    if (!n->name || !n->in) {
        free(attr);
        return graph_fail(g, cnn_fail(CNN_ERR_NOMEM, "graph: out of memory"));
    }
    memcpy(n->in, in, sizeof(int) * nin);
    n->nin = nin;
    n->attr = attr;
    return g->nnodes++;
}

int graph_node_output(graph *g, int nid, int c, int h, int w, enum layout layout) {
    if (!graph_ok(g) || nid < 0) return -1;
    int t = graph_add_tensor(g, c, h, w, layout);
    if (t < 0) return -1;
    node *n = &g->nodes[nid];
    int *o = realloc(n->out, sizeof(int) * (n->nout + 1));
    if (!o) return graph_fail(g, cnn_fail(CNN_ERR_NOMEM, "graph: out of memory"));
    n->out = o;
    n->out[n->nout++] = t;
    tensor *tt = &g->tensors[t];
    tt->producer = nid;
    bool rg = n->nparams > 0;
    for (int i = 0; i < n->nin; i++) rg = rg || g->tensors[n->in[i]].requires_grad;
    tt->requires_grad = rg;
    return t;
}

bool param_trainable(const param *p) { return p->role != PARAM_BUFFER; }

int64_t param_numel(const param *p) {
    int64_t n = 1;
    for (int i = 0; i < p->ndim; i++) n *= p->dims[i];
    return n;
}

int graph_add_param(graph *g, int nid, const char *leaf, int ndim, const int64_t *dims, enum param_role role,
                    enum param_init init, float init_arg) {
    if (!graph_ok(g) || nid < 0) return -1;
    if (g->finalized) return graph_fail(g, cnn_fail(CNN_ERR_INTERNAL, "graph: parameter added after compile"));
    if (!grow((void **)&g->params, &g->cap_params, g->nparams + 1, sizeof(param)))
        return graph_fail(g, cnn_fail(CNN_ERR_NOMEM, "graph: out of memory"));
    node *n = &g->nodes[nid];
    param *p = &g->params[g->nparams];
    memset(p, 0, sizeof *p);
    size_t len = strlen(n->name) + strlen(leaf) + 2;
    p->name = malloc(len);
    if (!p->name) return graph_fail(g, cnn_fail(CNN_ERR_NOMEM, "graph: out of memory"));
    snprintf(p->name, len, "%s%s%s", n->name, n->name[0] ? "." : "", leaf);
    p->ndim = ndim;
    memcpy(p->dims, dims, sizeof(int64_t) * ndim);
    p->role = role;
    p->dtype = PDT_F32;
    p->init = init;
    p->init_arg = init_arg;
    /* fans as torch.nn.init computes them: dims[1]*receptive field, dims[0]*receptive field */
    int64_t rf = 1;
    for (int i = 2; i < ndim; i++) rf *= dims[i];
    p->fan_in = ndim >= 2 ? dims[1] * rf : dims[0];
    p->fan_out = dims[0] * rf;
    /* 1-D parameters have their final (plain) layout now; weights get theirs from a primitive. */
    if (ndim <= 1) {
        int64_t d = ndim ? dims[0] : 1;
        be_md_plain(&p->canon_md, 1, &d, dnnl_x);
        p->md = p->canon_md;
        p->md_fixed = true;
    }
    int *ps = realloc(n->params, sizeof(int) * (n->nparams + 1));
    if (!ps) return graph_fail(g, cnn_fail(CNN_ERR_NOMEM, "graph: out of memory"));
    n->params = ps;
    n->params[n->nparams++] = g->nparams;
    return g->nparams++;
}

int graph_share_param(graph *g, int nid, int pid) {
    if (!graph_ok(g) || nid < 0) return -1;
    if (pid < 0 || pid >= g->nparams)
        return graph_fail(g, cnn_fail(CNN_ERR_INTERNAL, "%s: parameter %d does not exist", g->nodes[nid].name, pid));
    node *n = &g->nodes[nid];
    int *ps = realloc(n->params, sizeof(int) * (n->nparams + 1));
    if (!ps) return graph_fail(g, cnn_fail(CNN_ERR_NOMEM, "graph: out of memory"));
    n->params = ps;
    n->params[n->nparams++] = pid;
    return pid;
}

int64_t graph_param_count(const graph *g, bool trainable_only) {
    int64_t n = 0;
    for (int i = 0; i < g->nparams; i++) {
        const param *p = &g->params[i];
        if (p->dtype != PDT_F32) continue;
        if (trainable_only && !param_trainable(p)) continue;
        if (!trainable_only && p->role == PARAM_BUFFER) continue;
        n += param_numel(p);
    }
    return n;
}

int64_t graph_macs(const graph *g) {
    int64_t m = 0;
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i].op->macs) m += g->nodes[i].op->macs(g, &g->nodes[i]);
    return m;
}

int graph_find_param(const graph *g, const char *name) {
    for (int i = 0; i < g->nparams; i++)
        if (strcmp(g->params[i].name, name) == 0) return i;
    return -1;
}

/* ---- the parameter arena ---- */

static size_t align64(size_t x) { return (x + 63) & ~(size_t)63; }

cnn_status graph_finalize(graph *g) {
    if (g->finalized) return CNN_OK;
    size_t off = 0, goff = 0;
    for (int i = 0; i < g->nparams; i++) {
        param *p = &g->params[i];
        if (!p->md_fixed) { /* no compiled op uses it (a training-only head in an evaluation plan) */
            p->md = p->canon_md;
            p->md_fixed = true;
        }
        p->bytes = p->dtype == PDT_I64 ? 8 : be_md_size(&p->md);
        p->off = off;
        off += align64(p->bytes);
        if (param_trainable(p)) {
            p->grad_off = goff;
            goff += align64(p->bytes);
        }
    }
    g->grads_off = off;
    g->grads_bytes = goff;
    g->arena_bytes = off + goff;
    /* zero pages mapped on first touch: the gradients of a graph that is only evaluated cost no memory */
    void *a = mmap(NULL, arena_mapped(g), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a == MAP_FAILED)
        return cnn_fail(CNN_ERR_NOMEM, "cannot allocate %.1f MB for parameters and gradients",
                        g->arena_bytes / 1048576.0);
    g->arena = a;
    g->finalized = true;
    return graph_init_params(g, g->seed);
}

float *graph_param_data(const graph *g, int pid) { return (float *)(g->arena + g->params[pid].off); }

float *graph_param_grad(const graph *g, int pid) {
    return (float *)(g->arena + g->grads_off + g->params[pid].grad_off);
}

cnn_status param_to_canonical(const param *p, const void *physical, float *canonical) {
    if (p->dtype == PDT_I64) {
        canonical[0] = (float)*(const int64_t *)physical;
        return CNN_OK;
    }
    return be_reorder_once(&p->md, physical, &p->canon_md, canonical);
}

cnn_status param_from_canonical(const param *p, const float *canonical, void *physical) {
    if (p->dtype == PDT_I64) {
        *(int64_t *)physical = (int64_t)canonical[0];
        return CNN_OK;
    }
    memset(physical, 0, p->bytes); /* padded regions of blocked layouts must stay zero */
    return be_reorder_once(&p->canon_md, canonical, &p->md, physical);
}

cnn_status graph_param_read(const graph *g, int pid, float *canonical) {
    return param_to_canonical(&g->params[pid], graph_param_data(g, pid), canonical);
}

cnn_status graph_param_grad_read(const graph *g, int pid, float *canonical) {
    const param *p = &g->params[pid];
    if (!param_trainable(p)) return cnn_fail(CNN_ERR_ARG, "parameter %s has no gradient", p->name);
    return param_to_canonical(p, graph_param_grad(g, pid), canonical);
}

cnn_status graph_param_write(graph *g, int pid, const float *canonical) {
    g->version++;
    return param_from_canonical(&g->params[pid], canonical, graph_param_data(g, pid));
}

static void init_values(const param *p, uint64_t key, float *v, int64_t n) {
    rng r = rng_stream(key);
    switch (p->init) {
    case INIT_ZEROS: memset(v, 0, sizeof(float) * n); break;
    case INIT_ONES: for (int64_t i = 0; i < n; i++) v[i] = 1.0f; break;
    case INIT_CONSTANT: for (int64_t i = 0; i < n; i++) v[i] = p->init_arg; break;
    case INIT_UNIFORM_FAN_IN: {
        float b = 1.0f / sqrtf((float)p->fan_in);
        for (int64_t i = 0; i < n; i++) v[i] = (2.0f * rng_uniform(&r) - 1.0f) * b;
        break;
    }
    case INIT_UNIFORM:
        for (int64_t i = 0; i < n; i++) v[i] = (2.0f * rng_uniform(&r) - 1.0f) * p->init_arg;
        break;
    case INIT_KAIMING_NORMAL_OUT:
    case INIT_KAIMING_NORMAL_IN:
    case INIT_NORMAL: {
        float sd = p->init == INIT_NORMAL ? p->init_arg
                 : sqrtf(2.0f / (float)(p->init == INIT_KAIMING_NORMAL_OUT ? p->fan_out : p->fan_in));
        for (int64_t i = 0; i < n; i++) v[i] = rng_normal(&r) * sd;
        break;
    }
    case INIT_TRUNC_NORMAL:
        for (int64_t i = 0; i < n; i++) {
            float x;
            do x = rng_normal(&r) * p->init_arg;
            while (x < -2.0f || x > 2.0f);
            v[i] = x;
        }
        break;
    }
}

cnn_status graph_init_params(graph *g, uint64_t seed) {
    g->seed = seed;
    if (!g->finalized) return CNN_OK; /* done at finalize */
    int64_t maxn = 1;
    for (int i = 0; i < g->nparams; i++)
        if (param_numel(&g->params[i]) > maxn) maxn = param_numel(&g->params[i]);
    float *tmp = malloc(sizeof(float) * maxn);
    if (!tmp) return cnn_fail(CNN_ERR_NOMEM, "initialization: out of memory");
    cnn_status st = CNN_OK;
    for (int i = 0; i < g->nparams && st == CNN_OK; i++) {
        param *p = &g->params[i];
        init_values(p, rng_key(seed, RNG_INIT, (uint64_t)i, 0), tmp, param_numel(p));
        st = graph_param_write(g, i, tmp);
    }
    free(tmp);
    return st;
}
