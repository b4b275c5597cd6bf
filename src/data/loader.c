/* loader.c — worker threads claim runs of positions of the next batches (at most LOADER_RING
 * batches ahead of the consumer) and make their samples into the batch's slot; the consumer takes
 * slots in order. Every random choice comes from streams keyed by (seed, epoch, position), so the
 * batches do not depend on which worker made what, and an epoch can start at any batch. */
#define _POSIX_C_SOURCE 200809L
#include "data/loader.h"
#include "core/error.h"
#include "core/rng.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOADER_RING 3
#define LOADER_MAX_WORKERS 256

typedef struct loader_slot {
    int64_t k;            /* the batch held or being made; -1: none */
    int positions;        /* positions of batch k */
    int pending;          /* positions not made yet */
    int bad;              /* unreadable samples among them */
    cnn_status err;       /* a position could not be filled at all */
    char msg[512];
    float *images;        /* batch * sample floats */
    int32_t *labels;
    unsigned char *ok;    /* per position: a sample was made */
} loader_slot;

struct data_loader {
    loader_config cfg;
    const data_source *src;
    int64_t sample, batches;
    int64_t stride, offset;  /* batch k's positions start at k * stride + offset (sharding) */
    int chunk, nworkers;
    loader_slot slots[LOADER_RING];
    int32_t *perm;        /* the epoch's order (shuffle) */
    void **ws;            /* per worker */
    pthread_t *threads;
    int nthreads;
    pthread_mutex_t mu;
    pthread_cond_t work, ready, idle;
    uint64_t gen;         /* bumped by every loader_start_epoch: work of an older gen is dropped */
    int epoch, started, stop, busy;
    int64_t claim_k;      /* next positions to hand out: batch claim_k from offset claim_off */
    int claim_off;
    int64_t consume_k;    /* next batch for the consumer */
    int64_t seen, bad;    /* this pass, in the consumer's order */
};

typedef struct worker_arg {
    data_loader *l;
    void *ws;
} worker_arg;

static int64_t positions_of(const data_loader *l, int64_t k) {
    int64_t left = l->src->count - k * l->stride - l->offset;
    return left < l->cfg.batch ? left : l->cfg.batch;
}

static int64_t order(const data_loader *l, int64_t p) { return l->perm ? l->perm[p] : p; }

static void report_failure(data_loader *l, int64_t idx) {
    const data_source *s = l->src;
    if (s->reported && __atomic_exchange_n(&s->reported[idx], 1, __ATOMIC_RELAXED)) return;
    if (l->cfg.report) l->cfg.report(l->cfg.report_ctx, cnn_last_error());
    else fprintf(stderr, "cnn: skipping %s\n", cnn_last_error());
}

/* Makes the sample of position p into out. Returns 1 if made from p's own sample, 0 if that was
   unreadable (and, with fill_bad, replaced by a later one), -1 if no sample could be made. */
static int make_position(data_loader *l, void *ws, int epoch, int64_t p, float *out, int32_t *label) {
    const data_source *s = l->src;
    uint64_t key = rng_key(l->cfg.seed, RNG_AUGMENT, (uint64_t)(int64_t)epoch, (uint64_t)p);
    int64_t idx = order(l, p);
    if (s->load(s, idx, key, ws, out) == CNN_OK) {
        *label = s->labels[idx];
        return 1;
    }
    report_failure(l, idx);
    if (!l->cfg.fill_bad) return 0;
    int64_t scan = s->count - 1 < LOADER_FILL_SCAN ? s->count - 1 : LOADER_FILL_SCAN;
    for (int64_t q = 1; q <= scan; q++) {
        int64_t other = order(l, (p + q) % s->count);
        if (s->load(s, other, key, ws, out) == CNN_OK) {
            *label = s->labels[other];
            return 0;
        }
        report_failure(l, other);
    }
    cnn_fail(CNN_ERR_FORMAT, "no readable image among the %lld that follow an unreadable one in this epoch's order",
             (long long)scan);
    return -1;
}

/* Positions [p0, p1) of batch k into its slot; returns the number of bad ones. */
static int make_run(data_loader *l, void *ws, uint64_t gen, int epoch, int64_t k, int p0, int p1, cnn_status *err,
                    char *msg, size_t msglen) {
    loader_slot *slot = &l->slots[k % LOADER_RING];
    int bad = 0;
    for (int j = p0; j < p1; j++) {
        if (__atomic_load_n(&l->gen, __ATOMIC_RELAXED) != gen) break; /* restarted: the work is dropped */
        int r = make_position(l, ws, epoch, k * l->stride + l->offset + j, slot->images + j * l->sample,
                              slot->labels + j);
        slot->ok[j] = r >= 0 && (r == 1 || l->cfg.fill_bad);
        bad += r != 1;
        if (r < 0 && !*err) {
            *err = CNN_ERR_FORMAT;
            snprintf(msg, msglen, "%s", cnn_last_error());
        }
    }
    return bad;
}

static int has_work(const data_loader *l) {
    return l->started && l->claim_k < l->batches && l->claim_k < l->consume_k + LOADER_RING;
}

