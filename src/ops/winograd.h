/* winograd.h — cnn.c's own Winograd F(m×m, 3×3) forward convolution (padding 1) on the blocked layout of 16
 * channels (nChw16c), for evaluation plans (src/ops/conv.c, own_winograd_fits): stride 1 with m = 4, 5 or 6,
 * stride 2 with m = 2 or 4.
 *
 * Each m×m tile of the output comes from an n×n tile of the input: V = Bᵀ d B per input channel, then for
 * each of the n² positions ξ of the transformed tile a product over input channels M[ξ] = Σ_c V[ξ][c] U[ξ][c]
 * with the weights transformed once, U = G g Gᵀ (n×n per output and input channel), then Y = Aᵀ M A
 * (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016). Stride 1: n = m + 2,
 * interpolation points 0, ±1, ±2, then 1/2 and −1/2 for m = 5 and 6, and ∞; n² multiplications per tile
 * and channel pair instead of the direct 9m² (36 for 16 outputs, 49 for 25, 64 for 36). Stride 2: the
 * input split by parity, the even samples meeting the taps g0, g2 through Toom-Cook F(m, 2) and the odd
 * ones g1 alone, n = 2m + 1 (25 for 4 outputs, 81 for 16, against 36 and 144). wino_tile picks the m with
 * the fewest products for an output map (stride 1: 14×14 m = 5, 441 per image and channel pair against
 * m = 4's 576; 28×28 and 56×56 m = 6, 9% fewer; 7×7 m = 4; stride 2: 28×28 and 7×7 m = 4, 14×14 m = 2).
 *
 * Tiles go in blocks of WINO_TILE_BLOCK: all threads transform a block's input, then share its n²
 * products (split by position and output channels, so each thread reads its part of U once per block),
 * then transform its outputs; the block's transformed input and products stay in the cache. Every
 * output's arithmetic is the same whatever the thread count. Differs from a direct convolution by
 * 1e-7 to 5e-6 relative to the sum of the terms' magnitudes, more with larger tiles (tests/test_winograd.c). */
#ifndef CNN_OPS_WINOGRAD_H
#define CNN_OPS_WINOGRAD_H
#include <stdbool.h>
#include <stddef.h>

#define WINO_TILE_BLOCK 96

typedef struct wino_shape {
    int n, ic, oc, h, w; /* batch, channels (ic a multiple of 16, oc of 32), input map */
    int m;               /* output tile side: 4, 5 or 6 at stride 1, 2 or 4 at stride 2 */
    int stride;          /* 1 or 2 */
} wino_shape;

/* the output map: the input's at stride 1, ⌊(h − 1)/2⌋ + 1 at stride 2 (padding 1) */
void wino_output(const wino_shape *s, int *oh, int *ow);
/* the tile side with the fewest products for an oh × ow output map */
int wino_tile(int oh, int ow, int stride);

/* floats of the transformed weights U and of the scratch wino_forward needs */
size_t wino_weights_floats(const wino_shape *s);
size_t wino_scratch_floats(const wino_shape *s);
/* U from weights in PyTorch's layout (oc × ic × 3 × 3), in double */
void wino_weights(const wino_shape *s, const float *w, float *u);
/* What wino_forward does after the convolution: add what y held (a residual sum), then a ReLU. */
enum { WINO_ADD = 1, WINO_RELU = 2 };
/* y = conv(x, w) + bias (NULL: none) (+ y if post has WINO_ADD), then max(·, 0) if post has WINO_RELU;
 * x and y nChw16c */
void wino_forward(const wino_shape *s, const float *x, const float *u, const float *bias, unsigned post, float *y,
                  float *scratch);
#endif
