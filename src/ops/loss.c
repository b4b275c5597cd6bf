/* loss.c — softmax cross-entropy on logits (plain batch×classes) against the plan's labels,
 * averaged over the batch, with PyTorch's label smoothing: the target is
 * (1-ε)·onehot + ε/K. The gradient is weight·(softmax − target)/batch. */
#include "core/error.h"
#include "core/plan.h"
#include "ops/ops.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#define LOSS_MAX_THREADS 256

typedef struct xent_attr {
    float weight, smoothing;
    bool main;
} xent_attr;

typedef struct xent_state {
    int probs;      /* softmax saved for backward */
} xent_state;

static cnn_status xent_compile(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    xent_state *s = calloc(1, sizeof *s);
    if (!s) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    plan_set_state(p, nid, s);
    const tensor *t = graph_tensor(plan_graph(p), n->in[0]);
    s->probs = plan_request(p, nid, LIFE_SAVED, NULL, sizeof(float) * plan_batch(p) * t->c);
    return s->probs < 0 ? cnn_fail(CNN_ERR_NOMEM, "out of memory") : CNN_OK;
}

static void xent_forward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    xent_attr *a = n->attr;
    xent_state *s = plan_state(p, nid);
    int k = graph_tensor(plan_graph(p), n->in[0])->c, batch = plan_batch(p);
    const float *z = plan_val(p, n->in[0]);
    const int32_t *y = plan_labels(p);
    float *prob = plan_buf(p, s->probs);
    /* per-thread partial sums added in thread order: the same bits for the same thread count
     * (an OpenMP reduction adds them in whatever order the threads finish) */
    double part[LOSS_MAX_THREADS] = {0}, total = 0;
    int nthreads = omp_get_max_threads() < LOSS_MAX_THREADS ? omp_get_max_threads() : LOSS_MAX_THREADS;
#pragma omp parallel num_threads(nthreads)
    {
        double local = 0;
#pragma omp for schedule(static)
        for (int i = 0; i < batch; i++) {
            const float *zi = z + (size_t)i * k;
            float *pi = prob + (size_t)i * k;
            float m = zi[0];
            for (int j = 1; j < k; j++) m = zi[j] > m ? zi[j] : m;
            double sum = 0, sum_z = 0;
            for (int j = 0; j < k; j++) {
                sum += exp((double)zi[j] - m);
                sum_z += zi[j];
            }
            double lse = m + log(sum);
            for (int j = 0; j < k; j++) pi[j] = (float)exp(zi[j] - lse);
            double nll = lse - zi[y[i]];
            double smooth = lse - sum_z / k; /* mean over classes of -log p_j */
            local += (1.0 - a->smoothing) * nll + a->smoothing * smooth;
        }
        part[omp_get_thread_num()] = local;
    }
    for (int t = 0; t < nthreads; t++) total += part[t];
    plan_report_loss(p, nid, total / batch, a->weight, a->main);
}

static void xent_backward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    xent_attr *a = n->attr;
    xent_state *s = plan_state(p, nid);
    int k = graph_tensor(plan_graph(p), n->in[0])->c, batch = plan_batch(p);
    const int32_t *y = plan_labels(p);
    const float *prob = plan_buf(p, s->probs);
    float *dz = plan_grad(p, n->in[0]);
    bool acc = plan_grad_accum(p, nid, 0);
    float scale = a->weight / batch, off = a->smoothing / k;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < batch; i++)
        for (int j = 0; j < k; j++) {
            float target = off + (j == y[i] ? 1.0f - a->smoothing : 0.0f);
            float g = scale * (prob[(size_t)i * k + j] - target);
            dz[(size_t)i * k + j] = acc ? dz[(size_t)i * k + j] + g : g;
        }
}

static const op_def xent_op = {"softmax_xent", xent_compile, xent_forward, xent_backward, NULL, NULL};

int op_softmax_xent(graph *g, int logits, float weight, float label_smoothing, bool main) {
    if (!graph_ok(g) || logits < 0) return -1;
    const tensor *t = graph_tensor(g, logits);
    if (t->layout != LAYOUT_PLAIN || t->h != 1 || t->w != 1)
        return graph_fail(g, cnn_fail(CNN_ERR_SHAPE, "cross-entropy wants batch×classes logits, got %dx%dx%d", t->c,
                                      t->h, t->w));
    if (!(label_smoothing >= 0 && label_smoothing < 1))
        return graph_fail(g, cnn_fail(CNN_ERR_ARG, "label smoothing %g is not in [0, 1)", label_smoothing));
    xent_attr *a = malloc(sizeof *a);
    if (!a) return graph_fail(g, cnn_fail(CNN_ERR_NOMEM, "out of memory"));
    *a = (xent_attr){weight, label_smoothing, main};
    return graph_add_node(g, &xent_op, "loss", &logits, 1, a);
}

void graph_attach_losses(graph *g, float label_smoothing) {
    for (int i = 0; i < g->noutputs; i++) {
        graph_output *o = &g->outputs[i];
        if (o->loss_node >= 0) continue;
        float w = o->kind == OUTPUT_MAIN ? 1.0f : o->loss_weight;
        o->loss_node = op_softmax_xent(g, o->tensor, w, label_smoothing, o->kind == OUTPUT_MAIN);
    }
}
