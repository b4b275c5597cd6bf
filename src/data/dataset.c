/* dataset.c — loading a data set by name, freeing it, channel statistics, and the plain-or-gzip
 * file reader that the format readers share (sizes are checked against headers before allocating). */
#define _POSIX_C_SOURCE 200809L
#include "data/dataset.h"
#include "core/error.h"
#include "core/fileio.h"
#include "core/json.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

static const char *const fashion_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
static const char *const digit_names[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};

enum { KIND_FASHION, KIND_MNIST, KIND_CIFAR10, KIND_CIFAR100 };

static const struct {
    const char *name;
    int kind;
} known_names[] = {
    {"fashion-mnist", KIND_FASHION}, {"fashion_mnist", KIND_FASHION}, {"fashionmnist", KIND_FASHION},
    {"mnist", KIND_MNIST},           {"cifar10", KIND_CIFAR10},       {"cifar-10", KIND_CIFAR10},
    {"cifar100", KIND_CIFAR100},     {"cifar-100", KIND_CIFAR100},
};

static const char *const default_dirs[] = {
    [KIND_FASHION] = "/usr/share/datasets/fashion-mnist",
    [KIND_MNIST] = "/usr/share/datasets/mnist",
    [KIND_CIFAR10] = "/usr/share/datasets/cifar10",
    [KIND_CIFAR100] = "/usr/share/datasets/cifar100",
};

static int data_kind(const char *name) {
    if (!name) return -1;
    for (size_t i = 0; i < sizeof known_names / sizeof known_names[0]; i++)
        if (strcmp(name, known_names[i].name) == 0) return known_names[i].kind;
    return -1;
}

const char *data_default_dir(const char *name) {
    int kind = data_kind(name);
    return kind < 0 ? NULL : default_dirs[kind];
}

cnn_status data_load(const char *name, const char *dir, int split, data_set *out) {
    memset(out, 0, sizeof *out);
    int kind = data_kind(name);
    if (kind < 0)
        return cnn_fail(CNN_ERR_ARG, "unknown data set '%s' (expected fashion-mnist, mnist, cifar10 or cifar100)",
                        name ? name : "(null)");
    if (split != 0 && split != 1)
        return cnn_fail(CNN_ERR_ARG, "data set %s: split must be 0 (train) or 1 (test), got %d", name, split);
    if (!dir) dir = default_dirs[kind];
    const char *split_name = split ? "test" : "train";
    if (!data_dir_exists(dir))
        return cnn_fail(CNN_ERR_IO, "loading %s %s: directory %s does not exist or is not a directory", name,
                        split_name, dir);
    cnn_status st;
    switch (kind) {
    case KIND_FASHION: st = data_load_idx(dir, split, fashion_names, 10, out); break;
    case KIND_MNIST: st = data_load_idx(dir, split, digit_names, 10, out); break;
    case KIND_CIFAR10: st = data_load_cifar(dir, split, 10, out); break;
    default: st = data_load_cifar(dir, split, 100, out); break;
    }
    if (st != CNN_OK) {
        data_free(out);
        return cnn_fail_context(st, "loading %s %s", name, split_name);
    }
    return CNN_OK;
}

