/* plan.h — a graph compiled for one batch size and mode. Compiling does everything once: which
 * nodes run, tensor layouts, oneDNN primitives, liveness-planned buffers in one arena, the
 * scratchpad; then forward/backward do no allocation. Ops talk to the plan through the calls
 * below: at compile time they create primitives and request buffers, at run time they fetch
 * memory and run primitives. */
#ifndef CNN_CORE_PLAN_H
#define CNN_CORE_PLAN_H
#include "core/graph.h"

enum plan_mode { PLAN_EVAL = 0, PLAN_TRAIN = 1 };

enum buf_life {
    LIFE_SAVED,    /* written in forward, read in backward (training) */
    LIFE_FWD,      /* scratch of one op's forward */
    LIFE_BWD,      /* scratch of one op's backward */
    LIFE_PERSIST,  /* whole life of the plan */
};

typedef struct plan plan;

cnn_status plan_create(graph *g, int batch, enum plan_mode mode, plan **out);
void plan_free(plan *p);

/* Inputs: the image batch (plain nchw, batch*c*h*w floats) and labels. */
float *plan_input(plan *p);
int32_t *plan_labels(plan *p);
/* Forward pass; training=true uses batch statistics, dropout etc. (train plans only). */
cnn_status plan_forward(plan *p, bool training, uint64_t step_key);
/* Backward pass from the attached losses (train plans only); fills the parameter gradients. */
cnn_status plan_backward(plan *p);
/* Read a tensor's value (or gradient) in canonical nchw order: batch*c*h*w floats. A value that the last
 * forward did not write (plan_value_unwritten) is refused. */
cnn_status plan_read(plan *p, int tid, bool grad, float *nchw);
/* Logits of the main output, plain batch×classes. */
const float *plan_logits(plan *p);
/* The weighted loss of the last forward (sum over attached losses), and the main loss alone. */
double plan_loss(const plan *p);
double plan_main_loss(const plan *p);
size_t plan_arena_bytes(const plan *p);
/* A hook called after every op's forward (backward=false: its outputs are fresh; also after an output
 * is recomputed in the backward pass, graph.recompute) and backward (backward=true: the gradients of its
 * inputs are final). For checks: NaN tracing, tests, the profile. */
typedef void (*plan_hook)(plan *p, int nid, bool backward, void *ctx);
void plan_set_hook(plan *p, plan_hook hook, void *ctx);
/* Fill every activation buffer with NaN (the input too: write it afterwards). A debugging and
 * test aid: an op that reads what nobody wrote, or leaves padding unwritten, shows at once. */
void plan_poison(plan *p);
int plan_batch(const plan *p);
graph *plan_graph(const plan *p);

/* ---- fusion (see op_def.absorb) ---- */
enum { FUSED_RELU = 1, FUSED_BN = 2, FUSED_SILU = 4, FUSED_ADD = 8 };
void plan_set_fused(plan *p, int nid, unsigned what);
unsigned plan_fused(const plan *p, int nid);
/* The activation fused into node nid as op_def.kind words ("+ relu", "+ silu"), or NULL: the kind of ops
 * whose fusion is all there is to say of how they run (batch norm, add). */
const char *plan_fused_activation(const plan *p, int nid);
/* The node of the given op type that node nid absorbed, or -1. */
int plan_absorbed(const plan *p, int nid, const char *type);
/* For node nid absorbing `next`, an addition of its output and another tensor t (evaluation plans):
 * if t's value may be overwritten when nid runs (t is made before it, nothing but `next` reads t after
 * it, t is neither the graph's input nor an output, same layout as the output), nid's output takes
 * t's buffer, so that it holds t when nid starts; returns whether it does. */
bool plan_output_over(plan *p, int nid, int next);

/* The environment's A/B switches (CNN_THP here; CNN_WINOGRAD, CNN_OWN_SILU, CNN_NHWC16, CNN_CONV16, CNN_CONV_S2 in
 * conv.c): on unless set to 0. */
bool plan_knob_enabled(const char *name);

/* ---- for ops, at compile time ---- */
bool plan_is_train(const plan *p);                 /* the plan has a backward pass */
bool plan_training_pass(const plan *p);            /* the current forward is in training mode */
const dnnl_memory_desc_t *plan_md(const plan *p, int tid);
void *plan_state(const plan *p, int nid);
void plan_set_state(plan *p, int nid, void *state);
void plan_keep_input(plan *p, int nid, int slot);
void plan_keep_output(plan *p, int nid, int slot);
/* This op's backward overwrites input gradients: accumulating slots get a temporary. */
void plan_grad_overwrites(plan *p, int nid);
bool plan_needs_grad(const plan *p, int tid);
/* At run time: whether this forward left tensor tid's value unwritten (its only reader computes it from the
 * producer's inputs itself: batch norm leaving its normalization to the addition after it), for plan_read. */
void plan_value_unwritten(plan *p, int tid, bool unwritten);
int plan_request(plan *p, int nid, enum buf_life life, const dnnl_memory_desc_t *md, size_t bytes);
/* Create a primitive from a descriptor made with be_attr() (user scratchpad). Returns a handle. */
int plan_prim(plan *p, const_dnnl_primitive_desc_t pd, cnn_status *st);
/* Use parameter k of node nid in layout `want`: fixes the layout on first use; otherwise, if it
 * differs, a view kept in `want` layout (reordered when parameters change). view = -1: direct. */
cnn_status plan_param_use(plan *p, int nid, int k, const dnnl_memory_desc_t *want, int *view);
/* Same for the gradient the op writes in layout `want`. */
cnn_status plan_param_grad_use(plan *p, int nid, int k, const dnnl_memory_desc_t *want, int *view);
/* Use only a window of parameter k (its value, or with grad its gradient): the block at `offset`
 * (per dimension of PyTorch's shape) with the dimensions of `want`, in layout `want`; always a
 * view. For a recurrent cell's first step, which reads part of the weights that later steps read
 * whole. The parameter must keep PyTorch's layout; the gradient outside a first writer's window is
 * zeroed. */
cnn_status plan_param_window_use(plan *p, int nid, int k, const int64_t *offset, const dnnl_memory_desc_t *want,
                                 bool grad, int *view);

/* ---- for ops, at run time ---- */
dnnl_memory_t plan_val_mem(plan *p, int tid);
float *plan_val(plan *p, int tid);
dnnl_memory_t plan_grad_mem(plan *p, int tid);
float *plan_grad(plan *p, int tid);
dnnl_memory_t plan_buf_mem(plan *p, int h);
void *plan_buf(plan *p, int h);
void plan_run(plan *p, int prim, int nargs, dnnl_exec_arg_t *args);
uint64_t plan_step_key(const plan *p);
/* Input gradients: true if this slot adds to a gradient another consumer already wrote. */
bool plan_grad_accum(const plan *p, int nid, int slot);
/* For ops that overwrite: where to write slot's gradient, and the call that folds it in. */
dnnl_memory_t plan_grad_in_begin(plan *p, int nid, int slot);
float *plan_grad_in_ptr(plan *p, int nid, int slot);
void plan_grad_in_end(plan *p, int nid, int slot);
dnnl_memory_t plan_param_mem(plan *p, int nid, int k, int view);
float *plan_param_ptr(plan *p, int nid, int k);
dnnl_memory_t plan_param_grad_begin(plan *p, int nid, int k, int view);
float *plan_param_grad_ptr(plan *p, int nid, int k);
void plan_param_grad_end(plan *p, int nid, int k, int view);
/* Losses report their value here during forward. */
void plan_report_loss(plan *p, int nid, double value, float weight, bool main);
#endif
