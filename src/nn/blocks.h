/* blocks.h — reusable building blocks shared by model families: conv+BN(+ReLU) units, the residual
 * blocks (basic, bottleneck, pre-activation, highway), squeeze-and-excitation, and a
 * Sequential-style index counter for PyTorch-compatible names. */
#ifndef CNN_NN_BLOCKS_H
#define CNN_NN_BLOCKS_H
#include "core/graph.h"

/* conv (k×k, stride, padding k/2, no bias) → BN [→ ReLU], named "<conv>" and "<bn>". */
int nn_conv_bn(graph *g, int x, const char *conv, const char *bn, int out_c, int k, int stride, bool relu);

/* What a residual block does to its branch before the sum: squeeze-and-excitation with this
 * reduction, named "se.fc1"/"se.fc2" (0: none), then stochastic depth with this drop probability
 * (0: none). NULL means neither. */
typedef struct nn_res_opts {
    int se_reduction;
    float drop_path;
} nn_res_opts;

/* The residual path of a block: x itself, or where the shape changes a 1×1 conv (stride) + BN
 * projection named "downsample.0/1" (torchvision's names). */
int nn_shortcut(graph *g, int x, int out_c, int stride);

/* The basic residual block of He et al.: conv3x3(stride)-BN-ReLU-conv3x3-BN, plus the input or
 * a 1×1 conv + BN projection ("downsample.0/1") when shape changes, then ReLU. residual=false
 * gives the plain block (no shortcut) for the plain-vs-residual experiments. */
int nn_basic_block(graph *g, int x, int out_c, int stride, bool residual, const nn_res_opts *o);

/* torchvision's Bottleneck (ResNet-50 v1.5): conv1 1×1 to width, conv2 3×3 with the stride and
 * `groups`, conv3 1×1 to 4·planes, each with BN (ReLU after the first two); projection shortcut
 * "downsample.0/1" when shape changes; ReLU after the sum. width = planes·base_width/64·groups
 * (64 and 1 for ResNet-50; ResNeXt-50 32×4d: 4 and 32; Wide ResNet-50-2: 128 and 1). */
int nn_bottleneck(graph *g, int x, int planes, int stride, int groups, int base_width, const nn_res_opts *o);

/* The pre-activation block (He et al. 2016, "Identity mappings"): a = ReLU(bn1(x)), then conv1
 * 3×3 (stride), bn2, ReLU, conv2 3×3; shortcut x, or a 1×1 conv "downsample.0" of a when shape
 * changes; nothing after the sum. */
int nn_preact_block(graph *g, int x, int out_c, int stride, const nn_res_opts *o);

/* A gated (highway) version of the basic block: F = the basic block's branch, carry = x or its
 * conv + BN projection, T = sigmoid(gate(x)) with gate a 1×1 conv with bias (stride as the
 * block) whose bias starts at gate_bias; output ReLU(F·T + carry·(1 − T)). */
int nn_highway_block(graph *g, int x, int out_c, int stride, float gate_bias);

/* Squeeze-and-excitation (Hu et al.), as torchvision's SqueezeExcitation: global average pool,
 * 1×1 conv (with bias) to `squeeze` channels named fc1, activation, 1×1 conv back named fc2, gate,
 * then x times the per-channel gate. act/gate: op builders such as op_relu/op_silu and op_sigmoid. */
typedef int (*nn_act)(graph *g, int x);
int nn_se(graph *g, int x, int squeeze, nn_act act, nn_act gate, const char *fc1, const char *fc2);

/* Stochastic depth's linear rule (Huang et al.): the drop probability of block i of n rises
 * from 0 at the first block to `last` at the last. */
float nn_drop_rate(float last, int i, int n);

/* Give parameter `leaf` ("weight", "bias") of the op that produced tensor t another initialization
 * (VGG's zero conv biases and N(0, 0.01) classifier, a highway gate's bias). */
void nn_param_init(graph *g, int t, const char *leaf, enum param_init init, float arg);

/* nn.Sequential naming: each layer takes the next index, named layers get "<scope>.<index>". */
typedef struct nn_seq {
    int next;
} nn_seq;
const char *nn_seq_name(nn_seq *s, char *buf, size_t size);   /* index as a name, then advance */
void nn_seq_skip(nn_seq *s);                                    /* a parameterless layer */
#endif
