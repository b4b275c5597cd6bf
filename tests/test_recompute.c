/* test_recompute.c — graph.recompute (`--recompute`): training plans that write batch norm outputs
 * again in the backward pass instead of keeping them give the gradients of plans that keep them,
 * bit for bit (the oracle: the keeping plan, itself checked against PyTorch by test_parity_zoo and
 * against finite differences by test_ops_gradcheck), over two steps with an update between, and
 * need less activation memory where a batch norm's output feeds a layer that keeps its input for its
 * backward (a convolution, SiLU); the TP ConvNet's feed max pools, which keep only their workspace:
 * nothing to save there, and the plans are the same size. In bf16 (where the CPU has it) convolutions
 * keep bf16 copies of their inputs instead: nothing to save on resnet20, SiLU's and SE's on EfficientNet. The recomputing plan's buffers start as NaN (plan_poison), so that a
 * backward reading a value nobody wrote again shows in its gradients. */
#include <string.h>
#include "backend/dnnl_backend.h"
#include "core/error.h"
#include "core/plan.h"
#include "models/models.h"
#include "ops/ops.h"
#include "testutil.h"
#include "train/optim.h"

enum { BATCH = 4, STEPS = 2 };

typedef struct run {
    graph *g;
    plan *p;
    optimizer *o;
} run;

/* Synchronized batch norm over one replica: the statistics cnn.c computes itself (batchnorm.c). */
static void one_replica(double *v, int n, void *ctx) { (void)v, (void)n, (void)ctx; }

static bool bf16; /* convolutions in bf16 (graph.bf16): they keep bf16 copies, not their f32 inputs */

static void open_run(run *r, const model_cfg *m, bool recompute, bool sync) {
    model_cfg c = *m;
    CHECK_OK(model_build(&c, &r->g));
    graph_attach_losses(r->g, 0);
    r->g->recompute = recompute;
    r->g->bf16 = bf16;
    if (sync) r->g->replica_sum = one_replica;
    CHECK_OK(graph_ok(r->g) ? plan_create(r->g, BATCH, PLAN_TRAIN, &r->p) : r->g->error);
    optim_cfg oc;
    optim_defaults(&oc, OPT_SGD);
    CHECK_OK(optim_create(r->g, &oc, &r->o));
}

static void close_run(run *r) {
    optim_free(r->o);
    plan_free(r->p);
    graph_free(r->g);
}

static const float *grads(const graph *g) { return (const float *)(g->arena + g->grads_off); }

/* saves: whether recomputing saves activation memory (see above) */
static void check_model(const char *name, int c, int side, bool sync, bool saves) {
    model_cfg m;
    model_defaults(&m);
    m.name = name;
    m.bn = true;
    m.in_c = c;
    m.in_h = m.in_w = side;
    if (!strcmp(name, "regnet20")) m.regulator = REGULATOR_CONVLSTM;
    run keep, again;
    open_run(&keep, &m, false, sync);
    open_run(&again, &m, true, sync);
    if (!keep.p || !again.p || !keep.o || !again.o) return;
    CHECK(keep.g->grads_bytes == again.g->grads_bytes, "%s: gradient arenas differ", name);
    size_t n = (size_t)BATCH * c * side * side;
    for (int step = 0; step < STEPS; step++) {
        plan_poison(again.p);
        fill_uniform(plan_input(keep.p), (int64_t)n, 7 + step, -1, 1);
        memcpy(plan_input(again.p), plan_input(keep.p), n * sizeof(float));
        for (int i = 0; i < BATCH; i++) plan_labels(keep.p)[i] = plan_labels(again.p)[i] = (i * 3 + step) % 10;
        CHECK_OK(plan_forward(keep.p, true, (uint64_t)step));
        CHECK_OK(plan_backward(keep.p));
        CHECK_OK(plan_forward(again.p, true, (uint64_t)step));
        CHECK_OK(plan_backward(again.p));
        char what[128]; /* equal to the bit: no tolerance (a NaN fails too) */
        snprintf(what, sizeof what, "%s%s%s step %d: gradients", name, sync ? " (sync)" : "", bf16 ? " (bf16)" : "", step);
        close_arrays(what, grads(keep.g), grads(again.g), (int64_t)(keep.g->grads_bytes / sizeof(float)), 0, 0);
        CHECK(plan_loss(keep.p) == plan_loss(again.p), "%s step %d: loss %.9g against %.9g", name, step,
              plan_loss(again.p), plan_loss(keep.p));
        optim_step(keep.o, 0.05f);
        optim_step(again.o, 0.05f);
    }
    size_t a = plan_arena_bytes(keep.p), b = plan_arena_bytes(again.p);
    CHECK(saves ? b < a : b == a, "%s: activations %zu bytes recomputing, %zu keeping", name, b, a);
    printf("%s%s%s: gradients equal over %d steps; activations %.2f MB keeping, %.2f MB recomputing (%.0f%%)\n", name,
           sync ? " (sync batch norm)" : "", bf16 ? " (bf16)" : "", STEPS, a / 1048576.0, b / 1048576.0, 100.0 * b / a);
    close_run(&keep);
    close_run(&again);
}

int main(void) {
    check_model("convnet", 1, 28, false, false);
    check_model("resnet20", 3, 32, false, true);
    check_model("resnet20", 3, 32, true, true);
    check_model("efficientnet_b0", 3, 32, false, true); /* batch norm then SiLU, SE, stochastic depth */
    check_model("googlenet", 1, 28, false, true);       /* concatenated branches, auxiliary heads */
    check_model("regnet20", 3, 16, false, true);        /* ConvLSTM cells with batch norm inside */
    if (be_precision_check("bf16", NULL) == CNN_OK) {
        bf16 = true;
        check_model("resnet20", 3, 32, false, false); /* its batch norm outputs are read by convolutions only */
        check_model("efficientnet_b0", 3, 32, false, true);
    } else {
        cnn_clear_error();
    }
    return test_report("test_recompute");
}
