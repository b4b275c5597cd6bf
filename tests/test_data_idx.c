/* test_data_idx.c — IDX loading (MNIST, Fashion-MNIST), plain and gzip: every pixel and label of
 * tiny hand-made files, each kind of bad file, and the real Fashion-MNIST when it is installed. */
#include "data/dataset.h"
#include "testutil.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>


static char tmp[256];


/* Writes bytes to dir/name, gzip-compressed when gz (name then gets ".gz"); returns the path. */
static const char *write_file(const char *dir, const char *name, const uint8_t *bytes, size_t n, int gz) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s%s", dir, name, gz ? ".gz" : "");
    if (gz) {
        gzFile f = gzopen(path, "wb");
        if (!f || (n && gzwrite(f, bytes, (unsigned)n) != (int)n) || gzclose(f) != Z_OK) {
            fprintf(stderr, "cannot write %s\n", path);
            exit(2);
        }
    } else {
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(bytes, 1, n, f) != n || fclose(f) != 0) {
            fprintf(stderr, "cannot write %s\n", path);
            exit(2);
        }
    }
    return path;
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* The tiny set: 3 images of 2x3, pixel (i, y, x) = 50 i + 10 y + 3 x + 1, labels 2, 0, 9. */
enum { N = 3, ROWS = 2, COLS = 3 };
static const int LABELS[N] = {2, 0, 9};
static int pixel(int i, int y, int x) { return 50 * i + 10 * y + 3 * x + 1; }

typedef struct idx_files {
    uint8_t img[16 + N * ROWS * COLS + 8]; /* room for trailing garbage */
    size_t img_len;
    uint8_t lbl[8 + N + 8];
    size_t lbl_len;
} idx_files;

static idx_files good_files(void) {
    idx_files f;
    memset(&f, 0, sizeof f);
    put_be32(f.img, 0x00000803);
    put_be32(f.img + 4, N);
    put_be32(f.img + 8, ROWS);
    put_be32(f.img + 12, COLS);
    for (int i = 0; i < N; i++)
        for (int y = 0; y < ROWS; y++)
            for (int x = 0; x < COLS; x++) f.img[16 + (i * ROWS + y) * COLS + x] = (uint8_t)pixel(i, y, x);
    f.img_len = 16 + N * ROWS * COLS;
    put_be32(f.lbl, 0x00000801);
    put_be32(f.lbl + 4, N);
    for (int i = 0; i < N; i++) f.lbl[8 + i] = (uint8_t)LABELS[i];
    f.lbl_len = 8 + N;
    return f;
}

static void check_tiny(const data_set *ds, const char *what) {
    CHECK(ds->n == N && ds->c == 1 && ds->h == ROWS && ds->w == COLS, "%s: shape n=%lld c=%d h=%d w=%d", what,
          (long long)ds->n, ds->c, ds->h, ds->w);
    if (ds->n != N || ds->h != ROWS || ds->w != COLS) return;
    for (int i = 0; i < N; i++) {
        CHECK(ds->labels[i] == LABELS[i], "%s: label %d is %d, expected %d", what, i, ds->labels[i], LABELS[i]);
        for (int y = 0; y < ROWS; y++)
            for (int x = 0; x < COLS; x++) {
                int got = ds->pixels[(i * ROWS + y) * COLS + x];
                CHECK(got == pixel(i, y, x), "%s: pixel (%d,%d,%d) is %d, expected %d", what, i, y, x, got,
                      pixel(i, y, x));
            }
    }
    CHECK(ds->num_classes == 10, "%s: %d classes", what, ds->num_classes);
}

/* Writes the pair into a fresh directory (the train split), loads it, expects a failure with
   `status` whose message contains the file name `needle` and `needle2` (if not NULL). */
