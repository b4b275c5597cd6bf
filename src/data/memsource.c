/* memsource.c — an in-memory data set (uint8 CHW images) as a data source: random crop after zero
 * padding, horizontal flip and normalization by table, as torchvision's CIFAR transforms do. */
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/rng.h"
#include "data/source.h"

typedef struct memory_source {
    data_source base;
    const data_set *ds;
    int64_t first, sample;
    int crop_pad, flip;
    float *lut;                  /* [c][256] */
} memory_source;

void data_normalize_lut(int channels, const float *mean, const float *std, float *lut) {
    for (int ch = 0; ch < channels; ch++) {
        float m = mean ? mean[ch] : 0.0f, s = std ? std[ch] : 1.0f;
        for (int v = 0; v < 256; v++) lut[ch * 256 + v] = ((float)v / 255.0f - m) / s;
    }
}

void source_free(data_source *s) {
    if (s) s->destroy(s);
}

/* torchvision's RandomCrop(padding=p) then RandomHorizontalFlip then ToTensor + Normalize:
   output (y, x) reads padded (y + dy, x + dx), mirrored in x when flipped; padding is pixel 0. */
static void write_sample(const memory_source *m, const uint8_t *src, float *dst, int dy, int dx, int flip) {
    const data_set *ds = m->ds;
    int h = ds->h, w = ds->w, p = m->crop_pad;
    int oy = dy - p, ox = dx - p;
    for (int ch = 0; ch < ds->c; ch++) {
        const float *lut = m->lut + ch * 256;
        const uint8_t *plane = src + (int64_t)ch * h * w;
        float *out = dst + (int64_t)ch * h * w;
        for (int y = 0; y < h; y++, out += w) {
            int sy = y + oy;
            if (sy < 0 || sy >= h) {
                for (int x = 0; x < w; x++) out[x] = lut[0];
                continue;
            }
            const uint8_t *row = plane + (int64_t)sy * w;
            if (!flip && ox == 0) {
                for (int x = 0; x < w; x++) out[x] = lut[row[x]];
                continue;
            }
            for (int x = 0; x < w; x++) {
                int sx = (flip ? w - 1 - x : x) + ox;
                out[x] = sx >= 0 && sx < w ? lut[row[sx]] : lut[0];
            }
        }
    }
}

static cnn_status memory_load(const data_source *s, int64_t i, uint64_t key, void *ws, float *out) {
    const memory_source *m = (const memory_source *)s;
    rng r = rng_stream(key);
    int dy = m->crop_pad, dx = m->crop_pad, flip = 0;
    if (m->crop_pad > 0) {
        uint32_t span = 2u * (uint32_t)m->crop_pad + 1;
        dy = (int)rng_below(&r, span);
        dx = (int)rng_below(&r, span);
    }
    if (m->flip) flip = rng_uniform(&r) < 0.5f;
    write_sample(m, m->ds->pixels + (m->first + i) * m->sample, out, dy, dx, flip);
    return CNN_OK;
}

static void memory_destroy(data_source *s) {
    memory_source *m = (memory_source *)s;
    free(m->lut);
    free(m);
}

cnn_status memory_source_create(const data_set *ds, int64_t first, int64_t count, int crop_pad, int flip,
                                const float *mean, const float *std, data_source **out) {
    *out = NULL;
    if (!ds || !ds->pixels || !ds->labels || ds->c <= 0 || ds->h <= 0 || ds->w <= 0)
        return cnn_fail(CNN_ERR_ARG, "data source: no data set, or an empty one");
    if (first < 0 || count <= 0 || first > ds->n - count)
        return cnn_fail(CNN_ERR_ARG, "data source: images [%lld, %lld) are not within the data set's %lld",
                        (long long)first, (long long)(first + count), (long long)ds->n);
    if (crop_pad < 0 || crop_pad > 65535)
        return cnn_fail(CNN_ERR_ARG, "data source: crop padding %d, expected 0..65535", crop_pad);
    for (int ch = 0; ch < ds->c; ch++)
        if (std && !(std[ch] > 0.0f))
            return cnn_fail(CNN_ERR_ARG, "data source: std of channel %d is %g, expected > 0", ch, (double)std[ch]);
    memory_source *m = calloc(1, sizeof *m);
    float *lut = malloc(sizeof(float) * 256 * ds->c);
    if (!m || !lut) {
        free(m), free(lut);
        return cnn_fail(CNN_ERR_NOMEM, "data source: out of memory");
    }
    data_normalize_lut(ds->c, mean, std, lut);
    m->base = (data_source){.count = count, .c = ds->c, .h = ds->h, .w = ds->w, .labels = ds->labels + first,
                            .num_classes = ds->num_classes, .class_names = ds->class_names, .load = memory_load,
                            .destroy = memory_destroy};
    m->ds = ds;
    m->first = first;
    m->sample = (int64_t)ds->c * ds->h * ds->w;
    m->crop_pad = crop_pad;
    m->flip = flip;
    m->lut = lut;
    *out = &m->base;
    return CNN_OK;
}
