/* transform.c — torchvision's transforms with PIL's resampler (see transform.h). The coefficient
 * code follows Pillow's libImaging/Resample.c (precompute_coeffs, normalize_coeffs_8bpc, the
 * horizontal-then-vertical passes with 22-bit fixed point and rounding to 8 bits in between). */
#include "data/transform.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "data/source.h"

#define PRECISION_BITS (32 - 8 - 2)

static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f}, imagenet_std[3] = {0.229f, 0.224f, 0.225f};

int transform_default_resize(int size) { return (int)lround(size * 256.0 / 224.0); }

void transform_defaults(image_transform *t, int train, int size) {
    memset(t, 0, sizeof *t);
    t->train = train;
    t->size = size;
    t->resize = transform_default_resize(size);
    t->scale[0] = 0.08, t->scale[1] = 1.0;
    t->ratio[0] = 3.0 / 4.0, t->ratio[1] = 4.0 / 3.0;
    t->flip = train;
    t->channels = 3;
    t->reduced_dct = 1;
    memcpy(t->mean, imagenet_mean, sizeof t->mean);
    memcpy(t->std, imagenet_std, sizeof t->std);
}

cnn_status transform_check(const image_transform *t) {
    if (t->size < 1 || t->size > 8192) return cnn_fail(CNN_ERR_ARG, "image size %d, expected 1..8192", t->size);
    if (!t->train && (t->resize < t->size || t->resize > 16384))
        return cnn_fail(CNN_ERR_ARG, "evaluation resize %d: the shorter side must be at least the crop size %d", t->resize,
                        t->size);
    if (t->train && !(t->scale[0] > 0 && t->scale[0] <= t->scale[1] && t->scale[1] <= 1))
        return cnn_fail(CNN_ERR_ARG, "crop scale range [%g, %g], expected 0 < lo <= hi <= 1", t->scale[0], t->scale[1]);
    if (t->train && !(t->ratio[0] > 0 && t->ratio[0] <= t->ratio[1]))
        return cnn_fail(CNN_ERR_ARG, "crop ratio range [%g, %g], expected 0 < lo <= hi", t->ratio[0], t->ratio[1]);
    if (t->channels != 1 && t->channels != 3) return cnn_fail(CNN_ERR_ARG, "%d image channels, expected 1 or 3", t->channels);
    for (int c = 0; c < t->channels; c++)
        if (!(t->std[c] > 0)) return cnn_fail(CNN_ERR_ARG, "std of channel %d is %g, expected > 0", c, (double)t->std[c]);
    return CNN_OK;
}

/* ---- geometry ---- */

void transform_rrc_params(int W, int H, const double scale[2], const double ratio[2], rng *r, int *i, int *j, int *h,
                          int *w) {
    double area = (double)H * W;
    /* torch computes log(ratio), the uniform draws and exp in float32 */
    float log_lo = logf((float)ratio[0]), log_hi = logf((float)ratio[1]);
    float s_lo = (float)scale[0], s_hi = (float)scale[1];
    for (int attempt = 0; attempt < 10; attempt++) {
        double target_area = area * (double)(s_lo + (s_hi - s_lo) * rng_uniform(r));
        double aspect = (double)expf(log_lo + (log_hi - log_lo) * rng_uniform(r));
        int cw = (int)nearbyint(sqrt(target_area * aspect)); /* Python's round: half to even */
        int ch = (int)nearbyint(sqrt(target_area / aspect));
        if (cw > 0 && cw <= W && ch > 0 && ch <= H) {
            *i = (int)rng_below(r, (uint32_t)(H - ch + 1));
            *j = (int)rng_below(r, (uint32_t)(W - cw + 1));
            *h = ch, *w = cw;
            return;
        }
    }
    double in_ratio = (double)W / H;
    if (in_ratio < ratio[0]) {
        *w = W;
        *h = (int)nearbyint(*w / ratio[0]);
    } else if (in_ratio > ratio[1]) {
        *h = H;
        *w = (int)nearbyint(*h * ratio[1]);
    } else {
        *w = W, *h = H;
    }
    *i = (H - *h) / 2;
    *j = (W - *w) / 2;
}

