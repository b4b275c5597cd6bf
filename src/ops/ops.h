/* ops.h — the builder functions of every op: each appends a node to the graph and returns the
 * id of its output tensor (-1 once the graph is in error). Each op lives in src/ops/<name>.c
 * with its forward and backward, and is tested in tests/test_<name>.c or test_ops_gradcheck.c. */
#ifndef CNN_OPS_H
#define CNN_OPS_H
#include "core/graph.h"

typedef struct conv_cfg {
    int out_c, k, stride, pad, dilation, groups;
    bool bias;
    enum param_init init;      /* weight init (bias, when present, is PyTorch's default) */
} conv_cfg;

/* conv2d: square kernel k, stride, zero padding pad, dilation, groups (groups == in_c: depthwise). */
int op_conv2d(graph *g, int x, const char *name, const conv_cfg *cfg);
/* Weights that several convolutions share (a recurrent cell's, read at every step): the full
 * weight out_c × in_c × k × k and, if the convolutions have one, bias out_c. The first
 * op_conv2d_shared creates them with its cfg's kernel, bias and init; the others reuse them. */
typedef struct conv_shared {
    int out_c, in_c;
    int weight, bias;          /* parameter ids; -1 before the first use (set both to -1) */
} conv_shared;
/* A convolution with the weights of w, or with a window of them: rows [row0, row0 + cfg->out_c)
 * and input channels [0, channels of x), for a step that knows the rest of its input is zero.
 * Gradients of every user add up; groups must be 1. */
int op_conv2d_shared(graph *g, int x, const char *name, const conv_cfg *cfg, conv_shared *w, int row0);
/* Convenience: k×k conv, stride s, padding k/2, no bias, torchvision's init (kaiming normal, fan_out). */
int op_conv(graph *g, int x, const char *name, int out_c, int k, int stride);

/* Batch norm: training uses batch statistics and updates running ones (momentum 0.1, unbiased
 * variance, as PyTorch); evaluation uses the running statistics. */
int op_batchnorm(graph *g, int x, const char *name);
int op_batchnorm_ex(graph *g, int x, const char *name, float eps, float momentum);
/* Evaluation-mode batch norm as y = scale·x + shift per channel (for folding into a convolution). */
struct plan;
void op_batchnorm_fold(struct plan *p, int nid, float *scale, float *shift);
/* In training, whether convolution nid computes, in each training forward, its output's per-channel sums and
 * sums of squares into sums (2c doubles: the sums, then the squares) for `reader`, its output's only reader
 * (the batch norm after it, which then skips its own passes over the output for its statistics); false where
 * it cannot (oneDNN's kernels). */
bool op_conv_output_sums(struct plan *p, int nid, int reader, double *sums);
/* Batch norm nid whose statistics a convolution gives, and whose output only the residual addition `add` reads,
 * may leave its normalization to that addition: op_add_normalizes(p, add, nid) asks it at compile time (true:
 * it will); then in each training forward the batch norm writes no output, and op_batchnorm_deferred gives
 * the addition the per-channel mean, scale and shift to apply to the batch norm's input (false: it wrote its
 * output as usual, as in evaluation passes). */
bool op_add_normalizes(struct plan *p, int add, int bn);
bool op_batchnorm_deferred(struct plan *p, int nid, const float **mean, const float **scale, const float **shift);

int op_relu(graph *g, int x);
int op_sigmoid(graph *g, int x);
int op_tanh(graph *g, int x);
int op_silu(graph *g, int x);
/* relu6(x + 3) / 6, GhostNet's squeeze-excitation gate (oneDNN 2.6 has no hard sigmoid). */
int op_hard_sigmoid(graph *g, int x);

/* Pools. ceil_mode as PyTorch's. Average pooling counts padding like PyTorch's default. */
int op_maxpool(graph *g, int x, int k, int stride, int pad, bool ceil_mode);
int op_avgpool(graph *g, int x, int k, int stride, int pad, bool ceil_mode);
int op_global_avgpool(graph *g, int x);
/* Adaptive average pooling to oh×ow as PyTorch's AdaptiveAvgPool2d (bins may overlap or repeat
 * cells when the input is smaller); the identity when the input already is oh×ow. */
int op_adaptive_avgpool(graph *g, int x, int oh, int ow);

/* Linear (fully connected) over the flattened c×h×w input; output is plain batch×out. */
int op_linear(graph *g, int x, const char *name, int out, bool bias);

/* Dropout: inverted scaling 1/(1-p) in training, identity in evaluation. */
int op_dropout(graph *g, int x, float p);

/* Stochastic depth on a residual branch: whole samples dropped with probability p in training,
 * survivors scaled by 1/(1-p) (torchvision's StochasticDepth, mode "row"); identity in evaluation. */
int op_drop_path(graph *g, int x, float p);

int op_add(graph *g, int a, int b);
/* Elementwise product; b may also be c×1×1 (broadcast over space, as SE's channel weights). */
int op_mul(graph *g, int a, int b);
/* a + t·(b − a) elementwise, all three of one shape (torch.lerp; the highway block's gated mix). */
int op_lerp(graph *g, int a, int b, int t);
int op_concat(graph *g, const int *xs, int n);
/* Channels [c0, c1) of x. */
int op_slice(graph *g, int x, int c0, int c1);
/* The same values in the blocked layout (no-op when x already is). */
int op_to_blocked(graph *g, int x);

/* Recurrent cells' gate math (ConvLSTM, ConvGRU; src/nn/convrnn.h has the equations), on gate
 * pre-activations computed by convolutions. op_lstm_cell: gates f, i, o, g (4·hidden channels) and
 * c_prev, or i, o, g (3·hidden) and c_prev = -1 for a zero state; returns h, and the cell state in
 * *c_out unless c_out is NULL (a last step). op_gru_reset: r ⊙ h_prev with r = σ(gates[0, hidden)),
 * gates r, z (2·hidden). op_gru_update: (1 − z) ⊙ h_prev + z ⊙ tanh(cand) with z = σ of the last
 * hidden channels of gates (r, z; or z alone and h_prev = -1 for a zero state). */
int op_lstm_cell(graph *g, int gates, int c_prev, int *c_out);
int op_gru_reset(graph *g, int gates, int h_prev);
int op_gru_update(graph *g, int gates, int cand, int h_prev);

/* Softmax cross-entropy on logits (plain batch×classes) against the plan's labels, mean over
 * the batch; label_smoothing as PyTorch's CrossEntropyLoss. Returns the node id. */
int op_softmax_xent(graph *g, int logits, float weight, float label_smoothing, bool main);
/* Attach a cross-entropy loss to every graph output (main weight 1, aux heads their weight). */
void graph_attach_losses(graph *g, float label_smoothing);

/* shared by op files */
int op_in_channels(const graph *g, int x);
#endif
