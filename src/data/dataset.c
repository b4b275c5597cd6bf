/* dataset.c — loading a data set by name, freeing it, channel statistics, and the plain-or-gzip
 * file reader that the format readers share (sizes are checked against headers before allocating). */
#define _POSIX_C_SOURCE 200809L
#include "data/dataset.h"
#include "core/error.h"
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

cnn_status data_read_class_names(data_set *ds, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return cnn_fail(CNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    ds->class_names = calloc((size_t)ds->num_classes, sizeof *ds->class_names);
    if (!ds->class_names) {
        fclose(f);
        return cnn_fail(CNN_ERR_NOMEM, "out of memory for %d class names", ds->num_classes);
    }
    char *line = NULL;
    size_t cap = 0;
    int count = 0;
    cnn_status st = CNN_OK;
    while (st == CNN_OK && getline(&line, &cap, f) >= 0) {
        char *b = line, *e = line + strlen(line);
        while (*b == ' ' || *b == '\t' || *b == '\r' || *b == '\n') b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n')) e--;
        if (e == b) continue;
        if (count == ds->num_classes) {
            st = cnn_fail(CNN_ERR_FORMAT, "%s: more than the expected %d class names", path, ds->num_classes);
            break;
        }
        ds->class_names[count] = strndup(b, (size_t)(e - b));
        if (!ds->class_names[count++]) st = cnn_fail(CNN_ERR_NOMEM, "out of memory for class names");
    }
    if (st == CNN_OK && ferror(f)) st = cnn_fail(CNN_ERR_IO, "%s: read error", path);
    if (st == CNN_OK && count < ds->num_classes)
        st = cnn_fail(CNN_ERR_FORMAT, "%s: %d class names, expected %d (one per line)", path, count,
                      ds->num_classes);
    free(line);
    fclose(f);
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
    df->disk_size = (int64_t)sb.st_size;
    unsigned char m[4];
    if (fread(m, 1, 2, f) == 2 && m[0] == 0x1f && m[1] == 0x8b) {
        if (df->disk_size < 18) {
            fclose(f);
            return cnn_fail(CNN_ERR_FORMAT, "%s: truncated gzip file (%lld bytes, a gzip file has at least 18)",
                            path, (long long)df->disk_size);
        }
        int ok = fseek(f, -4, SEEK_END) == 0 && fread(m, 1, 4, f) == 4;
        fclose(f);
        if (!ok) return cnn_fail(CNN_ERR_IO, "%s: cannot read the gzip trailer", path);
        df->size = (int64_t)((uint32_t)m[0] | (uint32_t)m[1] << 8 | (uint32_t)m[2] << 16 | (uint32_t)m[3] << 24);
        gzFile gz = gzopen(path, "rb");
        if (!gz) return cnn_fail(CNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        gzbuffer(gz, 1 << 17);
        df->gz = gz;
    } else {
        rewind(f);
        df->f = f;
        df->size = df->disk_size;
    }
    return CNN_OK;
}

/* zlib's message, without the file name it puts in front (ours already says it). */
static const char *gz_message(const data_file *df) {
    int err;
    const char *msg = gzerror((gzFile)df->gz, &err);
    if (err == Z_OK) return "no zlib error";
    size_t n = strlen(df->path);
    return strncmp(msg, df->path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ' ? msg + n + 2 : msg;
}

cnn_status data_file_read(data_file *df, void *buf, int64_t n, const char *what) {
    int64_t got = 0;
    while (got < n) {
        int64_t chunk = n - got < (1 << 30) ? n - got : (1 << 30);
        int64_t r;
        if (df->gz) {
            r = gzread((gzFile)df->gz, (char *)buf + got, (unsigned)chunk);
            if (r < 0)
                return cnn_fail(CNN_ERR_FORMAT, "%s: corrupt gzip stream reading %s at uncompressed offset %lld: %s",
                                df->path, what, (long long)(df->pos + got), gz_message(df));
        } else {
            r = (int64_t)fread((char *)buf + got, 1, (size_t)chunk, df->f);
            if (r < chunk && ferror(df->f))
                return cnn_fail(CNN_ERR_IO, "%s: read error at offset %lld: %s", df->path,
                                (long long)(df->pos + got + r), strerror(errno));
        }
        got += r;
        if (r < chunk) break;
    }
    df->pos += got;
    if (got < n) {
        if (df->gz)
            return cnn_fail(CNN_ERR_FORMAT,
                            "%s: truncated: expected %lld bytes of %s at uncompressed offset %lld, got %lld (%s)",
                            df->path, (long long)n, what, (long long)(df->pos - got), (long long)got,
                            gz_message(df));
        return cnn_fail(CNN_ERR_FORMAT, "%s: truncated: expected %lld bytes of %s at offset %lld, got %lld",
                        df->path, (long long)n, what, (long long)(df->pos - got), (long long)got);
    }
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
    if (!df->gz) {
        if (fgetc(df->f) != EOF)
            return cnn_fail(CNN_ERR_FORMAT, "%s: trailing garbage after the %lld expected bytes", df->path,
                            (long long)df->pos);
        return CNN_OK;
    }
    char b;
    int r = gzread((gzFile)df->gz, &b, 1);
    if (r > 0)
        return cnn_fail(CNN_ERR_FORMAT, "%s: trailing garbage after the %lld expected uncompressed bytes", df->path,
                        (long long)df->pos);
    int err;
    gzerror((gzFile)df->gz, &err);
    if (r < 0 || err != Z_OK)
        return cnn_fail(CNN_ERR_FORMAT, "%s: corrupt or truncated gzip stream after %lld uncompressed bytes: %s",
                        df->path, (long long)df->pos, gz_message(df));
    return CNN_OK;
}

void data_file_close(data_file *df) {
    if (df->f) fclose(df->f);
    if (df->gz) gzclose((gzFile)df->gz);
    df->f = NULL;
    df->gz = NULL;
}
