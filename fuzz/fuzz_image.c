/* fuzz_image.c — what an image folder feeds its parsers: an image file through the header probe,
 * decoding (libjpeg-turbo with partial and reduced-scale decoding, stb_image) and the transforms.
 * Input: an options byte (bit 0 training transform, bit 1 gray, bit 2 full-size decoding, the rest
 * the evaluation's extra resize), the output side, two bytes of the random key, then the file.
 * Properties: a success writes every output value, each one a normalized pixel value. */
#include <math.h>
#include "data/transform.h"
#include "fuzz.h"

/* Larger images decode correctly but slowly; the fuzzer's time goes to the parsers instead. */
#define FUZZ_MAX_PIXELS (4 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) return 0;
    const uint8_t *file = data + 4;
    size_t n = size - 4;
    image_info info;
    if (image_probe(file, n, "fuzz", &info) == CNN_OK && (double)info.w * info.h > FUZZ_MAX_PIXELS) return 0;
    image_transform t;
    transform_defaults(&t, data[0] & 1, 1 + data[1] % 96);
    t.channels = data[0] & 2 ? 1 : 3;
    t.reduced_dct = !(data[0] & 4);
    t.resize = t.size + (data[0] >> 3);
    size_t count = (size_t)t.channels * t.size * t.size;
    float *out = malloc(sizeof(float) * count);
    for (size_t i = 0; i < count; i++) out[i] = NAN;
    transform_ws ws = {0};
    image_geometry g;
    uint64_t key = (uint64_t)data[2] << 8 | data[3];
    if (transform_file(&ws, &t, file, n, "fuzz", key, NULL, out, &g) == CNN_OK) {
        FUZZ_ASSERT(g.x >= 0 && g.y >= 0 && g.x + g.w <= info.w && g.y + g.h <= info.h);
        for (size_t i = 0; i < count; i++) {
            int c = (int)(i / ((size_t)t.size * t.size));
            FUZZ_ASSERT(out[i] >= (0.0f - t.mean[c]) / t.std[c] && out[i] <= (1.0f - t.mean[c]) / t.std[c]);
        }
    }
    transform_ws_free(&ws);
    free(out);
    return 0;
}
