/* safetensors.h — checkpoints in the safetensors format (8-byte little-endian header length, JSON
 * header, raw little-endian data), readable by PyTorch users; untrusted files are fully validated. */
#ifndef CNN_TRAIN_SAFETENSORS_H
#define CNN_TRAIN_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>
#include "cnn.h"

/* The first six are what cnn.c writes; the others are recognized on reading (PyTorch users save
 * half-precision weights) so that callers can say "F16, expected F32" instead of "unknown dtype". */
typedef enum {
    ST_F32, ST_F64, ST_I64, ST_I32, ST_U8, ST_BOOL,
    ST_F16, ST_BF16, ST_I16, ST_I8, ST_U16, ST_U32, ST_U64,
    ST_DTYPE_COUNT
} st_dtype;

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER_BYTES ((uint64_t)100000000) /* as the reference implementation */

typedef struct st_tensor {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    /* Points into st_file.buffer. Files written by st_writer_save (or the reference writer) align
     * every tensor to its element size; files from elsewhere need not, so prefer memcpy to casts. */
    const void *data;
    size_t nbytes;
    size_t offset; /* st_read: of the data within the file */
} st_tensor;

typedef struct st_file {
    st_tensor *tensors; int count;                   /* in header order */
    char **meta_keys, **meta_values; int meta_count; /* the "__metadata__" strings, in header order */
    uint8_t *buffer; size_t size;                    /* whole file, owned */
    st_tensor **by_name;                             /* tensors sorted by name, for st_find */
} st_file;

/* Read and validate a whole file: header length within the file and under 100 MB; the header a JSON
 * object whose entries are {"dtype", "shape", "data_offsets"} (plus an optional "__metadata__" object
 * of strings); known dtypes; dims >= 0 with no overflow; offsets within the data section and matching
 * the shape; unique names; tensors tiling the data section exactly (no overlap, gap or trailing bytes,
 * as the reference implementation demands). Every message names the path. */
cnn_status st_read(const char *path, st_file *out);
/* The same on a buffer already in memory (malloc'd; owned by out from the call on, even on failure);
 * name is used in messages. */
cnn_status st_read_buffer(const char *name, uint8_t *buffer, size_t size, st_file *out);
const st_tensor *st_find(const st_file *f, const char *name); /* NULL if absent */
const char *st_meta(const st_file *f, const char *key);       /* NULL if absent */
void st_free(st_file *f);

typedef struct st_writer st_writer;
st_writer *st_writer_new(void); /* NULL if out of memory */
/* data is referenced, not copied; it must stay valid until st_writer_save returns. Names must be
 * non-empty UTF-8, unique, and not "__metadata__"; 0 <= ndim <= 8; dims >= 0. */
cnn_status st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape,
                         const void *data);
/* Setting a key again replaces its value. Keys and values must be UTF-8. */
cnn_status st_writer_meta(st_writer *w, const char *key, const char *value);
/* Atomic (fileio): the old file stays intact if anything fails. The header lists "__metadata__" first,
 * then the tensors in the order added, and is padded with spaces to a multiple of 8 bytes. The data
 * are grouped by element size, largest first (8, 4, 2, 1; in the order added within a group), so each
 * tensor is aligned to its element size, which PyTorch's loaders require. */
cnn_status st_writer_save(st_writer *w, const char *path);
void st_writer_free(st_writer *w);

size_t st_dtype_size(st_dtype t);
const char *st_dtype_name(st_dtype t);                 /* "F32", ... */
int st_dtype_parse(const char *name, st_dtype *out);   /* 1 if known */

#endif