void data_free(data_set *ds) {
    if (!ds) return;
    if (ds->class_names)
        for (int i = 0; i < ds->num_classes; i++) free(ds->class_names[i]);
    free(ds->class_names);
    free(ds->pixels);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

/* Sums of pixels and of their squares are exact integers, so E[x^2] - E[x]^2 in double loses
   nothing that matters (both terms are at most 255^2; the result is good to ~1e-12). */
void data_channel_stats(const data_set *ds, int64_t first, int64_t count, float *mean, float *std) {
    int64_t hw = (int64_t)ds->h * ds->w;
    for (int ch = 0; ch < ds->c; ch++) {
        mean[ch] = 0.0f;
        std[ch] = 1.0f;
    }
    if (count <= 0 || hw <= 0) return;
    for (int ch = 0; ch < ds->c; ch++) {
        uint64_t s1 = 0, s2 = 0;
        for (int64_t i = first; i < first + count; i++) {
            const uint8_t *p = ds->pixels + (i * ds->c + ch) * hw;
            for (int64_t j = 0; j < hw; j++) {
                s1 += p[j];
                s2 += (uint32_t)p[j] * p[j];
            }
        }
        double npix = (double)count * (double)hw;
        double m = (double)s1 / npix, var = (double)s2 / npix - m * m;
        mean[ch] = (float)(m / 255.0);
        std[ch] = var > 0.0 ? (float)(sqrt(var) / 255.0) : 0.0f;
    }
}

cnn_status data_set_class_names(data_set *ds, const char *const *names) {
    ds->class_names = calloc((size_t)ds->num_classes, sizeof *ds->class_names);
    if (!ds->class_names) return cnn_fail(CNN_ERR_NOMEM, "out of memory for %d class names", ds->num_classes);
    for (int i = 0; i < ds->num_classes; i++) {
        ds->class_names[i] = strdup(names[i]);
        if (!ds->class_names[i]) return cnn_fail(CNN_ERR_NOMEM, "out of memory for class names");
    }
    return CNN_OK;
}

/* Names end up in checkpoint metadata (JSON strings) and in reports: each must be UTF-8 text. */
cnn_status data_parse_class_names(data_set *ds, const char *name, const char *text, size_t len) {
    if (memchr(text, 0, len))
        return cnn_fail(CNN_ERR_FORMAT, "%s: contains a NUL byte, expected text with one class name per line", name);
    ds->class_names = calloc((size_t)ds->num_classes, sizeof *ds->class_names);
    if (!ds->class_names) return cnn_fail(CNN_ERR_NOMEM, "out of memory for %d class names", ds->num_classes);
    int count = 0, line = 0;
    for (const char *p = text, *end = text + len; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *b = p, *e = nl ? nl : end;
        p = nl ? nl + 1 : end;
        while (b < e && (*b == ' ' || *b == '\t' || *b == '\r')) b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) e--;
        if (e == b) continue;
        if (count == ds->num_classes)
            return cnn_fail(CNN_ERR_FORMAT, "%s: more than the expected %d class names (line %d)", name, ds->num_classes,
                            line + 1);
        if (!json_utf8_valid(b, (size_t)(e - b)))
            return cnn_fail(CNN_ERR_FORMAT, "%s: line %d is not UTF-8 text", name, line + 1);
        if (!(ds->class_names[count++] = strndup(b, (size_t)(e - b))))
            return cnn_fail(CNN_ERR_NOMEM, "out of memory for class names");
    }
    if (count < ds->num_classes)
        return cnn_fail(CNN_ERR_FORMAT, "%s: %d class names, expected %d (one per line)", name, count, ds->num_classes);
    return CNN_OK;
}

cnn_status data_read_class_names(data_set *ds, const char *path) {
    uint8_t *text;
    size_t len;
    CNN_TRY(file_read_all(path, CLASS_NAMES_MAX_BYTES, &text, &len));
    cnn_status st = data_parse_class_names(ds, path, (const char *)text, len);
    free(text);
    return st;
}

int data_file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

int data_dir_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* ---- plain-or-gzip reader ---- */

/* Deflate cannot compress better than about 1032:1, so a gzip file of S bytes holds at most
   that many times S; a header claiming more is lying, whatever ISIZE says. */
#define GZIP_MAX_RATIO 1032
#define GZIP_INPUT_BYTES (1 << 17)

/* Bytes of the file itself (compressed ones for gzip), from the FILE or from memory. */
static size_t raw_read(data_file *df, void *buf, size_t n) {
    if (df->f) return fread(buf, 1, n, df->f);
    size_t left = df->mem_size - df->mem_pos;
    if (n > left) n = left;
    memcpy(buf, df->mem + df->mem_pos, n);
    df->mem_pos += n;
    return n;
}

/* Detects gzip by its magic bytes and reads ISIZE (the last 4 bytes) so that data_file_check_size can
   compare it with a header's claim before anything is allocated; then gets ready to inflate. */
