/* loader.c — one producer thread fills a ring of LOADER_RING batches ahead of the consumer.
 * Every random choice comes from counter-based streams keyed by (seed, epoch, position), so the
 * batches do not depend on when the producer runs, and an epoch can start at any batch. */
#define _POSIX_C_SOURCE 200809L
#include "data/loader.h"
#include "core/error.h"
#include "core/rng.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define LOADER_RING 3

struct data_loader {
    loader_config cfg;   /* mean and std pointers cleared: the LUT holds them */
    int64_t sample;      /* c*h*w */
    int64_t batches;     /* per epoch */
    float *lut;          /* [c][256]: normalized value of each pixel byte per channel */
    /* producer-only state */
    int32_t *perm;       /* the permutation of perm_epoch */
    int perm_epoch, perm_valid;
    float *ring_images;  /* LOADER_RING slots of batch*sample floats */
    int32_t *ring_labels;
    /* shared, under mu */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work, ready;
    int ring_n[LOADER_RING];
    uint64_t gen;        /* bumped by every loader_start_epoch: a fill of an older gen is ignored */
    int epoch, started, stop;
    int64_t produce_k;   /* next batch to fill */
    int64_t ready_k;     /* batches [.., ready_k) of this gen are in the ring */
    int64_t consume_k;   /* next batch to hand out */
};

static void loader_permute(data_loader *l, int epoch) {
    for (int64_t i = 0; i < l->cfg.count; i++) l->perm[i] = (int32_t)i;
    rng r = rng_stream(rng_key(l->cfg.seed, RNG_SHUFFLE, (uint64_t)(int64_t)epoch, 0));
    rng_shuffle(&r, l->perm, l->cfg.count);
    l->perm_epoch = epoch;
    l->perm_valid = 1;
}

/* torchvision's RandomCrop(padding=p) then RandomHorizontalFlip then ToTensor + Normalize:
   output (y, x) reads padded (y + dy, x + dx), mirrored in x when flipped; padding is pixel 0. */
