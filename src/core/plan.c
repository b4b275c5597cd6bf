/* plan.c — compiling a graph for one batch size: node selection, op compilation, liveness of every
 * buffer on a forward+backward timeline, packing into one arena, then execution. */
#include "core/plan.h"
#include "core/error.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

typedef struct pbuf {
    size_t bytes, off;
    int start, end;            /* inclusive interval on the timeline */
    dnnl_memory_desc_t md;
    bool has_md;
    dnnl_memory_t mem;
} pbuf;

typedef struct pslot {
    bool keep;                 /* value needed by this node's backward */
    bool accum;                /* gradient adds to one written earlier in the backward pass */
    int temp;                  /* buffer receiving an overwriting op's gradient before accumulation */
} pslot;

typedef struct pview {
    int pid;
    bool grad;
    dnnl_memory_desc_t md;
    int buf;
    int64_t version;           /* parameter version the value view was reordered from */
    dnnl_primitive_t reorder;  /* param -> view (value) or view -> param grad (grad) */
    dnnl_primitive_t reorder_add; /* view -> param grad, adding (grad views that accumulate) */
    dnnl_memory_t window;      /* a window's block of the parameter (or its grad), NULL for whole views */
} pview;

/* An output recomputed in the backward pass instead of kept (graph.recompute). */
typedef struct premat {
    int nid;                   /* the node that writes it again (op_def.recompute) */
    int root;                  /* its alias root */
    int at;                    /* recomputed just before this node's backward: the first that reads it */
    int end;                   /* the last backward (timeline position) that reads it */
    int fwd, bwd;              /* its value buffers in the forward and the backward pass */
} premat;

typedef struct pnode {
    int pos;                   /* position in the run order, -1 if not run */
    unsigned fused;            /* FUSED_* work taken over from the nodes after it */
    int absorbed[4], nabsorbed; /* those nodes */
    void *state;
    bool overwrites;
    bool run_bwd;
    pslot *in;
    bool *keep_out;
    bool *param_accum;
} pnode;

struct plan {
    graph *g;
    int batch;
    enum plan_mode mode;
    bool training;
    int *order, norder;
    pnode *nodes;
    int *val, *grad;           /* per tensor: buffer index or -1 */
    int *root;                 /* per tensor: the tensor whose buffers it shares (itself if none) */
    int *remat;                /* per alias root: its index in remats, or -1 */
    premat *remats;
    int nremats;
    bool *rg, *grad_zero, *used;
    bool *unwritten;           /* per tensor: its value was not written in the last forward (plan_value_unwritten) */
    dnnl_memory_desc_t *md;
    pbuf *bufs;
    int nbufs, cap_bufs;
    pview *views;
    int nviews;
    dnnl_primitive_t *prims;
    dnnl_memory_t *prim_scratch;
    size_t *prim_scratch_bytes;
    int nprims, cap_prims;
    uint8_t *arena, *scratch;
    size_t arena_bytes, scratch_bytes;
    int32_t *labels;
    uint64_t step_key;
    double loss, main_loss;
    dnnl_memory_t *pval_mem, *pgrad_mem;   /* per parameter, created on first use */
    cnn_status exec_status;                /* first failed primitive execution of the pass */
    plan_hook hook;
    void *hook_ctx;
};

void plan_set_hook(plan *p, plan_hook hook, void *ctx) {
    p->hook = hook;
    p->hook_ctx = ctx;
}

/* ---------- small accessors ---------- */

bool plan_is_train(const plan *p) { return p->mode == PLAN_TRAIN; }
bool plan_training_pass(const plan *p) { return p->training; }
int plan_batch(const plan *p) { return p->batch; }
graph *plan_graph(const plan *p) { return p->g; }
const dnnl_memory_desc_t *plan_md(const plan *p, int tid) { return &p->md[tid]; }
void *plan_state(const plan *p, int nid) { return p->nodes[nid].state; }
void plan_set_state(plan *p, int nid, void *state) { p->nodes[nid].state = state; }
void plan_keep_input(plan *p, int nid, int slot) { p->nodes[nid].in[slot].keep = true; }
void plan_set_fused(plan *p, int nid, unsigned what) { p->nodes[nid].fused |= what; }
unsigned plan_fused(const plan *p, int nid) { return p->nodes[nid].fused; }

const char *plan_fused_activation(const plan *p, int nid) {
    const unsigned f = p->nodes[nid].fused;
    return f & FUSED_RELU ? "+ relu" : f & FUSED_SILU ? "+ silu" : NULL;
}

int plan_absorbed(const plan *p, int nid, const char *type) {
    for (int i = 0; i < p->nodes[nid].nabsorbed; i++)
        if (!strcmp(p->g->nodes[p->nodes[nid].absorbed[i]].op->type, type)) return p->nodes[nid].absorbed[i];
    return -1;
}
void plan_keep_output(plan *p, int nid, int slot) { p->nodes[nid].keep_out[slot] = true; }
void plan_grad_overwrites(plan *p, int nid) { p->nodes[nid].overwrites = true; }
bool plan_needs_grad(const plan *p, int tid) { return p->mode == PLAN_TRAIN && p->rg[tid]; }
uint64_t plan_step_key(const plan *p) { return p->step_key; }
int32_t *plan_labels(plan *p) { return p->labels; }
size_t plan_arena_bytes(const plan *p) { return p->arena_bytes + p->scratch_bytes; }
double plan_loss(const plan *p) { return p->loss; }
double plan_main_loss(const plan *p) { return p->main_loss; }
bool plan_grad_accum(const plan *p, int nid, int slot) { return p->nodes[nid].in[slot].accum; }

dnnl_memory_t plan_buf_mem(plan *p, int h) { return p->bufs[h].mem; }
void *plan_buf(plan *p, int h) { return p->arena + p->bufs[h].off; }
dnnl_memory_t plan_val_mem(plan *p, int tid) { return p->bufs[p->val[tid]].mem; }
float *plan_val(plan *p, int tid) { return (float *)plan_buf(p, p->val[tid]); }
dnnl_memory_t plan_grad_mem(plan *p, int tid) { return p->bufs[p->grad[tid]].mem; }
float *plan_grad(plan *p, int tid) { return (float *)plan_buf(p, p->grad[tid]); }
float *plan_input(plan *p) { return plan_val(p, p->g->input); }

