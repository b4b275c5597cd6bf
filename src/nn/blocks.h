/* blocks.h — reusable building blocks of the model families: conv+BN+activation units, the
 * residual blocks (basic, bottleneck, pre-activation, highway), squeeze-and-excitation, Inception
 * (inception.c), MBConv (mbconv.c), Ghost modules and bottlenecks (ghost.c), torchvision-style
 * initialization, and a Sequential-style index counter for PyTorch-compatible names. */
#ifndef CNN_NN_BLOCKS_H
#define CNN_NN_BLOCKS_H
#include "core/graph.h"
#include "ops/ops.h"

/* An activation: an op builder such as op_relu, op_silu, op_sigmoid, op_hard_sigmoid. */
typedef int (*nn_act)(graph *g, int x);

/* conv (cfg) → BN (eps, momentum 0.1) → act (NULL: none), named "<conv>" and "<bn>": torchvision's
 * Conv2dNormActivation and GoogLeNet's BasicConv2d. */
int nn_conv_norm_act(graph *g, int x, const char *conv, const char *bn, const conv_cfg *cfg, float eps, nn_act act);

/* conv (k×k, stride, padding k/2, no bias) → BN [→ ReLU], named "<conv>" and "<bn>". */
int nn_conv_bn(graph *g, int x, const char *conv, const char *bn, int out_c, int k, int stride, bool relu);

/* What a residual block does to its branch before the sum: squeeze-and-excitation with this
 * reduction, named "se.fc1"/"se.fc2" (0: none), then stochastic depth with this drop probability
 * (0: none). NULL means neither. */
typedef struct nn_res_opts {
    int se_reduction;
    float drop_path;
} nn_res_opts;

/* The end of a residual block: branch [→ SE] [→ drop path] + shortcut, as o says. */
int nn_res_merge(graph *g, int branch, int shortcut, const nn_res_opts *o);

/* The shortcut of a residual block producing out_c channels at `stride`: x itself, or a 1×1 conv
 * (+ BN when bn) projection named "downsample.0" (".1") when the shape changes, as torchvision's. */
int nn_shortcut(graph *g, int x, int out_c, int stride, bool bn);

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
int nn_se(graph *g, int x, int squeeze, nn_act act, nn_act gate, const char *fc1, const char *fc2);

/* Stochastic depth's linear rule (Huang et al.): the drop probability of block i of n rises
 * from 0 at the first block to `last` at the last. */
float nn_drop_rate(float last, int i, int n);

/* Give parameter `leaf` ("weight", "bias") of the op that produced tensor t another initialization
 * (VGG's zero conv biases and N(0, 0.01) classifier, a highway gate's bias). */
void nn_param_init(graph *g, int t, const char *leaf, enum param_init init, float arg);

/* torchvision's initialization loops (`for m in self.modules(): if isinstance(m, nn.Conv2d): ...`),
 * run after building: parameter `leaf` ("weight", "bias") of every node of type op_type ("conv2d",
 * "linear") from node `first` on gets the rule init(arg). */
void nn_set_init(graph *g, int first, const char *op_type, const char *leaf, enum param_init init, float arg);

/* torchvision's, timm's and GhostNet's _make_divisible: v rounded to the nearest multiple of
 * divisor, at least divisor, and not below 90% of v. */
int nn_make_divisible(double v, int divisor);

/* ---- GoogLeNet (inception.c), names as torchvision's ---- */

/* BasicConv2d: conv k×k (stride, pad, no bias) → BN eps 0.001 → ReLU, named "<name>.conv/.bn". */
int nn_basic_conv(graph *g, int x, const char *name, int out_c, int k, int stride, int pad);
typedef struct nn_inception_cfg {
    int c1, c3_reduce, c3, c5_reduce, c5, pool_proj;
} nn_inception_cfg;
/* The Inception module with dimension reductions, concatenating branch1 (1×1), branch2 (1×1 → 3×3),
 * branch3 (1×1 → "5×5", a 3×3 in torchvision: pytorch/vision#906) and branch4 (3×3/1 max pool →
 * 1×1), in the current scope. */
int nn_inception(graph *g, int x, const nn_inception_cfg *c);
/* The auxiliary classifier in the current scope: adaptive average pool to 4×4 → BasicConv2d 1×1
 * 128 "conv" → fc1 2048→1024 → ReLU → dropout → fc2. Returns its logits. */
int nn_inception_aux(graph *g, int x, int classes, float dropout);

/* ---- EfficientNet (mbconv.c), names as torchvision's ---- */

typedef struct nn_mbconv_cfg {
    int expand_ratio, k, stride, out_c;
    float drop_path;       /* stochastic depth of the residual branch */
} nn_mbconv_cfg;
/* MBConv in the current scope: "block.N" = [1×1 expansion conv-BN-SiLU when the ratio is not 1],
 * k×k depthwise conv-BN-SiLU at stride, squeeze-excitation (fc1/fc2, in_c/4 channels, SiLU,
 * sigmoid), 1×1 projection conv-BN; plus drop path and the input when stride is 1 and the width
 * does not change. */
int nn_mbconv(graph *g, int x, const nn_mbconv_cfg *c);

/* ---- GhostNet (ghost.c), names as GhostNet's and timm's ---- */

/* Ghost module (ratio 2): primary conv k×k at stride to m = ceil(out_c/2) channels ("primary_conv.0",
 * BN ".1", ReLU if relu), cheap 3×3 depthwise conv of those to m more ("cheap_operation.0/1",
 * ReLU if relu), concatenation, first out_c channels. init: the rule of both convs. */
int nn_ghost_module(graph *g, int x, int out_c, int k, int stride, bool relu, enum param_init init);
/* Ghost bottleneck: ghost1 (to mid_c, ReLU) → [k×k depthwise conv_dw/bn_dw at stride 2] →
 * [squeeze-excitation se.conv_reduce/conv_expand, ReLU, hard sigmoid, when se_ratio > 0] → ghost2
 * (to out_c, linear), plus the input or a "shortcut" (k×k depthwise conv-BN, 1×1 conv-BN). */
int nn_ghost_bottleneck(graph *g, int x, int mid_c, int out_c, int k, int stride, float se_ratio);
/* Ghost-ResNet's block (Han et al. 2020, section 4.1): the basic residual block with each conv-BN a
 * Ghost module with a 3×3 primary conv (ghost1 at the stride with ReLU, ghost2 linear), the basic
 * block's shortcut and options o, then ReLU. */
int nn_ghost_basic_block(graph *g, int x, int out_c, int stride, const nn_res_opts *o);

/* nn.Sequential naming: each layer takes the next index, named layers get "<scope>.<index>". */
typedef struct nn_seq {
    int next;
} nn_seq;
const char *nn_seq_name(nn_seq *s, char *buf, size_t size);   /* index as a name, then advance */
void nn_seq_skip(nn_seq *s);                                    /* a parameterless layer */
#endif