static void loader_write_sample(const data_loader *l, const uint8_t *src, float *dst, int dy, int dx, int flip) {
    const data_set *ds = l->cfg.ds;
    int h = ds->h, w = ds->w, p = l->cfg.crop_pad;
    int oy = dy - p, ox = dx - p;
    for (int ch = 0; ch < ds->c; ch++) {
        const float *lut = l->lut + ch * 256;
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

/* Fills batch k of `epoch` into (images, labels); returns its number of images. */
static int loader_fill(data_loader *l, int epoch, int64_t k, float *images, int32_t *labels) {
    const loader_config *cfg = &l->cfg;
    const data_set *ds = cfg->ds;
    if (cfg->shuffle && !(l->perm_valid && l->perm_epoch == epoch)) loader_permute(l, epoch);
    int64_t start = k * cfg->batch;
    int n = (int)(cfg->count - start < cfg->batch ? cfg->count - start : cfg->batch);
    uint32_t span = 2u * (uint32_t)cfg->crop_pad + 1;
    for (int i = 0; i < n; i++) {
        int64_t pos = start + i;
        int64_t idx = cfg->first + (cfg->shuffle ? l->perm[pos] : pos);
        rng r = rng_stream(rng_key(cfg->seed, RNG_AUGMENT, (uint64_t)(int64_t)epoch, (uint64_t)pos));
        int dy = cfg->crop_pad, dx = cfg->crop_pad, flip = 0;
        if (cfg->crop_pad > 0) {
            dy = (int)rng_below(&r, span);
            dx = (int)rng_below(&r, span);
        }
        if (cfg->flip) flip = rng_uniform(&r) < 0.5f;
        labels[i] = ds->labels[idx];
        loader_write_sample(l, ds->pixels + idx * l->sample, images + i * l->sample, dy, dx, flip);
    }
    return n;
}

static int loader_has_work(const data_loader *l) {
    return l->started && l->produce_k < l->batches && l->produce_k < l->consume_k + LOADER_RING;
}

static void *loader_thread(void *arg) {
    data_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stop && !loader_has_work(l)) pthread_cond_wait(&l->work, &l->mu);
        if (l->stop) break;
        int64_t k = l->produce_k++;
        uint64_t gen = l->gen;
        int epoch = l->epoch, slot = (int)(k % LOADER_RING);
        pthread_mutex_unlock(&l->mu);
        int n = loader_fill(l, epoch, k, l->ring_images + (int64_t)slot * l->cfg.batch * l->sample,
                            l->ring_labels + (int64_t)slot * l->cfg.batch);
        pthread_mutex_lock(&l->mu);
        if (gen == l->gen) {
            l->ring_n[slot] = n;
            l->ready_k = k + 1;
            pthread_cond_signal(&l->ready);
        }
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static cnn_status loader_check(const loader_config *cfg) {
    const data_set *ds = cfg->ds;
    if (!ds || !ds->pixels || !ds->labels || ds->c <= 0 || ds->h <= 0 || ds->w <= 0)
        return cnn_fail(CNN_ERR_ARG, "loader: no data set, or an empty one");
    if (cfg->first < 0 || cfg->count <= 0 || cfg->first > ds->n - cfg->count)
        return cnn_fail(CNN_ERR_ARG, "loader: images [%lld, %lld) are not within the data set's %lld",
                        (long long)cfg->first, (long long)(cfg->first + cfg->count), (long long)ds->n);
    if (cfg->count > INT32_MAX)
        return cnn_fail(CNN_ERR_ARG, "loader: %lld images, more than the %d a permutation holds",
                        (long long)cfg->count, INT32_MAX);
    if (cfg->batch <= 0) return cnn_fail(CNN_ERR_ARG, "loader: batch size %d, expected at least 1", cfg->batch);
    if (cfg->crop_pad < 0 || cfg->crop_pad > 65535)
        return cnn_fail(CNN_ERR_ARG, "loader: crop padding %d, expected 0..65535", cfg->crop_pad);
    for (int ch = 0; ch < ds->c; ch++)
        if (cfg->std && !(cfg->std[ch] > 0.0f))
            return cnn_fail(CNN_ERR_ARG, "loader: std of channel %d is %g, expected > 0", ch, (double)cfg->std[ch]);
    return CNN_OK;
}

cnn_status loader_create(const loader_config *cfg, data_loader **out) {
    *out = NULL;
    CNN_TRY(loader_check(cfg));
    const data_set *ds = cfg->ds;
    data_loader *l = calloc(1, sizeof *l);
    if (!l) return cnn_fail(CNN_ERR_NOMEM, "loader: out of memory");
    l->cfg = *cfg;
    l->cfg.mean = l->cfg.std = NULL;
    l->sample = (int64_t)ds->c * ds->h * ds->w;
    l->batches = cfg->drop_last ? cfg->count / cfg->batch : (cfg->count + cfg->batch - 1) / cfg->batch;
    l->lut = malloc((size_t)ds->c * 256 * sizeof *l->lut);
    l->perm = cfg->shuffle ? malloc((size_t)cfg->count * sizeof *l->perm) : NULL;
    l->ring_images = malloc((size_t)LOADER_RING * cfg->batch * l->sample * sizeof *l->ring_images);
    l->ring_labels = malloc((size_t)LOADER_RING * cfg->batch * sizeof *l->ring_labels);
    if (!l->lut || (cfg->shuffle && !l->perm) || !l->ring_images || !l->ring_labels) {
        int64_t sample = l->sample;
        free(l->lut), free(l->perm), free(l->ring_images), free(l->ring_labels), free(l);
        return cnn_fail(CNN_ERR_NOMEM, "loader: out of memory for a ring of %d batches of %d x %lld floats",
                        LOADER_RING, cfg->batch, (long long)sample);
    }
    /* Same float operations as ToTensor (v / 255) then Normalize ((x - mean) / std). */
    for (int ch = 0; ch < ds->c; ch++) {
        float m = cfg->mean ? cfg->mean[ch] : 0.0f, s = cfg->std ? cfg->std[ch] : 1.0f;
        for (int v = 0; v < 256; v++) l->lut[ch * 256 + v] = ((float)v / 255.0f - m) / s;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->work, NULL);
    pthread_cond_init(&l->ready, NULL);
    int err = pthread_create(&l->thread, NULL, loader_thread, l);
    if (err != 0) {
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->work);
        pthread_cond_destroy(&l->ready);
        free(l->lut), free(l->perm), free(l->ring_images), free(l->ring_labels), free(l);
        return cnn_fail(CNN_ERR_INTERNAL, "loader: cannot start the prefetch thread (error %d)", err);
    }
    *out = l;
    return CNN_OK;
}

void loader_start_epoch(data_loader *l, int epoch, int64_t first_batch) {
    if (first_batch < 0) first_batch = 0;
    if (first_batch > l->batches) first_batch = l->batches;
    pthread_mutex_lock(&l->mu);
    l->gen++;
    l->epoch = epoch;
    l->started = 1;
    l->produce_k = l->ready_k = l->consume_k = first_batch;
    pthread_cond_signal(&l->work);
    pthread_mutex_unlock(&l->mu);
}

int64_t loader_batches_per_epoch(const data_loader *l) { return l->batches; }

int loader_next(data_loader *l, float *images, int32_t *labels) {
    pthread_mutex_lock(&l->mu);
    if (!l->started || l->consume_k >= l->batches) {
        pthread_mutex_unlock(&l->mu);
        return 0;
    }
    while (l->ready_k <= l->consume_k) pthread_cond_wait(&l->ready, &l->mu);
    int slot = (int)(l->consume_k % LOADER_RING), n = l->ring_n[slot];
    pthread_mutex_unlock(&l->mu);
    /* The producer never refills this slot before consume_k moves past it. */
    memcpy(images, l->ring_images + (int64_t)slot * l->cfg.batch * l->sample, (size_t)n * l->sample * sizeof *images);
    memcpy(labels, l->ring_labels + (int64_t)slot * l->cfg.batch, (size_t)n * sizeof *labels);
    pthread_mutex_lock(&l->mu);
    l->consume_k++;
    pthread_cond_signal(&l->work);
    pthread_mutex_unlock(&l->mu);
    return n;
}

void loader_destroy(data_loader *l) {
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_signal(&l->work);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->work);
    pthread_cond_destroy(&l->ready);
    free(l->lut);
    free(l->perm);
    free(l->ring_images);
    free(l->ring_labels);
    free(l);
}