static void expect_bad(const char *label, const idx_files *f, int img_gz, int lbl_gz, cnn_status status,
                       const char *needle, const char *needle2) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/bad", tmp);
    remove_tree(dir);
    mkdir(dir, 0700);
    if (f->img_len) write_file(dir, "train-images-idx3-ubyte", f->img, f->img_len, img_gz);
    if (f->lbl_len) write_file(dir, "train-labels-idx1-ubyte", f->lbl, f->lbl_len, lbl_gz);
    data_set ds;
    cnn_status st = data_load("fashion-mnist", dir, 0, &ds);
    const char *msg = cnn_last_error();
    CHECK(st != CNN_OK, "%s: loaded a bad file", label);
    CHECK(status == CNN_OK || st == status, "%s: status %s, expected %s (%s)", label, cnn_status_name(st),
          cnn_status_name(status), msg);
    CHECK(strstr(msg, needle) != NULL, "%s: message does not name '%s': %s", label, needle, msg);
    if (needle2) CHECK(strstr(msg, needle2) != NULL, "%s: message lacks '%s': %s", label, needle2, msg);
    CHECK(ds.pixels == NULL && ds.labels == NULL && ds.n == 0, "%s: data set not left empty", label);
    printf("  %-34s -> %s\n", label, msg);
    data_free(&ds);
}

static void test_good(void) {
    idx_files f = good_files();
    char dir[512];
    data_set ds;
    /* plain files, train split */
    snprintf(dir, sizeof dir, "%s/plain", tmp);
    mkdir(dir, 0700);
    write_file(dir, "train-images-idx3-ubyte", f.img, f.img_len, 0);
    write_file(dir, "train-labels-idx1-ubyte", f.lbl, f.lbl_len, 0);
    cnn_status st = data_load("fashion-mnist", dir, 0, &ds);
    CHECK(st == CNN_OK, "plain: %s", cnn_last_error());
    if (st == CNN_OK) {
        check_tiny(&ds, "plain");
        CHECK(!strcmp(ds.class_names[0], "T-shirt/top") && !strcmp(ds.class_names[9], "Ankle boot"),
              "fashion names %s .. %s", ds.class_names[0], ds.class_names[9]);
    }
    data_free(&ds);
    CHECK(data_load("fashion-mnist", dir, 1, &ds) == CNN_ERR_IO, "no test split");
    CHECK(strstr(cnn_last_error(), "t10k-images-idx3-ubyte") != NULL, "missing test split: %s", cnn_last_error());

    /* gzip files, test split, loaded as MNIST */
    snprintf(dir, sizeof dir, "%s/gz", tmp);
    mkdir(dir, 0700);
    write_file(dir, "t10k-images-idx3-ubyte", f.img, f.img_len, 1);
    write_file(dir, "t10k-labels-idx1-ubyte", f.lbl, f.lbl_len, 1);
    st = data_load("mnist", dir, 1, &ds);
    CHECK(st == CNN_OK, "gz: %s", cnn_last_error());
    if (st == CNN_OK) {
        check_tiny(&ds, "gz");
        CHECK(!strcmp(ds.class_names[0], "0") && !strcmp(ds.class_names[9], "9"), "mnist names");
    }
    data_free(&ds);

    /* mixed: plain images, gzip labels */
    snprintf(dir, sizeof dir, "%s/mixed", tmp);
    mkdir(dir, 0700);
    write_file(dir, "train-images-idx3-ubyte", f.img, f.img_len, 0);
    write_file(dir, "train-labels-idx1-ubyte", f.lbl, f.lbl_len, 1);
    st = data_load("fashion-mnist", dir, 0, &ds);
    CHECK(st == CNN_OK, "mixed: %s", cnn_last_error());
    if (st == CNN_OK) check_tiny(&ds, "mixed");
    data_free(&ds);

    CHECK(data_load("imagenet-21k", dir, 0, &ds) == CNN_ERR_ARG, "unknown name accepted");
    CHECK(strstr(cnn_last_error(), "imagenet-21k") != NULL, "unknown name: %s", cnn_last_error());
    CHECK(data_default_dir("fashion-mnist") && !strcmp(data_default_dir("fashion-mnist"), "/usr/share/datasets/fashion-mnist"),
          "default dir");
    CHECK(data_default_dir("no-such-set") == NULL, "default dir of an unknown name");
}

