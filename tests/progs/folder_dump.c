/* folder_dump.c — drives the image-folder code for tests/test_imagefolder.py, which compares what
 * it prints and writes with PIL/torchvision on the same files:
 *   folder_dump scan DIR                         classes and files, as ImageFolder lists them
 *   folder_dump decode FILE OUT DENOM X0 Y0 X1 Y1 CH   decoded pixels (rows of w*CH bytes) of a rectangle
 *   folder_dump loader DIR OUT TRAIN SIZE RESIZE SEED EPOCH WORKERS BATCH REDUCED CH
 *       one epoch through the loader: floats to OUT; per sample "idx label x y w h rw rh ox oy flip"
 *   folder_dump apply FILE OUT TRAIN SIZE RESIZE REDUCED CH X Y W H RW RH OX OY FLIP
 *       the transform with given crop parameters (torchvision's, from the test) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/rng.h"
#include "data/folder.h"
#include "data/loader.h"

static int fail(const char *what) {
    fprintf(stderr, "folder_dump: %s: %s\n", what, cnn_last_error());
    return 1;
}

static int scan(const char *dir) {
    folder_set f;
    if (folder_scan(dir, NULL, 0, &f)) return fail("scan");
    for (int c = 0; c < f.num_classes; c++) printf("class %s\n", f.class_names[c]);
    for (int64_t i = 0; i < f.n; i++) printf("file %d %s\n", f.labels[i], folder_path(&f, i));
    folder_free(&f);
    return 0;
}

static int write_all(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(p, 1, n, f) == n;
    if (f) ok &= fclose(f) == 0;
    if (!ok) fprintf(stderr, "folder_dump: cannot write %s\n", path);
    return ok ? 0 : 1;
}

static int decode(char **a) {
    uint8_t *buf = NULL;
    size_t cap = 0, len;
    if (folder_read_file(a[0], &buf, &cap, &len)) return fail("read");
    int rect[4] = {atoi(a[3]), atoi(a[4]), atoi(a[5]), atoi(a[6])};
    image_region r = {0};
    if (image_decode(buf, len, a[0], atoi(a[2]), rect, atoi(a[7]), &r)) return fail("decode");
    printf("%d %d %d %d %d %d %d\n", r.scaled_w, r.scaled_h, r.x0, r.y0, r.w, r.h, r.channels);
    size_t row = (size_t)r.w * r.channels;
    for (int y = 0; y < r.h; y++) memmove(r.px + y * row, r.px + (size_t)y * r.stride, row); /* drop the stride */
    int rc = write_all(a[1], r.px, row * r.h);
    image_region_free(&r);
    free(buf);
    return rc;
}

static void transform_from(char **a, image_transform *t) {
    transform_defaults(t, atoi(a[0]), atoi(a[1]));
    t->resize = atoi(a[2]);
    t->reduced_dct = atoi(a[3]);
    t->channels = atoi(a[4]);
}

static int loader(char **a) {
    folder_set f;
    if (folder_scan(a[0], NULL, 0, &f)) return fail("scan");
    image_transform t;
    char *ta[5] = {a[2], a[3], a[4], a[9], a[10]};
    transform_from(ta, &t);
    uint64_t seed = strtoull(a[5], NULL, 10);
    int epoch = atoi(a[6]), batch = atoi(a[8]);
    data_source *src;
    if (folder_source_create(&f, &t, &src)) return fail("source");
    loader_config lc = {.src = src, .batch = batch, .shuffle = t.train, .workers = atoi(a[7]), .seed = seed};
    data_loader *l;
    if (loader_create(&lc, &l)) return fail("loader");
    int64_t sample = (int64_t)t.channels * t.size * t.size;
    float *img = malloc(sizeof(float) * batch * sample);
    int32_t *lab = malloc(sizeof(int32_t) * batch);
    FILE *out = fopen(a[1], "wb");
    loader_start_epoch(l, epoch, 0);
    int n, rc = 0;
    while (!(rc = loader_next(l, img, lab, &n)) && n > 0) fwrite(img, sizeof(float), (size_t)n * sample, out);
    fclose(out);
    if (rc) return fail("loader_next");
    printf("bad %lld\n", (long long)loader_bad_count(l));
    /* the geometry each position used, recomputed as the loader draws it */
    int32_t *perm = malloc(sizeof(int32_t) * f.n);
    for (int64_t i = 0; i < f.n; i++) perm[i] = (int32_t)i;
    rng r = rng_stream(rng_key(seed, RNG_SHUFFLE, (uint64_t)epoch, 0));
    if (t.train) rng_shuffle(&r, perm, f.n);
    uint8_t *buf = NULL;
    size_t cap = 0, len;
    for (int64_t p = 0; p < f.n; p++) {
        int64_t idx = perm[p];
        image_info info;
        if (folder_read_file(folder_path(&f, idx), &buf, &cap, &len) || image_probe(buf, len, "", &info)) continue;
        image_geometry g;
        transform_geometry(&t, info.w, info.h, rng_key(seed, RNG_AUGMENT, (uint64_t)epoch, (uint64_t)p), &g);
        printf("%lld %d %d %d %d %d %d %d %d %d %d\n", (long long)idx, f.labels[idx], g.x, g.y, g.w, g.h, g.rw, g.rh,
               g.ox, g.oy, g.flip);
    }
    free(buf), free(perm), free(img), free(lab);
    loader_destroy(l);
    source_free(src);
    folder_free(&f);
    return 0;
}

static int apply(char **a) {
    image_transform t;
    transform_from(a + 2, &t);
    image_geometry g = {atoi(a[7]), atoi(a[8]), atoi(a[9]), atoi(a[10]), atoi(a[11]), atoi(a[12]), atoi(a[13]),
                        atoi(a[14]), atoi(a[15])};
    uint8_t *buf = NULL;
    size_t cap = 0, len;
    if (folder_read_file(a[0], &buf, &cap, &len)) return fail("read");
    transform_ws ws = {0};
    float *out = malloc(sizeof(float) * t.channels * t.size * t.size);
    if (transform_file(&ws, &t, buf, len, a[0], 0, &g, out, NULL)) return fail("transform");
    int rc = write_all(a[1], out, sizeof(float) * t.channels * t.size * t.size);
    transform_ws_free(&ws);
    free(out), free(buf);
    return rc;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "scan")) return scan(argv[2]);
    if (argc == 10 && !strcmp(argv[1], "decode")) return decode(argv + 2);
    if (argc == 13 && !strcmp(argv[1], "loader")) return loader(argv + 2);
    if (argc == 18 && !strcmp(argv[1], "apply")) return apply(argv + 2);
    fprintf(stderr, "usage: see the head of tests/progs/folder_dump.c\n");
    return 2;
}
