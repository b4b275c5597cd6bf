/* parity_run.c — the cnn.c half of the PyTorch parity tests: runs on a model what tools/parity.py runs in
 * PyTorch and writes the same quantities under the same names, for tests/test_parity_torch.py and
 * tests/test_checkpoint_roundtrip.py to compare. Not a test by itself.
 *
 *   parity_run DIR [--out FILE] [--save-ckpt FILE] [--masks FILE]
 *       model settings from the metadata of DIR/batch.safetensors (regnets: "regulator" and
 *       "regulated_stages" too, when present), weights from DIR/weights.safetensors
 *       (strict), results to FILE (default DIR/out.safetensors): logits, loss (the training loss, auxiliary
 *       heads included), main_loss, grad.<param>, stats.<buffer>, sgd_losses, final.<param>, eval_logits
 *       and eval_loss (evaluation plan), eval_logits.train_plan (evaluation pass of the training plan);
 *       --save-ckpt saves the model after the SGD steps, optimizer state included, with ckpt_save.
 *       Metadata "stochastic_depth" and "dropout_aux" (optional) set the model's. --masks FILE writes the
 *       decisions of every training pass (pass 0 is the first forward, pass s the forward of SGD step s;
 *       k counts the ops of a kind in execution order): at the network's kinks, "relu.<pass>.<k>" (U8, 1
 *       where the input is > 0; fused ReLUs included, read from the fused op's output) and
 *       "maxpool.<pass>.<k>" (F32, the max pool's input, from which PyTorch finds the window maxima
 *       cnn.c picked): where a pre-activation lies within rounding of zero, or two candidates of a pooling
 *       window within rounding of each other, the two float32 implementations may decide differently,
 *       and the test then replays PyTorch with these decisions (see test_parity_torch.py);
 *       "dropout.<pass>.<k>" (U8, 1 where kept) and "drop_path.<pass>.<k>" (U8 per sample, 1 where kept),
 *       cnn.c's random draws, which PyTorch replays to compute the same passes.
 *   parity_run --eval-ckpt CKPT --batch FILE --out FILE
 *       eval_logits of the model ckpt_load_model builds from CKPT, on the input of FILE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/plan.h"
#include "models/models.h"
#include "ops/ops.h"
#include "train/checkpoint.h"
#include "train/optim.h"
#include "train/safetensors.h"

/* ---------- the output file: tensors copied as they are produced ---------- */

typedef struct outputs {
    st_writer *w;
    void **bufs;
    int n, cap;
} outputs;

static cnn_status out_add(outputs *o, const char *name, st_dtype dt, int ndim, const int64_t *shape, const void *data,
                          size_t bytes) {
    if (o->n == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 64;
        void **nb = realloc(o->bufs, sizeof(void *) * o->cap);
        if (!nb) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
        o->bufs = nb;
    }
    void *copy = malloc(bytes ? bytes : 1);
    if (!copy) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    memcpy(copy, data, bytes);
    o->bufs[o->n++] = copy;
    return st_writer_add(o->w, name, dt, ndim, shape, copy);
}

static void out_free(outputs *o) {
    for (int i = 0; i < o->n; i++) free(o->bufs[i]);
    free(o->bufs);
    st_writer_free(o->w);
}

static cnn_status add_logits(outputs *o, const char *name, plan *p) {
    const graph *g = plan_graph(p);
    int64_t shape[2] = {plan_batch(p), graph_tensor(g, graph_main_output(g))->c};
    return out_add(o, name, ST_F32, 2, shape, plan_logits(p), sizeof(float) * shape[0] * shape[1]);
}

enum which { GRADS, BUFFERS, ALL };

/* Parameters (or their gradients) in PyTorch's layout, named prefix + state_dict key. */
static cnn_status add_params(outputs *o, const graph *g, const char *prefix, enum which which) {
    for (int i = 0; i < g->nparams; i++) {
        const param *p = &g->params[i];
        if ((which == GRADS && !param_trainable(p)) || (which == BUFFERS && p->role != PARAM_BUFFER)) continue;
        char name[512];
        snprintf(name, sizeof name, "%s%s", prefix, p->name);
        if (p->dtype == PDT_I64) {
            CNN_TRY(out_add(o, name, ST_I64, p->ndim, p->dims, graph_param_data(g, i), sizeof(int64_t)));
            continue;
        }
        size_t bytes = sizeof(float) * param_numel(p);
        float *canon = malloc(bytes ? bytes : 1);
        if (!canon) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
        cnn_status st = which == GRADS ? graph_param_grad_read(g, i, canon) : graph_param_read(g, i, canon);
        if (!st) st = out_add(o, name, ST_F32, p->ndim, p->dims, canon, bytes);
        free(canon);
        CNN_TRY(st);
    }
    return CNN_OK;
}

