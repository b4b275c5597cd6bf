/* convrnn.h — convolutional recurrent cells (ConvLSTM, ConvGRU) unrolled over the blocks of a
 * stage, and the RegNet blocks they regulate (Xu et al., "RegNet: Self-Regulated Network for Image
 * Classification", arXiv 2101.00590 — not Facebook's RegNetX/Y design spaces).
 *
 * A cell's weights are shared by every step (an RNN unrolled over depth). With x the input, h and
 * c the states, W * [x; h] one k×k convolution (padding k/2, with bias) over their concatenation:
 *
 *   ConvLSTM   [f; i; o; g] = W * [x; h_prev] + b          (gate rows in this order)
 *              c = σ(f) ⊙ c_prev + σ(i) ⊙ tanh(g),   h = σ(o) ⊙ tanh(c)
 *   ConvGRU    [r; z] = σ(W_g * [x; h_prev] + b_g)          (Ballas et al. 2016)
 *              n = tanh(W_n * [x; r ⊙ h_prev] + b_n),   h = (1 − z) ⊙ h_prev + z ⊙ n
 *
 * The state is zero before the first step. Then W * [x; 0] = W[:, :in] * x, so the first step
 * convolves x alone with the input columns of W, and reads only the rows it needs: i, o, g for the
 * LSTM (c = σ(i) ⊙ tanh(g), no f·c_prev), z for the GRU gates and all of W_n (h = z ⊙ n, no r).
 * No zero tensor is made and no multiply by zero is done. */
#ifndef CNN_NN_CONVRNN_H
#define CNN_NN_CONVRNN_H
#include "core/graph.h"
#include "ops/ops.h"

typedef enum convrnn_kind { CONVRNN_LSTM, CONVRNN_GRU } convrnn_kind;

typedef struct convrnn {
    convrnn_kind kind;
    int in_c, hidden, k;
    conv_shared gates;   /* LSTM "conv": 4·hidden × (in + hidden); GRU "conv_gates": 2·hidden × (in + hidden) */
    conv_shared cand;    /* GRU "conv_cand": hidden × (in + hidden) */
} convrnn;

/* Tensor ids of the state; -1: zero (before the first step). c is the LSTM's cell state. */
typedef struct convrnn_state {
    int h, c;
} convrnn_state;

static inline convrnn_state convrnn_zero(void) { return (convrnn_state){-1, -1}; }

void convrnn_init(convrnn *cell, convrnn_kind kind, int in_c, int hidden, int k);
/* One step on input x (in_c channels, the state's resolution): returns the new state. Parameters
 * are named in the current scope ("conv.weight", or "conv_gates.*" and "conv_cand.*"); the first
 * step creates them. keep_c = false: the LSTM's c is not needed after this step (a stage's last).
 * An input that does not fit the cell or the state fails the graph with CNN_ERR_SHAPE. */
convrnn_state convrnn_step(graph *g, convrnn *cell, int x, convrnn_state s, bool keep_c);
const char *convrnn_name(convrnn_kind kind);

/* The regulator of one stage: its cell and the state carried from block to block. */
typedef struct regulator {
    convrnn cell;
    convrnn_state state;
} regulator;

/* RegNet block (basic), built in the stage's scope ("layer1") under "<index>": conv1 3×3 (stride) +
 * bn1 + ReLU → the stage's cell reads that (names "rnn.*" in the stage's scope) → its h concatenated
 * with the conv features → conv_fuse 1×1 + bn_fuse + ReLU → conv2 3×3 + bn2 → + the input (or the
 * 1×1 conv + BN projection "downsample" when shape changes) → ReLU. reg == NULL: the plain basic
 * block of ResNet. last: the stage's last block. */
int nn_regnet_block(graph *g, int x, int index, int out_c, int stride, regulator *reg, bool last);
/* Bottleneck RegNet block: conv1 1×1 + bn1 + ReLU → conv2 3×3 (stride) + bn2 + ReLU → the cell reads
 * these 3×3 features → concat with them → conv_fuse 1×1 + bn_fuse + ReLU → conv3 1×1 to 4·width +
 * bn3 → + shortcut → ReLU. reg == NULL: torchvision's Bottleneck (v1.5, stride on the 3×3). */
int nn_regnet_bottleneck(graph *g, int x, int index, int width, int stride, regulator *reg, bool last);
#endif
