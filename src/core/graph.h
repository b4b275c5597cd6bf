/* graph.h — the static DAG a model is: tensors (values flowing between ops), nodes (op
 * applications) and parameters (named as PyTorch's state_dict keys). Builder functions in
 * src/ops and src/nn append nodes in topological order; plan.h compiles the graph for a batch. */
#ifndef CNN_CORE_GRAPH_H
#define CNN_CORE_GRAPH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "backend/dnnl_backend.h"
#include "cnn.h"

struct plan;
struct graph;
struct node;

/* What an op knows how to do. Per-plan state (oneDNN primitives, buffer handles) is created by
 * compile() and lives in the plan; the node itself holds only build-time attributes. */
typedef struct op_def {
    const char *type;
    cnn_status (*compile)(struct plan *p, int nid);
    void (*forward)(struct plan *p, int nid);
    void (*backward)(struct plan *p, int nid);   /* NULL: the op passes no gradient */
    void (*free_state)(void *state);             /* per-plan state; NULL: plain free() */
    int64_t (*macs)(const struct graph *g, const struct node *n); /* per sample, for summary */
    /* Fusion, asked before compiling: may this node take over `next`, the only consumer of its
     * output (batch norm or add absorbing the ReLU after it)? If so it records how with
     * plan_set_fused and returns true; `next` then does not run and its output shares this
     * node's buffers. */
    bool (*absorb)(struct plan *p, int nid, int next);
    /* The output may share input 0's value and gradient buffers when nothing else reads them. */
    bool inplace;
    /* Writes the output value again from inputs the op keeps for its backward and its own saved
     * buffers (batch norm: its input and batch statistics; SiLU, mul, concat: the forward again), in the
     * backward pass of training plans with graph.recompute, so that the output need not be kept for
     * its readers' backward. NULL: the output is kept. */
    void (*recompute)(struct plan *p, int nid);
    /* How this node's forward runs, in a few words ("3x3 winograd", "1x1 s2"): `cnn bench --profile`
     * gives each a row of its own. NULL: one row for the op type. */
    const char *(*kind)(const struct plan *p, int nid);
} op_def;

typedef struct tensor {
    int c, h, w;            /* per-sample shape (the batch size is a plan's business) */
    enum layout layout;
    int producer;           /* node id, -1 for the graph input */
    bool requires_grad;
} tensor;

enum param_role {
    PARAM_WEIGHT,   /* conv / linear weights: weight decay applies */
    PARAM_BIAS,     /* biases: decay can be excluded on request */
    PARAM_NORM,     /* batch-norm gamma and beta: decay can be excluded on request */
    PARAM_BUFFER,   /* running statistics: saved, not trained */
};

enum param_init {
    INIT_ZEROS,
    INIT_ONES,
    INIT_UNIFORM_FAN_IN,       /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default for conv/linear */
    INIT_KAIMING_NORMAL_OUT,   /* N(0, 2/fan_out): torchvision's ResNet convs (mode fan_out, relu) */
    INIT_KAIMING_NORMAL_IN,    /* N(0, 2/fan_in) */
    INIT_NORMAL,               /* N(0, init_arg^2) */
    INIT_UNIFORM,              /* U(-init_arg, init_arg) */
    INIT_CONSTANT,             /* init_arg everywhere (e.g. a highway gate's negative bias) */
    INIT_TRUNC_NORMAL,         /* N(0, init_arg^2) redrawn outside [-2, 2]: torch.nn.init.trunc_normal_'s default
                                  bounds, as torchvision's GoogLeNet calls it (std 0.01) */
};

typedef enum param_dtype { PDT_F32, PDT_I64 } param_dtype;

typedef struct param {
    char *name;                 /* e.g. "layer1.0.conv1.weight" */
    int ndim;
    int64_t dims[5];            /* PyTorch's shape (what checkpoints store) */
    enum param_role role;
    param_dtype dtype;
    enum param_init init;
    float init_arg;
    int64_t fan_in, fan_out;
    dnnl_memory_desc_t canon_md; /* plain layout equal in memory to PyTorch's (may be 5-D goihw) */
    dnnl_memory_desc_t md;       /* physical layout, fixed by the first compiled primitive */
    bool md_fixed;
    size_t off, bytes;           /* in the parameter arena (and the same offset in the grad arena) */
    size_t grad_off;             /* offset of the gradient in the grad arena (trainable only) */
} param;

typedef struct node {
    const op_def *op;
    char *name;                 /* scope path, e.g. "layer1.0.conv1" */
    int *in, nin;
    int *out, nout;
    int *params, nparams;
    void *attr;                 /* op-specific build-time attributes (owned, freed with free()) */
} node;

enum output_kind {
    OUTPUT_MAIN,      /* the logits that metrics and prediction read */
    OUTPUT_AUX,       /* training-only auxiliary logits (GoogLeNet): weighted loss, gone in evaluation */
};