static void test_bad(void) {
    const char *IMG = "train-images-idx3-ubyte", *LBL = "train-labels-idx1-ubyte";
    idx_files f;
    data_set ds;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/no-such-dir", tmp);
    CHECK(data_load("fashion-mnist", dir, 0, &ds) == CNN_ERR_IO, "missing directory");
    CHECK(strstr(cnn_last_error(), "no-such-dir") != NULL, "missing directory: %s", cnn_last_error());
    printf("  %-34s -> %s\n", "missing directory", cnn_last_error());

    f = good_files(), f.lbl_len = 0;
    expect_bad("missing labels file", &f, 0, 0, CNN_ERR_IO, LBL, NULL);
    f = good_files(), f.img_len = 0;
    expect_bad("missing images file", &f, 0, 0, CNN_ERR_IO, IMG, NULL);

    f = good_files(), f.img_len -= 1;
    expect_bad("truncated images (plain)", &f, 0, 0, CNN_ERR_FORMAT, IMG, "truncated");
    f = good_files(), f.lbl_len -= 1;
    expect_bad("truncated labels (plain)", &f, 0, 0, CNN_ERR_FORMAT, LBL, "truncated");
    f = good_files(), f.img_len = 10;
    expect_bad("truncated header (plain)", &f, 0, 0, CNN_ERR_FORMAT, IMG, "truncated");
    f = good_files(), f.img_len -= 1;
    expect_bad("short images (gz, honest trailer)", &f, 1, 1, CNN_ERR_FORMAT, "train-images-idx3-ubyte.gz", NULL);

    f = good_files(), f.img[3] = 0x01;
    expect_bad("wrong magic (images)", &f, 0, 0, CNN_ERR_FORMAT, IMG, "magic");
    f = good_files(), f.lbl[3] = 0x03;
    expect_bad("wrong magic (labels, gz)", &f, 0, 1, CNN_ERR_FORMAT, "train-labels-idx1-ubyte.gz", "magic");
    f = good_files(), f.img[2] = 0x0d; /* float data */
    expect_bad("wrong data type (images)", &f, 0, 0, CNN_ERR_FORMAT, IMG, "magic");

    f = good_files(), f.lbl[8 + 1] = 10;
    expect_bad("label out of range", &f, 0, 0, CNN_ERR_FORMAT, LBL, "out of range");
    f = good_files(), f.lbl[8 + 2] = 255;
    expect_bad("label out of range (gz)", &f, 1, 1, CNN_ERR_FORMAT, LBL, "out of range");

    f = good_files(), put_be32(f.lbl + 4, N - 1), f.lbl_len -= 1;
    expect_bad("count mismatch", &f, 0, 0, CNN_ERR_FORMAT, IMG, LBL);
    f = good_files(), put_be32(f.img + 4, 0), f.img_len = 16, put_be32(f.lbl + 4, 0), f.lbl_len = 8;
    expect_bad("no images", &f, 0, 0, CNN_ERR_FORMAT, IMG, NULL);

    /* absurd headers must be refused before allocating: the status is FORMAT, never NOMEM */
    f = good_files(), put_be32(f.img + 4, 100000000), put_be32(f.img + 8, 4096), put_be32(f.img + 12, 4096);
    expect_bad("absurd size (plain)", &f, 0, 0, CNN_ERR_FORMAT, IMG, "truncated");
    f = good_files(), put_be32(f.img + 4, 0xffffffffu);
    expect_bad("count over the limit", &f, 0, 0, CNN_ERR_FORMAT, IMG, NULL);
    f = good_files(), put_be32(f.img + 8, 5000);
    expect_bad("rows over the limit", &f, 0, 0, CNN_ERR_FORMAT, IMG, NULL);
    f = good_files(), put_be32(f.img + 12, 0);
    expect_bad("zero columns", &f, 0, 0, CNN_ERR_FORMAT, IMG, NULL);
    f = good_files(), put_be32(f.img + 4, 99999999), put_be32(f.img + 8, 28), put_be32(f.img + 12, 28);
    expect_bad("absurd size (gz, ISIZE)", &f, 1, 0, CNN_ERR_FORMAT, "train-images-idx3-ubyte.gz", NULL);
    /* 256 x 4096 x 4096 = 2^32 bytes: with the 16-byte header, ISIZE (mod 2^32) says 16, which
       matches a file holding the header alone; only the compression-ratio bound catches it. */
    f = good_files(), put_be32(f.img + 4, 256), put_be32(f.img + 8, 4096), put_be32(f.img + 12, 4096), f.img_len = 16;
    expect_bad("absurd size (gz, ISIZE wraps)", &f, 1, 0, CNN_ERR_FORMAT, "train-images-idx3-ubyte.gz", NULL);

    f = good_files(), f.img_len += 1;
    expect_bad("trailing garbage (plain)", &f, 0, 0, CNN_ERR_FORMAT, IMG, "trailing garbage");
    f = good_files(), f.lbl_len += 3;
    expect_bad("trailing garbage (labels)", &f, 0, 0, CNN_ERR_FORMAT, LBL, "trailing garbage");
    f = good_files(), f.img_len += 2;
    expect_bad("trailing garbage (gz)", &f, 1, 0, CNN_ERR_FORMAT, "train-images-idx3-ubyte.gz", NULL);
}

