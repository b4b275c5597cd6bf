/* depthwise.h — cnn.c's own depthwise convolution forward (one filter per channel, 3×3 or 5×5, stride 1
 * or 2, zero padding) on the blocked layout of 16 channels (nChw16c) for evaluation plans whose convolution has a
 * SiLU after it (src/ops/conv.c, own_depthwise_fits: those of stride 1, EfficientNet's 3×3 and 5×5 ones;
 * its stride 2 was no faster than oneDNN's).
 * The bias (with batch norm folded in) and the SiLU (silu.h's silu_v16) are applied in registers before
 * the single write of each output, where oneDNN's SiLU post-op added half to their time (docs/design.md).
 *
 * Each thread takes output rows of one channel block and computes them in runs of 8 pixels, 16 channels a
 * vector: runs whose windows lie inside the input without a bounds check, the others (the map's edges,
 * small maps) with masked loads that read zeros where a tap is padding. Outputs of 4 MB and more are written with streaming stores. Every output's
 * arithmetic (its taps in row-major order, then the activation) is the same whatever the thread count. */
#ifndef CNN_OPS_DEPTHWISE_H
#define CNN_OPS_DEPTHWISE_H
#include <stdbool.h>
#include <stddef.h>

typedef struct dw_shape {
    int n, c, h, w;        /* batch, channels (the tensors' padding channels come out 0), input map */
    int k, stride, pad;    /* k×k filters, k 3 or 5, stride 1 or 2 */
    int oh, ow;            /* output map */
} dw_shape;

enum { DW_SILU = 1 };

/* Whether this build has the kernel (AVX-512) */
bool dw_available(void);
/* floats of the weights in the kernel's layout: per block of 16 channels, k·k rows of 16 */
size_t dw_weights_floats(const dw_shape *s);
/* those weights from PyTorch's layout (c × 1 × k × k) */
void dw_weights(const dw_shape *s, const float *w, float *wt);
/* floats of the scratch dw_forward needs for `threads` threads (a padded plane each, for output maps at
 * most 32 wide; 0 otherwise) */
size_t dw_scratch_floats(const dw_shape *s, int threads);
/* y = act(depthwise(x, w) + bias) (bias NULL: none), x and y nChw16c with ⌈c/16⌉ blocks; scratch holds
 * dw_scratch_floats(s, threads) (threads beyond those go row by row, the same arithmetic) */
void dw_forward(const dw_shape *s, const float *x, const float *wt, const float *bias, unsigned act, float *y,
                float *scratch, int threads);
#endif
