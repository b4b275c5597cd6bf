/* pointwise.h — cnn.c's own 1×1 convolution forward (stride 1) on the blocked layout of 16 channels
 * (nChw16c) for evaluation plans whose convolution has few input channels (src/ops/conv.c,
 * own_pointwise_fits): EfficientNet's expansions from 16, 24 and 40 channels to six times as many, which
 * write the network's largest tensors. The bias (with batch norm folded in) and the activation after it
 * (ReLU, or SiLU as silu.h's arithmetic) are applied in registers before the single write of each output,
 * where oneDNN's SiLU post-op cost the convolution twice its time (docs/design.md).
 *
 * Each thread takes runs of 8 pixels of one image and computes every output channel of them, 3 blocks of
 * 16 at a time (24 accumulators), from the input channels' values broadcast against the weights' rows;
 * outputs of 4 MB and more are written with streaming stores. Every output's arithmetic (its sum in input
 * channel order, then the activation) is the same whatever the thread count. */
#ifndef CNN_OPS_POINTWISE_H
#define CNN_OPS_POINTWISE_H
#include <stdbool.h>
#include <stddef.h>

typedef struct pw_shape {
    int n, ic, oc, hw; /* batch, channels (any: the tensors' padding channels are 0), pixels per image */
} pw_shape;

enum { PW_RELU = 1, PW_SILU = 2 };

/* Whether this build has the kernel (AVX-512) */
bool pw_available(void);
/* floats of the weights in the kernel's layout: per block of 16 output channels, a row of 16 per input
 * channel (padding output channels 0) */
size_t pw_weights_floats(const pw_shape *s);
/* those weights from PyTorch's layout (oc × ic) */
void pw_weights(const pw_shape *s, const float *w, float *wt);
/* y = act(conv1×1(x, w) + bias) (bias NULL: none), x and y nChw16c with ⌈ic/16⌉ and ⌈oc/16⌉ blocks;
 * y's padding channels are written 0 */
void pw_forward(const pw_shape *s, const float *x, const float *wt, const float *bias, unsigned act, float *y);
#endif
