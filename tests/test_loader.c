/* test_loader.c — the batch loader on small in-memory sets: normalization, order, permutations,
 * determinism across restarts and thread timing, crop and flip semantics, epoch ends; and
 * data_channel_stats against hand-computed values. */
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

static loader_config base_config(int batch) {
    loader_config cfg = {&set, 0, N, batch, 0, 0, 0, 0, NULL, NULL, 1234};
    return cfg;
}

/* One epoch's output, all batches concatenated. */
typedef struct epoch_out {
    int nbatches, sizes[64];
    int total;
    float images[64 * S];
    int32_t labels[64];
} epoch_out;

static data_loader *make_loader(const loader_config *cfg) {
    data_loader *l = NULL;
    cnn_status st = loader_create(cfg, &l);
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
        int n = loader_next(l, img, lab);
        if (n == 0) break;
        o->sizes[o->nbatches++] = n;
        memcpy(o->images + (size_t)o->total * S, img, (size_t)n * S * sizeof(float));
        memcpy(o->labels + o->total, lab, (size_t)n * sizeof(int32_t));
        o->total += n;
    }
}

static void run_epoch(const loader_config *cfg, int epoch, epoch_out *o) {
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
    loader_config cfg = {&ds, 0, 1, 1, 0, 0, 0, 0, mean, std, 7};
    /* (v/255 - mean) / std by hand: ch0 (0-.5)/.5, (.2-.5)/.5, (1-.5)/.5; ch1 (0-.2)/.25, 0, (1-.2)/.25 */
    const float want[6] = {-1.0f, -0.6f, 1.0f, -0.8f, 0.0f, 3.2f};
    data_loader *l = make_loader(&cfg);
    CHECK(loader_batches_per_epoch(l) == 1, "batches %lld", (long long)loader_batches_per_epoch(l));
    float out[6];
    int32_t ol[1];
    CHECK(loader_next(l, out, ol) == 0, "a batch before any epoch started");
    loader_start_epoch(l, 0, 0);
    CHECK(loader_next(l, out, ol) == 1, "one image");
    for (int j = 0; j < 6; j++) CHECK(fabsf(out[j] - want[j]) < 1e-6f, "value %d: %.8f, expected %.8f", j, out[j], want[j]);
    CHECK(loader_next(l, out, ol) == 0, "end of epoch");
    CHECK(loader_next(l, out, ol) == 0, "still the end");
    loader_destroy(l);
}

static void test_order_and_ends(void) {
    epoch_out o;
    loader_config cfg = base_config(4);
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
    loader_config cfg = base_config(3);
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
static void augment_census(const loader_config *cfg, int epochs, int *offsets, int *flips, int *samples) {
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
        loader_config cfg = base_config(4);
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
        loader_config cfg = base_config(4);
        cfg.flip = 1;
        int offsets[25] = {0}, flips = 0, samples = 0;
        augment_census(&cfg, 40, offsets, &flips, &samples);
        CHECK(offsets[0] == samples, "flip alone moved an image");
        CHECK(flips > samples * 0.4 && flips < samples * 0.6, "%d flips in %d samples", flips, samples);
        printf("flip: %d of %d samples mirrored\n", flips, samples);
    }
    {
        loader_config cfg = base_config(3);
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
    loader_config cfg = base_config(3);
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
    loader_config cfg = base_config(2);
    cfg.shuffle = 1, cfg.crop_pad = 1;
    float img[2 * S];
    int32_t lab[2];
    for (int i = 0; i < 50; i++) {
        data_loader *l = make_loader(&cfg);
        if (i % 3 >= 1) loader_start_epoch(l, i, 0);
        if (i % 3 == 2) CHECK(loader_next(l, img, lab) == 2, "first batch");
        loader_destroy(l); /* idle, prefetching, or mid-epoch */
    }
    loader_destroy(NULL);

    data_loader *l = NULL;
    cfg.batch = 0;
    CHECK(loader_create(&cfg, &l) == CNN_ERR_ARG && l == NULL, "batch 0 accepted");
    cfg = base_config(2);
    cfg.first = 5, cfg.count = 6;
    CHECK(loader_create(&cfg, &l) == CNN_ERR_ARG, "range beyond the set accepted");
    CHECK(strstr(cnn_last_error(), "[5, 11)") != NULL, "range message: %s", cnn_last_error());
    cfg = base_config(2);
    float mean[2] = {0, 0}, std[2] = {1, 0};
    cfg.mean = mean, cfg.std = std;
    CHECK(loader_create(&cfg, &l) == CNN_ERR_ARG, "std 0 accepted");
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
    return test_report("test_loader");
}
