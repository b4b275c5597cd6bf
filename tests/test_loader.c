/* test_loader.c — the batch loader on small in-memory sets: normalization, order, permutations,
 * determinism across restarts, thread timing and worker counts, crop and flip semantics, epoch
 * ends; unreadable samples (a source failing on chosen indices): skipped or replaced, counted,
 * reported once, and the "more than half" stop; data_channel_stats against hand-computed values. */
#include "core/error.h"
#include "core/rng.h"
#include "data/loader.h"
#include "testutil.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


/* ---- data_channel_stats ---- */

static void test_stats(void) {
    /* 3 images, 2 channels of 1x2: image i = {ch0 pixels, ch1 pixels} */
    uint8_t px[3][2][2] = {{{0, 255}, {51, 51}}, {{255, 0}, {51, 51}}, {{10, 20}, {0, 255}}};
    int32_t labels[3] = {0, 0, 0};
    data_set ds = {3, 2, 1, 2, &px[0][0][0], labels, 1, NULL};
    float mean[2], std[2];
    /* images 0..1: ch0 {0,255,255,0}/255: mean 0.5, std 0.5; ch1 all 51/255 = 0.2: std 0 */
    data_channel_stats(&ds, 0, 2, mean, std);
    CHECK(fabsf(mean[0] - 0.5f) < 1e-6f && fabsf(std[0] - 0.5f) < 1e-6f, "ch0 %g %g", mean[0], std[0]);
    CHECK(fabsf(mean[1] - 0.2f) < 1e-6f && fabsf(std[1]) < 1e-6f, "ch1 %g %g", mean[1], std[1]);
    /* images 1..2, two-pass by hand: ch0 {255,0,10,20}: mean 71.25; ch1 {51,51,0,255}: mean 89.25 */
    double m0 = 71.25, m1 = 89.25;
    double v0 = ((255 - m0) * (255 - m0) + (0 - m0) * (0 - m0) + (10 - m0) * (10 - m0) + (20 - m0) * (20 - m0)) / 4;
    double v1 = ((51 - m1) * (51 - m1) * 2 + (0 - m1) * (0 - m1) + (255 - m1) * (255 - m1)) / 4;
    data_channel_stats(&ds, 1, 2, mean, std);
    CHECK(fabs(mean[0] - m0 / 255) < 1e-6 && fabs(std[0] - sqrt(v0) / 255) < 1e-6, "ch0 %g %g, expected %g %g",
          mean[0], std[0], m0 / 255, sqrt(v0) / 255);
    CHECK(fabs(mean[1] - m1 / 255) < 1e-6 && fabs(std[1] - sqrt(v1) / 255) < 1e-6, "ch1 %g %g, expected %g %g",
          mean[1], std[1], m1 / 255, sqrt(v1) / 255);
}

/* ---- the test set: N images of C x H x W, pixel j of image i = 1 + (7 i + j) mod 250 (never 0,
   distinct within an image), label i ---- */

enum { N = 10, C = 2, H = 4, W = 5, S = C * H * W };

static uint8_t set_pixels[N * S];
static int32_t set_labels[N];
static data_set set = {N, C, H, W, set_pixels, set_labels, N, NULL};

static int pix(int i, int ch, int y, int x) { return 1 + (7 * i + (ch * H + y) * W + x) % 250; }

static void make_set(void) {
    for (int i = 0; i < N; i++) {
        set_labels[i] = i;
        for (int ch = 0; ch < C; ch++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) set_pixels[i * S + (ch * H + y) * W + x] = (uint8_t)pix(i, ch, y, x);
    }
}

/* The memory source's parameters and the loader's together. */
typedef struct test_cfg {
    const data_set *ds;
    int64_t first, count;
    int batch, shuffle, drop_last, crop_pad, flip;
    const float *mean, *std;
    uint64_t seed;
    int workers;
} test_cfg;

static test_cfg base_config(int batch) {
    test_cfg cfg = {&set, 0, N, batch, 0, 0, 0, 0, NULL, NULL, 1234, 1};
    return cfg;
}