const float *plan_logits(plan *p) {
    int t = graph_main_output(p->g);
    return t >= 0 ? plan_val(p, t) : NULL;
}

void plan_report_loss(plan *p, int nid, double value, float weight, bool main) {
    p->loss += weight * value;
    if (main) p->main_loss = value;
}

/* ---------- compile-time requests ---------- */

int plan_request(plan *p, int nid, enum buf_life life, const dnnl_memory_desc_t *md, size_t bytes) {
    if (p->nbufs == p->cap_bufs) {
        int nc = p->cap_bufs ? 2 * p->cap_bufs : 256;
        pbuf *b = realloc(p->bufs, sizeof(pbuf) * nc);
        if (!b) return -1;
        p->bufs = b;
        p->cap_bufs = nc;
    }
    pbuf *b = &p->bufs[p->nbufs];
    memset(b, 0, sizeof *b);
    if (md) {
        b->md = *md;
        b->has_md = true;
        bytes = be_md_size(md);
    }
    b->bytes = bytes ? bytes : 64;
    /* lifetimes are resolved once the order is known: encode the kind for now */
    b->start = nid;
    b->end = -(int)life - 1;
    return p->nbufs++;
}

int plan_prim(plan *p, const_dnnl_primitive_desc_t pd, cnn_status *st) {
    if (p->nprims == p->cap_prims) {
        int nc = p->cap_prims ? 2 * p->cap_prims : 128;
        dnnl_primitive_t *a = realloc(p->prims, sizeof *a * nc);
        if (a) p->prims = a;
        dnnl_memory_t *b = realloc(p->prim_scratch, sizeof *b * nc);
        if (b) p->prim_scratch = b;
        size_t *c = realloc(p->prim_scratch_bytes, sizeof *c * nc);
        if (c) p->prim_scratch_bytes = c;
        if (!a || !b || !c) {
            *st = cnn_fail(CNN_ERR_NOMEM, "plan: out of memory");
            return -1;
        }
        p->cap_prims = nc;
    }
    int h = p->nprims;
    *st = be_check(dnnl_primitive_create(&p->prims[h], pd), "primitive creation");
    if (*st) return -1;
    const dnnl_memory_desc_t *smd = be_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t sb = smd ? be_md_size(smd) : 0;
    p->prim_scratch_bytes[h] = sb;
    p->prim_scratch[h] = sb ? be_mem(smd, NULL) : NULL;
    if (sb > p->scratch_bytes) p->scratch_bytes = sb;
    p->nprims++;
    return h;
}

void plan_run(plan *p, int prim, int nargs, dnnl_exec_arg_t *args) {
    dnnl_exec_arg_t a[16];
    memcpy(a, args, sizeof *args * nargs);
    if (p->prim_scratch[prim]) a[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, p->prim_scratch[prim]};
    const backend *b = be_get();
    dnnl_status_t s = dnnl_primitive_execute(p->prims[prim], b->stream, nargs, a);
    dnnl_stream_wait(b->stream);
    if (s != dnnl_success && p->exec_status == CNN_OK) p->exec_status = be_check(s, "primitive execution");
}

static cnn_status reorder_prim(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, bool add,
                               dnnl_primitive_t *out) {
    const backend *b = be_get();
    dnnl_primitive_attr_t attr = NULL;
    if (add) {
        dnnl_post_ops_t ops;
        dnnl_primitive_attr_create(&attr);
        dnnl_post_ops_create(&ops);
        dnnl_post_ops_append_sum(ops, 1.0f);
        dnnl_primitive_attr_set_post_ops(attr, ops);
        dnnl_post_ops_destroy(ops);
    }
    dnnl_primitive_desc_t pd;
    cnn_status st = be_check(dnnl_reorder_primitive_desc_create(&pd, from, b->engine, to, b->engine, attr), "reorder");
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (st) return st;
    st = be_check(dnnl_primitive_create(out, pd), "reorder");
    dnnl_primitive_desc_destroy(pd);
    return st;
}

static int param_id(const plan *p, int nid, int k) { return p->g->nodes[nid].params[k]; }

static bool param_shared(const graph *g, int pid) {
    int uses = 0;
    for (int i = 0; i < g->nnodes; i++)
        for (int k = 0; k < g->nodes[i].nparams; k++) uses += g->nodes[i].params[k] == pid;
    return uses > 1;
}

/* A view of a window of the parameter: the block at `offset` of its canonical (PyTorch) layout,
 * which it must keep, with the dimensions of `want`. */
static cnn_status window_md(const param *pa, const int64_t *offset, const dnnl_memory_desc_t *want,
                            dnnl_memory_desc_t *sub) {
    if (!pa->md_fixed || !be_md_equal(&pa->md, &pa->canon_md) || want->ndims != pa->canon_md.ndims)
        return cnn_fail(CNN_ERR_INTERNAL, "%s: a parameter read in part must keep PyTorch's layout", pa->name);
    dnnl_dims_t off;
    for (int i = 0; i < want->ndims; i++) off[i] = offset[i];
    return be_check(dnnl_memory_desc_init_submemory(sub, &pa->canon_md, want->dims, off), "parameter window");
}

static cnn_status add_view(plan *p, int nid, int k, const int64_t *offset, const dnnl_memory_desc_t *want, bool grad,
                           int *view) {
    graph *g = p->g;
    param *pa = &g->params[param_id(p, nid, k)];
    *view = -1;
    bool shared = grad && param_shared(g, param_id(p, nid, k));
    if (!offset && !pa->md_fixed && !shared) {
        if (g->finalized) return cnn_fail(CNN_ERR_INTERNAL, "%s: layout unknown after finalize", pa->name);
        pa->md = *want;
        pa->md_fixed = true;
        return CNN_OK;
    }
    /* a parameter shared by several nodes accumulates its gradient: always through a view */
    if (!offset && be_md_equal(&pa->md, want) && !shared) return CNN_OK;
    dnnl_memory_desc_t whole = pa->md;
    if (offset) CNN_TRY(window_md(pa, offset, want, &whole));
    pview *v = realloc(p->views, sizeof *v * (p->nviews + 1));
    if (!v) return cnn_fail(CNN_ERR_NOMEM, "plan: out of memory");
    p->views = v;
    v = &p->views[p->nviews];
    memset(v, 0, sizeof *v);
    v->pid = param_id(p, nid, k);
    v->grad = grad;
    v->md = *want;
    v->version = -1;
    v->buf = plan_request(p, nid, grad ? LIFE_BWD : LIFE_PERSIST, want, 0);
    if (v->buf < 0) return cnn_fail(CNN_ERR_NOMEM, "plan: out of memory");
    p->nviews++; /* counted now so that plan_free releases what follows, even on failure */
    if (offset && !(v->window = be_mem(&whole, NULL))) return cnn_fail(CNN_ERR_BACKEND, "oneDNN: cannot create a memory object");
    if (grad) {
        CNN_TRY(reorder_prim(want, &whole, false, &v->reorder));
        CNN_TRY(reorder_prim(want, &whole, true, &v->reorder_add));
    } else {
        CNN_TRY(reorder_prim(&whole, want, false, &v->reorder));
    }
    *view = p->nviews - 1;
    return CNN_OK;
}

