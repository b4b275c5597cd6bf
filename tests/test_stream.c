/* test_stream.c — the elementwise kernels of src/ops/stream.c against the same arithmetic done here
 * element by element: residual addition with and without its ReLU, the gradient copy masked by that
 * ReLU into two outputs, the SE product by per-channel weights, batch norm applied with given statistics
 * plus a residual (and its ReLU). Every value must match bit for bit,
 * over outputs just past the streaming threshold (streaming stores on AVX-512) and over a part under it
 * (plain loops; the SE product also in blocks of 8), with NaN, ±0 and negative values among the inputs;
 * the destination is poisoned first so a skipped line fails. Also which outputs stream_fits accepts
 * (AVX-512 builds: large, whole aligned lines; others: none). The plans' use of them is covered by
 * test_ops_gradcheck's cases on 4 MiB tensors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ops/stream.h"
#include "testutil.h"

#define BLOCKS 2051 /* blocks of 16 channels: with AREA, just past STREAM_MIN_BYTES, an odd count */
#define AREA 32
#define N ((size_t)BLOCKS * AREA * 16)
#define SMALL ((size_t)64 * AREA * 16) /* under the threshold */

static float *buffer(uint64_t seed) {
    float *v = aligned_alloc(64, N * sizeof(float));
    fill_uniform(v, (int64_t)N, seed, -1.0f, 1.0f);
    v[3] = NAN;
    v[5] = -0.0f;
    v[6] = 0.0f;
    v[N - 1] = NAN;
    return v;
}

static bool same_bits(const char *what, const float *got, const float *want, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(&got[i], &want[i], sizeof(float)) != 0) {
            CHECK(false, "%s: element %zu is %a, expected %a", what, i, got[i], want[i]);
            return false;
        }
    return true;
}

int main(void) {
    float *a = buffer(1), *b = buffer(2), *y = aligned_alloc(64, N * sizeof(float)),
          *y1 = aligned_alloc(64, N * sizeof(float)), *want = malloc(N * sizeof(float));
    float *w = malloc((size_t)BLOCKS * 16 * sizeof(float));
    fill_uniform(w, BLOCKS * 16, 3, -2.0f, 2.0f);
    CHECK(N * sizeof(float) >= STREAM_MIN_BYTES, "the test's outputs are below the threshold");
#ifdef __AVX512F__
    CHECK(stream_fits(y, N), "a large aligned output streams");
    CHECK(!stream_fits(y + 1, N - 16), "an output off a 64-byte boundary does not");
    CHECK(!stream_fits(y, N - 1), "a partial last line does not");
    CHECK(!stream_fits(y, STREAM_MIN_BYTES / sizeof(float) - 16), "an output under the threshold does not");
#else
    CHECK(!stream_fits(y, N), "without AVX-512 nothing streams");
#endif

    CHECK(!stream_fits(y, SMALL), "the small case streams");
    const size_t sizes[2] = {N, SMALL};
    for (int relu = 0; relu < 2; relu++) {
        for (size_t i = 0; i < N; i++) {
            float v = a[i] + b[i];
            want[i] = relu ? (v > 0.0f ? v : 0.0f) : v;
        }
        for (int k = 0; k < 2; k++) {
            memset(y, 0xff, N * sizeof(float)); /* NaN */
            stream_add(y, a, b, sizes[k], relu);
            same_bits(relu ? "stream_add with ReLU" : "stream_add", y, want, sizes[k]);
        }
    }
    /* in place, as the plan may run it (output over an input) */
    for (size_t i = 0; i < N; i++) want[i] = a[i] + b[i];
    memcpy(y, a, N * sizeof(float));
    stream_add(y, y, b, N, false);
    same_bits("stream_add in place", y, want, N);

    for (size_t i = 0; i < N; i++) want[i] = a[i] > 0.0f ? b[i] : 0.0f;
    for (int k = 0; k < 2; k++) {
        memset(y, 0xff, N * sizeof(float));
        memset(y1, 0xff, N * sizeof(float));
        stream_masked_copy2(y, y1, a, b, sizes[k]);
        same_bits("stream_masked_copy2, first output", y, want, sizes[k]);
        same_bits("stream_masked_copy2, second output", y1, want, sizes[k]);
    }

    /* blocks of 16 channels (AVX-512's), all of them and a few; blocks of 8 (AVX2's), never streamed */
    const size_t blocks[3] = {BLOCKS, 64, 2 * BLOCKS};
    const int width[3] = {16, 16, 8};
    for (int k = 0; k < 3; k++) {
        const int bw = width[k];
        for (size_t blk = 0; blk < blocks[k]; blk++)
            for (size_t s = 0; s < AREA; s++)
                for (int c = 0; c < bw; c++) {
                    size_t e = (blk * AREA + s) * bw + c;
                    want[e] = a[e] * w[blk * bw + c];
                }
        memset(y, 0xff, N * sizeof(float));
        stream_scale(y, a, w, blocks[k], AREA, bw);
        same_bits(bw == 16 ? "stream_scale, blocks of 16" : "stream_scale, blocks of 8", y, want, blocks[k] * AREA * bw);
    }

    /* batch norm applied with given statistics, plus the residual and its ReLU: one image of 16 channels per
     * block, then images of two blocks (a few), then blocks of 8 (AVX2's, never streamed) */
    float *vec = malloc(3 * 32 * sizeof(float));
    fill_uniform(vec, 96, 4, -1.5f, 1.5f);
    const float *mean = vec, *scale = vec + 32, *shift = vec + 64;
    const int per_image[3] = {1, 2, 2};
    for (int relu = 0; relu < 2; relu++)
        for (int k = 0; k < 3; k++) {
            const int bw = width[k];
            for (size_t blk = 0; blk < blocks[k]; blk++)
                for (size_t s = 0; s < AREA; s++)
                    for (int c = 0; c < bw; c++) {
                        const size_t e = (blk * AREA + s) * bw + c, ch = blk % per_image[k] * bw + c;
                        const float v = fmaf(a[e] - mean[ch], scale[ch], shift[ch]) + b[e];
                        want[e] = relu ? (v > 0.0f ? v : 0.0f) : v;
                    }
            memset(y, 0xff, N * sizeof(float));
            stream_affine_add(y, a, b, mean, scale, shift, blocks[k], per_image[k], AREA, bw, relu);
            same_bits(relu ? "stream_affine_add with ReLU" : "stream_affine_add", y, want, blocks[k] * AREA * bw);
        }
    free(vec);

    free(a), free(b), free(y), free(y1), free(want), free(w);
    return test_report("test_stream");
}