/* Damaged .gz files: cut short, and a flipped byte inside the deflate data. */
static void test_bad_gz(void) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/badgz", tmp);
    /* bigger images so the deflate stream has some length to damage */
    enum { M = 40, R = 28 };
    static uint8_t img[16 + M * R * R];
    put_be32(img, 0x00000803), put_be32(img + 4, M), put_be32(img + 8, R), put_be32(img + 12, R);
    for (int i = 0; i < M * R * R; i++) img[16 + i] = (uint8_t)((i * 7919u) >> 3);
    uint8_t lbl[8 + M];
    put_be32(lbl, 0x00000801), put_be32(lbl + 4, M);
    for (int i = 0; i < M; i++) lbl[8 + i] = (uint8_t)(i % 10);
    /* damage: cut > 0 removes that many bytes at the end; -1 cuts in half; 0 flips a middle byte;
       -2 flips a byte of the CRC in the trailer;
       forge: then rewrite the last 4 bytes with the true ISIZE so that only the read can notice */
    const struct { int cut, forge; const char *label; } damage[] = {
        {1, 0, "gz cut by 1 byte"},   {4, 0, "gz cut by 4 bytes"},     {8, 0, "gz cut by 8 bytes (no trailer)"},
        {100, 0, "gz cut by 100 bytes"}, {-1, 0, "gz cut in half"},      {0, 0, "gz with a flipped byte"},
        {100, 1, "gz cut, ISIZE forged"}, {8, 1, "gz without CRC, ISIZE forged"}, {-2, 0, "gz with a wrong CRC"},
    };
    for (size_t c = 0; c < sizeof damage / sizeof damage[0]; c++) {
        remove_tree(dir);
        mkdir(dir, 0700);
        char path[1024];
        snprintf(path, sizeof path, "%s", write_file(dir, "train-images-idx3-ubyte", img, sizeof img, 1));
        write_file(dir, "train-labels-idx1-ubyte", lbl, sizeof lbl, 1);
        struct stat sb;
        stat(path, &sb);
        long size = (long)sb.st_size;
        if (damage[c].cut > 0 || damage[c].cut == -1) {
            size = damage[c].cut > 0 ? size - damage[c].cut : size / 2;
            if (truncate(path, size) != 0) exit(2);
        } else {
            long at = damage[c].cut == 0 ? size / 2 : size - 8;
            FILE *fp = fopen(path, "r+b");
            fseek(fp, at, SEEK_SET);
            int byte = fgetc(fp);
            fseek(fp, at, SEEK_SET);
            fputc(byte ^ 0x55, fp);
            fclose(fp);
        }
        if (damage[c].forge) {
            uint8_t isize[4] = {(uint8_t)sizeof img, (uint8_t)(sizeof img >> 8), (uint8_t)(sizeof img >> 16), 0};
            FILE *fp = fopen(path, "r+b");
            fseek(fp, size - 4, SEEK_SET);
            fwrite(isize, 1, 4, fp);
            fclose(fp);
        }
        data_set ds;
        cnn_status st = data_load("fashion-mnist", dir, 0, &ds);
        CHECK(st == CNN_ERR_FORMAT, "%s: status %s: %s", damage[c].label, cnn_status_name(st), cnn_last_error());
        CHECK(strstr(cnn_last_error(), "train-images-idx3-ubyte.gz") != NULL, "%s: %s", damage[c].label,
              cnn_last_error());
        printf("  %-34s -> %s\n", damage[c].label, cnn_last_error());
        data_free(&ds);
    }
    /* the undamaged pair loads */
    remove_tree(dir);
    mkdir(dir, 0700);
    write_file(dir, "train-images-idx3-ubyte", img, sizeof img, 1);
    write_file(dir, "train-labels-idx1-ubyte", lbl, sizeof lbl, 1);
    data_set ds;
    CHECK(data_load("fashion-mnist", dir, 0, &ds) == CNN_OK, "40 images gz: %s", cnn_last_error());
    CHECK(ds.n == M && ds.pixels && !memcmp(ds.pixels, img + 16, (size_t)M * R * R), "40 images gz content");
    data_free(&ds);
    remove_tree(dir);
}