/* The decisions of the training passes, recorded by a plan hook after each op's forward and read
 * from its output (ops may run in place): ReLU (U8, output > 0; a ReLU runs on its own or fused into
 * the op before it, batch norm or add), dropout (U8, element kept) and drop path (U8 per sample, kept);
 * max pool: its input (F32). Named "<kind>.<pass>.<k>", k counting that kind's ops in execution order. */
enum { RELU, DROPOUT, DROP_PATH, MAXPOOL, KINDS };
static const char *const kind_names[KINDS] = {"relu", "dropout", "drop_path", "maxpool"};

typedef struct decisions {
    outputs *o;   /* NULL: not recorded */
    int pass, k[KINDS];
    cnn_status st;
} decisions;

static int decision_kind(plan *p, int nid) {
    const char *type = plan_graph(p)->nodes[nid].op->type;
    if (!strcmp(type, "relu") || (plan_fused(p, nid) & FUSED_RELU)) return RELU;
    for (int k = DROPOUT; k < KINDS; k++)
        if (!strcmp(type, kind_names[k])) return k;
    return KINDS;
}

static void record_decision(plan *p, int nid, bool backward, void *ctx) {
    decisions *m = ctx;
    const graph *g = plan_graph(p);
    int kind = backward || m->st ? KINDS : decision_kind(p, nid);
    if (kind == KINDS) return;
    int tid = kind == MAXPOOL ? g->nodes[nid].in[0] : g->nodes[nid].out[0];
    const tensor *t = graph_tensor(g, tid);
    int64_t shape[4] = {plan_batch(p), t->c, t->h, t->w}, n = shape[0] * shape[1] * shape[2] * shape[3];
    int64_t per = n / shape[0];
    float *v = malloc(sizeof(float) * n);
    uint8_t *mask = calloc(n, 1);
    char name[64];
    snprintf(name, sizeof name, "%s.%d.%d", kind_names[kind], m->pass, m->k[kind]++);
    m->st = v && mask ? plan_read(p, tid, false, v) : cnn_fail(CNN_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < n && !m->st && kind != MAXPOOL; i++) {
        if (kind == DROP_PATH) mask[i / per] |= v[i] != 0;
        else mask[i] = kind == RELU ? v[i] > 0 : v[i] != 0;
    }
    if (!m->st && kind == MAXPOOL) m->st = out_add(m->o, name, ST_F32, 4, shape, v, sizeof(float) * n);
    else if (!m->st) m->st = out_add(m->o, name, ST_U8, kind == DROP_PATH ? 1 : 4, shape, mask, kind == DROP_PATH ? shape[0] : n);
    free(v);
    free(mask);
}

static cnn_status train_forward(plan *p, decisions *m, int pass) {
    m->pass = pass;
    memset(m->k, 0, sizeof m->k);
    if (m->o) plan_set_hook(p, record_decision, m);
    cnn_status st = plan_forward(p, true, 1 + (uint64_t)pass);
    plan_set_hook(p, NULL, NULL);
    return st ? st : m->st;
}

/* ---------- inputs ---------- */

typedef struct batch {
    st_file f;
    int n, c, h, w;
    const st_tensor *x, *y;
} batch;

static cnn_status read_batch(const char *path, batch *b) {
    CNN_TRY(st_read(path, &b->f));
    b->x = st_find(&b->f, "input");
    b->y = st_find(&b->f, "labels");
    if (!b->x || b->x->dtype != ST_F32 || b->x->ndim != 4 || !b->y || b->y->dtype != ST_I64 || b->y->ndim != 1 ||
        b->y->shape[0] != b->x->shape[0])
        return cnn_fail(CNN_ERR_FORMAT, "%s: expected F32 input [n,c,h,w] and I64 labels [n]", path);
    b->n = (int)b->x->shape[0];
    b->c = (int)b->x->shape[1];
    b->h = (int)b->x->shape[2];
    b->w = (int)b->x->shape[3];
    return CNN_OK;
}

static void feed(plan *p, const batch *b) {
    memcpy(plan_input(p), b->x->data, b->x->nbytes);
    int32_t *labels = plan_labels(p);
    for (int i = 0; i < b->n; i++) {
        int64_t v;
        memcpy(&v, (const uint8_t *)b->y->data + 8 * i, 8);
        labels[i] = (int32_t)v;
    }
}

static cnn_status meta_number(const st_file *f, const char *key, double *v) {
    const char *s = st_meta(f, key);
    char *end = NULL;
    if (s) *v = strtod(s, &end);
    if (!s || end == s || *end) return cnn_fail(CNN_ERR_FORMAT, "batch file: metadata \"%s\" missing or not a number", key);
    return CNN_OK;
}

typedef struct settings {
    model_cfg model;
    int steps;
    optim_cfg sgd;
} settings;

