/* stb.h — stb_image's decoders (PNG, BMP, GIF, TGA, PNM) behind three calls, compiled in stb.c alone. */
#ifndef CNN_DATA_STB_H
#define CNN_DATA_STB_H
#include <stddef.h>
#include <stdint.h>

/* Size and channels of an image in memory; 0 if stb cannot read it (stb_failure_reason says why). */
int stb_info(const uint8_t *data, size_t n, int *w, int *h, int *comp);
/* The pixels, interleaved, comp channels as stored (no conversion); free() them. NULL on failure. */
uint8_t *stb_load(const uint8_t *data, size_t n, int *w, int *h, int *comp);
const char *stb_failure_reason(void);
#endif
