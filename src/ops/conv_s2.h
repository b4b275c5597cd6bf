/* conv_s2.h — cnn.c's own direct 3×3 convolution, stride 2, padding 1, on the blocked layout of 16 channels
 * (nChw16c): forward, backward data and backward weights. The CIFAR ResNets enter their second and third stages
 * through these (16 → 32 channels on 32×32 maps, 32 → 64 on 16×16), where oneDNN's kernels ran at 240–350 GFLOP/s
 * and its backward data, having no accumulating form, wrote a temporary the plan then added to the input gradient
 * the shortcut had written. Measured in docs/design.md ("Stride-2 convolutions of training").
 *
 * Weights in blocks of 16 × 16 per tap, for output block ob and input block ib:
 *   S2_IO: [ob][ib][tap][in][out]  (oneDNN's OIhw16i16o)
 *   S2_OI: [ob][ib][tap][out][in]  (OIhw16o16i)
 * The forward reads S2_IO weights: a register tile is 8 output pixels of a row in two output blocks, each input
 * value broadcast once for the taps of its kernel row that meet it (two at even columns, one at odd ones). The
 * backward data reads S2_OI weights: a tile is 16 input-gradient pixels of a row in one block, each output-gradient
 * value broadcast once for its three taps, added to the gradient another consumer wrote (accum) or overwriting it.
 * The backward weights keeps 24 vectors of sums (8 output channels × the 3 taps of a kernel row, over 16 input
 * channels), an image at a time, and writes the S2_OI layout; the threads' parts (whole images) added in thread
 * order. The backward computes both from each image in turn. The forward's and the input gradient's arithmetic
 * is the same whatever the thread count. AVX-512 builds only: elsewhere s2_available is false. */
#ifndef CNN_OPS_CONV_S2_H
#define CNN_OPS_CONV_S2_H
#include <stdbool.h>
#include <stddef.h>

typedef struct s2_shape {
    int n, ic, oc, h, w; /* batch, channels in and out, the input map (the output's is h/2 × w/2) */
} s2_shape;

bool s2_available(void);
/* Whether the kernels take this convolution: channels in a multiple of 16, out of 32, an input map of even
 * sides whose width is a multiple of 16 (output rows of whole tiles) */
bool s2_fits(int ic, int oc, int h, int w);
/* y = conv3×3 stride 2 (x, w), w in the S2_IO layout */
void s2_forward(const s2_shape *s, const float *x, const float *w, float *y);
/* floats of the scratch s2_backward needs for `threads` threads */
size_t s2_scratch_floats(const s2_shape *s, int threads);
/* From the input x and the output gradient dy: dx (+)= the input gradient (w: the weights in the S2_OI layout;
 * added to dx's values with accum, else overwriting them; dx NULL: none), dw = the weight gradient in the S2_OI
 * layout (overwritten). */
void s2_backward(const s2_shape *s, const float *x, const float *dy, const float *w, bool accum, float *dx, float *dw,
                 float *scratch, int threads);
#endif