void transform_geometry(const image_transform *t, int W, int H, uint64_t key, image_geometry *g) {
    memset(g, 0, sizeof *g);
    if (t->train) {
        rng r = rng_stream(key);
        transform_rrc_params(W, H, t->scale, t->ratio, &r, &g->y, &g->x, &g->h, &g->w);
        g->rw = g->rh = t->size;
        g->flip = t->flip && rng_uniform(&r) < 0.5f;
        return;
    }
    /* Resize(resize): the shorter side to resize, the longer int(resize * long / short) */
    int64_t shorter = W < H ? W : H, longer = W < H ? H : W;
    int new_long = (int)((double)(t->resize * longer) / (double)shorter);
    g->w = W, g->h = H;
    g->rw = W <= H ? t->resize : new_long;
    g->rh = W <= H ? new_long : t->resize;
    /* CenterCrop: int(round((side - size) / 2.0)) */
    g->ox = (int)nearbyint((g->rw - t->size) / 2.0);
    g->oy = (int)nearbyint((g->rh - t->size) / 2.0);
}

int transform_denom(const image_transform *t, const image_geometry *g) {
    if (!t->reduced_dct) return 1;
    for (int d = 8; d > 1; d /= 2)
        if ((double)g->w / d >= TRANSFORM_DCT_MARGIN * g->rw && (double)g->h / d >= TRANSFORM_DCT_MARGIN * g->rh) return d;
    return 1;
}

/* ---- coefficients (Pillow's precompute_coeffs for the bilinear filter, support 1) ---- */

static double bilinear(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static void *grow(void *p, size_t *cap, size_t bytes, int *ok) {
    if (bytes <= *cap) return p;
    void *q = realloc(p, bytes);
    if (!q) {
        *ok = 0;
        return p;
    }
    *cap = bytes;
    return q;
}

/* One axis: the image region [base, base + insize) (PIL's cropped image) with box [in0, in1) in
   its coordinates is resized to outsize pixels; coefficients of outputs [first, first + n) go to
   bounds (absolute first source pixel, count) and coef (ksize each). Returns ksize. */
static int axis_coeffs(int base, int insize, float in0, float in1, int outsize, int first, int n, int *bounds,
                       int32_t *coef, double *dk, int ksize) {
    double scale = (double)(in1 - in0) / outsize, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = filterscale;
    for (int o = 0; o < n; o++) {
        int xx = first + o;
        double center = in0 + (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > insize) xmax = insize;
        xmax -= xmin;
        double *k = dk + (size_t)o * ksize;
        for (int x = 0; x < xmax; x++) {
            k[x] = bilinear((x + xmin - center + 0.5) * ss);
            ww += k[x];
        }
        int32_t *kk = coef + (size_t)o * ksize;
        for (int x = 0; x < ksize; x++) {
            double v = x >= xmax ? 0.0 : ww != 0.0 ? k[x] / ww : k[x];
            /* normalize_coeffs_8bpc: round half away from zero */
            kk[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS)) : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
        }
        bounds[2 * o] = base + xmin;
        bounds[2 * o + 1] = xmax < 0 ? 0 : xmax;
    }
    return ksize;
}

static int axis_ksize(float in0, float in1, int outsize) {
    double scale = (double)(in1 - in0) / outsize;
    return (int)ceil(scale < 1.0 ? 1.0 : scale) * 2 + 1;
}

/* The full-size span [p, p + len) of an axis of `full` pixels seen at 1/denom: the integer region
   PIL would have cropped and the fractional box inside it. At denom 1 that is exactly crop + resize. */
static void axis_map(int p, int len, int full, int denom, int *base, int *insize, float *in0, float *in1) {
    if (denom == 1) {
        *base = p, *insize = len, *in0 = 0.0f, *in1 = (float)len;
        return;
    }
    int scaled = image_scaled(full, denom);
    int lo = p / denom, hi = (p + len + denom - 1) / denom;
    if (hi > scaled) hi = scaled;
    *base = lo, *insize = hi - lo;
    *in0 = (float)((double)p / denom - lo);
    *in1 = (float)((double)(p + len) / denom - lo);
}

