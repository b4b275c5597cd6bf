/* idx.c — the IDX format of MNIST and Fashion-MNIST (big-endian magic and sizes, then unsigned
 * bytes), plain or gzip; headers are checked against the file size and each other before allocating. */
#define _POSIX_C_SOURCE 200809L
#include "core/error.h"
#include "data/dataset.h"
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define IDX_IMAGES_MAGIC 0x00000803u /* unsigned bytes, 3 dimensions */
#define IDX_LABELS_MAGIC 0x00000801u /* unsigned bytes, 1 dimension */
#define IDX_MAX_SIDE 4096u
#define IDX_MAX_COUNT 100000000u

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Validates an open IDX file's header: magic, dimension limits, and the size the header implies
   against the file's (or the gzip trailer's) size. On success df is positioned at the data. */
static cnn_status idx_header(data_file *df, uint32_t magic, uint32_t *dims) {
    int ndims = (int)(magic & 0xff);
    const char *kind = ndims == 3 ? "images" : "labels";
    unsigned char h[16];
    CNN_TRY(data_file_read(df, h, 4, "IDX magic number"));
    if (be32(h) != magic)
        return cnn_fail(CNN_ERR_FORMAT, "%s: wrong magic number 0x%08x, expected 0x%08x (IDX %s: unsigned bytes, %d dimension%s)",
                        df->path, be32(h), magic, kind, ndims, ndims > 1 ? "s" : "");
    CNN_TRY(data_file_read(df, h, 4 * ndims, "IDX header sizes"));
    for (int i = 0; i < ndims; i++) dims[i] = be32(h + 4 * i);
    char claim[96];
    if (ndims == 3) snprintf(claim, sizeof claim, "%u images of %ux%u", dims[0], dims[1], dims[2]);
    else snprintf(claim, sizeof claim, "%u labels", dims[0]);
    if (dims[0] == 0) return cnn_fail(CNN_ERR_FORMAT, "%s: the header claims no %s", df->path, kind);
    if (dims[0] > IDX_MAX_COUNT)
        return cnn_fail(CNN_ERR_FORMAT, "%s: the header claims %s, more than the limit of %u", df->path, claim,
                        IDX_MAX_COUNT);
    if (ndims == 3 && (dims[1] == 0 || dims[2] == 0 || dims[1] > IDX_MAX_SIDE || dims[2] > IDX_MAX_SIDE))
        return cnn_fail(CNN_ERR_FORMAT, "%s: the header claims %s; expected rows and columns in 1..%u", df->path, claim,
                        IDX_MAX_SIDE);
    int64_t payload = 1; /* within the limits above, at most 2^27 * 2^12 * 2^12: no overflow */
    for (int i = 0; i < ndims; i++) payload *= dims[i];
    return data_file_check_size(df, 4 + 4 * ndims + payload, claim);
}

/* Finds dir/prefix-stem (the usual name), its .gz, or MNIST's older dotted name, in that order. */
static cnn_status idx_find(const char *dir, const char *prefix, const char *kind, const char *rank, char *path) {
    const char *forms[] = {"%s/%s-%s-%s", "%s/%s-%s-%s.gz", "%s/%s-%s.%s", "%s/%s-%s.%s.gz"};
    for (int i = 0; i < 4; i++) {
        if (snprintf(path, PATH_MAX, forms[i], dir, prefix, kind, rank) >= PATH_MAX)
            return cnn_fail(CNN_ERR_ARG, "%s: path too long", dir);
        if (data_file_exists(path)) return CNN_OK;
    }
    snprintf(path, PATH_MAX, forms[0], dir, prefix, kind, rank);
    return cnn_fail(CNN_ERR_IO, "%s: no such file (nor %s.gz)", path, path);
}

static cnn_status idx_read_labels(data_file *df, int64_t n, int num_classes, int32_t *labels) {
    uint8_t *raw = malloc((size_t)n);
    if (!raw) return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory for %lld labels", df->path, (long long)n);
    cnn_status st = data_file_read(df, raw, n, "labels");
    for (int64_t i = 0; st == CNN_OK && i < n; i++) {
        if (raw[i] >= num_classes)
            st = cnn_fail(CNN_ERR_FORMAT, "%s: label %d of item %lld is out of range [0, %d)", df->path, raw[i],
                          (long long)i, num_classes);
        labels[i] = raw[i];
    }
    free(raw);
    return st;
}

cnn_status data_idx_decode(data_file *img, data_file *lbl, const char *const *class_names, int num_classes,
                           data_set *out) {
    uint32_t idims[3], ldims[1];
    memset(out, 0, sizeof *out);
    CNN_TRY(idx_header(img, IDX_IMAGES_MAGIC, idims));
    CNN_TRY(idx_header(lbl, IDX_LABELS_MAGIC, ldims));
    if (idims[0] != ldims[0])
        return cnn_fail(CNN_ERR_FORMAT, "%s has %u images but %s has %u labels; expected the same count", img->path,
                        idims[0], lbl->path, ldims[0]);
    int64_t n = idims[0], image_bytes = (int64_t)idims[1] * idims[2];
    out->n = n;
    out->c = 1;
    out->h = (int)idims[1];
    out->w = (int)idims[2];
    out->num_classes = num_classes;
    out->pixels = malloc((size_t)(n * image_bytes));
    out->labels = malloc((size_t)n * sizeof *out->labels);
    cnn_status st = CNN_OK;
    if (!out->pixels || !out->labels)
        st = cnn_fail(CNN_ERR_NOMEM, "%s: out of memory for %lld images of %ux%u", img->path, (long long)n, idims[1],
                      idims[2]);
    if (st == CNN_OK) st = data_file_read(img, out->pixels, n * image_bytes, "pixels");
    if (st == CNN_OK) st = data_file_expect_end(img);
    if (st == CNN_OK) st = idx_read_labels(lbl, n, num_classes, out->labels);
    if (st == CNN_OK) st = data_file_expect_end(lbl);
    if (st == CNN_OK) st = data_set_class_names(out, class_names);
    if (st != CNN_OK) data_free(out);
    return st;
}

cnn_status data_load_idx(const char *dir, int split, const char *const *class_names, int num_classes,
                         data_set *out) {
    const char *prefix = split ? "t10k" : "train";
    char img_path[PATH_MAX], lbl_path[PATH_MAX];
    CNN_TRY(idx_find(dir, prefix, "images", "idx3-ubyte", img_path));
    CNN_TRY(idx_find(dir, prefix, "labels", "idx1-ubyte", lbl_path));
    data_file img, lbl;
    CNN_TRY(data_file_open(&img, img_path));
    cnn_status st = data_file_open(&lbl, lbl_path);
    if (st == CNN_OK) {
        st = data_idx_decode(&img, &lbl, class_names, num_classes, out);
        data_file_close(&lbl);
    }
    data_file_close(&img);
    return st;
}
