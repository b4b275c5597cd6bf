/* safetensors.c — reader (whole file in memory, every header field checked before use) and writer
 * (header built with the JSON writer, data streamed through an atomic file replacement). */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include "train/safetensors.h"
#include "core/error.h"
#include "core/fileio.h"
#include "core/json.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data are little-endian and are used in place: a big-endian host needs byte swapping here"
#endif

/* Checkpoints are held in memory whole; this only stops absurd sizes before allocating. */
#define ST_MAX_FILE_BYTES ((size_t)1 << 40)
#define META_KEY "__metadata__"

static const struct { const char *name; size_t size; } dtype_info[ST_DTYPE_COUNT] = {
    [ST_F32] = {"F32", 4}, [ST_F64] = {"F64", 8}, [ST_I64] = {"I64", 8}, [ST_I32] = {"I32", 4},
    [ST_U8] = {"U8", 1},   [ST_BOOL] = {"BOOL", 1}, [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2},
    [ST_I16] = {"I16", 2}, [ST_I8] = {"I8", 1},   [ST_U16] = {"U16", 2}, [ST_U32] = {"U32", 4},
    [ST_U64] = {"U64", 8},
};

size_t st_dtype_size(st_dtype t) { return (unsigned)t < ST_DTYPE_COUNT ? dtype_info[t].size : 0; }

const char *st_dtype_name(st_dtype t) { return (unsigned)t < ST_DTYPE_COUNT ? dtype_info[t].name : "?"; }

int st_dtype_parse(const char *name, st_dtype *out) {
    for (int t = 0; t < ST_DTYPE_COUNT; t++)
        if (!strcmp(name, dtype_info[t].name)) { *out = (st_dtype)t; return 1; }
    return 0;
}

/* Bytes of a tensor; 0 on overflow. Zero dims count as 1 in the running product, so that
 * [2^40, 2^40, 0] is refused too: no partial product a caller computes can overflow. */
static int shape_bytes(int ndim, const int64_t *shape, st_dtype t, uint64_t *bytes) {
    uint64_t bound = st_dtype_size(t), exact = bound;
    for (int i = 0; i < ndim; i++) {
        uint64_t d = (uint64_t)shape[i];
        if (__builtin_mul_overflow(bound, d ? d : 1, &bound) || bound > (uint64_t)INT64_MAX) return 0;
        exact *= d;
    }
    if (exact > SIZE_MAX) return 0;
    *bytes = exact;
    return 1;
}

