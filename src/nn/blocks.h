/* blocks.h — reusable building blocks shared by model families: conv+BN(+ReLU) units, the
 * residual basic block, and a Sequential-style index counter for PyTorch-compatible names. */
#ifndef CNN_NN_BLOCKS_H
#define CNN_NN_BLOCKS_H
#include "core/graph.h"

/* conv (k×k, stride, padding k/2, no bias) → BN [→ ReLU], named "<conv>" and "<bn>". */
int nn_conv_bn(graph *g, int x, const char *conv, const char *bn, int out_c, int k, int stride, bool relu);

/* The basic residual block of He et al.: conv3x3(stride)-BN-ReLU-conv3x3-BN, plus the input or
 * a 1×1 conv + BN projection ("downsample.0/1") when shape changes, then ReLU. residual=false
 * gives the plain block (no shortcut) for the plain-vs-residual experiments. */
int nn_basic_block(graph *g, int x, int out_c, int stride, bool residual);

/* Squeeze-and-excitation (Hu et al.), as torchvision's SqueezeExcitation: global average pool,
 * 1×1 conv (with bias) to `squeeze` channels named fc1, activation, 1×1 conv back named fc2, gate,
 * then x times the per-channel gate. act/gate: op builders such as op_relu/op_silu and op_sigmoid. */
typedef int (*nn_act)(graph *g, int x);
int nn_se(graph *g, int x, int squeeze, nn_act act, nn_act gate, const char *fc1, const char *fc2);

/* nn.Sequential naming: each layer takes the next index, named layers get "<scope>.<index>". */
typedef struct nn_seq {
    int next;
} nn_seq;
const char *nn_seq_name(nn_seq *s, char *buf, size_t size);   /* index as a name, then advance */
void nn_seq_skip(nn_seq *s);                                    /* a parameterless layer */
#endif
