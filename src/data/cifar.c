/* cifar.c — the CIFAR-10 and CIFAR-100 binary formats: fixed-size records of label byte(s) and
 * 3072 pixel bytes (3x32x32, already channels first), several batch files per split. */
#define _POSIX_C_SOURCE 200809L
#include "core/error.h"
#include "data/dataset.h"
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define CIFAR_PIXELS 3072 /* 3 x 32 x 32 */
#define CIFAR_CHUNK 512   /* records read at a time */

static const char *const cifar10_names[10] = {"airplane", "automobile", "bird", "cat", "deer",
                                              "dog", "frog", "horse", "ship", "truck"};

static const char *const cifar100_names[100] = {
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
    "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm"};

typedef struct cifar_format {
    int num_classes;
    int label_bytes;      /* 1 (CIFAR-10) or 2 (CIFAR-100: coarse, fine; we use the fine one) */
    const char *subdir;   /* the directory the official archive unpacks to */
    const char *names_file;
    const char *const *builtin_names;
    const char *files[2][5]; /* [split][i], NULL-terminated when fewer than 5 */
} cifar_format;

static const cifar_format cifar10 = {
    10, 1, "cifar-10-batches-bin", "batches.meta.txt", cifar10_names,
    {{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"},
     {"test_batch.bin"}}};
static const cifar_format cifar100 = {100, 2, "cifar-100-binary", "fine_label_names.txt", cifar100_names,
                                      {{"train.bin"}, {"test.bin"}}};

/* The files may sit in dir itself or in the archive's own directory inside it. */
static cnn_status cifar_base(const char *dir, const cifar_format *fmt, int split, char *base) {
    char path[PATH_MAX], alt[PATH_MAX];
    const char *first = fmt->files[split][0];
    snprintf(path, sizeof path, "%s/%s", dir, first);
    if (snprintf(alt, sizeof alt, "%s/%s/%s", dir, fmt->subdir, first) >= (int)sizeof alt)
        return cnn_fail(CNN_ERR_ARG, "%s: path too long", dir);
    if (data_file_exists(path)) snprintf(base, PATH_MAX, "%s", dir);
    else if (data_file_exists(alt)) snprintf(base, PATH_MAX, "%s/%s", dir, fmt->subdir);
    else return cnn_fail(CNN_ERR_IO, "%s: no such file (nor %s)", path, alt);
    return CNN_OK;
}

/* A batch file's record count; its size must be a whole, non-zero number of records. */
static cnn_status cifar_records(data_file *df, int record, int64_t *records) {
    char claim[64];
    *records = df->size / record;
    if (df->size == 0)
        return cnn_fail(CNN_ERR_FORMAT, "%s: empty file, expected records of %d bytes", df->path, record);
    if (df->size % record != 0)
        return cnn_fail(CNN_ERR_FORMAT, "%s: size %lld is not a multiple of the %d-byte record (%d label byte%s + %d pixels): truncated or trailing garbage",
                        df->path, (long long)df->size, record, record - CIFAR_PIXELS, record - CIFAR_PIXELS > 1 ? "s" : "",
                        CIFAR_PIXELS);
    snprintf(claim, sizeof claim, "%lld records of %d bytes", (long long)*records, record);
    return data_file_check_size(df, df->size, claim);
}

/* Reads `records` records into the data set starting at image `at`, checking every label. */
static cnn_status cifar_read(data_file *df, const cifar_format *fmt, int64_t records, int64_t at, data_set *ds,
                             uint8_t *buf) {
    int record = fmt->label_bytes + CIFAR_PIXELS;
    for (int64_t done = 0; done < records;) {
        int64_t m = records - done < CIFAR_CHUNK ? records - done : CIFAR_CHUNK;
        CNN_TRY(data_file_read(df, buf, m * record, "records"));
        for (int64_t i = 0; i < m; i++) {
            const uint8_t *r = buf + i * record;
            int64_t idx = done + i;
            if (fmt->label_bytes == 2 && r[0] >= 20)
                return cnn_fail(CNN_ERR_FORMAT, "%s: coarse label %d of record %lld is out of range [0, 20)", df->path,
                                r[0], (long long)idx);
            int label = r[fmt->label_bytes - 1];
            if (label >= fmt->num_classes)
                return cnn_fail(CNN_ERR_FORMAT, "%s: label %d of record %lld is out of range [0, %d)", df->path, label,
                                (long long)idx, fmt->num_classes);
            ds->labels[at + idx] = label;
            memcpy(ds->pixels + (at + idx) * CIFAR_PIXELS, r + fmt->label_bytes, CIFAR_PIXELS);
        }
        done += m;
    }
    return data_file_expect_end(df);
}

cnn_status data_cifar_decode(data_file *files, int nfiles, int variant, data_set *out) {
    const cifar_format *fmt = variant == 100 ? &cifar100 : &cifar10;
    int record = fmt->label_bytes + CIFAR_PIXELS;
    int64_t records[5], n = 0;
    memset(out, 0, sizeof *out);
    if (nfiles < 1 || nfiles > 5) return cnn_fail(CNN_ERR_ARG, "CIFAR: %d batch files, expected 1 to 5", nfiles);
    for (int i = 0; i < nfiles; i++) {
        CNN_TRY(cifar_records(&files[i], record, &records[i]));
        n += records[i];
    }
    out->n = n;
    out->c = 3;
    out->h = out->w = 32;
    out->num_classes = fmt->num_classes;
    out->pixels = malloc((size_t)n * CIFAR_PIXELS);
    out->labels = malloc((size_t)n * sizeof *out->labels);
    uint8_t *buf = malloc((size_t)CIFAR_CHUNK * record);
    cnn_status st = CNN_OK;
    if (!out->pixels || !out->labels || !buf)
        st = cnn_fail(CNN_ERR_NOMEM, "%s: out of memory for %lld CIFAR images", files[0].path, (long long)n);
    int64_t at = 0;
    for (int i = 0; st == CNN_OK && i < nfiles; at += records[i], i++)
        st = cifar_read(&files[i], fmt, records[i], at, out, buf);
    free(buf);
    if (st != CNN_OK) data_free(out);
    return st;
}

cnn_status data_load_cifar(const char *dir, int split, int variant, data_set *out) {
    const cifar_format *fmt = variant == 100 ? &cifar100 : &cifar10;
    char base[PATH_MAX], path[5][PATH_MAX];
    data_file df[5];
    int nfiles = 0;
    cnn_status st = cifar_base(dir, fmt, split, base);
    for (; st == CNN_OK && nfiles < 5 && fmt->files[split][nfiles]; nfiles++) {
        if (snprintf(path[nfiles], PATH_MAX, "%s/%s", base, fmt->files[split][nfiles]) >= PATH_MAX)
            st = cnn_fail(CNN_ERR_ARG, "%s: path too long", base);
        else st = data_file_open(&df[nfiles], path[nfiles]);
        if (st != CNN_OK) break;
    }
    if (st == CNN_OK) st = data_cifar_decode(df, nfiles, variant, out);
    for (int i = 0; i < nfiles; i++) data_file_close(&df[i]);
    if (st == CNN_OK) {
        char names[PATH_MAX];
        if (snprintf(names, sizeof names, "%s/%s", base, fmt->names_file) >= (int)sizeof names)
            st = cnn_fail(CNN_ERR_ARG, "%s: path too long", base);
        else st = data_file_exists(names) ? data_read_class_names(out, names) : data_set_class_names(out, fmt->builtin_names);
    }
    return st;
}