static cnn_status data_file_start(data_file *df) {
    unsigned char m[4];
    if (raw_read(df, m, 2) != 2 || m[0] != 0x1f || m[1] != 0x8b) {
        if (df->f) rewind(df->f);
        df->mem_pos = 0;
        df->size = df->disk_size;
        return CNN_OK;
    }
    if (df->disk_size < 18)
        return cnn_fail(CNN_ERR_FORMAT, "%s: truncated gzip file (%lld bytes, a gzip file has at least 18)", df->path,
                        (long long)df->disk_size);
    if (df->f) {
        if (fseek(df->f, -4, SEEK_END) != 0 || fread(m, 1, 4, df->f) != 4)
            return cnn_fail(CNN_ERR_IO, "%s: cannot read the gzip trailer", df->path);
        rewind(df->f);
    } else {
        memcpy(m, df->mem + df->mem_size - 4, 4);
    }
    df->mem_pos = 0;
    df->size = (int64_t)((uint32_t)m[0] | (uint32_t)m[1] << 8 | (uint32_t)m[2] << 16 | (uint32_t)m[3] << 24);
    z_stream *z = calloc(1, sizeof *z);
    if (!z) return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", df->path);
    if (inflateInit2(z, 16 + MAX_WBITS) != Z_OK) { /* 16: gzip wrapper, CRC and length checked */
        free(z);
        return cnn_fail(CNN_ERR_NOMEM, "%s: cannot start zlib", df->path);
    }
    df->gz = z;
    if (df->f && !(df->zbuf = malloc(GZIP_INPUT_BYTES))) return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", df->path);
    return CNN_OK;
}

cnn_status data_file_open(data_file *df, const char *path) {
    memset(df, 0, sizeof *df);
    df->path = path;
    FILE *f = fopen(path, "rb");
    if (!f) return cnn_fail(CNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return cnn_fail(CNN_ERR_IO, "%s: not a regular file", path);
    }
    df->f = f;
    df->disk_size = (int64_t)sb.st_size;
    cnn_status st = data_file_start(df);
    if (st != CNN_OK) data_file_close(df);
    return st;
}

cnn_status data_file_open_memory(data_file *df, const char *name, const void *bytes, size_t n) {
    memset(df, 0, sizeof *df);
    df->path = name;
    df->mem = bytes;
    df->mem_size = n;
    df->disk_size = (int64_t)n;
    cnn_status st = data_file_start(df);
    if (st != CNN_OK) data_file_close(df);
    return st;
}

/* More compressed input for inflate; 0 at the end of the file. */
static size_t gz_refill(data_file *df) {
    z_stream *z = df->gz;
    if (!df->f) { /* memory: hand inflate the rest directly */
        size_t n = df->mem_size - df->mem_pos;
        if (n > (1u << 30)) n = 1u << 30;
        z->next_in = (Bytef *)(df->mem + df->mem_pos);
        df->mem_pos += n;
        return z->avail_in = (uInt)n;
    }
    z->next_in = df->zbuf;
    return z->avail_in = (uInt)fread(df->zbuf, 1, GZIP_INPUT_BYTES, df->f);
}

/* Inflates up to n bytes into out (*got of them), across concatenated gzip members as gzip(1) does.
   Stops short only at the end of the last member. Returns NULL, or why the stream is bad. */
static const char *gz_inflate(data_file *df, uint8_t *out, int64_t n, int64_t *got) {
    z_stream *z = df->gz;
    *got = 0;
    while (*got < n && !df->gz_done) {
        if (z->avail_in == 0 && gz_refill(df) == 0) {
            if (df->f && ferror(df->f)) return strerror(errno);
            return "the compressed data end early";
        }
        uInt room = n - *got < (1 << 30) ? (uInt)(n - *got) : (1u << 30);
        z->next_out = out + *got;
        z->avail_out = room;
        int r = inflate(z, Z_NO_FLUSH);
        *got += room - z->avail_out;
        if (r == Z_STREAM_END) {
            if (z->avail_in == 0) gz_refill(df);
            if (z->avail_in == 0) df->gz_done = 1;
            else if (z->next_in[0] != 0x1f) return "bytes after the end of the gzip stream";
            else inflateReset(z); /* another member follows */
        } else if (r != Z_OK && r != Z_BUF_ERROR) {
            return z->msg ? z->msg : "zlib error";
        }
    }
    return NULL;
}

