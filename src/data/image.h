/* image.h — image files to 8-bit pixels exactly as PIL's Image.open(f).convert("RGB") (or "L") gives
 * them: JPEG through libjpeg-turbo, optionally at a reduced DCT scale and only for the rectangle a
 * transform reads; PNG, BMP, PPM/PGM, TGA and GIF through stb_image. */
#ifndef CNN_DATA_IMAGE_H
#define CNN_DATA_IMAGE_H
#include <stddef.h>
#include <stdint.h>
#include "cnn.h"

/* Decoded images larger than this many pixels are refused (a 16k x 6k photo is 100 MP). */
#define IMAGE_MAX_PIXELS (100 * 1000 * 1000)

typedef struct image_info {
    int w, h;
    int jpeg;            /* 1: JPEG (reduced-scale and partial decoding possible) */
} image_info;

/* Size and kind from the header, without decoding. path names the file in messages. */
cnn_status image_probe(const uint8_t *data, size_t n, const char *path, image_info *info);

/* A rectangle of decoded pixels: pixel (x, y) of the image at the decoded scale is at
   px[(y - y0) * stride + (x - x0) * channels]. The buffer is reused by later decodes. */
typedef struct image_region {
    uint8_t *px;
    size_t cap;
    int channels;              /* 1 (PIL's "L") or 3 ("RGB") */
    int scaled_w, scaled_h;    /* the whole image at the decoded scale */
    int x0, y0, w, h, stride;
} image_region;

/* Width of a side of n pixels decoded at 1/denom (libjpeg's rounding up). */
static inline int image_scaled(int n, int denom) { return (n + denom - 1) / denom; }

/* Decodes at least the rectangle rect = {x0, y0, x1, y1} (in pixels of the scaled image; NULL: all)
   at scale 1/denom (1, 2, 4 or 8; other than 1 for JPEG only) as `channels` 1 or 3 into r.
   Grayscale and CMYK (Adobe-inverted, as PIL reads it) JPEGs are converted as PIL converts them.
   A truncated JPEG is an error when the rows asked for are missing. */
cnn_status image_decode(const uint8_t *data, size_t n, const char *path, int denom, const int rect[4], int channels,
                        image_region *r);
void image_region_free(image_region *r);

/* PIL's "RGB" to "L": (19595 R + 38470 G + 7471 B + 32768) >> 16, in place over n pixels. */
void image_rgb_to_l(uint8_t *px, size_t n);
#endif