static void *loader_worker(void *arg) {
    data_loader *l = ((worker_arg *)arg)->l;
    void *ws = ((worker_arg *)arg)->ws;
    free(arg);
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stop && !has_work(l)) pthread_cond_wait(&l->work, &l->mu);
        if (l->stop) break;
        int64_t k = l->claim_k;
        loader_slot *slot = &l->slots[k % LOADER_RING];
        int npos = (int)positions_of(l, k), p0 = l->claim_off, p1 = p0 + l->chunk < npos ? p0 + l->chunk : npos;
        if (p0 == 0) {
            slot->k = k, slot->positions = slot->pending = npos, slot->bad = 0, slot->err = CNN_OK;
        }
        l->claim_off = p1;
        if (p1 == npos) l->claim_k++, l->claim_off = 0;
        uint64_t gen = l->gen;
        int epoch = l->epoch;
        l->busy++;
        pthread_mutex_unlock(&l->mu);
        cnn_status err = CNN_OK;
        char msg[512];
        int bad = make_run(l, ws, gen, epoch, k, p0, p1, &err, msg, sizeof msg);
        pthread_mutex_lock(&l->mu);
        if (--l->busy == 0) pthread_cond_broadcast(&l->idle);
        if (gen != l->gen) continue;
        slot->bad += bad;
        if (err && !slot->err) {
            slot->err = err;
            memcpy(slot->msg, msg, sizeof slot->msg);
        }
        slot->pending -= p1 - p0;
        if (slot->pending == 0) pthread_cond_signal(&l->ready);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static cnn_status loader_check(const loader_config *cfg) {
    const data_source *s = cfg->src;
    if (!s || s->count <= 0 || s->c <= 0 || s->h <= 0 || s->w <= 0 || !s->load || !s->labels)
        return cnn_fail(CNN_ERR_ARG, "loader: no data source, or an empty one");
    if (s->count > INT32_MAX)
        return cnn_fail(CNN_ERR_ARG, "loader: %lld samples, more than the %d a permutation holds", (long long)s->count,
                        INT32_MAX);
    if (cfg->batch <= 0) return cnn_fail(CNN_ERR_ARG, "loader: batch size %d, expected at least 1", cfg->batch);
    if (cfg->shards > 1 && (cfg->shard < 0 || cfg->shard >= cfg->shards))
        return cnn_fail(CNN_ERR_ARG, "loader: shard %d of %d", cfg->shard, cfg->shards);
    if (cfg->workers > LOADER_MAX_WORKERS)
        return cnn_fail(CNN_ERR_ARG, "loader: %d workers, at most %d", cfg->workers, LOADER_MAX_WORKERS);
    return CNN_OK;
}

static cnn_status loader_alloc(data_loader *l) {
    const data_source *s = l->src;
    int b = l->cfg.batch;
    for (int i = 0; i < LOADER_RING; i++) {
        loader_slot *slot = &l->slots[i];
        slot->k = -1;
        slot->images = malloc(sizeof(float) * (size_t)b * l->sample);
        slot->labels = malloc(sizeof(int32_t) * (size_t)b);
        slot->ok = malloc((size_t)b);
        if (!slot->images || !slot->labels || !slot->ok)
            return cnn_fail(CNN_ERR_NOMEM, "loader: out of memory for a ring of %d batches of %d x %lld floats",
                            LOADER_RING, b, (long long)l->sample);
    }
    if (l->cfg.shuffle && !(l->perm = malloc(sizeof(int32_t) * (size_t)s->count)))
        return cnn_fail(CNN_ERR_NOMEM, "loader: out of memory for a permutation of %lld", (long long)s->count);
    l->ws = calloc((size_t)l->nworkers, sizeof *l->ws);
    l->threads = calloc((size_t)l->nworkers, sizeof *l->threads);
    if (!l->ws || !l->threads) return cnn_fail(CNN_ERR_NOMEM, "loader: out of memory");
    for (int i = 0; i < l->nworkers && s->ws_new; i++)
        if (!(l->ws[i] = s->ws_new(s))) return cnn_fail(CNN_ERR_NOMEM, "loader: out of memory for worker workspaces");
    return CNN_OK;
}

