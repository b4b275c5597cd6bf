/* stb.c — Debian's stb_image in a translation unit of its own, so that a sanitized build can exempt
 * this third-party code, and only it, from UBSan's pointer-overflow and nonnull-attribute checks: on
 * an empty first IDAT chunk its PNG reader computes NULL + 0 and memcpy(NULL, p, 0) (found by
 * fuzz/fuzz_image.c, tests/fuzz/image/regress-png-empty-idat; harmless, but undefined in C).
 * JPEG goes to libjpeg-turbo (image.c), so stb's JPEG decoder is left out. */
#include "data/stb.h"

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_JPEG
#define STBI_NO_HDR
#define STBI_NO_LINEAR
#define STBI_NO_PSD
#define STBI_NO_PIC
#define STBI_MAX_DIMENSIONS (1 << 16)
/* stb declares per-thread variants it does not define: GCC reports that at the end of the file */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#include <stb_image.h>
#pragma GCC diagnostic pop

int stb_info(const uint8_t *data, size_t n, int *w, int *h, int *comp) {
    return stbi_info_from_memory(data, (int)n, w, h, comp);
}

uint8_t *stb_load(const uint8_t *data, size_t n, int *w, int *h, int *comp) {
    return stbi_load_from_memory(data, (int)n, w, h, comp, 0);
}

const char *stb_failure_reason(void) { return stbi_failure_reason(); }