cnn_status plan_param_use(plan *p, int nid, int k, const dnnl_memory_desc_t *want, int *view) {
    return add_view(p, nid, k, NULL, want, false, view);
}

cnn_status plan_param_grad_use(plan *p, int nid, int k, const dnnl_memory_desc_t *want, int *view) {
    return add_view(p, nid, k, NULL, want, true, view);
}

cnn_status plan_param_window_use(plan *p, int nid, int k, const int64_t *offset, const dnnl_memory_desc_t *want,
                                 bool grad, int *view) {
    return add_view(p, nid, k, offset, want, grad, view);
}

/* ---------- run-time parameter access ---------- */

/* Parameter memories are created on first use and cached per plan (one per value, one per grad). */
static dnnl_memory_t param_mem_cache(plan *p, int pid, bool grad) {
    dnnl_memory_t *slot = grad ? &p->pgrad_mem[pid] : &p->pval_mem[pid];
    if (!*slot) {
        param *pa = &p->g->params[pid];
        *slot = be_mem(&pa->md, grad ? (void *)graph_param_grad(p->g, pid) : (void *)graph_param_data(p->g, pid));
    }
    return *slot;
}

float *plan_param_ptr(plan *p, int nid, int k) { return graph_param_data(p->g, param_id(p, nid, k)); }
float *plan_param_grad_ptr(plan *p, int nid, int k) { return graph_param_grad(p->g, param_id(p, nid, k)); }

static void run_reorder(dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to) {
    const backend *b = be_get();
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    dnnl_primitive_execute(r, b->stream, 2, a);
    dnnl_stream_wait(b->stream);
}

dnnl_memory_t plan_param_mem(plan *p, int nid, int k, int view) {
    int pid = param_id(p, nid, k);
    dnnl_memory_t direct = param_mem_cache(p, pid, false);
    if (view < 0) return direct;
    pview *v = &p->views[view];
    if (v->version != p->g->version) {
        if (v->window) dnnl_memory_set_data_handle(v->window, graph_param_data(p->g, pid));
        run_reorder(v->reorder, v->window ? v->window : direct, p->bufs[v->buf].mem);
        v->version = p->g->version;
    }
    return p->bufs[v->buf].mem;
}

static bool param_accum(const plan *p, int nid, int k) { return p->nodes[nid].param_accum[k]; }

dnnl_memory_t plan_param_grad_begin(plan *p, int nid, int k, int view) {
    if (view >= 0) return p->bufs[p->views[view].buf].mem;
    return param_mem_cache(p, param_id(p, nid, k), true);
}

void plan_param_grad_end(plan *p, int nid, int k, int view) {
    if (view < 0) return;
    pview *v = &p->views[view];
    bool accum = param_accum(p, nid, k);
    dnnl_memory_t dst = param_mem_cache(p, v->pid, true);
    if (v->window) {
        /* the first writer of a gradient read in part zeroes what lies outside its window */
        float *grad = graph_param_grad(p->g, v->pid);
        if (!accum) memset(grad, 0, p->g->params[v->pid].bytes);
        dnnl_memory_set_data_handle(v->window, grad);
        dst = v->window;
    }
    run_reorder(accum ? v->reorder_add : v->reorder, p->bufs[v->buf].mem, dst);
}

/* ---------- run-time input gradients ---------- */

dnnl_memory_t plan_grad_in_begin(plan *p, int nid, int slot) {
    pslot *s = &p->nodes[nid].in[slot];
    if (s->temp >= 0) return p->bufs[s->temp].mem;
    return plan_grad_mem(p, p->g->nodes[nid].in[slot]);
}

float *plan_grad_in_ptr(plan *p, int nid, int slot) {
    pslot *s = &p->nodes[nid].in[slot];
    if (s->temp >= 0) return plan_buf(p, s->temp);
    return plan_grad(p, p->g->nodes[nid].in[slot]);
}

void plan_grad_in_end(plan *p, int nid, int slot) {
    pslot *s = &p->nodes[nid].in[slot];
    if (s->temp < 0) return;
    float *dst = plan_grad(p, p->g->nodes[nid].in[slot]);
    const float *src = plan_buf(p, s->temp);
    size_t n = p->bufs[s->temp].bytes / sizeof(float);
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}


/* ---------- compile ---------- */

static void *zalloc(size_t n) { return calloc(1, n ? n : 1); }

/* Nodes to run: everything in training; in evaluation the ancestors of the main logits and
 * the loss reading them (auxiliary heads and their losses are training-only). */
static void select_nodes(plan *p) {
    graph *g = p->g;
    bool *need_t = zalloc(sizeof(bool) * g->ntensors);
    bool *need_n = zalloc(sizeof(bool) * g->nnodes);
    for (int i = 0; i < g->noutputs; i++) {
        const graph_output *o = &g->outputs[i];
        if (p->mode == PLAN_EVAL && o->kind != OUTPUT_MAIN) continue;
        need_t[o->tensor] = true;
        if (o->loss_node >= 0) need_n[o->loss_node] = true;
    }
    if (p->mode == PLAN_TRAIN)
        for (int i = 0; i < g->nnodes; i++) need_n[i] = true;
    for (int i = g->nnodes - 1; i >= 0; i--) {
        node *n = &g->nodes[i];
        for (int k = 0; k < n->nout && !need_n[i]; k++) need_n[i] = need_t[n->out[k]];
        if (need_n[i])
            for (int k = 0; k < n->nin; k++) need_t[n->in[k]] = true;
    }
    p->norder = 0;
    for (int i = 0; i < g->nnodes; i++) {
        p->nodes[i].pos = -1;
        if (need_n[i]) {
            p->nodes[i].pos = p->norder;
            p->order[p->norder++] = i;
        }
    }
    for (int t = 0; t < g->ntensors; t++) p->used[t] = need_t[t];
    p->used[g->input] = true;
    free(need_t);
    free(need_n);
}