/* Sources of the loaders made, freed at the end. */
static data_source *sources[512];
static int nsources;

static cnn_status try_loader(const test_cfg *t, data_loader **l) {
    data_source *src;
    *l = NULL;
    CNN_TRY(memory_source_create(t->ds, t->first, t->count, t->crop_pad, t->flip, t->mean, t->std, &src));
    sources[nsources++ % 512] = src;
    loader_config cfg = {.src = src, .batch = t->batch, .shuffle = t->shuffle, .drop_last = t->drop_last,
                         .workers = t->workers, .seed = t->seed};
    return loader_create(&cfg, l);
}

static int next(data_loader *l, float *img, int32_t *lab) {
    int n;
    cnn_status st = loader_next(l, img, lab, &n);
    CHECK(st == CNN_OK, "loader_next: %s", cnn_last_error());
    return st ? -1 : n;
}

/* One epoch's output, all batches concatenated. */
typedef struct epoch_out {
    int nbatches, sizes[128];
    int total;
    float images[128 * S];
    int32_t labels[128];
} epoch_out;

static data_loader *make_loader(const test_cfg *cfg) {
    data_loader *l = NULL;
    cnn_status st = try_loader(cfg, &l);
    if (st != CNN_OK) {
        fprintf(stderr, "loader_create: %s\n", cnn_last_error());
        exit(1);
    }
    return l;
}

/* Reads from the current position to the end of the epoch (at most max_batches). */
static void drain(data_loader *l, epoch_out *o, int max_batches) {
    memset(o, 0, sizeof *o);
    static float img[16 * S];
    static int32_t lab[16];
    for (int b = 0; b < max_batches; b++) {
        int n = next(l, img, lab);
        if (n <= 0) break;
        o->sizes[o->nbatches++] = n;
        memcpy(o->images + (size_t)o->total * S, img, (size_t)n * S * sizeof(float));
        memcpy(o->labels + o->total, lab, (size_t)n * sizeof(int32_t));
        o->total += n;
    }
}

static void run_epoch(const test_cfg *cfg, int epoch, epoch_out *o) {
    data_loader *l = make_loader(cfg);
    loader_start_epoch(l, epoch, 0);
    drain(l, o, 64);
    loader_destroy(l);
}

