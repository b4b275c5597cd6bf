/* transform.h — torchvision's ImageNet transforms on PIL images, replicated pixel for pixel:
 * training RandomResizedCrop + RandomHorizontalFlip, evaluation Resize (shorter side) + CenterCrop,
 * then ToTensor + Normalize. Resizing is PIL's antialiased bilinear (its two-pass fixed-point
 * resampler, bit-exact); only the output window is computed and only the pixels it reads decoded. */
#ifndef CNN_DATA_TRANSFORM_H
#define CNN_DATA_TRANSFORM_H
#include <stddef.h>
#include <stdint.h>
#include "cnn.h"
#include "core/rng.h"
#include "data/image.h"

/* A JPEG is decoded at 1/2, 1/4 or 1/8 of its size (the largest reduction that applies) when the
   reduced source rectangle still has at least DCT_MARGIN times the pixels of its resized size along
   both axes. The antialiased resize then still averages over >= DCT_MARGIN source pixels, so the
   result stays close to a full decode (the tolerance is measured in tests/test_imagefolder.py). */
#define TRANSFORM_DCT_MARGIN 2.0

typedef struct image_transform {
    int train;            /* 1: RandomResizedCrop(size, scale, ratio) [+ flip]; 0: Resize(resize) + CenterCrop(size) */
    int size;             /* output side */
    int resize;           /* evaluation: the shorter side before the center crop (>= size) */
    double scale[2];      /* RandomResizedCrop's area fraction range */
    double ratio[2];      /* and aspect ratio range */
    int flip;             /* training: horizontal flip with probability 0.5 */
    int channels;         /* 3: RGB; 1: PIL's "L" */
    int reduced_dct;      /* allow reduced-scale JPEG decoding (TRANSFORM_DCT_MARGIN) */
    float mean[3], std[3];
} image_transform;

/* Where an output sample comes from: the source rectangle (x, y, w, h) of the full-size image is
   resized to rw x rh, and the output is the size x size window at (ox, oy) of that, mirrored if
   flip. RandomResizedCrop's (i, j, h, w) are (y, x, h, w); CenterCrop's offsets are (oy, ox). */
typedef struct image_geometry {
    int x, y, w, h;
    int rw, rh;
    int ox, oy;
    int flip;
} image_geometry;

/* ImageNet defaults: training or evaluation at `size`, resize round(size * 256 / 224), RGB,
   ImageNet mean/std, reduced-scale decoding on. */
void transform_defaults(image_transform *t, int train, int size);
/* The evaluation resize for a size: round(size * 256 / 224) (256 for 224, 73 for 64). */
int transform_default_resize(int size);
cnn_status transform_check(const image_transform *t);

/* torchvision's RandomResizedCrop.get_params(img, scale, ratio) for a W x H image, drawing from r:
   ten tries of a random area and log-uniform aspect ratio, then the central fallback. */
void transform_rrc_params(int W, int H, const double scale[2], const double ratio[2], rng *r, int *i, int *j, int *h,
                          int *w);
/* The geometry of the sample with random stream `key` (training draws crop then flip). */
void transform_geometry(const image_transform *t, int W, int H, uint64_t key, image_geometry *g);
/* The JPEG scale denominator (1, 2, 4 or 8) for a geometry, by the rule of TRANSFORM_DCT_MARGIN. */
int transform_denom(const image_transform *t, const image_geometry *g);

/* Per-thread workspace of the resampler (coefficients, intermediate rows, decoded pixels). */
typedef struct transform_ws {
    int *bounds;         /* per output pixel of both axes: first source pixel, count */
    int32_t *coef;       /* fixed-point coefficients, ksize per output pixel */
    double *dcoef;
    size_t cap_bounds, cap_coef, cap_dcoef;
    int ksize[2];        /* x, y */
    int rect[4];         /* decoded-scale pixels read: x0, y0, x1, y1 */
    uint8_t *rows;       /* horizontally resampled rows */
    size_t cap_rows;
    int32_t *acc;
    size_t cap_acc;
    float lut[3][256];
    image_region region; /* decoded pixels */
} transform_ws;

void transform_ws_free(transform_ws *ws);

/* Coefficients for geometry g of a W x H (full-size) image decoded at 1/denom; fills ws->rect with
   the decoded-scale rectangle the resampling reads. */
cnn_status transform_prepare(transform_ws *ws, const image_transform *t, const image_geometry *g, int W, int H,
                             int denom);
/* Resample the prepared window from r (which must cover ws->rect) into out (channels x size x size
   floats, normalized). */
void transform_run(transform_ws *ws, const image_transform *t, const image_geometry *g, const image_region *r,
                   float *out);

/* The whole path for an encoded image: probe, geometry (drawn from key, or *given if not NULL),
   decode of what is needed, resample, normalize into out. *used (may be NULL) gets the geometry. */
cnn_status transform_file(transform_ws *ws, const image_transform *t, const uint8_t *data, size_t n, const char *path,
                          uint64_t key, const image_geometry *given, float *out, image_geometry *used);
/* The same on pixels already decoded: r holds a whole image with t's channels. */
cnn_status transform_pixels(transform_ws *ws, const image_transform *t, const image_region *r, uint64_t key,
                            float *out);
#endif
