/* dist.c — gradient buckets all-reduced during backward (see dist.h), on the collectives of mpi.c
 * or nompi.c: which node's backward completes which parameter's gradient, and buckets started
 * from the plan's hook as soon as all of theirs are complete. */
#include "dist/dist.h"
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "train/progress.h"

typedef struct bucket {
    float *v;            /* a contiguous range of the gradient arena */
    size_t n;            /* floats */
    int params, pending; /* parameters in it; those whose gradient is not final yet this step */
    int handle;          /* of its all-reduce, -1 before it starts */
} bucket;

struct dist_grads {
    plan *p;
    bucket *b;
    int nb;
    int *order, started;   /* buckets in the order their all-reduces started this step */
    int *first, *list;     /* per node: list[first[nid] .. first[nid+1]) are the buckets it completes a gradient of */
    bool overlap;
    dist_stats st;
};

static void start(dist_grads *d, int i) {
    d->b[i].handle = dist_sum_start(d->b[i].v, d->b[i].n);
    d->order[d->started++] = i;
}

static void grads_hook(plan *p, int nid, bool backward, void *ctx) {
    dist_grads *d = ctx;
    if (!backward) return;
    for (int k = d->first[nid]; k < d->first[nid + 1]; k++)
        if (--d->b[d->list[k]].pending == 0 && d->overlap) start(d, d->list[k]);
    if (d->started) dist_poll();
}

/* The node whose backward completes parameter pid's gradient: of the nodes using it, the first in
 * topological order (node ids are topological), which is the last to run backward. */
static int completing_node(const graph *g, int pid) {
    for (int i = 0; i < g->nnodes; i++)
        for (int k = 0; k < g->nodes[i].nparams; k++)
            if (g->nodes[i].params[k] == pid) return i;
    return -1;
}

/* Buckets from the last parameter back (the gradient arena follows creation order, i.e. the
 * layers' order), each closed once it holds bucket_bytes; pid_bucket gets each one's bucket. */
static cnn_status cut_buckets(dist_grads *d, size_t bucket_bytes, int *pid_bucket) {
    graph *g = plan_graph(d->p);
    float *grads = (float *)(g->arena + g->grads_off);
    size_t end = 0;
    for (int pid = g->nparams - 1; pid >= 0; pid--) {
        const param *pa = &g->params[pid];
        pid_bucket[pid] = -1;
        if (!param_trainable(pa)) continue;
        size_t hi = pa->grad_off + pa->bytes;
        if (d->nb == 0 || d->b[d->nb - 1].n * sizeof(float) >= bucket_bytes) {
            bucket *b = realloc(d->b, sizeof *b * (d->nb + 1));
            if (!b) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
            d->b = b;
            d->b[d->nb++] = (bucket){.handle = -1};
            end = hi;
        }
        bucket *b = &d->b[d->nb - 1];
        b->v = grads + pa->grad_off / sizeof(float); /* params are adjacent: extend down to this one */
        b->n = (end - pa->grad_off) / sizeof(float);
        b->params++;
        pid_bucket[pid] = d->nb - 1;
    }
    return CNN_OK;
}

static cnn_status index_nodes(dist_grads *d, const int *pid_bucket) {
    graph *g = plan_graph(d->p);
    d->first = calloc(g->nnodes + 1, sizeof(int));
    d->list = calloc(g->nparams + 1, sizeof(int));
    d->order = calloc(d->nb + 1, sizeof(int));
    if (!d->first || !d->list || !d->order) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    int *node_of = malloc(sizeof(int) * (g->nparams + 1));
    if (!node_of) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    for (int pid = 0; pid < g->nparams; pid++) {
        node_of[pid] = pid_bucket[pid] >= 0 ? completing_node(g, pid) : -1;
        if (node_of[pid] >= 0) d->first[node_of[pid] + 1]++;
    }
    for (int i = 0; i < g->nnodes; i++) d->first[i + 1] += d->first[i];
    int *fill = calloc(g->nnodes + 1, sizeof(int));
    if (!fill) {
        free(node_of);
        return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    }
    for (int pid = 0; pid < g->nparams; pid++)
        if (node_of[pid] >= 0) d->list[d->first[node_of[pid]] + fill[node_of[pid]]++] = pid_bucket[pid];
    free(fill);
    free(node_of);
    return CNN_OK;
}

cnn_status dist_grads_create(plan *p, size_t bucket_bytes, bool overlap, dist_grads **out) {
    *out = NULL;
    dist_grads *d = calloc(1, sizeof *d);
    if (!d) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    d->p = p;
    d->overlap = overlap;
    graph *g = plan_graph(p);
    int *pid_bucket = malloc(sizeof(int) * (g->nparams + 1));
    cnn_status st = pid_bucket ? cut_buckets(d, bucket_bytes, pid_bucket) : cnn_fail(CNN_ERR_NOMEM, "out of memory");
    if (!st) st = index_nodes(d, pid_bucket);
    free(pid_bucket);
    if (st) {
        dist_grads_free(d);
        return st;
    }
    for (int i = 0; i < d->nb; i++) {
        d->b[i].pending = d->b[i].params;
        d->st.bytes += d->b[i].n * sizeof(float);
    }
    d->st.buckets = d->nb;
    plan_set_hook(p, grads_hook, d);
    *out = d;
    return CNN_OK;
}

void dist_grads_finish(dist_grads *d) {
    double t0 = progress_now();
    /* buckets whose gradients no backward completed (or all of them without overlap) start now, in
     * bucket order: every rank starts the same collectives in the same order */
    for (int i = 0; i < d->nb; i++)
        if (d->b[i].handle < 0) start(d, i);
    float scale = 1.0f / (float)dist_size();
    for (int k = 0; k < d->started; k++) {
        bucket *b = &d->b[d->order[k]];
        dist_wait(b->handle);
        for (size_t j = 0; j < b->n; j++) b->v[j] *= scale;
        b->handle = -1;
        b->pending = b->params;
    }
    d->started = 0;
    d->st.wait_s += progress_now() - t0;
    d->st.steps++;
}

dist_stats dist_grads_stats(const dist_grads *d) { return d->st; }

void dist_grads_free(dist_grads *d) {
    if (!d) return;
    plan_set_hook(d->p, NULL, NULL);
    free(d->b);
    free(d->order);
    free(d->first);
    free(d->list);
    free(d);
}