typedef struct graph_output {
    int tensor;
    enum output_kind kind;
    float loss_weight;
    int loss_node;    /* the loss node reading these logits, -1 until one is attached */
} graph_output;

#define GRAPH_MAX_SCOPE 16
#define GRAPH_MAX_OUTPUTS 8

typedef struct graph {
    tensor *tensors; int ntensors, cap_tensors;
    node *nodes; int nnodes, cap_nodes;
    param *params; int nparams, cap_params;
    int input;                          /* tensor id of the image batch */
    graph_output outputs[GRAPH_MAX_OUTPUTS];
    int noutputs;
    char scope[256];                    /* current name prefix, "" or "layer1.0." */
    int scope_len[GRAPH_MAX_SCOPE], nscope;
    /* The parameter arena: values of every parameter, then gradients of trainable ones. */
    uint8_t *arena;
    size_t arena_bytes, grads_off, grads_bytes;
    bool finalized;
    uint64_t seed;
    int64_t version;                    /* bumped when parameter values change (optimizer step, load) */
    cnn_status error;                   /* first build error; builders become no-ops after it */
    char *model_name;
    /* Data-parallel training with synchronized batch norm: sums n doubles over every replica, in
     * place. Set before compiling a training plan; NULL: each replica's own batch statistics. */
    void (*replica_sum)(double *v, int n, void *ctx);
    void *replica_ctx;
    /* Mixed precision: convolutions compute in bf16 (their input, output gradient and weights rounded
     * to bf16, f32 accumulation, f32 outputs and weight gradients; the weights stay f32) where oneDNN
     * has bf16 kernels. Set before compiling plans (be_precision_check says whether the CPU can). */
    bool bf16;
    /* Activation memory: training plans keep no output of an op that can recompute it (op_def.recompute:
     * batch norm with its fused ReLU, SiLU, mul, concat) for its readers' backward, and write it again in
     * the backward pass instead. Same gradients, one more forward of those ops. Set before compiling. */
    bool recompute;
} graph;

graph *graph_new(void);
void graph_free(graph *g);

/* The image input of shape c×h×w (plain nchw). */
int graph_input(graph *g, int c, int h, int w);
/* Mark the logits (main) or an auxiliary training-only head with its loss weight. */
void graph_set_output(graph *g, int tensor, enum output_kind kind, float loss_weight);
int graph_main_output(const graph *g);
/* The node that alone reads tensor t (through any of its inputs), -1 if none or several. */
int graph_sole_reader(const graph *g, int t);

/* Name scopes: graph_push(g, "layer1.0") ... graph_pop(g). */
void graph_push(graph *g, const char *name);
void graph_pushf(graph *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void graph_pop(graph *g);

/* Builder plumbing used by op constructors. Return -1 once the graph is in error. */
int graph_add_tensor(graph *g, int c, int h, int w, enum layout layout);
int graph_add_node(graph *g, const op_def *op, const char *name, const int *in, int nin, void *attr);
int graph_node_output(graph *g, int nid, int c, int h, int w, enum layout layout);
int graph_add_param(graph *g, int nid, const char *leaf, int ndim, const int64_t *dims, enum param_role role,
                    enum param_init init, float init_arg);
/* Let node nid use parameter pid too (an RNN's weights at every step it is unrolled for): one
 * parameter, saved and updated once, whose gradient sums those of all its users. Returns pid. */
int graph_share_param(graph *g, int nid, int pid);
/* Record a build error (first one wins) and return -1 for chaining. */
int graph_fail(graph *g, cnn_status st);
bool graph_ok(const graph *g);

/* Totals for summaries. */
int64_t graph_param_count(const graph *g, bool trainable_only);
int64_t graph_macs(const graph *g);

/* Parameters: allocation of the arena once every layout is known (plan.c calls it), and access
 * in PyTorch's canonical layout. */
cnn_status graph_finalize(graph *g);
int graph_find_param(const graph *g, const char *name);
float *graph_param_data(const graph *g, int pid);
float *graph_param_grad(const graph *g, int pid);
bool param_trainable(const param *p);
int64_t param_numel(const param *p);
/* Convert a buffer in a parameter's physical layout to PyTorch's layout and back (padding zeroed). */
cnn_status param_to_canonical(const param *p, const void *physical, float *canonical);
cnn_status param_from_canonical(const param *p, const float *canonical, void *physical);
cnn_status graph_param_read(const graph *g, int pid, float *canonical);
cnn_status graph_param_write(graph *g, int pid, const float *canonical);
cnn_status graph_param_grad_read(const graph *g, int pid, float *canonical);
/* (Re)initialize every parameter from the seed. */
cnn_status graph_init_params(graph *g, uint64_t seed);

static inline const tensor *graph_tensor(const graph *g, int t) { return &g->tensors[t]; }
#endif