/* out equals image i exactly, with mean 0 and std 1 (ToTensor's v / 255). */
static int is_image(const float *out, int i) {
    for (int ch = 0; ch < C; ch++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                if (out[(ch * H + y) * W + x] != (float)pix(i, ch, y, x) / 255.0f) return 0;
    return 1;
}

static void test_normalize(void) {
    uint8_t px[6] = {0, 51, 255, 0, 51, 255}; /* 1 image, 2 channels of 1x3 */
    int32_t lab[1] = {0};
    data_set ds = {1, 2, 1, 3, px, lab, 1, NULL};
    float mean[2] = {0.5f, 0.2f}, std[2] = {0.5f, 0.25f};
    test_cfg cfg = {&ds, 0, 1, 1, 0, 0, 0, 0, mean, std, 7, 1};
    /* (v/255 - mean) / std by hand: ch0 (0-.5)/.5, (.2-.5)/.5, (1-.5)/.5; ch1 (0-.2)/.25, 0, (1-.2)/.25 */
    const float want[6] = {-1.0f, -0.6f, 1.0f, -0.8f, 0.0f, 3.2f};
    data_loader *l = make_loader(&cfg);
    CHECK(loader_batches_per_epoch(l) == 1, "batches %lld", (long long)loader_batches_per_epoch(l));
    float out[6];
    int32_t ol[1];
    CHECK(next(l, out, ol) == 0, "a batch before any epoch started");
    loader_start_epoch(l, 0, 0);
    CHECK(next(l, out, ol) == 1, "one image");
    for (int j = 0; j < 6; j++) CHECK(fabsf(out[j] - want[j]) < 1e-6f, "value %d: %.8f, expected %.8f", j, out[j], want[j]);
    CHECK(next(l, out, ol) == 0, "end of epoch");
    CHECK(next(l, out, ol) == 0, "still the end");
    loader_destroy(l);
}

static void test_order_and_ends(void) {
    epoch_out o;
    test_cfg cfg = base_config(4);
    run_epoch(&cfg, 0, &o);
    CHECK(o.nbatches == 3 && o.sizes[0] == 4 && o.sizes[1] == 4 && o.sizes[2] == 2, "short last batch: %d batches",
          o.nbatches);
    for (int i = 0; i < o.total; i++)
        CHECK(o.labels[i] == i && is_image(o.images + i * S, i), "in order: position %d holds %d", i, o.labels[i]);

    cfg.drop_last = 1;
    data_loader *l = make_loader(&cfg);
    CHECK(loader_batches_per_epoch(l) == 2, "drop_last batches %lld", (long long)loader_batches_per_epoch(l));
    loader_destroy(l);
    run_epoch(&cfg, 0, &o);
    CHECK(o.nbatches == 2 && o.total == 8, "drop_last: %d batches, %d images", o.nbatches, o.total);

    cfg.batch = 5; /* exact division: drop_last changes nothing */
    run_epoch(&cfg, 0, &o);
    CHECK(o.nbatches == 2 && o.total == 10, "batch 5 drop_last: %d batches", o.nbatches);

    cfg = base_config(2);
    cfg.first = 3, cfg.count = 5;
    run_epoch(&cfg, 0, &o);
    CHECK(o.nbatches == 3 && o.sizes[2] == 1, "subrange: %d batches", o.nbatches);
    for (int i = 0; i < o.total; i++)
        CHECK(o.labels[i] == 3 + i && is_image(o.images + i * S, 3 + i), "subrange position %d holds %d", i, o.labels[i]);

    cfg = base_config(16); /* a batch bigger than the set */
    run_epoch(&cfg, 0, &o);
    CHECK(o.nbatches == 1 && o.sizes[0] == N, "one short batch of all");
    cfg.drop_last = 1;
    run_epoch(&cfg, 0, &o);
    CHECK(o.nbatches == 0, "drop_last with batch > count: %d batches", o.nbatches);
}

static int same(const epoch_out *a, const epoch_out *b) {
    return a->total == b->total && a->nbatches == b->nbatches &&
           !memcmp(a->images, b->images, (size_t)a->total * S * sizeof(float)) &&
           !memcmp(a->labels, b->labels, (size_t)a->total * sizeof(int32_t));
}

static void test_shuffle(void) {
    test_cfg cfg = base_config(3);
    cfg.shuffle = 1;
    epoch_out e0, e1, again;
    run_epoch(&cfg, 0, &e0);
    run_epoch(&cfg, 1, &e1);
    for (int e = 0; e < 2; e++) {
        const epoch_out *o = e ? &e1 : &e0;
        int seen[N] = {0};
        for (int i = 0; i < o->total; i++) {
            int lab = o->labels[i];
            CHECK(lab >= 0 && lab < N && is_image(o->images + i * S, lab), "epoch %d position %d: image does not match label %d", e, i, lab);
            if (lab >= 0 && lab < N) seen[lab]++;
        }
        for (int i = 0; i < N; i++) CHECK(seen[i] == 1, "epoch %d: image %d served %d times", e, i, seen[i]);
        /* the permutation is the one the spec names: rng_shuffle on rng_key(seed, RNG_SHUFFLE, epoch, 0) */
        int32_t perm[N];
        for (int i = 0; i < N; i++) perm[i] = i;
        rng r = rng_stream(rng_key(cfg.seed, RNG_SHUFFLE, (uint64_t)e, 0));
        rng_shuffle(&r, perm, N);
        for (int i = 0; i < N; i++) CHECK(o->labels[i] == perm[i], "epoch %d position %d: %d, expected %d", e, i, o->labels[i], perm[i]);
    }
    CHECK(memcmp(e0.labels, e1.labels, sizeof e0.labels) != 0, "epochs 0 and 1 have the same order");
    run_epoch(&cfg, 0, &again);
    CHECK(same(&e0, &again), "same seed, different batches");
    cfg.seed = 99;
    run_epoch(&cfg, 0, &again);
    CHECK(memcmp(e0.labels, again.labels, sizeof e0.labels) != 0, "another seed, same order");
}

/* Which (oy, ox, flip) makes out a crop of image i: out(ch,y,x) = padded(y + oy, x' + ox) with
   x' = flip ? W-1-x : x, zero outside the image. Returns the number of matches (want exactly 1). */
static int find_crop(const float *out, int i, int pad, int *oy_out, int *ox_out, int *flip_out) {
    int matches = 0;
    for (int flip = 0; flip < 2; flip++)
        for (int oy = -pad; oy <= pad; oy++)
            for (int ox = -pad; ox <= pad; ox++) {
                int ok = 1;
                for (int ch = 0; ch < C && ok; ch++)
                    for (int y = 0; y < H && ok; y++)
                        for (int x = 0; x < W && ok; x++) {
                            int sy = y + oy, sx = (flip ? W - 1 - x : x) + ox;
                            int v = sy >= 0 && sy < H && sx >= 0 && sx < W ? pix(i, ch, sy, sx) : 0;
                            ok = out[(ch * H + y) * W + x] == (float)v / 255.0f;
                        }
                if (ok) {
                    matches++;
                    *oy_out = oy, *ox_out = ox, *flip_out = flip;
                }
            }
    return matches;
}

/* Over `epochs` epochs every sample must be an exact crop/flip of its image; returns how often
   each offset and flip appeared. */
static void augment_census(const test_cfg *cfg, int epochs, int *offsets, int *flips, int *samples) {
    int pad = cfg->crop_pad, span = 2 * pad + 1;
    epoch_out o;
    for (int e = 0; e < epochs; e++) {
        run_epoch(cfg, e, &o);
        for (int i = 0; i < o.total; i++) {
            int oy = 0, ox = 0, flip = 0;
            int m = find_crop(o.images + i * S, o.labels[i], pad, &oy, &ox, &flip);
            CHECK(m == 1, "epoch %d position %d: %d crop/flip matches", e, i, m);
            if (m != 1) continue;
            offsets[(oy + pad) * span + ox + pad]++;
            *flips += flip;
            (*samples)++;
        }
    }
}

static void test_augment(void) {
    for (int pad = 1; pad <= 2; pad++) {
        test_cfg cfg = base_config(4);
        cfg.crop_pad = pad;
        int offsets[25] = {0}, flips = 0, samples = 0, span = 2 * pad + 1;
        augment_census(&cfg, 40, offsets, &flips, &samples);
        CHECK(flips == 0, "pad %d without flip: %d flips", pad, flips);
        for (int k = 0; k < span * span; k++)
            CHECK(offsets[k] > 0, "pad %d: offset (%d,%d) never drawn in %d samples", pad, k / span - pad, k % span - pad, samples);
        printf("crop pad %d: %d samples, offset (0,0) %d times, (-%d,-%d) %d times\n", pad, samples,
               offsets[pad * span + pad], pad, pad, offsets[0]);
    }
    {
        test_cfg cfg = base_config(4);
        cfg.flip = 1;
        int offsets[25] = {0}, flips = 0, samples = 0;
        augment_census(&cfg, 40, offsets, &flips, &samples);
        CHECK(offsets[0] == samples, "flip alone moved an image");
        CHECK(flips > samples * 0.4 && flips < samples * 0.6, "%d flips in %d samples", flips, samples);
        printf("flip: %d of %d samples mirrored\n", flips, samples);
    }
    {
        test_cfg cfg = base_config(3);
        cfg.crop_pad = 2, cfg.flip = 1, cfg.shuffle = 1;
        int offsets[25] = {0}, flips = 0, samples = 0;
        augment_census(&cfg, 40, offsets, &flips, &samples);
        CHECK(flips > samples * 0.4 && flips < samples * 0.6, "crop+flip: %d flips in %d samples", flips, samples);
        for (int k = 0; k < 25; k++) CHECK(offsets[k] > 0, "crop+flip: offset %d never drawn", k);
    }
}

/* Batch k of epoch e depends on nothing else: not on the batch it starts at, on a restart with an
   epoch half consumed, on the batch size (for the sample at a position), nor on thread timing. */
static void test_determinism(void) {
    test_cfg cfg = base_config(3);
    cfg.shuffle = 1, cfg.crop_pad = 2, cfg.flip = 1;
    enum { EPOCHS = 4 };
    static epoch_out ref[EPOCHS];
    for (int e = 0; e < EPOCHS; e++) run_epoch(&cfg, e, &ref[e]);
    CHECK(ref[0].nbatches == 4, "%d batches", ref[0].nbatches);

    epoch_out o;
    data_loader *l = make_loader(&cfg);
    for (int k = 0; k <= 4; k++) {
        loader_start_epoch(l, 2, k);
        drain(l, &o, 64);
        int first = 3 * k, n = N - first > 0 ? N - first : 0;
        CHECK(o.total == n && !memcmp(o.images, ref[2].images + first * S, (size_t)n * S * sizeof(float)) &&
                  !memcmp(o.labels, ref[2].labels + first, (size_t)n * sizeof(int32_t)),
              "start at batch %d differs from skipping %d batches", k, k);
    }
    /* half-consumed epochs, restarts in any order, with pauses so the ring fills or not */
    rng r = rng_stream(rng_key(5, RNG_SPLIT, 0, 0));
    for (int it = 0; it < 400; it++) {
        int e = (int)rng_below(&r, EPOCHS), k = (int)rng_below(&r, 5), m = (int)rng_below(&r, 5);
        loader_start_epoch(l, e, k);
        if (it % 4 == 0) nanosleep(&(struct timespec){0, 300000}, NULL);
        drain(l, &o, m);
        int first = 3 * k, n = first + 3 * m < N ? 3 * m : (N > first ? N - first : 0);
        CHECK(o.total == n && !memcmp(o.images, ref[e].images + first * S, (size_t)n * S * sizeof(float)),
              "iteration %d: epoch %d from batch %d, %d batches: %d images differ", it, e, k, m, o.total);
    }
    loader_destroy(l);

    /* the sample at each position is the same whatever the batch size */
    cfg.batch = 4;
    run_epoch(&cfg, 3, &o);
    CHECK(o.total == N && !memcmp(o.images, ref[3].images, sizeof(float) * N * S), "batch 4 vs batch 3 samples differ");
}

static void test_lifecycle(void) {
    test_cfg cfg = base_config(2);
    cfg.shuffle = 1, cfg.crop_pad = 1;
    float img[2 * S];
    int32_t lab[2];
    for (int i = 0; i < 50; i++) {
        data_loader *l = make_loader(&cfg);
        if (i % 3 >= 1) loader_start_epoch(l, i, 0);
        if (i % 3 == 2) CHECK(next(l, img, lab) == 2, "first batch");
        loader_destroy(l); /* idle, prefetching, or mid-epoch */
    }
    loader_destroy(NULL);

    data_loader *l = NULL;
    cfg.batch = 0;
    CHECK(try_loader(&cfg, &l) == CNN_ERR_ARG && l == NULL, "batch 0 accepted");
    cfg = base_config(2);
    cfg.first = 5, cfg.count = 6;
    CHECK(try_loader(&cfg, &l) == CNN_ERR_ARG, "range beyond the set accepted");
    CHECK(strstr(cnn_last_error(), "[5, 11)") != NULL, "range message: %s", cnn_last_error());
    cfg = base_config(2);
    float mean[2] = {0, 0}, std[2] = {1, 0};
    cfg.mean = mean, cfg.std = std;
    CHECK(try_loader(&cfg, &l) == CNN_ERR_ARG, "std 0 accepted");
}

/* The same epochs whatever the number of workers. */
static void test_workers(void) {
    test_cfg cfg = base_config(3);
    cfg.shuffle = 1, cfg.crop_pad = 2, cfg.flip = 1;
    static epoch_out ref, o;
    for (int e = 0; e < 3; e++) {
        run_epoch(&cfg, e, &ref);
        for (int w = 2; w <= 5; w += 3) {
            test_cfg c2 = cfg;
            c2.workers = w;
            run_epoch(&c2, e, &o);
            CHECK(same(&ref, &o), "epoch %d: %d workers differ from one", e, w);
        }
    }
}

/* ---- unreadable samples: a source over M one-pixel images (pixel 1 + i % 250, label i) that
   fails on the indices marked bad ---- */

enum { M = 100 };

static uint8_t big_pixels[M];
static int32_t big_labels[M];
static data_set big = {M, 1, 1, 1, big_pixels, big_labels, M, NULL};

typedef struct flaky {
    data_source base;
    data_source *inner;
    unsigned char bad[M], reported[M];
} flaky;

static cnn_status flaky_load(const data_source *s, int64_t i, uint64_t key, void *ws, float *out) {
    const flaky *f = (const flaky *)s;
    if (f->bad[i]) return cnn_fail(CNN_ERR_FORMAT, "image %lld: broken", (long long)i);
    return f->inner->load(f->inner, i, key, ws, out);
}

static void flaky_destroy(data_source *s) { source_free(((flaky *)s)->inner); }

static void flaky_init(flaky *f) {
    memset(f, 0, sizeof *f);
    for (int i = 0; i < M; i++) big_pixels[i] = (uint8_t)(1 + i % 250), big_labels[i] = i;
    CHECK_OK(memory_source_create(&big, 0, M, 0, 0, NULL, NULL, &f->inner));
    f->base = *f->inner;
    f->base.load = flaky_load;
    f->base.destroy = flaky_destroy;
    f->base.reported = f->reported;
}

static int reports;
static void count_report(void *ctx, const char *msg) {
    __atomic_add_fetch(&reports, 1, __ATOMIC_RELAXED);
    CHECK(strstr(msg, "broken") != NULL, "report: %s", msg);
}

/* Runs an epoch of shard `shard` of `shards`; returns the status; labels and batch sizes into o. */
static cnn_status shard_epoch(flaky *f, int batch, int fill, int shuffle, int workers, int epoch, int shard,
                              int shards, epoch_out *o, int64_t *bad) {
    loader_config cfg = {.src = &f->base, .batch = batch, .shuffle = shuffle, .drop_last = fill, .fill_bad = fill,
                         .workers = workers, .shard = shard, .shards = shards, .seed = 5, .report = count_report};
    data_loader *l;
    CHECK_OK(loader_create(&cfg, &l));
    loader_start_epoch(l, epoch, 0);
    memset(o, 0, sizeof *o);
    static float img[16];
    int32_t lab[16];
    int n;
    cnn_status st;
    while ((st = loader_next(l, img, lab, &n)) == CNN_OK && n > 0) {
        for (int i = 0; i < n; i++) {
            CHECK(img[i] == (float)(1 + lab[i] % 250) / 255.0f, "image of label %d", lab[i]);
            if (o->total < 128) o->labels[o->total] = lab[i];
            o->total++;
        }
        if (o->nbatches < 128) o->sizes[o->nbatches] = n;
        o->nbatches++;
    }
    *bad = loader_bad_count(l);
    loader_destroy(l);
    return st;
}

static cnn_status flaky_epoch(flaky *f, int batch, int fill, int shuffle, int workers, int epoch, epoch_out *o,
                              int64_t *bad) {
    return shard_epoch(f, batch, fill, shuffle, workers, epoch, 0, 0, o, bad);
}

/* Data-parallel shards: 3 loaders of batch 4 (shards 0, 1, 2) make, batch after batch, what one
 * loader of batch 12 makes: in training (shuffled, full batches, bad images replaced by the next
 * readable ones) and in evaluation (in order; the last batch short, or missing for some shards). */
static void test_shards(void) {
    flaky f;
    flaky_init(&f);
    for (int i = 0; i < M; i += 9) f.bad[i] = 1;
    for (int train = 1; train >= 0; train--) {
        if (!train) memset(f.bad, 0, sizeof f.bad); /* evaluation drops bad images: batches could vanish */
        epoch_out whole, part[3];
        int64_t bad, parts_bad = 0;
        CHECK_OK(shard_epoch(&f, 12, train, train, 2, 4, 0, 0, &whole, &bad));
        for (int r = 0; r < 3; r++) {
            int64_t b;
            CHECK_OK(shard_epoch(&f, 4, train, train, 1 + r, 4, r, 3, &part[r], &b));
            parts_bad += b;
        }
        int at[3] = {0, 0, 0}, pos = 0;
        for (int k = 0; k < whole.nbatches; k++)
            for (int r = 0; r < 3; r++) {
                if (k >= part[r].nbatches) continue;
                for (int j = 0; j < part[r].sizes[k]; j++, pos++)
                    CHECK(part[r].labels[at[r] + j] == whole.labels[pos], "%s: batch %d shard %d image %d: %d, expected %d",
                          train ? "training" : "evaluation", k, r, j, part[r].labels[at[r] + j], whole.labels[pos]);
                at[r] += part[r].sizes[k];
            }
        CHECK(pos == whole.total && at[0] + at[1] + at[2] == whole.total && parts_bad == bad,
              "%s: shards made %d + %d + %d images (%lld bad), one loader %d (%lld bad)", train ? "training" : "evaluation",
              at[0], at[1], at[2], (long long)parts_bad, whole.total, (long long)bad);
    }
    data_loader *l = NULL;
    loader_config bad_shard = {.src = &f.base, .batch = 4, .shard = 3, .shards = 3};
    CHECK(loader_create(&bad_shard, &l) == CNN_ERR_ARG && !l, "shard 3 of 3 accepted");
    source_free(&f.base);
}

static void test_bad_dropped(void) {
    flaky f;
    flaky_init(&f);
    int bad[] = {3, 8, 9, 10, 11, 12, 13, 14, 15, 40};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) f.bad[bad[i]] = 1;
    epoch_out o;
    int64_t nbad;
    reports = 0;
    for (int e = 0; e < 2; e++) {
        CHECK_OK(flaky_epoch(&f, 8, 0, 0, 3, e, &o, &nbad));
        CHECK(o.total == M - 10 && nbad == 10, "epoch %d: %d images, %lld bad", e, o.total, (long long)nbad);
        /* batch 0 lost image 3, batch 1 was all bad and is skipped, batch 5 lost image 40 */
        CHECK(o.sizes[0] == 7 && o.sizes[1] == 8 && o.sizes[4] == 7, "batch sizes %d %d %d", o.sizes[0], o.sizes[1],
              o.sizes[4]);
        CHECK(o.labels[2] == 2 && o.labels[3] == 4 && o.labels[7] == 16, "order after skipping: %d %d %d", o.labels[2],
              o.labels[3], o.labels[7]);
    }
    CHECK(reports == 10, "%d reports over two epochs, expected one per bad image", reports);
    source_free(&f.base);
}

