/* test_data_cifar.c — CIFAR-10 and CIFAR-100 binary loading: every pixel and label of tiny
 * hand-made batch files, both directory layouts, class-name files, and each kind of bad file. */
#include "data/dataset.h"
#include "testutil.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


static char tmp[256];


static const char *fresh_dir(const char *name) {
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", tmp, name);
    remove_tree(dir);
    mkdir(dir, 0700);
    return dir;
}

static void write_bytes(const char *dir, const char *name, const void *bytes, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(bytes, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
}

/* Image g (numbered across all files of a test): pixel j = (31 g + 7 j) mod 256,
   CIFAR-10 label (3 g) mod 10; CIFAR-100 coarse g mod 20, fine (37 g) mod 100. */
static int pixel(int g, int j) { return (31 * g + 7 * j) & 255; }
static int label10(int g) { return (3 * g) % 10; }
static int coarse(int g) { return g % 20; }
static int fine(int g) { return (37 * g) % 100; }

enum { PIX = 3072, REC10 = 3073, REC100 = 3074 };

/* Writes `count` records of images first..first+count-1; extra > 0 appends bytes, < 0 cuts. */
static void write_batch(const char *dir, const char *name, int variant, int first, int count, int extra) {
    int rec = variant == 100 ? REC100 : REC10;
    size_t n = (size_t)count * rec;
    uint8_t *buf = calloc(n + (extra > 0 ? extra : 0), 1);
    for (int r = 0; r < count; r++) {
        uint8_t *p = buf + (size_t)r * rec;
        int g = first + r;
        if (variant == 100) p[0] = (uint8_t)coarse(g), p[1] = (uint8_t)fine(g);
        else p[0] = (uint8_t)label10(g);
        for (int j = 0; j < PIX; j++) p[rec - PIX + j] = (uint8_t)pixel(g, j);
    }
    write_bytes(dir, name, buf, n + extra);
    free(buf);
}

static void write_cifar10(const char *dir, int per_file, int test_count) {
    char name[64];
    for (int b = 0; b < 5; b++) {
        snprintf(name, sizeof name, "data_batch_%d.bin", b + 1);
        write_batch(dir, name, 10, b * per_file, per_file, 0);
    }
    write_batch(dir, "test_batch.bin", 10, 100, test_count, 0);
}

static void check_set(const data_set *ds, int variant, int first, int n, const char *what) {
    CHECK(ds->n == n && ds->c == 3 && ds->h == 32 && ds->w == 32, "%s: shape n=%lld %dx%dx%d", what,
          (long long)ds->n, ds->c, ds->h, ds->w);
    CHECK(ds->num_classes == variant, "%s: %d classes", what, ds->num_classes);
    if (ds->n != n) return;
    int bad = 0;
    for (int i = 0; i < n; i++) {
        int g = first + i, want = variant == 100 ? fine(g) : label10(g);
        CHECK(ds->labels[i] == want, "%s: label %d is %d, expected %d", what, i, ds->labels[i], want);
        for (int j = 0; j < PIX; j++) bad += ds->pixels[(size_t)i * PIX + j] != pixel(g, j);
    }
    CHECK(bad == 0, "%s: %d wrong pixels", what, bad);
}

static void test_good(void) {
    data_set ds;
    /* CIFAR-10, files in dir itself, built-in names */
    const char *dir = fresh_dir("c10");
    write_cifar10(dir, 2, 3);
    CHECK(data_load("cifar10", dir, 0, &ds) == CNN_OK, "cifar10 train: %s", cnn_last_error());
    check_set(&ds, 10, 0, 10, "cifar10 train");
    if (ds.class_names)
        CHECK(!strcmp(ds.class_names[0], "airplane") && !strcmp(ds.class_names[9], "truck"), "cifar10 names");
    data_free(&ds);
    CHECK(data_load("cifar-10", dir, 1, &ds) == CNN_OK, "cifar10 test: %s", cnn_last_error());
    check_set(&ds, 10, 100, 3, "cifar10 test");
    data_free(&ds);

    /* CIFAR-10 in the archive's directory, names from batches.meta.txt (CRLF, trailing blank line) */
    dir = fresh_dir("c10p");
    char sub[600];
    snprintf(sub, sizeof sub, "%s/cifar-10-batches-bin", dir);
    mkdir(sub, 0700);
    write_cifar10(sub, 1, 1);
    const char meta[] = "n0\r\nn1\r\nn2\r\nn3\r\nn4\r\nn5\r\nn6\r\nn7\r\nn8\r\n  n 9 \r\n\r\n";
    write_bytes(sub, "batches.meta.txt", meta, sizeof meta - 1);
    CHECK(data_load("cifar10", dir, 0, &ds) == CNN_OK, "cifar10 parent layout: %s", cnn_last_error());
    check_set(&ds, 10, 0, 5, "cifar10 parent layout");
    if (ds.class_names)
        CHECK(!strcmp(ds.class_names[0], "n0") && !strcmp(ds.class_names[9], "n 9"), "meta names '%s' '%s'",
              ds.class_names[0], ds.class_names[9]);
    data_free(&ds);

    /* CIFAR-100, fine labels, built-in names */
    dir = fresh_dir("c100");
    write_batch(dir, "train.bin", 100, 0, 4, 0);
    write_batch(dir, "test.bin", 100, 50, 2, 0);
    CHECK(data_load("cifar100", dir, 0, &ds) == CNN_OK, "cifar100 train: %s", cnn_last_error());
    check_set(&ds, 100, 0, 4, "cifar100 train");
    if (ds.class_names) {
        CHECK(!strcmp(ds.class_names[0], "apple") && !strcmp(ds.class_names[99], "worm"), "cifar100 names");
        /* the standard order is alphabetical */
        for (int k = 1; k < 100; k++)
            CHECK(strcmp(ds.class_names[k - 1], ds.class_names[k]) < 0, "names %d,%d out of order", k - 1, k);
    }
    data_free(&ds);
    CHECK(data_load("cifar100", dir, 1, &ds) == CNN_OK, "cifar100 test: %s", cnn_last_error());
    check_set(&ds, 100, 50, 2, "cifar100 test");
    data_free(&ds);

    /* CIFAR-100 in cifar-100-binary/ with fine_label_names.txt */
    dir = fresh_dir("c100p");
    snprintf(sub, sizeof sub, "%s/cifar-100-binary", dir);
    mkdir(sub, 0700);
    write_batch(sub, "train.bin", 100, 0, 3, 0);
    char names[1200] = "";
    for (int k = 0; k < 100; k++) snprintf(names + strlen(names), sizeof names - strlen(names), "c%d\n", k);
    write_bytes(sub, "fine_label_names.txt", names, strlen(names));
    CHECK(data_load("cifar100", dir, 0, &ds) == CNN_OK, "cifar100 parent layout: %s", cnn_last_error());
    check_set(&ds, 100, 0, 3, "cifar100 parent layout");
    if (ds.class_names) CHECK(!strcmp(ds.class_names[42], "c42"), "fine names: %s", ds.class_names[42]);
    data_free(&ds);
}

static void expect_bad(const char *label, const char *name, const char *dir, int split, cnn_status status,
                       const char *needle, const char *needle2) {
    data_set ds;
    cnn_status st = data_load(name, dir, split, &ds);
    const char *msg = cnn_last_error();
    CHECK(st == status, "%s: status %s, expected %s (%s)", label, cnn_status_name(st), cnn_status_name(status), msg);
    CHECK(strstr(msg, needle) != NULL, "%s: message does not name '%s': %s", label, needle, msg);
    if (needle2) CHECK(strstr(msg, needle2) != NULL, "%s: message lacks '%s': %s", label, needle2, msg);
    CHECK(ds.pixels == NULL && ds.labels == NULL && ds.class_names == NULL && ds.n == 0, "%s: not left empty", label);
    printf("  %-30s -> %s\n", label, msg);
    data_free(&ds);
}

static void test_bad(void) {
    char path[600];
    snprintf(path, sizeof path, "%s/absent", tmp);
    expect_bad("missing directory", "cifar10", path, 0, CNN_ERR_IO, "absent", NULL);

    const char *dir = fresh_dir("bad");
    expect_bad("no batch files", "cifar10", dir, 0, CNN_ERR_IO, "data_batch_1.bin", "cifar-10-batches-bin");
    expect_bad("no test file (CIFAR-100)", "cifar100", dir, 1, CNN_ERR_IO, "test.bin", "cifar-100-binary");

    write_cifar10(dir, 2, 1);
    snprintf(path, sizeof path, "%s/data_batch_3.bin", dir);
    unlink(path);
    expect_bad("missing data_batch_3.bin", "cifar10", dir, 0, CNN_ERR_IO, "data_batch_3.bin", NULL);

    write_cifar10(dir, 2, 1);
    write_batch(dir, "data_batch_2.bin", 10, 2, 2, -1);
    expect_bad("truncated record", "cifar10", dir, 0, CNN_ERR_FORMAT, "data_batch_2.bin", "multiple of the 3073");
    write_batch(dir, "data_batch_2.bin", 10, 2, 2, 5);
    expect_bad("trailing garbage", "cifar10", dir, 0, CNN_ERR_FORMAT, "data_batch_2.bin", "multiple");
    write_batch(dir, "data_batch_2.bin", 10, 2, 0, 0);
    expect_bad("empty batch file", "cifar10", dir, 0, CNN_ERR_FORMAT, "data_batch_2.bin", "empty");

    write_cifar10(dir, 2, 1);
    uint8_t rec[REC10] = {10};
    write_bytes(dir, "test_batch.bin", rec, sizeof rec);
    expect_bad("label 10 in CIFAR-10", "cifar10", dir, 1, CNN_ERR_FORMAT, "test_batch.bin", "out of range");

    write_cifar10(dir, 2, 1);
    write_bytes(dir, "batches.meta.txt", "a\nb\nc\n", 6);
    expect_bad("3 names", "cifar10", dir, 0, CNN_ERR_FORMAT, "batches.meta.txt", "expected 10");
    write_bytes(dir, "batches.meta.txt", "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\n", 22);
    expect_bad("11 names", "cifar10", dir, 0, CNN_ERR_FORMAT, "batches.meta.txt", NULL);

    dir = fresh_dir("bad100");
    uint8_t rec100[2 * REC100] = {0};
    rec100[REC100] = 3, rec100[REC100 + 1] = 100; /* second record: fine label 100 */
    write_bytes(dir, "train.bin", rec100, sizeof rec100);
    expect_bad("fine label 100", "cifar100", dir, 0, CNN_ERR_FORMAT, "train.bin", "label 100 of record 1");
    rec100[REC100] = 20, rec100[REC100 + 1] = 5;
    write_bytes(dir, "train.bin", rec100, sizeof rec100);
    expect_bad("coarse label 20", "cifar100", dir, 0, CNN_ERR_FORMAT, "train.bin", "coarse");
    write_bytes(dir, "train.bin", rec100, REC10); /* a CIFAR-10 record size */
    expect_bad("CIFAR-10 record in CIFAR-100", "cifar100", dir, 0, CNN_ERR_FORMAT, "train.bin", "3074");
}

int main(void) {
    if (!temp_dir(tmp, sizeof tmp)) return 2;
    test_good();
    printf("bad files:\n");
    test_bad();
    remove_tree(tmp);
    return test_report("test_data_cifar");
}