static cnn_status read_settings(const batch *b, settings *s) {
    double bn, dropout, classes, steps, lr, momentum, wd;
    const char *name = st_meta(&b->f, "model");
    if (!name) return cnn_fail(CNN_ERR_FORMAT, "batch file: metadata \"model\" missing");
    CNN_TRY(meta_number(&b->f, "bn", &bn));
    CNN_TRY(meta_number(&b->f, "dropout", &dropout));
    CNN_TRY(meta_number(&b->f, "classes", &classes));
    CNN_TRY(meta_number(&b->f, "steps", &steps));
    CNN_TRY(meta_number(&b->f, "lr", &lr));
    CNN_TRY(meta_number(&b->f, "momentum", &momentum));
    CNN_TRY(meta_number(&b->f, "weight_decay", &wd));
    model_defaults(&s->model);
    s->model.name = name;
    s->model.in_c = b->c;
    s->model.in_h = b->h;
    s->model.in_w = b->w;
    s->model.classes = (int)classes;
    s->model.bn = bn != 0;
    s->model.dropout = (float)dropout;
    double sd = 0, dropout_aux = -1;
    if (st_meta(&b->f, "stochastic_depth")) CNN_TRY(meta_number(&b->f, "stochastic_depth", &sd));
    if (st_meta(&b->f, "dropout_aux")) CNN_TRY(meta_number(&b->f, "dropout_aux", &dropout_aux));
    s->model.stochastic_depth = (float)sd;
    s->model.dropout_aux = (float)dropout_aux;
    const char *reg = st_meta(&b->f, "regulator"), *stages = st_meta(&b->f, "regulated_stages");
    if (reg) CNN_TRY(model_parse_regulator(reg, &s->model.regulator));
    if (stages) CNN_TRY(model_parse_stages(stages, &s->model.regulated_stages));
    s->steps = (int)steps;
    optim_defaults(&s->sgd, OPT_SGD);
    s->sgd.lr = (float)lr;
    s->sgd.momentum = (float)momentum;
    s->sgd.weight_decay = (float)wd;
    return CNN_OK;
}

/* ---------- the run ---------- */

typedef struct run {
    settings set;
    graph *g;
    plan *train, *eval;
    optimizer *opt;
} run;

static void run_free(run *r) {
    optim_free(r->opt);
    plan_free(r->eval);
    plan_free(r->train);
    graph_free(r->g);
}

static cnn_status setup(run *r, const batch *b, const char *weights) {
    CNN_TRY(read_settings(b, &r->set));
    CNN_TRY(model_build(&r->set.model, &r->g));
    graph_attach_losses(r->g, 0.0f);
    CNN_TRY(plan_create(r->g, b->n, PLAN_TRAIN, &r->train));
    CNN_TRY(plan_create(r->g, b->n, PLAN_EVAL, &r->eval));
    st_file wf;
    CNN_TRY(st_read(weights, &wf));
    cnn_status st = ckpt_load_params(&wf, weights, r->g);
    st_free(&wf);
    CNN_TRY(st);
    feed(r->train, b);
    feed(r->eval, b);
    return optim_create(r->g, &r->set.sgd, &r->opt);
}

/* The same sequence as parity.py's generate(): training forward, loss, backward, gradients, running
 * statistics; then SGD steps (forward + backward + step each); then evaluation. */
static cnn_status compute(run *r, outputs *o, decisions *m) {
    CNN_TRY(train_forward(r->train, m, 0));
    CNN_TRY(add_logits(o, "logits", r->train));
    double loss = plan_loss(r->train), main_loss = plan_main_loss(r->train);
    CNN_TRY(out_add(o, "loss", ST_F64, 0, NULL, &loss, sizeof loss));
    CNN_TRY(out_add(o, "main_loss", ST_F64, 0, NULL, &main_loss, sizeof main_loss));
    CNN_TRY(plan_backward(r->train));
    CNN_TRY(add_params(o, r->g, "grad.", GRADS));
    CNN_TRY(add_params(o, r->g, "stats.", BUFFERS));
    double *losses = calloc(r->set.steps + 1, sizeof(double));
    if (!losses) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    cnn_status st = CNN_OK;
    for (int s = 0; s < r->set.steps && !st; s++) {
        st = train_forward(r->train, m, s + 1);
        if (!st) st = plan_backward(r->train);
        losses[s] = plan_loss(r->train);
        if (!st) optim_step(r->opt, r->set.sgd.lr);
    }
    int64_t n = r->set.steps;
    if (!st) st = out_add(o, "sgd_losses", ST_F64, 1, &n, losses, sizeof(double) * n);
    free(losses);
    CNN_TRY(st);
    CNN_TRY(add_params(o, r->g, "final.", ALL));
    CNN_TRY(plan_forward(r->eval, false, 0));
    CNN_TRY(add_logits(o, "eval_logits", r->eval));
    double eval_loss = plan_loss(r->eval);
    CNN_TRY(out_add(o, "eval_loss", ST_F64, 0, NULL, &eval_loss, sizeof eval_loss));
    CNN_TRY(plan_forward(r->train, false, 0));
    return add_logits(o, "eval_logits.train_plan", r->train);
}