static void format_shape(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

/* "a string", "-3", "1.5", ... for messages about a value of the wrong kind. */
static const char *describe(const json_value *v, char buf[48]) {
    if (v->type == JSON_NUMBER) {
        if (v->is_int) snprintf(buf, 48, "%" PRId64, v->integer);
        else snprintf(buf, 48, "%.17g", v->number);
        return buf;
    }
    if (v->type == JSON_BOOL) return v->boolean ? "true" : "false";
    if (v->type == JSON_NULL) return "null";
    snprintf(buf, 48, "%s %s", v->type == JSON_ARRAY || v->type == JSON_OBJECT ? "an" : "a", json_type_name(v->type));
    return buf;
}

/* ---------------------------------------------------------------- reader */

static int64_t as_count(const json_value *v) { return v->type == JSON_NUMBER && v->is_int && v->integer >= 0 ? v->integer : -1; }

/* The one member named key, checked to be there once and of the given type. */
static cnn_status entry_field(const char *file, const char *tensor, const json_value *e, const char *key,
                              json_type type, const json_value **out) {
    char d[48];
    size_t n = json_count_key(e, key);
    if (n == 0) return cnn_fail(CNN_ERR_FORMAT, "%s: tensor '%s' (header byte %zu): missing \"%s\"", file, tensor, e->offset, key);
    if (n > 1) return cnn_fail(CNN_ERR_FORMAT, "%s: tensor '%s': \"%s\" given %zu times", file, tensor, key, n);
    *out = json_get(e, key);
    if ((*out)->type != type)
        return cnn_fail(CNN_ERR_FORMAT, "%s: tensor '%s' (header byte %zu): \"%s\" is %s, expected a%s %s", file, tensor,
                        (*out)->offset, key, describe(*out, d), type == JSON_ARRAY ? "n" : "", json_type_name(type));
    return CNN_OK;
}

static cnn_status parse_shape(const char *file, st_tensor *t, const json_value *shape) {
    char d[48];
    if (shape->length > ST_MAX_DIMS)
        return cnn_fail(CNN_ERR_FORMAT, "%s: tensor '%s': shape has %zu dims, at most %d are supported", file, t->name,
                        shape->length, ST_MAX_DIMS);
    t->ndim = (int)shape->length;
    for (int i = 0; i < t->ndim; i++) {
        const json_value *dim = &shape->items[i];
        if ((t->shape[i] = as_count(dim)) < 0)
            return cnn_fail(CNN_ERR_FORMAT, "%s: tensor '%s' (header byte %zu): shape[%d] is %s, expected a non-negative integer",
                            file, t->name, dim->offset, i, describe(dim, d));
    }
    return CNN_OK;
}

static cnn_status parse_tensor(const char *file, const st_file *f, const json_member *m, size_t data_start, st_tensor *t) {
    const json_value *e = &m->value, *dtype, *shape, *offs;
    char d[48], sh[256];
    if (!(t->name = strdup(m->key))) return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", file);
    if (strlen(m->key) != m->key_length)
        return cnn_fail(CNN_ERR_FORMAT, "%s: tensor name '%s...' (header byte %zu) contains a NUL character", file, t->name, e->offset);
    if (e->type != JSON_OBJECT)
        return cnn_fail(CNN_ERR_FORMAT, "%s: tensor '%s' (header byte %zu): entry is %s, expected an object with dtype, shape and data_offsets",
                        file, t->name, e->offset, describe(e, d));
    CNN_TRY(entry_field(file, t->name, e, "dtype", JSON_STRING, &dtype));
    CNN_TRY(entry_field(file, t->name, e, "shape", JSON_ARRAY, &shape));
    CNN_TRY(entry_field(file, t->name, e, "data_offsets", JSON_ARRAY, &offs));
    if (!st_dtype_parse(dtype->string, &t->dtype))
        return cnn_fail(CNN_ERR_FORMAT, "%s: tensor '%s': unknown dtype \"%s\" (known: F32 F64 F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8 BOOL)",
                        file, t->name, dtype->string);
    CNN_TRY(parse_shape(file, t, shape));
    format_shape(sh, sizeof sh, t->ndim, t->shape);
    uint64_t need;
    if (!shape_bytes(t->ndim, t->shape, t->dtype, &need))
        return cnn_fail(CNN_ERR_FORMAT, "%s: tensor '%s': shape %s of %s overflows 64-bit byte counts", file, t->name, sh,
                        st_dtype_name(t->dtype));
    int64_t b = -1, en = -1;
    if (offs->length == 2) { b = as_count(&offs->items[0]); en = as_count(&offs->items[1]); }
    if (b < 0 || en < 0)
        return cnn_fail(CNN_ERR_FORMAT, "%s: tensor '%s' (header byte %zu): data_offsets must be two non-negative integers [begin, end]",
                        file, t->name, offs->offset);
    size_t data_size = f->size - data_start;
    if (b > en)
        return cnn_fail(CNN_ERR_FORMAT, "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] begin after their end", file, t->name, b, en);
    if ((uint64_t)en > data_size)
        return cnn_fail(CNN_ERR_FORMAT, "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] reach past the data section of %zu bytes",
                        file, t->name, b, en, data_size);
    if ((uint64_t)(en - b) != need)
        return cnn_fail(CNN_ERR_FORMAT, "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] span %" PRId64 " bytes but shape %s of %s needs %" PRIu64,
                        file, t->name, b, en, en - b, sh, st_dtype_name(t->dtype), need);
    t->offset = data_start + (size_t)b;
    t->data = f->buffer + t->offset;
    t->nbytes = (size_t)need;
    return CNN_OK;
}

static int cmp_str_ptr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static cnn_status parse_metadata(const char *file, st_file *f, const json_value *meta) {
    char d[48];
    if (meta->type != JSON_OBJECT)
        return cnn_fail(CNN_ERR_FORMAT, "%s: \"" META_KEY "\" (header byte %zu) is %s, expected an object of strings", file,
                        meta->offset, describe(meta, d));
    size_t n = meta->length;
    if (!(f->meta_keys = calloc(n + 1, sizeof(char *))) || !(f->meta_values = calloc(n + 1, sizeof(char *))))
        return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory for %zu metadata entries", file, n);
    for (size_t i = 0; i < n; i++) {
        const json_member *m = &meta->members[i];
        if (m->value.type != JSON_STRING)
            return cnn_fail(CNN_ERR_FORMAT, "%s: metadata \"%s\" (header byte %zu) is %s, expected a string", file, m->key,
                            m->value.offset, describe(&m->value, d));
        if (strlen(m->key) != m->key_length || strlen(m->value.string) != m->value.length)
            return cnn_fail(CNN_ERR_FORMAT, "%s: metadata \"%s\" (header byte %zu) contains a NUL character", file, m->key, m->value.offset);
        f->meta_count++;
        if (!(f->meta_keys[i] = strdup(m->key)) || !(f->meta_values[i] = strdup(m->value.string)))
            return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", file);
    }
    char **sorted = malloc((n + 1) * sizeof *sorted);
    if (!sorted) return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", file);
    memcpy(sorted, f->meta_keys, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_str_ptr);
    cnn_status st = CNN_OK;
    for (size_t i = 1; i < n && st == CNN_OK; i++)
        if (!strcmp(sorted[i - 1], sorted[i]))
            st = cnn_fail(CNN_ERR_FORMAT, "%s: metadata key \"%s\" given twice", file, sorted[i]);
    free(sorted);
    return st;
}

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp((*(st_tensor *const *)a)->name, (*(st_tensor *const *)b)->name);
}