/* requires_grad, recomputed here because tests may mark the input as requiring a gradient */
static void propagate_requires_grad(plan *p) {
    graph *g = p->g;
    for (int t = 0; t < g->ntensors; t++) p->rg[t] = false;
    p->rg[g->input] = g->tensors[g->input].requires_grad && p->mode == PLAN_TRAIN;
    for (int k = 0; k < p->norder; k++) {
        node *n = &g->nodes[p->order[k]];
        bool rg = false;
        for (int i = 0; i < n->nparams; i++) rg = rg || param_trainable(&g->params[n->params[i]]);
        for (int i = 0; i < n->nin; i++) rg = rg || p->rg[n->in[i]];
        for (int i = 0; i < n->nout; i++) p->rg[n->out[i]] = rg && p->mode == PLAN_TRAIN;
        p->nodes[p->order[k]].run_bwd = rg && p->mode == PLAN_TRAIN && n->op->backward;
    }
}

static int tfwd(const plan *p, int nid) { return p->nodes[nid].pos; }
static int tbwd(const plan *p, int nid) { return 2 * p->norder - 1 - p->nodes[nid].pos; }
static int tend(const plan *p) { return 2 * p->norder; }
static int imax(int a, int b) { return a > b ? a : b; }
static int imin(int a, int b) { return a < b ? a : b; }

/* Consumer slots of each tensor among the nodes that run, and whether a tensor must keep a buffer
 * of its own (the graph input and outputs). */
static int *count_uses(const plan *p) {
    const graph *g = p->g;
    int *uses = zalloc(sizeof(int) * g->ntensors);
    for (int k = 0; k < p->norder; k++) {
        const node *n = &g->nodes[p->order[k]];
        for (int s = 0; s < n->nin; s++) uses[n->in[s]]++;
    }
    return uses;
}

static bool pinned(const graph *g, int t) {
    if (t == g->input) return true;
    for (int i = 0; i < g->noutputs; i++)
        if (g->outputs[i].tensor == t) return true;
    return false;
}

static int only_consumer(const plan *p, int t) {
    for (int k = 0; k < p->norder; k++) {
        const node *n = &p->g->nodes[p->order[k]];
        if (p->nodes[p->order[k]].pos < 0) continue;
        for (int s = 0; s < n->nin; s++)
            if (n->in[s] == t) return p->order[k];
    }
    return -1;
}

bool plan_output_over(plan *p, int nid, int next) {
    const graph *g = p->g;
    const node *add = &g->nodes[next];
    int out = p->root[g->nodes[nid].out[0]], at = p->nodes[nid].pos;
    int t = p->root[add->in[0]] == out ? add->in[1] : add->in[0], r = p->root[t]; /* the other addend */
    if (p->mode == PLAN_TRAIN || r == out || !be_md_equal(&p->md[t], &p->md[g->nodes[nid].out[0]])) return false;
    for (int u = 0; u < g->ntensors; u++) {
        if (p->root[u] != r) continue;
        /* made before nid (an absorbed producer's output shares its absorber's root: checked there) */
        int prod = g->tensors[u].producer;
        if (pinned(g, u) || (prod >= 0 && p->nodes[prod].pos >= at)) return false;
        for (int k = 0; k < p->norder; k++) { /* readers that run (not next, being absorbed): before nid */
            const node *c = &g->nodes[p->order[k]];
            for (int s = 0; s < c->nin; s++)
                if (c->in[s] == u && p->order[k] != next && p->nodes[p->order[k]].pos >= at) return false;
        }
    }
    for (int u = 0; u < g->ntensors; u++)
        if (p->root[u] == out) p->root[u] = r;
    return true;
}

/* Fusion: each node may absorb the sole consumer of its output, repeatedly; absorbed nodes leave
 * the run order and their output becomes an alias of the absorbing node's. */
static void fuse_nodes(plan *p) {
    graph *g = p->g;
    int *uses = count_uses(p);
    for (int k = 0; k < p->norder; k++) {
        int nid = p->order[k];
        node *n = &g->nodes[nid];
        if (p->nodes[nid].pos < 0 || n->nout != 1 || !n->op->absorb) continue;
        int t = n->out[0];
        while (uses[t] == 1 && !pinned(g, t) && p->nodes[nid].nabsorbed < 4) {
            int m = only_consumer(p, t);
            if (m < 0 || g->nodes[m].nout != 1 || !n->op->absorb(p, nid, m)) break;
            p->nodes[nid].absorbed[p->nodes[nid].nabsorbed++] = m;
            p->nodes[m].pos = -1;
            t = g->nodes[m].out[0];
            p->root[t] = p->root[n->out[0]];
        }
    }
    int kept = 0;
    for (int k = 0; k < p->norder; k++)
        if (p->nodes[p->order[k]].pos >= 0) {
            p->nodes[p->order[k]].pos = kept;
            p->order[kept++] = p->order[k];
        }
    p->norder = kept;
    free(uses);
}

/* In place: an op that allows it writes its output over input 0 when no other node reads that
 * value, nothing keeps it for a backward pass, and it is not the graph's input or an output. */
static void place_in_situ(plan *p) {
    graph *g = p->g;
    int *uses = count_uses(p);
    bool *kept = zalloc(sizeof(bool) * g->ntensors);
    for (int k = 0; k < p->norder; k++) {
        const node *n = &g->nodes[p->order[k]];
        const pnode *pn = &p->nodes[p->order[k]];
        for (int s = 0; s < n->nin; s++) kept[p->root[n->in[s]]] |= pn->in[s].keep;
        for (int s = 0; s < n->nout; s++) kept[p->root[n->out[s]]] |= pn->keep_out[s];
    }
    for (int k = 0; k < p->norder; k++) {
        int nid = p->order[k];
        node *n = &g->nodes[nid];
        if (!n->op->inplace || n->nin < 1 || n->nout != 1) continue;
        int x = n->in[0], r = p->root[x];
        int readers = 0;
        for (int t = 0; t < g->ntensors; t++)
            if (p->root[t] == r) readers += uses[t];
        if (readers != 1 || uses[n->out[0]] == 0 || kept[r] || pinned(g, x) || pinned(g, r) ||
            p->root[n->out[0]] != n->out[0] ||
            !be_md_equal(&p->md[x], &p->md[n->out[0]]))
            continue;
        for (int t = 0; t < g->ntensors; t++)
            if (p->root[t] == n->out[0]) p->root[t] = r;
        kept[r] |= kept[n->out[0]];
    }
    free(uses);
    free(kept);
}

