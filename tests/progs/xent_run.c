/* xent_run.c — cnn.c's cross-entropy with label smoothing on given logits, for
 * tests/test_loss_torch.py to compare with F.cross_entropy(label_smoothing=):
 *   xent_run IN.safetensors OUT.safetensors
 * IN holds logits "x" (n×k) and int64 "labels", and the smoothing in its metadata. The logits pass
 * through a linear layer with identity weight and zero bias, so that the gradients of its weight
 * and bias (written as "grad.weight", "grad.bias", with the "loss") carry the loss's gradient. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/plan.h"
#include "ops/ops.h"
#include "train/safetensors.h"

static double meta_num(const st_file *f, const char *key) {
    const char *v = st_meta(f, key);
    return v ? strtod(v, NULL) : 0;
}

static cnn_status run_xent(const char *in, const char *out) {
    st_file f;
    CNN_TRY(st_read(in, &f));
    const st_tensor *x = st_find(&f, "x"), *y = st_find(&f, "labels");
    if (!x || !y || x->ndim != 2 || y->dtype != ST_I64) {
        st_free(&f);
        return cnn_fail(CNN_ERR_FORMAT, "%s: expects x (n×k) and int64 labels", in);
    }
    int n = (int)x->shape[0], k = (int)x->shape[1];
    graph *g = graph_new();
    int logits = op_linear(g, graph_input(g, k, 1, 1), "fc", k, true);
    graph_set_output(g, logits, OUTPUT_MAIN, 1);
    graph_attach_losses(g, (float)meta_num(&f, "smoothing"));
    plan *p = NULL;
    cnn_status st = graph_ok(g) ? plan_create(g, n, PLAN_TRAIN, &p) : g->error;
    float *eye = calloc((size_t)k * k + k, sizeof(float)), *gw = malloc(sizeof(float) * ((size_t)k * k + k));
    if (!st && (!eye || !gw)) st = cnn_fail(CNN_ERR_NOMEM, "out of memory");
    for (int i = 0; !st && i < k; i++) eye[(size_t)i * k + i] = 1;
    if (!st) st = graph_param_write(g, graph_find_param(g, "fc.weight"), eye);
    if (!st) st = graph_param_write(g, graph_find_param(g, "fc.bias"), eye + (size_t)k * k);
    if (!st) {
        memcpy(plan_input(p), x->data, sizeof(float) * n * k);
        for (int i = 0; i < n; i++) plan_labels(p)[i] = (int32_t)((const int64_t *)y->data)[i];
        st = plan_forward(p, true, 0);
    }
    if (!st) st = plan_backward(p);
    if (!st) st = graph_param_grad_read(g, graph_find_param(g, "fc.weight"), gw);
    if (!st) st = graph_param_grad_read(g, graph_find_param(g, "fc.bias"), gw + (size_t)k * k);
    double loss = p ? plan_loss(p) : 0;
    st_writer *w = st_writer_new();
    int64_t wd[2] = {k, k}, bd[1] = {k};
    if (!st) st = st_writer_add(w, "loss", ST_F64, 0, NULL, &loss);
    if (!st) st = st_writer_add(w, "grad.weight", ST_F32, 2, wd, gw);
    if (!st) st = st_writer_add(w, "grad.bias", ST_F32, 1, bd, gw + (size_t)k * k);
    if (!st) st = st_writer_save(w, out);
    st_writer_free(w);
    free(eye);
    free(gw);
    plan_free(p);
    graph_free(g);
    st_free(&f);
    return st;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: xent_run IN.safetensors OUT.safetensors\n");
        return 2;
    }
    cnn_status st = run_xent(argv[1], argv[2]);
    if (st) fprintf(stderr, "xent_run: %s\n", cnn_last_error());
    return st ? 1 : 0;
}