cnn_status transform_prepare(transform_ws *ws, const image_transform *t, const image_geometry *g, int W, int H,
                             int denom) {
    int base[2], insize[2];
    float in0[2], in1[2];
    axis_map(g->x, g->w, W, denom, &base[0], &insize[0], &in0[0], &in1[0]);
    axis_map(g->y, g->h, H, denom, &base[1], &insize[1], &in0[1], &in1[1]);
    int out[2] = {g->rw, g->rh}, first[2] = {g->ox, g->oy}, n = t->size;
    ws->ksize[0] = axis_ksize(in0[0], in1[0], out[0]);
    ws->ksize[1] = axis_ksize(in0[1], in1[1], out[1]);
    size_t ncoef = (size_t)n * (ws->ksize[0] + ws->ksize[1]);
    int ok = 1;
    ws->bounds = grow(ws->bounds, &ws->cap_bounds, sizeof(int) * 4 * n, &ok);
    ws->coef = grow(ws->coef, &ws->cap_coef, sizeof(int32_t) * ncoef, &ok);
    ws->dcoef = grow(ws->dcoef, &ws->cap_dcoef, sizeof(double) * ncoef, &ok);
    if (!ok) return cnn_fail(CNN_ERR_NOMEM, "out of memory for resampling coefficients");
    int32_t *cx = ws->coef, *cy = ws->coef + (size_t)n * ws->ksize[0];
    axis_coeffs(base[0], insize[0], in0[0], in1[0], out[0], first[0], n, ws->bounds, cx, ws->dcoef, ws->ksize[0]);
    axis_coeffs(base[1], insize[1], in0[1], in1[1], out[1], first[1], n, ws->bounds + 2 * n, cy, ws->dcoef, ws->ksize[1]);
    for (int a = 0; a < 2; a++) {
        const int *b = ws->bounds + 2 * n * a;
        int lo = b[0], hi = b[0] + b[1];
        for (int o = 1; o < n; o++) {
            if (b[2 * o] < lo) lo = b[2 * o];
            if (b[2 * o] + b[2 * o + 1] > hi) hi = b[2 * o] + b[2 * o + 1];
        }
        if (hi <= lo) hi = lo + 1;
        ws->rect[a] = lo;
        ws->rect[a + 2] = hi;
    }
    return CNN_OK;
}

/* ---- the two passes ---- */

static inline uint8_t clip8(int32_t v) {
    if (v >= (1 << PRECISION_BITS << 8)) return 255;
    if (v <= 0) return 0;
    return (uint8_t)(v >> PRECISION_BITS);
}

/* Rows [y0, y1) of the region, horizontally resampled into ws->rows (n pixels each). */
static void pass_horizontal(transform_ws *ws, const image_region *r, int ch, int n, int y0, int y1) {
    const int *bx = ws->bounds;
    const int32_t *cx = ws->coef;
    int ks = ws->ksize[0];
    for (int y = y0; y < y1; y++) {
        const uint8_t *src = r->px + (size_t)(y - r->y0) * r->stride;
        uint8_t *dst = ws->rows + (size_t)(y - y0) * n * ch;
        for (int o = 0; o < n; o++) {
            const uint8_t *s = src + (size_t)(bx[2 * o] - r->x0) * ch;
            const int32_t *k = cx + (size_t)o * ks;
            int cnt = bx[2 * o + 1];
            if (ch == 3) {
                int32_t a0 = 1 << (PRECISION_BITS - 1), a1 = a0, a2 = a0;
                for (int i = 0; i < cnt; i++) {
                    a0 += s[3 * i] * k[i];
                    a1 += s[3 * i + 1] * k[i];
                    a2 += s[3 * i + 2] * k[i];
                }
                dst[3 * o] = clip8(a0), dst[3 * o + 1] = clip8(a1), dst[3 * o + 2] = clip8(a2);
            } else {
                int32_t a0 = 1 << (PRECISION_BITS - 1);
                for (int i = 0; i < cnt; i++) a0 += s[i] * k[i];
                dst[o] = clip8(a0);
            }
        }
    }
}