/* Gradient accumulation: the first consumer slot to run backward (the last in topological order,
 * lowest slot first) writes, every other one adds. Parameters likewise. */
static void mark_accumulation(plan *p) {
    graph *g = p->g;
    bool *written = zalloc(sizeof(bool) * g->ntensors);
    bool *pwritten = zalloc(sizeof(bool) * (g->nparams + 1));
    for (int k = p->norder - 1; k >= 0; k--) {
        int nid = p->order[k];
        node *n = &g->nodes[nid];
        if (!p->nodes[nid].run_bwd) continue;
        for (int s = 0; s < n->nin; s++) {
            int t = n->in[s];
            if (!p->rg[t]) continue;
            p->nodes[nid].in[s].accum = written[t];
            written[t] = true;
        }
        for (int i = 0; i < n->nparams; i++) {
            p->nodes[nid].param_accum[i] = pwritten[n->params[i]];
            pwritten[n->params[i]] = true;
        }
    }
    /* a gradient nobody writes is zero; tensors sharing buffers share that question */
    bool *set_written = zalloc(sizeof(bool) * g->ntensors);
    for (int t = 0; t < g->ntensors; t++) set_written[p->root[t]] |= written[t];
    for (int t = 0; t < g->ntensors; t++) p->grad_zero[t] = p->rg[t] && !set_written[p->root[t]];
    free(set_written);
    free(written);
    free(pwritten);
}

static bool absorbed_by(const pnode *pn, int m) {
    for (int i = 0; i < pn->nabsorbed; i++)
        if (pn->absorbed[i] == m) return true;
    return false;
}

/* graph.recompute: outputs that an op can write again (op_def.recompute, from inputs it keeps) and
 * that readers keep for their backward are kept no longer; a second buffer, live in the backward pass
 * from the first backward that reads it (a keeping reader's, or the recompute of a reader recomputed
 * itself) to the last, receives them again just before the first. The output must be the op's alone
 * (its alias root shared only with what it absorbed, nothing pinned) and not kept by the op itself.
 * Decided from the last node back, so that a reader's own recompute time is known; remats[] ends up
 * in reverse run order. */
static cnn_status choose_recomputed(plan *p) {
    graph *g = p->g;
    for (int t = 0; t < g->ntensors; t++) p->remat[t] = -1;
    if (p->mode != PLAN_TRAIN || !g->recompute) return CNN_OK;
    for (int k = p->norder - 1; k >= 0; k--) {
        int nid = p->order[k];
        const node *n = &g->nodes[nid];
        const pnode *pn = &p->nodes[nid];
        bool ok = n->op->recompute && pn->run_bwd && n->nout == 1 && !pn->keep_out[0];
        for (int s = 0; s < n->nin && ok; s++) ok = pn->in[s].keep;
        if (!ok) continue;
        int r = p->root[n->out[0]], first = tend(p), last = -1;
        for (int u = 0; u < g->ntensors && ok; u++)
            if (p->root[u] == r)
                ok = !pinned(g, u) && (g->tensors[u].producer == nid || absorbed_by(pn, g->tensors[u].producer));
        for (int j = k + 1; j < p->norder && ok; j++) {
            int c = p->order[j];
            const node *cn = &g->nodes[c];
            for (int s = 0; s < cn->nin; s++) {
                if (p->root[cn->in[s]] != r || !p->nodes[c].run_bwd || !p->nodes[c].in[s].keep) continue;
                first = imin(first, tbwd(p, c));
                last = imax(last, tbwd(p, c));
                int rc = cn->nout == 1 ? p->remat[p->root[cn->out[0]]] : -1;
                if (rc >= 0 && p->remats[rc].nid == c) first = imin(first, tbwd(p, p->remats[rc].at));
            }
        }
        if (!ok || last < 0) continue;
        premat *m = realloc(p->remats, sizeof *m * (p->nremats + 1));
        if (!m) return cnn_fail(CNN_ERR_NOMEM, "plan: out of memory");
        p->remats = m;
        p->remats[p->nremats] = (premat){nid, r, p->order[2 * p->norder - 1 - first], last, -1, -1};
        p->remat[r] = p->nremats++;
    }
    return CNN_OK;
}

static int add_buf(plan *p, const dnnl_memory_desc_t *md, int start, int end) {
    int h = plan_request(p, -1, LIFE_PERSIST, md, 0);
    if (h >= 0) {
        p->bufs[h].start = start;
        p->bufs[h].end = end;
    }
    return h;
}

/* Give every op-requested buffer its interval now that positions are known. */
static void resolve_op_buffers(plan *p, int nbufs_ops) {
    for (int h = 0; h < nbufs_ops; h++) {
        pbuf *b = &p->bufs[h];
        if (b->end >= 0) continue;
        int nid = b->start;
        enum buf_life life = (enum buf_life)(-b->end - 1);
        bool train = p->mode == PLAN_TRAIN && nid >= 0 && p->nodes[nid].run_bwd;
        switch (life) {
        case LIFE_SAVED: b->start = tfwd(p, nid); b->end = train ? tbwd(p, nid) : tfwd(p, nid); break;
        case LIFE_FWD: b->start = b->end = tfwd(p, nid); break;
        case LIFE_BWD: b->start = b->end = train ? tbwd(p, nid) : tend(p); break;
        case LIFE_PERSIST: b->start = 0; b->end = tend(p); break;
        }
    }
}