static cnn_status save_checkpoint(const run *r, const char *path) {
    ckpt_info info;
    memset(&info, 0, sizeof info);
    info.model = r->set.model;
    snprintf(info.name_buf, sizeof info.name_buf, "%s", r->set.model.name);
    info.model.name = info.name_buf;
    snprintf(info.dataset, sizeof info.dataset, "parity");
    return ckpt_save(path, r->g, &info, NULL, r->opt);
}

static cnn_status parity(const char *dir, const char *out, const char *ckpt, const char *masks) {
    char path[4096], weights[4096], outbuf[4096];
    snprintf(path, sizeof path, "%s/batch.safetensors", dir);
    snprintf(weights, sizeof weights, "%s/weights.safetensors", dir);
    if (!out) {
        snprintf(outbuf, sizeof outbuf, "%s/out.safetensors", dir);
        out = outbuf;
    }
    batch b = {0};
    run r = {0};
    outputs o = {st_writer_new(), NULL, 0, 0}, mo = {masks ? st_writer_new() : NULL, NULL, 0, 0};
    decisions m = {masks ? &mo : NULL, 0, {0}, CNN_OK};
    cnn_status st = o.w && (mo.w || !masks) ? read_batch(path, &b) : cnn_fail(CNN_ERR_NOMEM, "out of memory");
    if (!st) st = setup(&r, &b, weights);
    if (!st) st = compute(&r, &o, &m);
    if (!st && ckpt) st = save_checkpoint(&r, ckpt);
    if (!st) st = st_writer_save(o.w, out);
    if (!st && masks) st = st_writer_save(mo.w, masks);
    out_free(&o);
    out_free(&mo);
    run_free(&r);
    st_free(&b.f);
    return st;
}

static cnn_status eval_checkpoint(const char *ckpt, const char *batch_path, const char *out) {
    batch b = {0};
    ckpt_info info;
    graph *g = NULL;
    plan *p = NULL;
    outputs o = {st_writer_new(), NULL, 0, 0};
    cnn_status st = o.w ? read_batch(batch_path, &b) : cnn_fail(CNN_ERR_NOMEM, "out of memory");
    if (!st) st = ckpt_load_model(ckpt, &info, &g, b.n, &p);
    if (!st && (info.model.in_c != b.c || info.model.in_h != b.h || info.model.in_w != b.w))
        st = cnn_fail(CNN_ERR_SHAPE, "%s: model input %dx%dx%d, batch %dx%dx%d", ckpt, info.model.in_c, info.model.in_h,
                      info.model.in_w, b.c, b.h, b.w);
    if (!st) {
        feed(p, &b);
        st = plan_forward(p, false, 0);
    }
    if (!st) st = add_logits(&o, "eval_logits", p);
    if (!st) st = st_writer_save(o.w, out);
    if (g) ckpt_info_free(&info);
    out_free(&o);
    plan_free(p);
    graph_free(g);
    st_free(&b.f);
    return st;
}

static int usage(void) {
    fprintf(stderr, "usage: parity_run DIR [--out FILE] [--save-ckpt FILE] [--masks FILE]\n"
                    "       parity_run --eval-ckpt CKPT --batch FILE --out FILE\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *dir = NULL, *out = NULL, *save = NULL, *eval_ckpt = NULL, *batch_path = NULL, *masks = NULL;
    for (int i = 1; i < argc; i++) {
        const char **opt = !strcmp(argv[i], "--out")         ? &out
                           : !strcmp(argv[i], "--save-ckpt") ? &save
                           : !strcmp(argv[i], "--eval-ckpt") ? &eval_ckpt
                           : !strcmp(argv[i], "--batch")     ? &batch_path
                           : !strcmp(argv[i], "--masks")     ? &masks
                                                             : NULL;
        if (opt && i + 1 < argc) *opt = argv[++i];
        else if (!opt && argv[i][0] != '-' && !dir) dir = argv[i];
        else return usage();
    }
    cnn_status st;
    if (eval_ckpt) {
        if (!batch_path || !out || dir || save || masks) return usage();
        st = eval_checkpoint(eval_ckpt, batch_path, out);
    } else {
        if (!dir) return usage();
        st = parity(dir, out, save, masks);
    }
    if (st) {
        fprintf(stderr, "parity_run: %s: %s\n", cnn_status_name(st), cnn_last_error());
        return 1;
    }
    return 0;
}