/* Training: every batch full; a bad position takes the next readable image of the epoch's order. */
static void test_bad_filled(void) {
    flaky f;
    flaky_init(&f);
    for (int i = 0; i < M; i += 7) f.bad[i] = 1; /* 15 of 100 */
    f.bad[99] = f.bad[1] = f.bad[2] = 1;         /* a run, across the wrap-around */
    epoch_out o1, o4;
    int64_t nbad;
    reports = 0;
    CHECK_OK(flaky_epoch(&f, 8, 1, 1, 1, 3, &o1, &nbad));
    CHECK(o1.total == 96 && o1.nbatches == 12, "%d images in %d batches", o1.total, o1.nbatches);
    int32_t perm[M];
    for (int i = 0; i < M; i++) perm[i] = i;
    rng r = rng_stream(rng_key(5, RNG_SHUFFLE, 3, 0));
    rng_shuffle(&r, perm, M);
    int want_bad = 0;
    for (int p = 0; p < 96; p++) {
        int q = p;
        while (f.bad[perm[q % M]]) q++;
        want_bad += q != p;
        CHECK(o1.labels[p] == perm[q % M], "position %d: %d, expected %d", p, o1.labels[p], perm[q % M]);
    }
    CHECK(nbad == want_bad, "%lld bad counted, %d among the 96 positions", (long long)nbad, want_bad);
    CHECK_OK(flaky_epoch(&f, 8, 1, 1, 4, 3, &o4, &nbad));
    CHECK(same(&o1, &o4), "4 workers differ from 1 with bad samples");
    source_free(&f.base);
}