/* The interval of a tensor's value and gradient on the timeline, before merging aliases. */
static void tensor_interval(plan *p, int t, int *start, int *end, int *gstart, int *gend) {
    graph *g = p->g;
    bool train = p->mode == PLAN_TRAIN;
    int prod = g->tensors[t].producer;
    if (prod >= 0 && p->nodes[prod].pos < 0) prod = -2; /* absorbed: its absorber produces the root */
    *start = prod >= 0 ? tfwd(p, prod) : tend(p);
    if (t == g->input) *start = 0;
    *end = prod >= 0 ? *start : -1;
    if (prod >= 0 && train && p->nodes[prod].run_bwd)
        for (int k = 0; k < g->nodes[prod].nout; k++)
            if (g->nodes[prod].out[k] == t && p->nodes[prod].keep_out[k]) *end = imax(*end, tbwd(p, prod));
    *gstart = tend(p);
    *gend = prod >= 0 && train ? tbwd(p, prod) : t == g->input ? tend(p) : -1;
    for (int j = 0; j < p->norder; j++) {
        int c = p->order[j];
        node *n = &g->nodes[c];
        for (int s = 0; s < n->nin; s++) {
            if (n->in[s] != t) continue;
            *end = imax(*end, tfwd(p, c));
            if (train && p->nodes[c].run_bwd) {
                if (p->nodes[c].in[s].keep && p->remat[p->root[t]] < 0) *end = imax(*end, tbwd(p, c));
                *gstart = imin(*gstart, tbwd(p, c));
            }
        }
    }
    if (pinned(g, t)) *end = tend(p);
    if (p->grad_zero[t]) *gstart = p->norder;
}

/* One value buffer and one gradient buffer per alias root, live over the union of its tensors'
 * intervals. */
static cnn_status tensor_buffers(plan *p) {
    graph *g = p->g;
    int nt = g->ntensors;
    int *iv = malloc(sizeof(int) * 4 * nt);
    if (!iv) return cnn_fail(CNN_ERR_NOMEM, "plan: out of memory");
    for (int t = 0; t < nt; t++) {
        iv[4 * t] = iv[4 * t + 2] = tend(p) + 1;
        iv[4 * t + 1] = iv[4 * t + 3] = -1;
    }
    for (int t = 0; t < nt; t++) {
        if (!p->used[t]) continue;
        int s, e, gs, ge, *r = iv + 4 * p->root[t];
        tensor_interval(p, t, &s, &e, &gs, &ge);
        r[0] = imin(r[0], s);
        r[1] = imax(r[1], e);
        r[2] = imin(r[2], gs);
        r[3] = imax(r[3], ge);
    }
    cnn_status st = CNN_OK;
    for (int t = 0; t < nt && !st; t++) {
        p->val[t] = p->grad[t] = -1;
        if (!p->used[t] || p->root[t] != t) continue;
        int *r = iv + 4 * t;
        p->val[t] = add_buf(p, &p->md[t], r[0], imax(r[0], r[1]));
        if (p->mode == PLAN_TRAIN && p->rg[t] && p->val[t] >= 0)
            p->grad[t] = add_buf(p, &p->md[t], r[2], imax(r[2], r[3]));
        if (p->val[t] < 0 || (p->mode == PLAN_TRAIN && p->rg[t] && p->grad[t] < 0))
            st = cnn_fail(CNN_ERR_NOMEM, "plan: out of memory");
    }
    free(iv);
    CNN_TRY(st);
    for (int t = 0; t < nt; t++)
        if (p->used[t] && p->root[t] != t) {
            p->val[t] = p->val[p->root[t]];
            p->grad[t] = p->grad[p->root[t]];
        }
    /* recomputed values: a second buffer over their backward interval */
    for (int i = 0; i < p->nremats; i++) {
        premat *m = &p->remats[i];
        m->fwd = p->val[m->root];
        m->bwd = add_buf(p, &p->md[m->root], tbwd(p, m->at), m->end);
        if (m->bwd < 0) return cnn_fail(CNN_ERR_NOMEM, "plan: out of memory");
    }
    /* temporaries for overwriting ops whose input gradient accumulates */
    for (int j = 0; j < p->norder; j++) {
        int c = p->order[j];
        node *n = &g->nodes[c];
        for (int s = 0; s < n->nin; s++) {
            pslot *sl = &p->nodes[c].in[s];
            sl->temp = -1;
            if (sl->accum && p->nodes[c].overwrites) {
                sl->temp = add_buf(p, &p->md[n->in[s]], tbwd(p, c), tbwd(p, c));
                if (sl->temp < 0) return cnn_fail(CNN_ERR_NOMEM, "plan: out of memory");
            }
        }
    }
    return CNN_OK;
}

static size_t align64(size_t x) { return (x + 63) & ~(size_t)63; }

static int by_size_desc(const void *a, const void *b, void *ctx) {
    const pbuf *bufs = ctx;
    size_t x = bufs[*(const int *)a].bytes, y = bufs[*(const int *)b].bytes;
    return x < y ? 1 : x > y ? -1 : *(const int *)a - *(const int *)b;
}

/* Greedy interval packing: largest first, each at the lowest offset free over its lifetime. */
static size_t pack_buffers(plan *p) {
    int n = p->nbufs;
    int *idx = malloc(sizeof(int) * (n ? n : 1));
    int *placed = malloc(sizeof(int) * (n ? n : 1));
    for (int i = 0; i < n; i++) idx[i] = i;
    qsort_r(idx, n, sizeof(int), by_size_desc, p->bufs);
    size_t total = 0;
    int nplaced = 0;
    for (int i = 0; i < n; i++) {
        pbuf *b = &p->bufs[idx[i]];
        size_t size = align64(b->bytes), off = 0;
        bool moved = true;
        while (moved) {
            moved = false;
            for (int j = 0; j < nplaced; j++) {
                pbuf *o = &p->bufs[placed[j]];
                if (o->end < b->start || b->end < o->start) continue;
                if (off < o->off + align64(o->bytes) && o->off < off + size) {
                    off = o->off + align64(o->bytes);
                    moved = true;
                }
            }
        }
        b->off = off;
        placed[nplaced++] = idx[i];
        if (off + size > total) total = off + size;
    }
    free(idx);
    free(placed);
    return total;
}

#define HUGE_PAGE ((size_t)2 << 20)
/* The arena and the scratch on 2 MB pages where the kernel gives them on request (transparent huge pages in
 * "madvise" mode, Debian's default): the activations of a step are streamed through once or twice per op, and
 * with 4 KB pages each 8 MB tensor of resnet20's first stage spans 2048 TLB entries. Measured alternating (2-core
 * Intel AVX-512; CNN_THP=0 in the environment keeps 4 KB pages): resnet20 training at batch 128 +1% (higher in 9
 * of 11 pairs), efficientnet_b0 inference at batch 32 +3–5%, resnet50 inference +1%, resnet50 training within
 * noise. */