cnn_status data_file_read(data_file *df, void *buf, int64_t n, const char *what) {
    int64_t got = 0;
    if (df->gz) {
        const char *why = gz_inflate(df, buf, n, &got);
        if (why)
            return cnn_fail(CNN_ERR_FORMAT, "%s: corrupt or truncated gzip stream reading %s at uncompressed offset %lld: %s",
                            df->path, what, (long long)(df->pos + got), why);
    } else {
        while (got < n) {
            size_t chunk = n - got < (1 << 30) ? (size_t)(n - got) : (1u << 30);
            size_t r = raw_read(df, (char *)buf + got, chunk);
            got += (int64_t)r;
            if (r < chunk && df->f && ferror(df->f))
                return cnn_fail(CNN_ERR_IO, "%s: read error at offset %lld: %s", df->path, (long long)(df->pos + got),
                                strerror(errno));
            if (r < chunk) break;
        }
    }
    df->pos += got;
    if (got < n)
        return cnn_fail(CNN_ERR_FORMAT, "%s: truncated: expected %lld bytes of %s at %soffset %lld, got %lld", df->path,
                        (long long)n, what, df->gz ? "uncompressed " : "", (long long)(df->pos - got), (long long)got);
    return CNN_OK;
}

cnn_status data_file_check_size(data_file *df, int64_t total, const char *claim) {
    if (!df->gz) {
        if (total > df->size)
            return cnn_fail(CNN_ERR_FORMAT, "%s: truncated: the header claims %s (%lld bytes in all) but the file has %lld bytes",
                            df->path, claim, (long long)total, (long long)df->size);
        if (total < df->size)
            return cnn_fail(CNN_ERR_FORMAT, "%s: trailing garbage: the header claims %s (%lld bytes in all) but the file has %lld bytes",
                            df->path, claim, (long long)total, (long long)df->size);
        return CNN_OK;
    }
    if (total / GZIP_MAX_RATIO > df->disk_size)
        return cnn_fail(CNN_ERR_FORMAT, "%s: the header claims %s (%lld bytes), more than a %lld-byte gzip file can hold",
                        df->path, claim, (long long)total, (long long)df->disk_size);
    if ((total & 0xffffffffLL) != df->size)
        return cnn_fail(CNN_ERR_FORMAT,
                        "%s: the header claims %s (%lld bytes uncompressed) but the gzip trailer says %lld bytes (mod 2^32): "
                        "truncated or corrupt file",
                        df->path, claim, (long long)total, (long long)df->size);
    return CNN_OK;
}

cnn_status data_file_expect_end(data_file *df) {
    uint8_t b;
    if (!df->gz) {
        if (raw_read(df, &b, 1))
            return cnn_fail(CNN_ERR_FORMAT, "%s: trailing garbage after the %lld expected bytes", df->path,
                            (long long)df->pos);
        return CNN_OK;
    }
    int64_t got;
    const char *why = gz_inflate(df, &b, 1, &got); /* also checks the CRC and length of the last member */
    if (why)
        return cnn_fail(CNN_ERR_FORMAT, "%s: corrupt or truncated gzip stream after %lld uncompressed bytes: %s",
                        df->path, (long long)df->pos, why);
    if (got)
        return cnn_fail(CNN_ERR_FORMAT, "%s: trailing garbage after the %lld expected uncompressed bytes", df->path,
                        (long long)df->pos);
    return CNN_OK;
}

void data_file_close(data_file *df) {
    if (df->f) fclose(df->f);
    if (df->gz) {
        inflateEnd(df->gz);
        free(df->gz);
    }
    free(df->zbuf);
    df->f = NULL;
    df->gz = NULL;
    df->zbuf = NULL;
}