/* Output rows from ws->rows (which start at source row y0), then ToTensor + Normalize by table. */
static void pass_vertical(transform_ws *ws, int ch, int n, int y0, int flip, float *out) {
    const int *by = ws->bounds + 2 * n;
    const int32_t *cy = ws->coef + (size_t)n * ws->ksize[0];
    int ks = ws->ksize[1], row = n * ch;
    int32_t *restrict acc = ws->acc;
    for (int o = 0; o < n; o++) {
        const int32_t *k = cy + (size_t)o * ks;
        const uint8_t *src = ws->rows + (size_t)(by[2 * o] - y0) * row;
        for (int x = 0; x < row; x++) acc[x] = 1 << (PRECISION_BITS - 1);
        for (int i = 0; i < by[2 * o + 1]; i++) {
            const uint8_t *restrict s = src + (size_t)i * row;
            int32_t kv = k[i];
#pragma omp simd
            for (int x = 0; x < row; x++) acc[x] += s[x] * kv;
        }
        for (int c = 0; c < ch; c++) {
            const float *lut = ws->lut[c];
            float *dst = out + ((size_t)c * n + o) * n;
            if (flip)
                for (int x = 0; x < n; x++) dst[n - 1 - x] = lut[clip8(acc[x * ch + c])];
            else
                for (int x = 0; x < n; x++) dst[x] = lut[clip8(acc[x * ch + c])];
        }
    }
}

void transform_run(transform_ws *ws, const image_transform *t, const image_geometry *g, const image_region *r,
                   float *out) {
    int ch = t->channels, n = t->size;
    pass_horizontal(ws, r, ch, n, ws->rect[1], ws->rect[3]);
    pass_vertical(ws, ch, n, ws->rect[1], g->flip, out);
}

static cnn_status ws_buffers(transform_ws *ws, const image_transform *t) {
    int ok = 1, n = t->size, ch = t->channels;
    ws->rows = grow(ws->rows, &ws->cap_rows, (size_t)(ws->rect[3] - ws->rect[1]) * n * ch, &ok);
    ws->acc = grow(ws->acc, &ws->cap_acc, sizeof(int32_t) * n * ch, &ok);
    if (!ok) return cnn_fail(CNN_ERR_NOMEM, "out of memory for resampling rows");
    data_normalize_lut(ch, t->mean, t->std, &ws->lut[0][0]);
    return CNN_OK;
}

/* Coefficients for g, the pixels it reads decoded by `decode` (or already in ws->region), the passes. */
static cnn_status transform_with(transform_ws *ws, const image_transform *t, const image_geometry *g, int W, int H,
                                 int denom, const image_region *pixels, const uint8_t *data, size_t n, const char *path,
                                 float *out) {
    if (g->x < 0 || g->y < 0 || g->w < 1 || g->h < 1 || g->x + g->w > W || g->y + g->h > H)
        return cnn_fail(CNN_ERR_ARG, "%s: crop (%d, %d, %d, %d) outside the %dx%d image", path, g->x, g->y, g->w, g->h,
                        W, H);
    CNN_TRY(transform_prepare(ws, t, g, W, H, denom));
    if (!pixels) CNN_TRY(image_decode(data, n, path, denom, ws->rect, t->channels, &ws->region));
    CNN_TRY(ws_buffers(ws, t));
    transform_run(ws, t, g, pixels ? pixels : &ws->region, out);
    return CNN_OK;
}

cnn_status transform_file(transform_ws *ws, const image_transform *t, const uint8_t *data, size_t n, const char *path,
                          uint64_t key, const image_geometry *given, float *out, image_geometry *used) {
    image_info info;
    CNN_TRY(image_probe(data, n, path, &info));
    image_geometry g;
    if (given) g = *given;
    else transform_geometry(t, info.w, info.h, key, &g);
    int denom = info.jpeg ? transform_denom(t, &g) : 1;
    CNN_TRY(transform_with(ws, t, &g, info.w, info.h, denom, NULL, data, n, path, out));
    if (used) *used = g;
    return CNN_OK;
}

cnn_status transform_pixels(transform_ws *ws, const image_transform *t, const image_region *r, uint64_t key,
                            float *out) {
    if (r->channels != t->channels || r->x0 || r->y0 || r->w != r->scaled_w || r->h != r->scaled_h)
        return cnn_fail(CNN_ERR_ARG, "transform: a whole image of %d channels expected", t->channels);
    image_geometry g;
    transform_geometry(t, r->w, r->h, key, &g);
    return transform_with(ws, t, &g, r->w, r->h, 1, r, NULL, 0, "image", out);
}

void transform_ws_free(transform_ws *ws) {
    free(ws->bounds);
    free(ws->coef);
    free(ws->dcoef);
    free(ws->rows);
    free(ws->acc);
    image_region_free(&ws->region);
    memset(ws, 0, sizeof *ws);
}