bool plan_knob_enabled(const char *name) {
    const char *e = getenv(name);
    return !e || strcmp(e, "0");
}

static void *arena_alloc(size_t bytes) {
    if (bytes < HUGE_PAGE || !plan_knob_enabled("CNN_THP")) return aligned_alloc(64, align64(bytes ? bytes : 64));
    const size_t n = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    void *a = aligned_alloc(HUGE_PAGE, n);
    if (a) madvise(a, n, MADV_HUGEPAGE); /* (advice: where it fails, 4 KB pages as before) */
    return a;
}

static cnn_status bind_memory(plan *p) {
    p->arena = arena_alloc(p->arena_bytes);
    p->scratch = arena_alloc(p->scratch_bytes);
    if (!p->arena || !p->scratch)
        return cnn_fail(CNN_ERR_NOMEM,
                        "cannot allocate %.1f MB of activations for batch %d: try a smaller --batch-size",
                        (p->arena_bytes + p->scratch_bytes) / 1048576.0, p->batch);
    memset(p->arena, 0, p->arena_bytes); /* padded channels start (and stay) zero */
    for (int h = 0; h < p->nbufs; h++) {
        pbuf *b = &p->bufs[h];
        if (!b->has_md) be_md_bytes(&b->md, b->bytes);
        b->mem = be_mem(&b->md, p->arena + b->off);
        if (!b->mem) return cnn_fail(CNN_ERR_BACKEND, "oneDNN: cannot create a memory object");
    }
    for (int i = 0; i < p->nprims; i++)
        if (p->prim_scratch[i]) dnnl_memory_set_data_handle(p->prim_scratch[i], p->scratch);
    return CNN_OK;
}

static cnn_status compile_nodes(plan *p) {
    graph *g = p->g;
    for (int k = 0; k < p->norder; k++) {
        int nid = p->order[k];
        node *n = &g->nodes[nid];
        cnn_status st = n->op->compile ? n->op->compile(p, nid) : CNN_OK;
        if (st) return cnn_fail_context(st, "compiling %s (%s)", n->name, n->op->type);
    }
    return CNN_OK;
}

static cnn_status plan_alloc(plan *p) {
    graph *g = p->g;
    p->order = zalloc(sizeof(int) * g->nnodes);
    p->nodes = zalloc(sizeof(pnode) * g->nnodes);
    p->val = zalloc(sizeof(int) * g->ntensors);
    p->root = zalloc(sizeof(int) * g->ntensors);
    p->remat = zalloc(sizeof(int) * g->ntensors);
    p->grad = zalloc(sizeof(int) * g->ntensors);
    p->rg = zalloc(sizeof(bool) * g->ntensors);
    p->grad_zero = zalloc(sizeof(bool) * g->ntensors);
    p->used = zalloc(sizeof(bool) * g->ntensors);
    p->unwritten = zalloc(sizeof(bool) * g->ntensors);
    p->md = zalloc(sizeof(dnnl_memory_desc_t) * g->ntensors);
    p->labels = zalloc(sizeof(int32_t) * p->batch);
    p->pval_mem = zalloc(sizeof(dnnl_memory_t) * g->nparams);
    p->pgrad_mem = zalloc(sizeof(dnnl_memory_t) * g->nparams);
    if (!p->order || !p->nodes || !p->val || !p->grad || !p->rg || !p->grad_zero || !p->used || !p->unwritten || !p->md ||
        !p->labels || !p->pval_mem || !p->pgrad_mem || !p->root || !p->remat)
        return cnn_fail(CNN_ERR_NOMEM, "plan: out of memory");
    for (int i = 0; i < g->nnodes; i++) {
        node *n = &g->nodes[i];
        p->nodes[i].in = zalloc(sizeof(pslot) * n->nin);
        p->nodes[i].keep_out = zalloc(sizeof(bool) * n->nout);
        p->nodes[i].param_accum = zalloc(sizeof(bool) * n->nparams);
        if (!p->nodes[i].in || !p->nodes[i].keep_out || !p->nodes[i].param_accum)
            return cnn_fail(CNN_ERR_NOMEM, "plan: out of memory");
        for (int s = 0; s < n->nin; s++) p->nodes[i].in[s].temp = -1;
    }
    for (int t = 0; t < g->ntensors; t++) {
        const tensor *tt = &g->tensors[t];
        be_md_act(&p->md[t], p->batch, tt->c, tt->h, tt->w, tt->layout);
        p->root[t] = t;
    }
    return CNN_OK;
}

/* No plan holds an activation tensor of more than 1 TiB; and oneDNN 2.6 crashes (SIGFPE) while creating
 * convolutions on tensors of 2^41 elements or more (AVX-512, measured): refuse such a batch before
 * any primitive is created (from the tensors' descriptors, padding included), with the message of a
 * failed allocation. */
static cnn_status check_tensor_sizes(const plan *p) {
    const size_t limit = (size_t)1 << 40;
    for (int t = 0; t < p->g->ntensors; t++) {
        size_t bytes = be_md_size(&p->md[t]);
        if (bytes > limit)
            return cnn_fail(CNN_ERR_NOMEM, "cannot allocate %.1f MB of activations for batch %d (one tensor alone): "
                            "try a smaller --batch-size", bytes / 1048576.0, p->batch);
    }
    return CNN_OK;
}

cnn_status plan_create(graph *g, int batch, enum plan_mode mode, plan **out) {
    *out = NULL;
    if (!graph_ok(g)) return g->error;
    if (batch <= 0) return cnn_fail(CNN_ERR_ARG, "batch size must be positive, got %d", batch);
    if (g->input < 0 || graph_main_output(g) < 0) return cnn_fail(CNN_ERR_INTERNAL, "graph has no input or output");
    if (!be_get()) return CNN_ERR_BACKEND;
    plan *p = zalloc(sizeof *p);
    if (!p) return cnn_fail(CNN_ERR_NOMEM, "plan: out of memory");
    p->g = g;
    p->batch = batch;
    p->mode = mode;
    cnn_status st = plan_alloc(p);
    if (!st) st = check_tensor_sizes(p);
    if (!st) {
        select_nodes(p);
        propagate_requires_grad(p);
        fuse_nodes(p);
        st = compile_nodes(p);
    }
    if (!st) st = graph_finalize(g);
    if (!st) {
        place_in_situ(p);
        mark_accumulation(p);
        st = choose_recomputed(p);
    }
    if (!st) {
        int nops = p->nbufs;
        resolve_op_buffers(p, nops);
        st = tensor_buffers(p);
    }
    if (!st) {
        p->arena_bytes = pack_buffers(p);
        st = bind_memory(p);
    }
    if (st) {
        plan_free(p);
        return st;
    }
    *out = p;
    return CNN_OK;
}