/* More than half bad, judged from LOADER_BAD_MIN samples on or at the end of a pass. */
static void test_mostly_bad(void) {
    flaky f;
    flaky_init(&f);
    epoch_out o;
    int64_t nbad;
    for (int i = 0; i < M; i += 2) f.bad[i] = 1; /* exactly half: not most */
    CHECK_OK(flaky_epoch(&f, 8, 0, 0, 2, 0, &o, &nbad));
    CHECK(o.total == 50 && nbad == 50, "half bad: %d images", o.total);
    memset(f.bad, 0, sizeof f.bad);
    for (int i = 0; i < 15; i++) f.bad[i] = 1; /* after 4 batches 15 of 32: goes on */
    CHECK_OK(flaky_epoch(&f, 8, 0, 0, 2, 0, &o, &nbad));
    CHECK(o.total == 85, "15 bad first: %d images", o.total);
    f.bad[15] = f.bad[16] = 1; /* 17 of the first 32: stops after the fourth batch */
    cnn_status st = flaky_epoch(&f, 8, 0, 0, 2, 0, &o, &nbad);
    CHECK(st == CNN_ERR_FORMAT && strstr(cnn_last_error(), "17 of the 32") && o.total == 7,
          "17 bad first: status %d after %d images: %s", st, o.total, cnn_last_error());
    /* a pass shorter than LOADER_BAD_MIN is judged at its end */
    flaky g;
    flaky_init(&g);
    g.base.count = 10;
    for (int i = 0; i < 6; i++) g.bad[i] = 1;
    st = flaky_epoch(&g, 4, 0, 0, 1, 0, &o, &nbad);
    CHECK(st == CNN_ERR_FORMAT && strstr(cnn_last_error(), "6 of the 10"), "6 of 10 bad: %d %s", st, cnn_last_error());
    g.bad[5] = 0;
    CHECK_OK(flaky_epoch(&g, 4, 0, 0, 1, 0, &o, &nbad));
    CHECK(o.total == 5, "5 of 10 bad: %d images", o.total);
    /* training with nothing readable: the replacement search gives up with a message */
    memset(g.bad, 1, sizeof g.bad);
    st = flaky_epoch(&g, 4, 1, 1, 2, 0, &o, &nbad);
    CHECK(st == CNN_ERR_FORMAT && strstr(cnn_last_error(), "no readable image"), "all bad: %d %s", st, cnn_last_error());
    source_free(&f.base);
    source_free(&g.base);
}

int main(void) {
    make_set();
    test_stats();
    test_normalize();
    test_order_and_ends();
    test_shuffle();
    test_augment();
    test_determinism();
    test_lifecycle();
    test_workers();
    test_bad_dropped();
    test_bad_filled();
    test_mostly_bad();
    test_shards();
    for (int i = 0; i < nsources && i < 512; i++) source_free(sources[i]);
    return test_report("test_loader");
}