cnn_status loader_create(const loader_config *cfg, data_loader **out) {
    *out = NULL;
    CNN_TRY(loader_check(cfg));
    data_loader *l = calloc(1, sizeof *l);
    if (!l) return cnn_fail(CNN_ERR_NOMEM, "loader: out of memory");
    l->cfg = *cfg;
    l->src = cfg->src;
    l->sample = (int64_t)l->src->c * l->src->h * l->src->w;
    int64_t count = l->src->count, shards = cfg->shards > 1 ? cfg->shards : 1;
    l->stride = cfg->batch * shards;
    l->offset = cfg->shards > 1 ? (int64_t)cfg->shard * cfg->batch : 0;
    l->batches = cfg->drop_last ? count / l->stride
                 : count > l->offset ? (count - l->offset + l->stride - 1) / l->stride : 0;
    l->nworkers = cfg->workers > 0 ? cfg->workers : 1;
    /* runs short enough that all workers share a batch, long enough to keep locking rare */
    l->chunk = cfg->batch / (4 * l->nworkers);
    l->chunk = l->chunk < 1 ? 1 : l->chunk > 32 ? 32 : l->chunk;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->work, NULL);
    pthread_cond_init(&l->ready, NULL);
    pthread_cond_init(&l->idle, NULL);
    cnn_status st = loader_alloc(l);
    for (int i = 0; i < l->nworkers && !st; i++) {
        worker_arg *a = malloc(sizeof *a);
        int err = a ? 0 : -1;
        if (a) {
            *a = (worker_arg){l, l->ws[i]};
            err = pthread_create(&l->threads[i], NULL, loader_worker, a);
            if (err) free(a);
        }
        if (err) st = cnn_fail(CNN_ERR_INTERNAL, "loader: cannot start worker thread %d (error %d)", i, err);
        else l->nthreads++;
    }
    if (st) {
        loader_destroy(l);
        return st;
    }
    *out = l;
    return CNN_OK;
}

void loader_start_epoch(data_loader *l, int epoch, int64_t first_batch) {
    if (first_batch < 0) first_batch = 0;
    if (first_batch > l->batches) first_batch = l->batches;
    pthread_mutex_lock(&l->mu);
    __atomic_add_fetch(&l->gen, 1, __ATOMIC_RELAXED); /* workers poll it between samples */
    l->started = 0;
    while (l->busy > 0) pthread_cond_wait(&l->idle, &l->mu); /* nobody writes slots or reads perm now */
    if (l->perm) {
        for (int64_t i = 0; i < l->src->count; i++) l->perm[i] = (int32_t)i;
        rng r = rng_stream(rng_key(l->cfg.seed, RNG_SHUFFLE, (uint64_t)(int64_t)epoch, 0));
        rng_shuffle(&r, l->perm, l->src->count);
    }
    for (int i = 0; i < LOADER_RING; i++) l->slots[i].k = -1;
    l->epoch = epoch;
    l->claim_k = l->consume_k = first_batch;
    l->claim_off = 0;
    l->seen = l->bad = 0;
    l->started = 1;
    pthread_cond_broadcast(&l->work);
    pthread_mutex_unlock(&l->mu);
}

int64_t loader_batches_per_epoch(const data_loader *l) { return l->batches; }

int64_t loader_bad_count(const data_loader *l) { return l->bad; }

/* Copies the made samples of a finished slot; returns how many. */
static int take_slot(data_loader *l, const loader_slot *slot, float *images, int32_t *labels) {
    int m = 0;
    for (int j = 0; j < slot->positions; j++) {
        if (!slot->ok[j]) continue;
        if (m != j || images != slot->images)
            memcpy(images + m * l->sample, slot->images + j * l->sample, sizeof(float) * l->sample);
        labels[m++] = slot->labels[j];
    }
    return m;
}

cnn_status loader_next(data_loader *l, float *images, int32_t *labels, int *n) {
    *n = 0;
    for (;;) {
        pthread_mutex_lock(&l->mu);
        if (!l->started || l->consume_k >= l->batches) {
            pthread_mutex_unlock(&l->mu);
            return CNN_OK;
        }
        loader_slot *slot = &l->slots[l->consume_k % LOADER_RING];
        while (!(slot->k == l->consume_k && slot->pending == 0)) pthread_cond_wait(&l->ready, &l->mu);
        pthread_mutex_unlock(&l->mu);
        /* no worker touches this slot before consume_k moves past it */
        if (slot->err) return cnn_fail(slot->err, "%s", slot->msg);
        int m = take_slot(l, slot, images, labels);
        l->seen += slot->positions;
        l->bad += slot->bad;
        pthread_mutex_lock(&l->mu);
        int end = ++l->consume_k >= l->batches;
        pthread_cond_broadcast(&l->work);
        pthread_mutex_unlock(&l->mu);
        if (2 * l->bad > l->seen && (l->seen >= LOADER_BAD_MIN || end))
            return cnn_fail(CNN_ERR_FORMAT, "%lld of the %lld images read so far in this pass are unreadable (more than "
                                            "half): stopping", (long long)l->bad, (long long)l->seen);
        if (m > 0 || end) {
            *n = m;
            return CNN_OK;
        }
    }
}

void loader_destroy(data_loader *l) {
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->work);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->nthreads; i++) pthread_join(l->threads[i], NULL);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->work);
    pthread_cond_destroy(&l->ready);
    pthread_cond_destroy(&l->idle);
    for (int i = 0; i < l->nworkers && l->ws; i++)
        if (l->ws[i] && l->src->ws_free) l->src->ws_free(l->ws[i]);
    for (int i = 0; i < LOADER_RING; i++) free(l->slots[i].images), free(l->slots[i].labels), free(l->slots[i].ok);
    free(l->ws);
    free(l->threads);
    free(l->perm);
    free(l);
}

int data_default_workers(bool files) {
    if (!files) return 1;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 8 ? 8 : (int)n;
}
