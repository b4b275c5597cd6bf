/* stream.h — elementwise kernels whose large outputs bypass the caches (non-temporal stores).
 *
 * A plain store first reads the line it writes (read for ownership); an output of several MB is not in
 * the cache when written and is read back from memory by the next op anyway, so that read is wasted.
 * Streaming stores skip it. Measured (2026-11-24, 2-core EPYC family 25, AVX-512): EfficientNet-B0's SE
 * products at 224×224, batch 32, 17–19 → 7–12 ms per inference step; resnet20's residual additions at
 * batch 128, 3.3–4.4 → 2.4–3.3 ms per forward; the convolutions reading those outputs no slower. Small
 * outputs lose (EfficientNet-B0 at batch 1: the SE products 0.45–0.49 → 0.55–0.68 ms), hence the
 * threshold. The values written are the same either way: only where they go differs. AVX-512 builds
 * only: elsewhere stream_fits is false. */
#ifndef CNN_OPS_STREAM_H
#define CNN_OPS_STREAM_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STREAM_MIN_BYTES ((size_t)4 << 20)

/* Whether an output of n floats at y is written with streaming stores: AVX-512, at least
 * STREAM_MIN_BYTES, whole 64-byte lines from a 64-byte boundary (the plan's arena aligns buffers). */
static inline bool stream_fits(const float *y, size_t n) {
#ifdef __AVX512F__
    return n * sizeof(float) >= STREAM_MIN_BYTES && n % 16 == 0 && ((uintptr_t)y & 63) == 0;
#else
    (void)y, (void)n;
    return false;
#endif
}

/* The kernels below write their outputs with streaming stores where stream_fits, with plain vectorized
 * loops elsewhere; either way the same values. */
/* y = a + b (relu: max(a + b, 0)) over n floats (the residual addition; y may be a or b). */
void stream_add(float *y, const float *a, const float *b, size_t n, bool relu);
/* dx0 = dx1 = (y > 0 ? dy : 0) over n floats (the residual addition's gradient with its fused ReLU). Only dx1
 * (the shortcut's) is streamed: dx0 (the branch's) is read at once by the batch norm before the addition, and
 * from the cache it read faster: resnet20 training's batch norm backward 7.0–7.2 → 6.2–6.3 ms per step, the
 * addition's 5.4–5.5 → 4.9–5.1, the step 1047–1088 → 1076–1101 img/s (2-core Intel AVX-512, alternating). */
void stream_masked_copy2(float *dx0, float *dx1, const float *y, const float *dy, size_t n);
/* y = a · w[channel] for `blocks` blocks of b channels × `area` positions (nChw{b}c), block i scaled by
 * w + b·i (the SE product: blocks = images × channel blocks). */
void stream_scale(float *y, const float *a, const float *w, size_t blocks, size_t area, int b);
/* y = (x − mean[channel])·scale[channel] + shift[channel] + r (relu: max(…, 0)) for `blocks` blocks of b channels ×
 * `area` positions (nChw{b}c), per_image blocks an image, the vectors indexed by channel (padding included):
 * batch norm applied with its statistics given, then the residual addition and its ReLU. */
void stream_affine_add(float *y, const float *x, const float *r, const float *mean, const float *scale,
                       const float *shift, size_t blocks, int per_image, size_t area, int b, bool relu);
#endif
