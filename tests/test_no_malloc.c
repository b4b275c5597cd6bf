/* test_no_malloc.c — cnn.c allocates nothing during a training step (forward, backward, optimizer
 * update) or an evaluation step. malloc and friends are interposed for the whole process and
 * watched during steps taken after warm-up; so is dnnl_primitive_execute, because oneDNN 2.6
 * allocates inside it whatever we do: a small map of the arguments on every call through its C
 * API, and the packing buffers of its GEMM-based inner product; so is dnnl_sgemm (conv.c's backward
 * weights on small maps), which allocates its packing buffers too. Those are counted and reported;
 * any allocation outside oneDNN's execute fails the test. Under AddressSanitizer (CNN_SANITIZE), which
 * owns malloc, the counting goes through the sanitizer's allocation hooks instead. */
#include <dlfcn.h>
#include <dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include "backend/dnnl_backend.h"
#include "core/plan.h"
#include "models/models.h"
#include "ops/ops.h"
#include "testutil.h"
#include "train/optim.h"

static volatile int watching, in_onednn;
static volatile long ours, onednn, largest;

static void count(size_t n) {
    if (!watching) return;
    if (in_onednn) {
        __atomic_add_fetch(&onednn, 1, __ATOMIC_RELAXED);
        if ((long)n > largest) largest = (long)n;
    } else {
        __atomic_add_fetch(&ours, 1, __ATOMIC_RELAXED);
    }
}
#if defined(__has_feature) /* clang */
#if __has_feature(address_sanitizer)
#define __SANITIZE_ADDRESS__ 1 /* as gcc says it */
#endif
#endif
#ifdef __SANITIZE_ADDRESS__
int __sanitizer_install_malloc_and_free_hooks(void (*on_malloc)(const volatile void *, size_t),
                                              void (*on_free)(const volatile void *));
static void on_malloc(const volatile void *p, size_t n) { count(n); }
static void on_free(const volatile void *p) {}
static void install_counting(void) { __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free); }
#else
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

void *malloc(size_t n) { count(n); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { count(a * b); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { count(n); return __libc_realloc(p, n); }
void *aligned_alloc(size_t a, size_t n) { count(n); return __libc_memalign(a, n); }
int posix_memalign(void **p, size_t a, size_t n) {
    count(n);
    *p = __libc_memalign(a, n);
    return *p ? 0 : 12;
}
void free(void *p) { __libc_free(p); }

static void install_counting(void) {}
#endif

typedef dnnl_status_t (*execute_fn)(const_dnnl_primitive_t, dnnl_stream_t, int, const dnnl_exec_arg_t *);
dnnl_status_t dnnl_primitive_execute(const_dnnl_primitive_t prim, dnnl_stream_t stream, int nargs,
                                     const dnnl_exec_arg_t *args) {
    static execute_fn real;
    if (!real) real = (execute_fn)dlsym(RTLD_NEXT, "dnnl_primitive_execute");
    in_onednn = 1;
    dnnl_status_t s = real(prim, stream, nargs, args);
    in_onednn = 0;
    return s;
}

typedef dnnl_status_t (*sgemm_fn)(char, char, dnnl_dim_t, dnnl_dim_t, dnnl_dim_t, float, const float *, dnnl_dim_t,
                                  const float *, dnnl_dim_t, float, float *, dnnl_dim_t);
dnnl_status_t dnnl_sgemm(char ta, char tb, dnnl_dim_t m, dnnl_dim_t n, dnnl_dim_t k, float alpha, const float *a,
                         dnnl_dim_t lda, const float *b, dnnl_dim_t ldb, float beta, float *c, dnnl_dim_t ldc) {
    static sgemm_fn real;
    if (!real) real = (sgemm_fn)dlsym(RTLD_NEXT, "dnnl_sgemm");
    in_onednn = 1;
    dnnl_status_t s = real(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    in_onednn = 0;
    return s;
}

/* side: the input's (0: the model's default); bf16: convolutions in bf16 (graph.bf16); recompute: outputs
 * written again in the backward pass (graph.recompute) */
static void check_model(const char *name, model_regulator regulator, int side, bool bf16, bool recompute) {
    model_cfg m;
    model_defaults(&m);
    m.name = name;
    m.regulator = regulator;
    m.in_h = m.in_w = side;
    m.in_c = side ? 3 : 0;
    m.bn = true;
    graph *g;
    CHECK_OK(model_build(&m, &g));
    graph_attach_losses(g, 0.1f);
    g->bf16 = bf16;
    g->recompute = recompute;
    plan *p, *e;
    CHECK_OK(plan_create(g, 16, PLAN_TRAIN, &p));
    CHECK_OK(plan_create(g, 16, PLAN_EVAL, &e));
    optim_cfg oc;
    optim_defaults(&oc, OPT_ADAM);
    optimizer *o;
    CHECK_OK(optim_create(g, &oc, &o));
    size_t n = (size_t)16 * m.in_c * m.in_h * m.in_w;
    for (size_t i = 0; i < n; i++) plan_input(p)[i] = plan_input(e)[i] = (float)(i % 13) / 13.0f;
    for (int i = 0; i < 16; i++) plan_labels(p)[i] = plan_labels(e)[i] = i % m.classes;
    ours = onednn = largest = 0;
    for (int step = 0; step < 5; step++) {
        watching = step >= 2;
        CHECK_OK(plan_forward(p, true, (uint64_t)step));
        CHECK_OK(plan_backward(p));
        optim_step(o, 1e-3f);
        CHECK_OK(plan_forward(e, false, 0));
    }
    watching = 0;
    CHECK(ours == 0, "%s: %ld allocations by cnn.c during steps", name, ours);
    printf("%s%s%s: 3 steps after warm-up: %ld allocations by cnn.c; inside oneDNN's execute: %ld (largest %ld bytes)\n",
           name, bf16 ? " (bf16)" : "", recompute ? " (recompute)" : "", ours, onednn, largest);
    optim_free(o);
    plan_free(e);
    plan_free(p);
    graph_free(g);
}

int main(void) {
    install_counting();
    check_model("convnet", REGULATOR_DEFAULT, 0, false, false);
    check_model("resnet20", REGULATOR_DEFAULT, 0, false, false);
    /* parameter windows, shared weights, fused cell ops; a small input keeps it quick */
    check_model("regnet20", REGULATOR_CONVLSTM, 16, false, false);
    check_model("regnet20", REGULATOR_CONVGRU, 16, false, false);
    check_model("efficientnet_b0", REGULATOR_DEFAULT, 32, false, true); /* recomputed chains: planned too */
    if (be_precision_check("bf16", NULL) == CNN_OK) { /* bf16 copies and weight views: planned too */
        check_model("resnet20", REGULATOR_DEFAULT, 0, true, false);
        check_model("regnet20", REGULATOR_CONVLSTM, 16, true, false);
    }
    return test_report("test_no_malloc");
}