/* The Debian package dataset-fashion-mnist: 60000 + 10000 images of 28x28, 6000 + 1000 per class;
   its training mean and std (0.2860, 0.3530) are the figures published with countless tutorials. */
static void test_real(void) {
    const char *dir = "/usr/share/datasets/fashion-mnist";
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        printf("SKIP real Fashion-MNIST: %s is absent (install dataset-fashion-mnist)\n", dir);
        return;
    }
    for (int split = 0; split < 2; split++) {
        data_set ds;
        cnn_status st = data_load("fashion-mnist", NULL, split, &ds);
        CHECK(st == CNN_OK, "real split %d: %s", split, cnn_last_error());
        if (st != CNN_OK) continue;
        int64_t n = split ? 10000 : 60000;
        CHECK(ds.n == n && ds.c == 1 && ds.h == 28 && ds.w == 28, "real shape %lld %dx%dx%d", (long long)ds.n, ds.c,
              ds.h, ds.w);
        int64_t hist[10] = {0};
        for (int64_t i = 0; i < ds.n; i++) hist[ds.labels[i]]++;
        for (int k = 0; k < 10; k++) CHECK(hist[k] == n / 10, "split %d class %d: %lld images", split, k, (long long)hist[k]);
        if (split == 0) {
            float mean, std;
            data_channel_stats(&ds, 0, ds.n, &mean, &std);
            CHECK(mean > 0.2855f && mean < 0.2865f && std > 0.3525f && std < 0.3535f, "mean %.5f std %.5f", mean, std);
            printf("real Fashion-MNIST train: 60000 images, mean %.4f std %.4f\n", mean, std);
        }
        data_free(&ds);
    }
}

int main(void) {
    if (!temp_dir(tmp, sizeof tmp)) return 2;
    test_good();
    printf("bad files:\n");
    test_bad();
    test_bad_gz();
    remove_tree(tmp);
    test_real();
    return test_report("test_data_idx");
}