static int cmp_tensor_offset(const void *a, const void *b) {
    const st_tensor *x = *(st_tensor *const *)a, *y = *(st_tensor *const *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

/* Names unique (and by_name built); tensors tile [data_start, size) exactly. */
static cnn_status check_layout(const char *file, st_file *f, size_t data_start) {
    int n = f->count;
    st_tensor **order = malloc(((size_t)n + 1) * sizeof *order);
    if (!(f->by_name = malloc(((size_t)n + 1) * sizeof *f->by_name)) || !order) {
        free(order);
        return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", file);
    }
    for (int i = 0; i < n; i++) f->by_name[i] = order[i] = &f->tensors[i];
    qsort(f->by_name, (size_t)n, sizeof *f->by_name, cmp_tensor_name);
    qsort(order, (size_t)n, sizeof *order, cmp_tensor_offset);
    cnn_status st = CNN_OK;
    for (int i = 1; i < n && st == CNN_OK; i++)
        if (!strcmp(f->by_name[i - 1]->name, f->by_name[i]->name))
            st = cnn_fail(CNN_ERR_FORMAT, "%s: duplicate tensor name '%s'", file, f->by_name[i]->name);
    size_t at = data_start;
    for (int i = 0; i < n && st == CNN_OK; i++) {
        const st_tensor *t = order[i];
        if (t->offset < at)
            st = cnn_fail(CNN_ERR_FORMAT, "%s: tensor '%s' (data bytes %zu..%zu) overlaps tensor '%s' (which ends at %zu)", file,
                          t->name, t->offset - data_start, t->offset - data_start + t->nbytes, order[i - 1]->name, at - data_start);
        else if (t->offset > at)
            st = cnn_fail(CNN_ERR_FORMAT, "%s: data bytes %zu..%zu belong to no tensor (gap before '%s')", file,
                          at - data_start, t->offset - data_start, t->name);
        at = t->offset + t->nbytes;
    }
    if (st == CNN_OK && at != f->size)
        st = cnn_fail(CNN_ERR_FORMAT, "%s: data bytes %zu..%zu after the last tensor belong to no tensor", file,
                      at - data_start, f->size - data_start);
    free(order);
    return st;
}

static cnn_status parse_header(const char *file, st_file *f, const json_value *root, size_t data_start) {
    char d[48];
    if (root->type != JSON_OBJECT)
        return cnn_fail(CNN_ERR_FORMAT, "%s: header is %s, expected a JSON object", file, describe(root, d));
    size_t nmeta = json_count_key(root, META_KEY);
    if (nmeta > 1) return cnn_fail(CNN_ERR_FORMAT, "%s: \"" META_KEY "\" given %zu times", file, nmeta);
    if (!(f->tensors = calloc(root->length - nmeta + 1, sizeof *f->tensors)))
        return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory for %zu tensors", file, root->length);
    for (size_t i = 0; i < root->length; i++) {
        const json_member *m = &root->members[i];
        if (!strcmp(m->key, META_KEY) && m->key_length == strlen(META_KEY)) {
            CNN_TRY(parse_metadata(file, f, &m->value));
            continue;
        }
        f->count++; /* before parsing, so that st_free reaches the name */
        CNN_TRY(parse_tensor(file, f, m, data_start, &f->tensors[f->count - 1]));
    }
    return check_layout(file, f, data_start);
}

static cnn_status parse_file(const char *file, st_file *f) {
    if (f->size < 8)
        return cnn_fail(CNN_ERR_FORMAT, "%s: %zu bytes, too short for a safetensors file (8-byte header length first)", file, f->size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | f->buffer[i];
    if (n > ST_MAX_HEADER_BYTES)
        return cnn_fail(CNN_ERR_FORMAT, "%s: header length %" PRIu64 " (file bytes 0..8) is over the limit of %" PRIu64 " bytes",
                        file, n, ST_MAX_HEADER_BYTES);
    if (n > f->size - 8)
        return cnn_fail(CNN_ERR_FORMAT, "%s: header length %" PRIu64 " (file bytes 0..8) is more than the %zu bytes that follow",
                        file, n, f->size - 8);
    json_limits lim = json_default_limits();
    lim.max_bytes = (size_t)n;
    json_value *root;
    size_t at = 0;
    cnn_status st = json_parse((const char *)f->buffer + 8, (size_t)n, &lim, &root, &at);
    if (st != CNN_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", cnn_last_error());
        return cnn_fail(st, "%s: header is not valid: %s (file offset %zu)", file, why, (size_t)8 + at);
    }
    st = parse_header(file, f, root, (size_t)8 + (size_t)n);
    json_free(root);
    return st;
}

cnn_status st_read_buffer(const char *name, uint8_t *buffer, size_t size, st_file *out) {
    memset(out, 0, sizeof *out);
    out->buffer = buffer;
    out->size = size;
    cnn_status st = parse_file(name, out);
    if (st != CNN_OK) st_free(out);
    return st;
}

cnn_status st_read(const char *path, st_file *out) {
    uint8_t *buf;
    size_t size;
    memset(out, 0, sizeof *out);
    CNN_TRY(file_read_all(path, ST_MAX_FILE_BYTES, &buf, &size));
    return st_read_buffer(path, buf, size, out);
}

const st_tensor *st_find(const st_file *f, const char *name) {
    int lo = 0, hi = f->count - 1;
    if (!f->by_name) return NULL;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(f->by_name[mid]->name, name);
        if (c == 0) return f->by_name[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

const char *st_meta(const st_file *f, const char *key) {
    for (int i = 0; i < f->meta_count; i++)
        if (!strcmp(f->meta_keys[i], key)) return f->meta_values[i];
    return NULL;
}

/* Tensor names, metadata strings and the arrays holding them (shared by reader and writer). */
static void free_entries(st_tensor *tensors, int count, char **keys, char **values, int meta_count) {
    for (int i = 0; i < count; i++) free(tensors[i].name);
    for (int i = 0; i < meta_count; i++) {
        free(keys[i]);
        free(values[i]);
    }
    free(tensors);
    free(keys);
    free(values);
}

void st_free(st_file *f) {
    if (!f) return;
    free_entries(f->tensors, f->count, f->meta_keys, f->meta_values, f->meta_count);
    free(f->by_name);
    free(f->buffer);
    memset(f, 0, sizeof *f);
}

/* ---------------------------------------------------------------- writer */

struct st_writer {
    st_tensor *tensors;
    int count, cap;
    char **meta_keys, **meta_values;
    int meta_count, meta_cap;
    int *slots; /* open-addressing set of tensor indices + 1, by name, to refuse duplicates early */
    size_t nslots;
};

st_writer *st_writer_new(void) { return calloc(1, sizeof(st_writer)); }

void st_writer_free(st_writer *w) {
    if (!w) return;
    free_entries(w->tensors, w->count, w->meta_keys, w->meta_values, w->meta_count);
    free(w->slots);
    free(w);
}

static size_t name_hash(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)h;
}

/* Slot of name in the set: where it is, or the empty slot where it would go. */
static size_t find_slot(const st_writer *w, const char *name) {
    size_t i = name_hash(name) & (w->nslots - 1);
    while (w->slots[i] && strcmp(w->tensors[w->slots[i] - 1].name, name)) i = (i + 1) & (w->nslots - 1);
    return i;
}

static cnn_status reserve_tensor(st_writer *w) {
    if (w->count == w->cap) {
        int nc = w->cap ? w->cap * 2 : 16;
        st_tensor *nt = realloc(w->tensors, (size_t)nc * sizeof *nt);
        if (!nt) return cnn_fail(CNN_ERR_NOMEM, "safetensors writer: out of memory");
        w->tensors = nt;
        w->cap = nc;
    }
    if ((size_t)(w->count + 1) * 2 > w->nslots) { /* keep the set at most half full */
        size_t ns = w->nslots ? w->nslots * 2 : 32;
        int *old = w->slots;
        size_t oldn = w->nslots;
        if (!(w->slots = calloc(ns, sizeof *w->slots))) {
            w->slots = old;
            return cnn_fail(CNN_ERR_NOMEM, "safetensors writer: out of memory");
        }
        w->nslots = ns;
        for (size_t i = 0; i < oldn; i++)
            if (old[i]) w->slots[find_slot(w, w->tensors[old[i] - 1].name)] = old[i];
        free(old);
    }
    return CNN_OK;
}

cnn_status st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape,
                         const void *data) {
    char sh[256];
    uint64_t bytes;
    if (!name || !*name || !json_utf8_valid(name, strlen(name)) || !strcmp(name, META_KEY))
        return cnn_fail(CNN_ERR_ARG, "safetensors writer: tensor name '%s' is empty, not UTF-8 or reserved", name ? name : "(null)");
    if ((unsigned)dtype >= ST_DTYPE_COUNT)
        return cnn_fail(CNN_ERR_ARG, "safetensors writer: tensor '%s': invalid dtype %d", name, (int)dtype);
    if (ndim < 0 || ndim > ST_MAX_DIMS || (ndim > 0 && !shape))
        return cnn_fail(CNN_ERR_ARG, "safetensors writer: tensor '%s': %d dims (0 to %d supported)", name, ndim, ST_MAX_DIMS);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0) return cnn_fail(CNN_ERR_ARG, "safetensors writer: tensor '%s': negative dim %" PRId64, name, shape[i]);
    format_shape(sh, sizeof sh, ndim, shape);
    if (!shape_bytes(ndim, shape, dtype, &bytes))
        return cnn_fail(CNN_ERR_ARG, "safetensors writer: tensor '%s': shape %s overflows", name, sh);
    if (bytes && !data) return cnn_fail(CNN_ERR_ARG, "safetensors writer: tensor '%s': no data for shape %s", name, sh);
    CNN_TRY(reserve_tensor(w));
    size_t slot = find_slot(w, name);
    if (w->slots[slot]) return cnn_fail(CNN_ERR_ARG, "safetensors writer: tensor '%s' added twice", name);
    st_tensor *t = &w->tensors[w->count];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) return cnn_fail(CNN_ERR_NOMEM, "safetensors writer: out of memory");
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->data = data;
    t->nbytes = (size_t)bytes;
    w->slots[slot] = ++w->count;
    return CNN_OK;
}

cnn_status st_writer_meta(st_writer *w, const char *key, const char *value) {
    if (!key || !value || !json_utf8_valid(key, strlen(key)) || !json_utf8_valid(value, strlen(value)))
        return cnn_fail(CNN_ERR_ARG, "safetensors writer: metadata '%s' has a missing or non-UTF-8 key or value", key ? key : "(null)");
    char *v = strdup(value);
    if (!v) return cnn_fail(CNN_ERR_NOMEM, "safetensors writer: out of memory");
    for (int i = 0; i < w->meta_count; i++)
        if (!strcmp(w->meta_keys[i], key)) {
            free(w->meta_values[i]);
            w->meta_values[i] = v;
            return CNN_OK;
        }
    if (w->meta_count == w->meta_cap) {
        int nc = w->meta_cap ? w->meta_cap * 2 : 8;
        char **nk = realloc(w->meta_keys, (size_t)nc * sizeof *nk);
        if (nk) w->meta_keys = nk;
        char **nv = nk ? realloc(w->meta_values, (size_t)nc * sizeof *nv) : NULL;
        if (nv) w->meta_values = nv;
        if (!nk || !nv) { free(v); return cnn_fail(CNN_ERR_NOMEM, "safetensors writer: out of memory"); }
        w->meta_cap = nc;
    }
    if (!(w->meta_keys[w->meta_count] = strdup(key))) { free(v); return cnn_fail(CNN_ERR_NOMEM, "safetensors writer: out of memory"); }
    w->meta_values[w->meta_count++] = v;
    return CNN_OK;
}

/* Element sizes in the order their groups are laid out: largest first, so that after the 8-byte
 * aligned header every tensor starts at a multiple of its element size. PyTorch's loaders view the
 * bytes as the dtype in place and fail on a misaligned offset ("storage_offset() must be divisible"). */
static const size_t layout_sizes[4] = {8, 4, 2, 1};

/* Data offsets (t->offset, relative to the data section): grouped by element size, in the order
 * added within a group. */
static cnn_status layout(st_writer *w) {
    uint64_t at = 0;
    for (int g = 0; g < 4; g++)
        for (int i = 0; i < w->count; i++) {
            st_tensor *t = &w->tensors[i];
            if (st_dtype_size(t->dtype) != layout_sizes[g]) continue;
            t->offset = (size_t)at;
            if (__builtin_add_overflow(at, (uint64_t)t->nbytes, &at) || at > (uint64_t)INT64_MAX || at > SIZE_MAX)
                return cnn_fail(CNN_ERR_ARG, "safetensors writer: total data size overflows at tensor '%s'", t->name);
        }
    return CNN_OK;
}

/* Header JSON (tensors in the order added) padded with spaces to a multiple of 8 bytes. */
static cnn_status build_header(const st_writer *w, char **text, size_t *len) {
    json_writer jw;
    json_writer_init(&jw);
    json_begin_object(&jw);
    if (w->meta_count) {
        json_write_key(&jw, META_KEY);
        json_begin_object(&jw);
        for (int i = 0; i < w->meta_count; i++) {
            json_write_key(&jw, w->meta_keys[i]);
            json_write_string(&jw, w->meta_values[i]);
        }
        json_end_object(&jw);
    }
    for (int i = 0; i < w->count; i++) {
        const st_tensor *t = &w->tensors[i];
        json_write_key(&jw, t->name);
        json_begin_object(&jw);
        json_write_key(&jw, "dtype");
        json_write_string(&jw, st_dtype_name(t->dtype));
        json_write_key(&jw, "shape");
        json_begin_array(&jw);
        for (int k = 0; k < t->ndim; k++) json_write_int(&jw, t->shape[k]);
        json_end_array(&jw);
        json_write_key(&jw, "data_offsets");
        json_begin_array(&jw);
        json_write_int(&jw, (int64_t)t->offset);
        json_write_int(&jw, (int64_t)(t->offset + t->nbytes));
        json_end_array(&jw);
        json_end_object(&jw);
    }
    json_end_object(&jw);
    size_t n;
    CNN_TRY(json_writer_finish(&jw, text, &n));
    size_t padded = (n + 7) / 8 * 8;
    char *p = realloc(*text, padded + 1);
    if (!p) { free(*text); return cnn_fail(CNN_ERR_NOMEM, "safetensors writer: out of memory"); }
    memset(p + n, ' ', padded - n);
    p[padded] = 0;
    *text = p;
    *len = padded;
    if (padded > ST_MAX_HEADER_BYTES) {
        free(p);
        return cnn_fail(CNN_ERR_ARG, "safetensors writer: header of %zu bytes is over the %" PRIu64 "-byte limit of readers",
                        padded, ST_MAX_HEADER_BYTES);
    }
    return CNN_OK;
}

cnn_status st_writer_save(st_writer *w, const char *path) {
    char *header;
    size_t hlen = 0;
    uint8_t len8[8];
    cnn_status st = layout(w);
    if (st == CNN_OK) st = build_header(w, &header, &hlen);
    if (st != CNN_OK) return cnn_fail_context(st, "%s", path);
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    file_atomic *f;
    st = file_atomic_begin(path, &f);
    if (st == CNN_OK) {
        file_atomic_write(f, len8, 8);
        file_atomic_write(f, header, hlen);
        for (int g = 0; g < 4; g++) /* the order layout() gave */
            for (int i = 0; i < w->count; i++)
                if (st_dtype_size(w->tensors[i].dtype) == layout_sizes[g])
                    file_atomic_write(f, w->tensors[i].data, w->tensors[i].nbytes);
        st = file_atomic_commit(f); /* reports the first write error, if any, and cleans up */
    }
    free(header);
    return st;
}
