/* dataset.h — an image classification data set held in memory (uint8 CHW images + labels),
 * loaded by name from the standard file formats (IDX for MNIST/Fashion-MNIST, CIFAR binary). */
#ifndef CNN_DATA_DATASET_H
#define CNN_DATA_DATASET_H
#include <stdint.h>
#include <stdio.h>
#include "cnn.h"

typedef struct data_set {
    int64_t n;            /* number of images */
    int c, h, w;          /* image shape, channels first */
    uint8_t *pixels;      /* n*c*h*w bytes, each image CHW (CIFAR is already CHW; IDX has c=1) */
    int32_t *labels;      /* n labels in [0, num_classes) */
    int num_classes;
    char **class_names;   /* num_classes strings (owned) */
} data_set;

/* name: "fashion-mnist", "mnist", "cifar10", "cifar100" (also "cifar-10", "cifar-100",
   "fashion_mnist"); split: 0 train, 1 test. dir: the directory with the files (NULL: the
   default directory). Errors name the file and what was wrong; *out is left empty on error. */
cnn_status data_load(const char *name, const char *dir, int split, data_set *out);
void data_free(data_set *ds);
/* Default directory for a data set name ("/usr/share/datasets/fashion-mnist" for fashion-mnist), or NULL. */
const char *data_default_dir(const char *name);
/* Per-channel mean and std over images [first, first+count) on the [0,1] scale (pixel/255),
   population std (divide by the number of pixels), exact integer sums inside.
   count <= 0 gives mean 0 and std 1. mean and std have ds->c entries. */
void data_channel_stats(const data_set *ds, int64_t first, int64_t count, float *mean, float *std);

/* ---- for the format readers (idx.c, cifar.c) ---- */

/* A file read sequentially, plain or gzip (detected by its magic bytes, not its name), from disk or
   from memory (tests and fuzzing; the file paths go through the same code). size is the uncompressed
   size: exact for plain files; for gzip the trailer's ISIZE (the size mod 2^32), so it can be checked
   against a header's claim before allocating. */
typedef struct data_file {
    const char *path;      /* the name in messages */
    FILE *f;               /* the source: a file ... */
    const uint8_t *mem;    /* ... or bytes in memory */
    size_t mem_size, mem_pos;
    void *gz;              /* z_stream when gzip */
    uint8_t *zbuf;         /* compressed input read from f */
    int gz_done;           /* the last gzip member ended (its CRC and length verified) */
    int64_t size;          /* uncompressed size (mod 2^32 for gzip) */
    int64_t disk_size;
    int64_t pos;           /* uncompressed bytes read so far */
} data_file;

cnn_status data_file_open(data_file *df, const char *path);
/* bytes must stay valid until data_file_close; name is used in messages. */
cnn_status data_file_open_memory(data_file *df, const char *name, const void *bytes, size_t n);
/* Reads exactly n bytes of `what` (used in the message); a short read is a truncation error. */
cnn_status data_file_read(data_file *df, void *buf, int64_t n, const char *what);
/* Checks that a header's claim of `total` uncompressed bytes fits the file, before any allocation:
   plain: equal to the file size (less is truncated, more is trailing garbage); gzip: equal to
   ISIZE mod 2^32 and within deflate's largest compression ratio. `claim` describes it for messages. */
cnn_status data_file_check_size(data_file *df, int64_t total, const char *claim);
/* Checks that nothing follows (and, for gzip, that the stream's CRC and length trailer verify). */
cnn_status data_file_expect_end(data_file *df);
void data_file_close(data_file *df);

/* The decoders behind data_load, on files already open (from disk or memory). On failure *out is
   left empty. IDX: an images file (magic 0x803) and a labels file (0x801) of the same count. */
cnn_status data_idx_decode(data_file *images, data_file *labels, const char *const *class_names, int num_classes,
                           data_set *out);
/* CIFAR: nfiles batch files of records (variant 10: label, 3072 pixels; 100: coarse and fine label,
   3072 pixels), in order. Class names are left to the caller (ds->class_names NULL). */
cnn_status data_cifar_decode(data_file *files, int nfiles, int variant, data_set *out);

cnn_status data_load_idx(const char *dir, int split, const char *const *class_names, int num_classes,
                         data_set *out);
/* variant: 10 for CIFAR-10, 100 for CIFAR-100. */
cnn_status data_load_cifar(const char *dir, int split, int variant, data_set *out);

/* Copies names into ds->class_names (ds->num_classes must be set). */
cnn_status data_set_class_names(data_set *ds, const char *const *names);
/* ds->num_classes names, one per line (blank lines and surrounding blanks ignored), UTF-8, from
   text[0..len) (name is used in messages) or from the file at path (at most CLASS_NAMES_MAX_BYTES).
   CNN_ERR_FORMAT, naming the file, unless it holds exactly that many names. */
#define CLASS_NAMES_MAX_BYTES ((size_t)1 << 24)
cnn_status data_parse_class_names(data_set *ds, const char *name, const char *text, size_t len);
cnn_status data_read_class_names(data_set *ds, const char *path);
int data_file_exists(const char *path);
int data_dir_exists(const char *path);

#endif
