/* conv16.h — cnn.c's own direct 3×3 convolution, stride 1, padding 1, of one block of 16 channels into one
 * block of 16 (nChw16c with 16 channels: the bytes of nhwc): forward, backward data and backward weights.
 * The CIFAR ResNets' first stage is made of these (half of resnet20's arithmetic), and oneDNN's kernels ran them
 * furthest from the machine's ceiling: its vectors hold the 16 output channels, so every multiply-add there
 * loads an input value broadcast. Here each input value broadcast serves the three taps of a kernel row
 * (forward, backward data) and each output-gradient value the three taps of a weight row (backward
 * weights): a third as many loads. Measured in docs/design.md ("16-channel convolutions").
 *
 * Weights in blocks of 16 × 16 per tap (kh, kw), tap-major:
 *   C16_IO: [tap][in][out]  (oneDNN's OIhw16i16o with one block each way)
 *   C16_OI: [tap][out][in]  (OIhw16o16i)
 * The forward reads C16_IO weights; the backward data is the forward of the output gradient with the
 * taps flipped and the weights transposed, so it reads C16_OI weights; the weight gradient is written in
 * the C16_OI layout. The backward computes both from each image in turn (its output gradient read from
 * memory once). The forward's and the input gradient's arithmetic is the same whatever the thread count;
 * the weight gradient's sum over the batch adds the threads' parts (whole images) in thread order. AVX-512
 * builds only: elsewhere c16_available is false. */
#ifndef CNN_OPS_CONV16_H
#define CNN_OPS_CONV16_H
#include <stdbool.h>
#include <stddef.h>

#define C16_PIXELS 16 /* output pixels of a register tile: maps whose width is a multiple of it */
#define C16_CHUNK 8   /* rows of the batch (any images) whose output sums the forward adds up apart */

typedef struct c16_shape {
    int n, h, w; /* batch, map (input and output) */
} c16_shape;

bool c16_available(void);
/* Whether the kernels take a map of this size: a width that is a multiple of C16_PIXELS */
bool c16_fits(int h, int w);
/* y = conv3×3(x, w), w in the C16_IO layout. sums (NULL: none): then also y's per-channel sums (sums[0..16))
 * and sums of squares (sums[16..32)) over the batch and the map, in double (the batch norm after it takes its
 * statistics from them), each chunk of C16_CHUNK rows of the batch added apart into chunk_sums (32 doubles a
 * chunk: c16_chunk_sums) and the chunks then in order: the same bits whatever the thread count. */
void c16_forward(const c16_shape *s, const float *x, const float *w, float *y, double *sums, double *chunk_sums);
/* doubles of c16_forward's chunk_sums */
size_t c16_chunk_sums(const c16_shape *s);
/* floats of the scratch c16_backward needs for `threads` threads */
size_t c16_scratch_floats(int threads);
/* From the input x and the output gradient dy: dx (+)= the input gradient (w: the weights in the C16_OI
 * layout; added to dx's values with accum, else overwriting them; dx NULL: none), dw = the weight
 * gradient in the C16_OI layout (overwritten). */
void c16_backward(const c16_shape *s, const float *x, const float *dy, const float *w, bool accum, float *dx,
                  float *dw, float *scratch, int threads);
#endif