void plan_free(plan *p) {
    if (!p) return;
    graph *g = p->g;
    for (int i = 0; i < g->nnodes && p->nodes; i++) {
        pnode *pn = &p->nodes[i];
        if (pn->state) {
            if (g->nodes[i].op->free_state) g->nodes[i].op->free_state(pn->state);
            else free(pn->state);
        }
        free(pn->in);
        free(pn->keep_out);
        free(pn->param_accum);
    }
    for (int i = 0; i < p->nprims; i++) {
        dnnl_primitive_destroy(p->prims[i]);
        if (p->prim_scratch[i]) dnnl_memory_destroy(p->prim_scratch[i]);
    }
    for (int i = 0; i < p->nviews; i++) {
        if (p->views[i].reorder) dnnl_primitive_destroy(p->views[i].reorder);
        if (p->views[i].reorder_add) dnnl_primitive_destroy(p->views[i].reorder_add);
        if (p->views[i].window) dnnl_memory_destroy(p->views[i].window);
    }
    for (int h = 0; h < p->nbufs; h++)
        if (p->bufs[h].mem) dnnl_memory_destroy(p->bufs[h].mem);
    for (int i = 0; i < g->nparams && p->pval_mem; i++) {
        if (p->pval_mem[i]) dnnl_memory_destroy(p->pval_mem[i]);
        if (p->pgrad_mem[i]) dnnl_memory_destroy(p->pgrad_mem[i]);
    }
    free(p->pval_mem);
    free(p->pgrad_mem);
    free(p->views);
    free(p->prims);
    free(p->prim_scratch);
    free(p->prim_scratch_bytes);
    free(p->bufs);
    free(p->arena);
    free(p->scratch);
    free(p->order);
    free(p->nodes);
    free(p->val);
    free(p->root);
    free(p->remat);
    free(p->remats);
    free(p->grad);
    free(p->rg);
    free(p->grad_zero);
    free(p->used);
    free(p->unwritten);
    free(p->md);
    free(p->labels);
    free(p);
}

/* ---------- execution ---------- */

void plan_poison(plan *p) {
    float *a = (float *)p->arena;
    size_t n = p->arena_bytes / sizeof(float);
    for (size_t i = 0; i < n; i++) a[i] = NAN;
}

/* Recomputed values: every tensor of the alias root reads buffer h from now on. */
static void remat_switch(plan *p, const premat *m, int h) {
    for (int t = 0; t < p->g->ntensors; t++)
        if (p->used[t] && p->root[t] == m->root) p->val[t] = h;
}

static void remat_forward_buffers(plan *p) {
    for (int i = 0; i < p->nremats; i++) remat_switch(p, &p->remats[i], p->remats[i].fwd);
}

/* Before node nid's backward: the values it reads that were not kept, written again (in run order:
 * a recomputed op may read another's output). */
static void rematerialize(plan *p, int nid) {
    for (int i = p->nremats - 1; i >= 0; i--) {
        const premat *m = &p->remats[i];
        if (m->at != nid) continue;
        remat_switch(p, m, m->bwd);
        p->g->nodes[m->nid].op->recompute(p, m->nid);
        if (p->hook) p->hook(p, m->nid, false, p->hook_ctx); /* its output is fresh again */
    }
}

cnn_status plan_forward(plan *p, bool training, uint64_t step_key) {
    if (training && p->mode != PLAN_TRAIN) return cnn_fail(CNN_ERR_INTERNAL, "training pass on an evaluation plan");
    p->training = training;
    p->step_key = step_key;
    p->loss = p->main_loss = 0;
    p->exec_status = CNN_OK;
    remat_forward_buffers(p);
    for (int k = 0; k < p->norder; k++) {
        int nid = p->order[k];
        p->g->nodes[nid].op->forward(p, nid);
        if (p->hook) p->hook(p, nid, false, p->hook_ctx);
        if (p->exec_status) return cnn_fail_context(p->exec_status, "forward of %s", p->g->nodes[nid].name);
    }
    return CNN_OK;
}

cnn_status plan_backward(plan *p) {
    if (p->mode != PLAN_TRAIN || !p->training)
        return cnn_fail(CNN_ERR_INTERNAL, "backward needs a training forward pass first");
    graph *g = p->g;
    for (int t = 0; t < g->ntensors; t++)
        if (p->grad_zero[t] && p->grad[t] >= 0 && p->root[t] == t) memset(plan_grad(p, t), 0, p->bufs[p->grad[t]].bytes);
    for (int k = p->norder - 1; k >= 0; k--) {
        int nid = p->order[k];
        if (p->nodes[nid].run_bwd) {
            rematerialize(p, nid);
            g->nodes[nid].op->backward(p, nid);
            if (p->hook) p->hook(p, nid, true, p->hook_ctx);
        }
        if (p->exec_status) return cnn_fail_context(p->exec_status, "backward of %s", g->nodes[nid].name);
    }
    remat_forward_buffers(p);
    return CNN_OK;
}

void plan_value_unwritten(plan *p, int tid, bool unwritten) { p->unwritten[tid] = unwritten; }

cnn_status plan_read(plan *p, int tid, bool grad, float *nchw) {
    int h = grad ? p->grad[tid] : p->val[tid];
    if (h < 0) return cnn_fail(CNN_ERR_ARG, "tensor %d has no %s in this plan", tid, grad ? "gradient" : "value");
    if (!grad && p->unwritten[tid])
        return cnn_fail(CNN_ERR_ARG, "tensor %d was not written in the last forward (its reader computed it itself)", tid);
    const tensor *t = &p->g->tensors[tid];
    if (p->md[tid].ndims == 2) {
        memcpy(nchw, plan_buf(p, h), sizeof(float) * p->batch * t->c);
        return CNN_OK;
    }
    dnnl_memory_desc_t plain;
    be_md_nchw(&plain, p->batch, t->c, t->h, t->w);
    return be_reorder_once(&p->md[tid], plan_buf(p, h), &plain, nchw);
}
