/* test_diverge.c — naming where training diverged (src/train/diverge.c) on a two-layer linear
 * network whose values are set by hand so that the place is known in advance: a NaN in the input
 * shows first in fc1's output; a NaN weight is named as such; and weights of 1e-30 and ±1e30 keep
 * the forward pass and the loss finite while fc1's weight gradient overflows to infinity in the
 * backward pass (worked out below). */
#include <float.h>
#include <math.h>
#include <string.h>
#include "core/error.h"
#include "core/plan.h"
#include "ops/ops.h"
#include "testutil.h"
#include "train/diverge.h"
#include "train/optim.h"

typedef struct net {
    graph *g;
    plan *p;
    int fc1, fc2; /* parameter ids of the weights */
} net;

/* input (2) -> fc1 (2) -> fc2 (2 logits) -> cross-entropy; batch 2; biases 0 */
static void build(net *n, const float w1[4], const float w2[4], const float x[4]) {
    n->g = graph_new();
    int h = op_linear(n->g, graph_input(n->g, 2, 1, 1), "fc1", 2, true);
    graph_set_output(n->g, op_linear(n->g, h, "fc2", 2, true), OUTPUT_MAIN, 1);
    graph_attach_losses(n->g, 0);
    CHECK_OK(plan_create(n->g, 2, PLAN_TRAIN, &n->p));
    n->fc1 = graph_find_param(n->g, "fc1.weight");
    n->fc2 = graph_find_param(n->g, "fc2.weight");
    CHECK_OK(graph_param_write(n->g, n->fc1, w1));
    CHECK_OK(graph_param_write(n->g, n->fc2, w2));
    const float zeros[2] = {0, 0};
    CHECK_OK(graph_param_write(n->g, graph_find_param(n->g, "fc1.bias"), zeros));
    CHECK_OK(graph_param_write(n->g, graph_find_param(n->g, "fc2.bias"), zeros));
    memcpy(plan_input(n->p), x, 4 * sizeof(float));
    plan_labels(n->p)[0] = plan_labels(n->p)[1] = 1;
}

static void drop(net *n) {
    plan_free(n->p);
    graph_free(n->g);
}

/* The message of diverge_report after the step, and that it says CNN_ERR_DIVERGED. */
static const char *report(net *n, bool grads) {
    cnn_status st = diverge_report(n->p, 9, grads, 41, "what was seen");
    CHECK(st == CNN_ERR_DIVERGED, "status %d", st);
    const char *msg = cnn_last_error();
    CHECK(strstr(msg, "what was seen at step 41: training diverged: "), "message %s", msg);
    return msg;
}

static void nan_input(void) {
    const float w1[4] = {1, 0, 0, 1}, w2[4] = {1, 0, 0, 1}, x[4] = {1, NAN, 2, 3};
    net n;
    build(&n, w1, w2, x);
    CHECK_OK(plan_forward(n.p, true, 9));
    CHECK(!isfinite(plan_loss(n.p)), "loss %g with a NaN input", plan_loss(n.p));
    const char *msg = report(&n, false);
    CHECK(strstr(msg, "the first non-finite value is the output of fc1 (linear)"), "NaN input: %s", msg);
    printf("NaN in the input: %s\n", msg);
    drop(&n);
}

static void nan_weight(void) {
    const float w1[4] = {1, 0, 0, 1}, w2[4] = {1, NAN, 0, 1}, x[4] = {1, 2, 2, 3};
    net n;
    build(&n, w1, w2, x);
    CHECK(diverge_bad_param(n.g, false) == n.fc2, "bad parameter %d, expected fc2.weight (%d)",
          diverge_bad_param(n.g, false), n.fc2);
    CHECK_OK(plan_forward(n.p, true, 9));
    const char *msg = report(&n, false);
    CHECK(strstr(msg, "parameter fc2.weight is not finite any more (the update of step 40 made it so)"),
          "NaN weight: %s", msg);
    printf("NaN in a weight: %s\n", msg);
    drop(&n);
}

/* x = 1e10 (both features, both samples), W1 = 1e-30 everywhere: h = 2e-20. W2 = [[1e30, 1e30],
 * [-1e30, -1e30]]: logits (4e10, -4e10), label 1, so the loss is 8e10 (finite) and dlogits =
 * (softmax - onehot) / 2 = (0.5, -0.5) per sample. dh = W2^T dlogits = (1e30, 1e30), finite;
 * dW2 = sum over the batch of dlogits h^T, about 2e-20, finite; dW1 = sum of dh x^T = 2 * 1e30 *
 * 1e10 = 2e40 > FLT_MAX: infinite. */
static void overflowing_gradient(void) {
    const float w1[4] = {1e-30f, 1e-30f, 1e-30f, 1e-30f}, w2[4] = {1e30f, 1e30f, -1e30f, -1e30f};
    const float x[4] = {1e10f, 1e10f, 1e10f, 1e10f};
    net n;
    build(&n, w1, w2, x);
    optim_cfg oc;
    optim_defaults(&oc, OPT_SGD);
    optimizer *o;
    CHECK_OK(optim_create(n.g, &oc, &o));
    CHECK_OK(plan_forward(n.p, true, 9));
    CHECK(fabs(plan_loss(n.p) - 8e10) < 1e5, "loss %g, expected 8e10", plan_loss(n.p));
    CHECK_OK(plan_backward(n.p));
    CHECK(isinf(optim_grad_norm(o)), "gradient norm %g, expected infinity", optim_grad_norm(o));
    const char *msg = report(&n, true);
    CHECK(strstr(msg, "the first non-finite gradient is that of parameter fc1.weight, from the backward of "
                      "fc1 (linear)"), "overflow in the backward: %s", msg);
    CHECK(strstr(msg, "--clip-norm"), "the hint names --clip-norm: %s", msg);
    printf("overflow in the backward: %s\n", msg);
    optim_free(o);
    drop(&n);
}

static void finite_values(void) {
    const float ok[] = {0, -0.0f, FLT_MAX, -FLT_MAX, FLT_MIN, 1e-45f};
    CHECK(diverge_finite(ok, 6), "finite values called non-finite");
    const float bad[] = {INFINITY, -INFINITY, NAN};
    for (int i = 0; i < 3; i++) {
        float v[3] = {1, bad[i], 1};
        CHECK(!diverge_finite(v, 3), "value %g not seen", bad[i]);
    }
    char buf[32];
    CHECK(!strcmp(diverge_number(-NAN, buf), "nan") && !strcmp(diverge_number(-INFINITY, buf), "-inf"), "numbers");
}

int main(void) {
    finite_values();
    nan_input();
    nan_weight();
    overflowing_gradient();
    return test_report("test_diverge");
}
