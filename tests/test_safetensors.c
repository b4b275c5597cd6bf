/* test_safetensors.c — safetensors reader/writer and the file helpers under them: round trips, a file
 * built byte by byte, every malformed case, mutations, atomic replacement when writing fails.
 * Extra modes for tests/test_safetensors_py.py:  copy IN OUT | fixture OUT */
#define _POSIX_C_SOURCE 200809L
#include "core/error.h"
#include "testutil.h"
#include "core/fileio.h"
#include "train/safetensors.h"
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>


static char dir[256]; /* scratch directory for this run */

static const char *path_in_dir(const char *name) {
    static char buf[16][512]; /* a few paths alive at once */
    static int k;
    k = (k + 1) % 16;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(data, 1, n, f) == n && fclose(f) == 0, "cannot write %s", path);
}

/* A file from a literal header and data bytes (zeros when data is NULL); the header length is
 * written as given in hlen (so tests can lie), normally strlen(header). */
static void write_st(const char *path, uint64_t hlen, const char *header, const void *data, size_t ndata) {
    size_t hl = strlen(header), n = 8 + hl + ndata;
    uint8_t *buf = calloc(1, n);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(hlen >> (8 * i));
    memcpy(buf + 8, header, hl);
    if (data) memcpy(buf + 8 + hl, data, ndata);
    write_bytes(path, buf, n);
    free(buf);
}

/* Names in dir that look like our temporaries. */
static int count_temporaries(const char *d) {
    DIR *dp = opendir(d);
    struct dirent *e;
    int n = 0;
    if (!dp) return -1;
    while ((e = readdir(dp)))
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(dp);
    return n;
}

static int same_file(const char *path, const void *data, size_t n) {
    uint8_t *got;
    size_t size;
    if (file_read_all(path, 1 << 20, &got, &size) != CNN_OK) return 0;
    int same = size == n && !memcmp(got, data, n);
    free(got);
    return same;
}

/* ---------------------------------------------------------------- round trip */

static void test_round_trip(void) {
    float f32[6] = {1.0f, -2.5f, 3.25e-7f, INFINITY, -0.0f, 65504.0f};
    double f64[3] = {3.141592653589793, -1e300, 5e-324};
    int64_t i64[4] = {0, -1, INT64_MAX, INT64_MIN};
    int32_t i32[2] = {INT32_MIN, 123456789};
    uint8_t u8[5] = {0, 1, 127, 128, 255};
    uint8_t bools[3] = {1, 0, 1};
    float scalar = 42.0f;
    int64_t s_f32[2] = {2, 3}, s_f64[1] = {3}, s_i64[3] = {2, 1, 2}, s_i32[2] = {1, 2}, s_u8[1] = {5}, s_b[1] = {3};
    int64_t s_empty[3] = {4, 0, 2}, s_max[8] = {1, 1, 1, 1, 1, 1, 1, 6};
    const char *path = path_in_dir("round.safetensors");

    st_writer *w = st_writer_new();
    CHECK(st_writer_add(w, "conv1.weight", ST_F32, 2, s_f32, f32) == CNN_OK, "%s", cnn_last_error());
    CHECK(st_writer_add(w, "f64", ST_F64, 1, s_f64, f64) == CNN_OK, "%s", cnn_last_error());
    CHECK(st_writer_add(w, "bn1.num_batches_tracked", ST_I64, 3, s_i64, i64) == CNN_OK, "%s", cnn_last_error());
    CHECK(st_writer_add(w, "i32", ST_I32, 2, s_i32, i32) == CNN_OK, "%s", cnn_last_error());
    CHECK(st_writer_add(w, "u8", ST_U8, 1, s_u8, u8) == CNN_OK, "%s", cnn_last_error());
    CHECK(st_writer_add(w, "mask", ST_BOOL, 1, s_b, bools) == CNN_OK, "%s", cnn_last_error());
    CHECK(st_writer_add(w, "scalar", ST_F32, 0, NULL, &scalar) == CNN_OK, "%s", cnn_last_error());
    CHECK(st_writer_add(w, "empty", ST_F32, 3, s_empty, NULL) == CNN_OK, "%s", cnn_last_error());
    CHECK(st_writer_add(w, "eight.dims", ST_F32, 8, s_max, f32) == CNN_OK, "%s", cnn_last_error());
    CHECK(st_writer_meta(w, "format", "pt") == CNN_OK, "%s", cnn_last_error());
    CHECK(st_writer_meta(w, "cnn", "{\"model\": \"resnet20\", \"classes\": [\"chat\", \"caf\xc3\xa9\"]}\n\t") == CNN_OK, "%s", cnn_last_error());
    CHECK(st_writer_meta(w, "format", "pt2") == CNN_OK, "replace: %s", cnn_last_error());
    CHECK(st_writer_save(w, path) == CNN_OK, "save: %s", cnn_last_error());
    st_writer_free(w);

    st_file f;
    CHECK(st_read(path, &f) == CNN_OK, "read: %s", cnn_last_error());
    /* Header in the order added; data grouped by element size 8, 4, 1 (order added within a group):
     * f64 0..24, bn1 24..56 | conv1 56..80, i32 80..88, scalar 88..92, empty 92..92, eight 92..116 |
     * u8 116..121, mask 121..124. */
    struct { const char *name; st_dtype dt; int ndim; const int64_t *shape; const void *data; size_t nbytes, at; } want[] = {
        {"conv1.weight", ST_F32, 2, s_f32, f32, 24, 56}, {"f64", ST_F64, 1, s_f64, f64, 24, 0},
        {"bn1.num_batches_tracked", ST_I64, 3, s_i64, i64, 32, 24}, {"i32", ST_I32, 2, s_i32, i32, 8, 80},
        {"u8", ST_U8, 1, s_u8, u8, 5, 116}, {"mask", ST_BOOL, 1, s_b, bools, 3, 121}, {"scalar", ST_F32, 0, NULL, &scalar, 4, 88},
        {"empty", ST_F32, 3, s_empty, NULL, 0, 92}, {"eight.dims", ST_F32, 8, s_max, f32, 24, 92},
    };
    int n = (int)(sizeof want / sizeof want[0]);
    CHECK(f.count == n, "count %d", f.count);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | f.buffer[i];
    CHECK(hlen % 8 == 0 && f.size == 8 + hlen + 124, "header %llu padded to 8, then 124 data bytes", (unsigned long long)hlen);
    for (int i = 0; i < n && i < f.count; i++) {
        const st_tensor *t = &f.tensors[i];
        CHECK(!strcmp(t->name, want[i].name), "order: %d is %s", i, t->name);
        CHECK(t->dtype == want[i].dt && t->ndim == want[i].ndim && t->nbytes == want[i].nbytes, "%s: dtype/ndim/nbytes", t->name);
        for (int k = 0; k < t->ndim && k < want[i].ndim; k++) CHECK(t->shape[k] == want[i].shape[k], "%s: dim %d", t->name, k);
        CHECK(!want[i].nbytes || !memcmp(t->data, want[i].data, want[i].nbytes), "%s: data differ", t->name);
        CHECK(st_find(&f, want[i].name) == t, "st_find(%s)", want[i].name);
        CHECK(t->offset == 8 + hlen + want[i].at, "%s: data at %zu, expected %llu", t->name, t->offset,
              (unsigned long long)(8 + hlen + want[i].at));
        CHECK((uintptr_t)t->data % st_dtype_size(t->dtype) == 0, "%s: data not aligned in memory", t->name);
    }
    CHECK(st_find(&f, "conv1") == NULL && st_find(&f, "zzz") == NULL && st_find(&f, "") == NULL, "absent names");
    CHECK(f.meta_count == 2 && !strcmp(f.meta_keys[0], "format") && !strcmp(f.meta_keys[1], "cnn"), "metadata order");
    CHECK(st_meta(&f, "format") && !strcmp(st_meta(&f, "format"), "pt2"), "replaced metadata");
    CHECK(st_meta(&f, "cnn") && !strcmp(st_meta(&f, "cnn"), "{\"model\": \"resnet20\", \"classes\": [\"chat\", \"caf\xc3\xa9\"]}\n\t"),
          "metadata text");
    CHECK(st_meta(&f, "absent") == NULL, "absent metadata");
    st_free(&f);
    CHECK(f.buffer == NULL && f.count == 0, "st_free clears");
    st_free(&f); /* twice is harmless */
}

/* The exact bytes the writer produces, spelled out: compact JSON, metadata first, space padding. */
static void test_exact_bytes(void) {
    float w2[2] = {1.0f, -2.5f};
    uint8_t flag = 1;
    int64_t s2[1] = {2}, s1[1] = {1};
    const char *path = path_in_dir("exact.safetensors");
    st_writer *w = st_writer_new();
    CHECK(st_writer_add(w, "b", ST_BOOL, 1, s1, &flag) == CNN_OK, "%s", cnn_last_error());
    CHECK(st_writer_add(w, "w", ST_F32, 1, s2, w2) == CNN_OK, "%s", cnn_last_error());
    CHECK(st_writer_meta(w, "k", "v") == CNN_OK, "%s", cnn_last_error());
    CHECK(st_writer_save(w, path) == CNN_OK, "%s", cnn_last_error());
    st_writer_free(w);
    /* 133 bytes of JSON, padded with 3 spaces to 136 = 0x88. "b" is listed first, as added, but its
     * byte goes after the F32 data, which thus stays 4-aligned. */
    const char *json = "{\"__metadata__\":{\"k\":\"v\"},\"b\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[8,9]},"
                       "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    CHECK(strlen(json) == 133, "length of the JSON: %zu", strlen(json));
    uint8_t want[8 + 136 + 9] = {0x88, 0, 0, 0, 0, 0, 0, 0};
    memcpy(want + 8, json, 133);
    want[141] = want[142] = want[143] = ' ';
    const uint8_t data[9] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc0, 0x01}; /* 1.0f, -2.5f, true */
    memcpy(want + 144, data, 9);
    CHECK(same_file(path, want, sizeof want), "writer bytes differ from the hand-built file");
}

/* A file written byte by byte: header order differs from data order, no padding, scalar I32. */
static void test_hand_built(void) {
    const char *path = path_in_dir("hand.safetensors");
    const char *header = "{\"b\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[8,12]},"
                         " \"a\" : {\"shape\":[2],\"dtype\":\"F32\",\"data_offsets\":[0,8]},\"__metadata__\":{\"format\":\"pt\"}}";
    const uint8_t data[12] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc0, 0x07, 0x00, 0x00, 0x00};
    write_st(path, strlen(header), header, data, sizeof data);
    st_file f;
    CHECK(st_read(path, &f) == CNN_OK, "%s", cnn_last_error());
    if (f.count != 2) { CHECK(0, "count %d", f.count); st_free(&f); return; }
    const st_tensor *a = st_find(&f, "a"), *b = st_find(&f, "b");
    CHECK(!strcmp(f.tensors[0].name, "b") && !strcmp(f.tensors[1].name, "a"), "header order kept");
    float av[2];
    int32_t bv;
    memcpy(av, a->data, sizeof av);
    memcpy(&bv, b->data, sizeof bv);
    CHECK(a->dtype == ST_F32 && a->ndim == 1 && a->shape[0] == 2 && av[0] == 1.0f && av[1] == -2.5f, "a = [1, -2.5]");
    CHECK(b->dtype == ST_I32 && b->ndim == 0 && b->nbytes == 4 && bv == 7, "b = 7");
    CHECK(a->offset == 8 + strlen(header) && b->offset == a->offset + 8, "offsets");
    CHECK(f.meta_count == 1 && !strcmp(st_meta(&f, "format"), "pt"), "metadata");
    st_free(&f);
}

/* ---------------------------------------------------------------- malformed files */

#define T(dt, shape, b, e) "{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

static void expect_reject(const char *path, const char *what, const char *label) {
    st_file f;
    memset(&f, 0x5a, sizeof f);
    cnn_status st = st_read(path, &f);
    CHECK(st == CNN_ERR_FORMAT, "%s: accepted (status %d)", label, st);
    CHECK(strstr(cnn_last_error(), path) && strstr(cnn_last_error(), what), "%s: message '%s' lacks the path or '%s'", label,
          cnn_last_error(), what);
    CHECK(f.buffer == NULL && f.tensors == NULL && f.count == 0 && f.by_name == NULL, "%s: out not cleared", label);
    if (st == CNN_OK) st_free(&f);
}

static void test_malformed(void) {
    static const struct { const char *header; size_t ndata; const char *what; } cases[] = {
        {"[]", 0, "expected a JSON object"},
        {"\"x\"", 0, "is a string, expected a JSON object"},
        {"{", 0, "not valid: JSON: expected a string key in an object, found end of input at byte 1 (file offset 9)"},
        {"{\"a\":1}", 0, "entry is 1, expected an object"},
        {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "missing \"dtype\""},
        {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "missing \"shape\""},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "missing \"data_offsets\""},
        {"{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "\"dtype\" is 4, expected a string"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":3,\"data_offsets\":[0,4]}}", 4, "\"shape\" is 3, expected an array"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{}}}", 4, "\"data_offsets\" is an object, expected an array"},
        {"{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "\"dtype\" given 2 times"},
        {"{\"a\":" T("F17", "[1]", 0, 4) "}", 4, "unknown dtype \"F17\""},
        {"{\"a\":" T("f32", "[1]", 0, 4) "}", 4, "unknown dtype \"f32\""},
        {"{\"a\":" T("F32", "[-1]", 0, 4) "}", 4, "shape[0] is -1, expected a non-negative integer"},
        {"{\"a\":" T("F32", "[1.5]", 0, 4) "}", 4, "shape[0] is 1.5"},
        {"{\"a\":" T("F32", "[1,\"2\"]", 0, 4) "}", 4, "shape[1] is a string"},
        {"{\"a\":" T("F32", "[null]", 0, 4) "}", 4, "shape[0] is null"},
        {"{\"a\":" T("F32", "[18446744073709551616]", 0, 4) "}", 4, "shape[0] is 1.8446744073709552e+19"},
        {"{\"a\":" T("F32", "[1,1,1,1,1,1,1,1,1]", 0, 4) "}", 4, "shape has 9 dims"},
        {"{\"a\":" T("F32", "[4294967296,4294967296,4294967296]", 0, 4) "}", 4, "overflows"},
        {"{\"a\":" T("F32", "[9223372036854775807]", 0, 4) "}", 4, "overflows"},
        {"{\"a\":" T("U8", "[4294967296,4294967296,0]", 0, 0) "}", 0, "overflows"}, /* zero elements, absurd dims */
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, "two non-negative integers"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8, "two non-negative integers"},
        {"{\"a\":" T("F32", "[1]", -4, 0) "}", 4, "two non-negative integers"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",4]}}", 4, "two non-negative integers"},
        {"{\"a\":" T("F32", "[0]", 4, 0) "}", 4, "begin after their end"},
        {"{\"a\":" T("F32", "[2]", 0, 8) "}", 4, "reach past the data section of 4 bytes"},
        {"{\"a\":" T("F32", "[1]", 0, 18446744073709551615) "}", 4, "two non-negative integers"},
        {"{\"a\":" T("F32", "[2]", 0, 4) "}", 4, "span 4 bytes but shape [2] of F32 needs 8"},
        {"{\"a\":" T("F64", "[3,1]", 0, 12) "}", 12, "span 12 bytes but shape [3, 1] of F64 needs 24"},
        {"{\"a\":" T("F32", "[1]", 0, 4) ",\"a\":" T("F32", "[1]", 4, 8) "}", 8, "duplicate tensor name 'a'"},
        {"{\"a\":" T("F32", "[2]", 0, 8) ",\"b\":" T("F32", "[1]", 4, 8) "}", 8, "tensor 'b' (data bytes 4..8) overlaps tensor 'a'"},
        {"{\"a\":" T("F32", "[2]", 0, 8) ",\"b\":" T("F32", "[0]", 4, 4) "}", 8, "overlaps"},
        {"{\"a\":" T("F32", "[1]", 0, 4) ",\"b\":" T("F32", "[1]", 8, 12) "}", 12, "data bytes 4..8 belong to no tensor"},
        {"{\"a\":" T("F32", "[1]", 4, 8) "}", 8, "data bytes 0..4 belong to no tensor"},
        {"{\"a\":" T("F32", "[1]", 0, 4) "}", 8, "data bytes 4..8 after the last tensor"},
        {"{}", 1, "data bytes 0..1 after the last tensor"},
        {"{\"__metadata__\":{\"k\":1}}", 0, "metadata \"k\" (header byte 21) is 1, expected a string"},
        {"{\"__metadata__\":{\"k\":[\"v\"]}}", 0, "is an array, expected a string"},
        {"{\"__metadata__\":\"x\"}", 0, "\"__metadata__\" (header byte 16) is a string, expected an object"},
        {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, "\"__metadata__\" given 2 times"},
        {"{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, "metadata key \"k\" given twice"},
        {"{\"__metadata__\":{\"k\":\"a\\u0000b\"}}", 0, "contains a NUL"},
        {"{\"a\\u0000b\":" T("F32", "[1]", 0, 4) "}", 4, "contains a NUL"},
        {"{\"a\":" T("F32", "[1]", 0, 4) "} x", 4, "after the value at byte 55 (file offset 63)"},
        {"{\"a\":" T("F32", "[1]", 0, 4) "}\0\0\0", 4, "byte 0x00"}, /* NUL padding is not JSON */
        {"{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
         0, "nesting deeper than 64"},
        {"{\"\xff\":1}", 0, "invalid UTF-8"},
    };
    char label[64];
    const char *path = path_in_dir("bad.safetensors");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t hl = strlen(cases[i].header);
        /* Cases with NUL bytes in the literal: take the whole literal. */
        if (strstr(cases[i].what, "0x00")) hl += 3;
        uint8_t *buf = calloc(1, 8 + hl + cases[i].ndata);
        for (int k = 0; k < 8; k++) buf[k] = (uint8_t)((uint64_t)hl >> (8 * k));
        memcpy(buf + 8, cases[i].header, hl);
        write_bytes(path, buf, 8 + hl + cases[i].ndata);
        free(buf);
        snprintf(label, sizeof label, "case %zu", i);
        expect_reject(path, cases[i].what, label);
    }
    /* Damage to the length field or the file as a whole. */
    write_bytes(path, "\x02\0\0\0\0", 5);
    expect_reject(path, "5 bytes, too short", "5-byte file");
    write_bytes(path, "", 0);
    expect_reject(path, "0 bytes, too short", "empty file");
    write_st(path, 100000001, "{}", NULL, 0);
    expect_reject(path, "header length 100000001 (file bytes 0..8) is over the limit", "header over 100 MB");
    write_st(path, (uint64_t)1 << 62, "{}", NULL, 0);
    expect_reject(path, "over the limit", "header length 2^62");
    write_st(path, 3, "{}", NULL, 0);
    expect_reject(path, "header length 3 (file bytes 0..8) is more than the 2 bytes that follow", "header past the end");
    write_st(path, 1, "{}", NULL, 0);
    expect_reject(path, "found end of input at byte 1", "header cut short");
    write_st(path, 0, "", NULL, 0);
    expect_reject(path, "unexpected end of input", "empty header");
    const char *missing = path_in_dir("does-not-exist.safetensors");
    st_file f;
    CHECK(st_read(missing, &f) == CNN_ERR_IO && strstr(cnn_last_error(), missing), "missing file: %s", cnn_last_error());
    CHECK(st_read(dir, &f) == CNN_ERR_IO && strstr(cnn_last_error(), "directory"), "directory: %s", cnn_last_error());
}

/* Truncations and random byte changes of a valid file: refused or read consistently, never a crash. */
static void test_mutations(void) {
    float v[6] = {1, 2, 3, 4, 5, 6};
    int64_t s[2] = {2, 3}, s1[1] = {2};
    const char *path = path_in_dir("mut.safetensors");
    st_writer *w = st_writer_new();
    st_writer_add(w, "layer.weight", ST_F32, 2, s, v);
    st_writer_add(w, "layer.bias", ST_F64, 1, s1, v);
    st_writer_meta(w, "epoch", "3");
    CHECK(st_writer_save(w, path) == CNN_OK, "%s", cnn_last_error());
    st_writer_free(w);
    uint8_t *orig;
    size_t n;
    CHECK(file_read_all(path, 1 << 20, &orig, &n) == CNN_OK, "%s", cnn_last_error());
    for (size_t cut = 0; cut < n; cut++) {
        uint8_t *b = malloc(cut ? cut : 1);
        memcpy(b, orig, cut);
        st_file f;
        CHECK(st_read_buffer("cut", b, cut, &f) == CNN_ERR_FORMAT, "truncated to %zu bytes but accepted", cut);
    }
    uint64_t r = 99;
    int accepted = 0;
    for (int iter = 0; iter < 20000; iter++) {
        uint8_t *b = malloc(n);
        memcpy(b, orig, n);
        for (int k = 0; k < 1 + iter % 3; k++) {
            r = r * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t at = (r >> 33) % (iter % 2 ? n : 24); /* half of the changes in the length field and early header */
            b[at] = (uint8_t)(r >> 17);
        }
        st_file f;
        if (st_read_buffer("mutant", b, n, &f) == CNN_OK) {
            accepted++;
            for (int i = 0; i < f.count; i++) {
                const st_tensor *t = &f.tensors[i];
                CHECK((const uint8_t *)t->data >= f.buffer && t->offset + t->nbytes <= f.size, "tensor outside the buffer");
            }
            st_free(&f);
        } else {
            CHECK(strstr(cnn_last_error(), "mutant") != NULL, "message without the name: %s", cnn_last_error());
        }
    }
    free(orig);
    printf("mutations: %d of 20000 still accepted\n", accepted);
}

/* ---------------------------------------------------------------- writer arguments */

static void test_writer_args(void) {
    float x[4] = {0};
    int64_t s[2] = {2, 2}, neg[1] = {-1}, nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, big[3] = {1LL << 32, 1LL << 32, 1LL << 32};
    st_writer *w = st_writer_new();
    CHECK(st_writer_add(w, "a", ST_F32, 2, s, x) == CNN_OK, "%s", cnn_last_error());
    CHECK(st_writer_add(w, "a", ST_F32, 2, s, x) == CNN_ERR_ARG && strstr(cnn_last_error(), "'a' added twice"), "dup");
    CHECK(st_writer_add(w, "__metadata__", ST_F32, 2, s, x) == CNN_ERR_ARG, "reserved name");
    CHECK(st_writer_add(w, "", ST_F32, 2, s, x) == CNN_ERR_ARG, "empty name");
    CHECK(st_writer_add(w, "\xc3", ST_F32, 2, s, x) == CNN_ERR_ARG, "non-UTF-8 name");
    CHECK(st_writer_add(w, "n", ST_F32, 1, neg, x) == CNN_ERR_ARG && strstr(cnn_last_error(), "negative dim -1"), "negative");
    CHECK(st_writer_add(w, "n", ST_F32, 9, nine, x) == CNN_ERR_ARG && strstr(cnn_last_error(), "9 dims"), "9 dims");
    CHECK(st_writer_add(w, "n", ST_F32, 3, big, x) == CNN_ERR_ARG && strstr(cnn_last_error(), "overflows"), "overflow");
    CHECK(st_writer_add(w, "n", ST_F32, 2, s, NULL) == CNN_ERR_ARG && strstr(cnn_last_error(), "no data"), "NULL data");
    CHECK(st_writer_add(w, "n", (st_dtype)99, 2, s, x) == CNN_ERR_ARG, "bad dtype");
    CHECK(st_writer_meta(w, "k", "\xff") == CNN_ERR_ARG, "non-UTF-8 metadata");
    /* Many names: the duplicate check stays exact as its table grows. */
    char name[32];
    int ok = 1;
    for (int i = 0; i < 2000; i++) {
        snprintf(name, sizeof name, "layer%d.weight", i);
        ok &= st_writer_add(w, name, ST_F32, 0, NULL, x) == CNN_OK;
    }
    CHECK(ok, "2000 distinct names");
    for (int i = 0; i < 2000; i += 97) {
        snprintf(name, sizeof name, "layer%d.weight", i);
        CHECK(st_writer_add(w, name, ST_F32, 0, NULL, x) == CNN_ERR_ARG, "duplicate %s not caught", name);
    }
    const char *path = path_in_dir("many.safetensors");
    CHECK(st_writer_save(w, path) == CNN_OK, "%s", cnn_last_error());
    st_writer_free(w);
    st_file f;
    CHECK(st_read(path, &f) == CNN_OK && f.count == 2001, "read 2001: %s", cnn_last_error());
    CHECK(st_find(&f, "layer1999.weight") == &f.tensors[2000] && st_find(&f, "layer2000.weight") == NULL, "st_find in 2001");
    st_free(&f);
    st_writer_free(NULL);
}

/* ---------------------------------------------------------------- atomic replacement */

static void test_atomic(void) {
    float small[2] = {1, 2};
    static float bigdata[16384]; /* 64 KiB */
    int64_t s2[1] = {2}, sbig[1] = {16384};
    const char *path = path_in_dir("ckpt.safetensors");
    st_writer *w = st_writer_new();
    st_writer_add(w, "x", ST_F32, 1, s2, small);
    CHECK(st_writer_save(w, path) == CNN_OK, "%s", cnn_last_error());
    st_writer_free(w);
    uint8_t *old;
    size_t old_n;
    CHECK(file_read_all(path, 1 << 20, &old, &old_n) == CNN_OK, "%s", cnn_last_error());

    /* 1. A write that fails half way (file size limit, as with a full disk). */
    w = st_writer_new();
    st_writer_add(w, "x", ST_F32, 1, sbig, bigdata);
    struct rlimit saved, lim;
    getrlimit(RLIMIT_FSIZE, &saved);
    lim = saved;
    lim.rlim_cur = 4096;
    signal(SIGXFSZ, SIG_IGN); /* get EFBIG instead of being killed */
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
    cnn_status st = st_writer_save(w, path);
    setrlimit(RLIMIT_FSIZE, &saved);
    CHECK(st == CNN_ERR_IO && strstr(cnn_last_error(), path), "size-limited save: %d %s", st, cnn_last_error());
    CHECK(same_file(path, old, old_n), "old checkpoint changed by a failed save");
    CHECK(count_temporaries(dir) == 0, "temporary left behind after a failed write");

    /* 2. The directory does not exist. */
    const char *nodir = path_in_dir("no/such/dir/ckpt.safetensors");
    st = st_writer_save(w, nodir);
    CHECK(st == CNN_ERR_IO && strstr(cnn_last_error(), nodir), "missing directory: %s", cnn_last_error());

    /* 3. The rename fails after everything was written: the target is a non-empty directory. */
    const char *dpath = path_in_dir("a_directory");
    CHECK(make_dirs(path_in_dir("a_directory/inner")) == CNN_OK, "%s", cnn_last_error());
    st = st_writer_save(w, dpath);
    CHECK(st == CNN_ERR_IO && strstr(cnn_last_error(), "rename"), "rename over a directory: %s", cnn_last_error());
    CHECK(dir_exists(path_in_dir("a_directory/inner")), "directory damaged");
    CHECK(count_temporaries(dir) == 0, "temporary left behind after a failed rename");

    /* 4. A good save replaces the file. */
    CHECK(st_writer_save(w, path) == CNN_OK, "%s", cnn_last_error());
    st_writer_free(w);
    st_file f;
    CHECK(st_read(path, &f) == CNN_OK && f.count == 1 && f.tensors[0].shape[0] == 16384, "replaced: %s", cnn_last_error());
    st_free(&f);
    CHECK(count_temporaries(dir) == 0, "temporary left behind after success");
    free(old);

    /* 5. Paths that name no file. */
    CHECK(file_write_atomic(path_in_dir(""), "x", 1) == CNN_ERR_ARG, "trailing slash");
    CHECK(file_write_atomic("..", "x", 1) == CNN_ERR_ARG, "..");
}

static void test_fileio(void) {
    const char *p = path_in_dir("plain.txt");
    CHECK(file_write_atomic(p, "hello", 5) == CNN_OK, "%s", cnn_last_error());
    uint8_t *d;
    size_t n;
    CHECK(file_read_all(p, 5, &d, &n) == CNN_OK && n == 5 && !memcmp(d, "hello", 5) && d[5] == 0, "read exactly the cap");
    free(d);
    CHECK(file_read_all(p, 4, &d, &n) == CNN_ERR_IO && d == NULL && strstr(cnn_last_error(), "5 bytes, more than the limit of 4"),
          "over the cap: %s", cnn_last_error());
    CHECK(file_read_all(dir, 100, &d, &n) == CNN_ERR_IO && strstr(cnn_last_error(), "is a directory"), "directory");
    CHECK(file_read_all("/dev/null", 100, &d, &n) == CNN_OK && n == 0, "a character device, empty");
    free(d);
    CHECK(file_read_all("/dev/zero", 100000, &d, &n) == CNN_ERR_IO && strstr(cnn_last_error(), "more than the limit"),
          "an endless device is capped: %s", cnn_last_error());
    CHECK(file_read_all("/dev/zero", 0, &d, &n) == CNN_ERR_IO, "an endless device, cap 0");
    CHECK(file_exists(p) && !dir_exists(p) && dir_exists(dir) && !file_exists(dir), "exists");
    CHECK(!file_exists(path_in_dir("nope")) && !dir_exists(path_in_dir("nope")), "does not exist");
    CHECK(make_dirs(path_in_dir("m1/m2//m3/")) == CNN_OK && dir_exists(path_in_dir("m1/m2/m3")), "mkdir -p: %s", cnn_last_error());
    CHECK(make_dirs(path_in_dir("m1/m2")) == CNN_OK, "mkdir -p on an existing directory");
    CHECK(make_dirs(path_in_dir("plain.txt/sub")) == CNN_ERR_IO && strstr(cnn_last_error(), "not a directory"),
          "mkdir through a file: %s", cnn_last_error());
    CHECK(make_dirs(p) == CNN_ERR_IO, "mkdir over a file");
}

/* ---------------------------------------------------------------- helper modes for the Python test */

/* Read IN and write every tensor and metadata entry, in file order, to OUT. */
static int mode_copy(const char *in, const char *out) {
    st_file f;
    if (st_read(in, &f) != CNN_OK) { fprintf(stderr, "%s\n", cnn_last_error()); return 1; }
    st_writer *w = st_writer_new();
    cnn_status st = CNN_OK;
    for (int i = 0; i < f.count && st == CNN_OK; i++) {
        const st_tensor *t = &f.tensors[i];
        st = st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data);
    }
    for (int i = 0; i < f.meta_count && st == CNN_OK; i++) st = st_writer_meta(w, f.meta_keys[i], f.meta_values[i]);
    if (st == CNN_OK) st = st_writer_save(w, out);
    if (st != CNN_OK) fprintf(stderr, "%s\n", cnn_last_error());
    st_writer_free(w);
    st_free(&f);
    return st != CNN_OK;
}

/* Tensors whose values the Python test recomputes on its own (the formulas are repeated there). */
static int mode_fixture(const char *out) {
    float f32[12];
    double f64[12];
    int64_t i64[6];
    int32_t i32[5];
    uint8_t u8[256], b[7];
    for (int i = 0; i < 12; i++) {
        f32[i] = (float)((i * 37) % 101 - 50) / 7.0f;
        f64[i] = (double)((i * 37) % 101 - 50) / 7.0;
    }
    for (int i = 0; i < 6; i++) i64[i] = (int64_t)(i - 3) * 3037000499LL;
    i64[4] = INT64_MAX;
    i64[5] = INT64_MIN;
    int32_t i32v[5] = {INT32_MIN, -1, 0, 1, INT32_MAX};
    memcpy(i32, i32v, sizeof i32);
    for (int i = 0; i < 256; i++) u8[i] = (uint8_t)(255 - i);
    for (int i = 0; i < 7; i++) b[i] = i % 3 == 0;
    int64_t s_f32[2] = {3, 4}, s_f64[3] = {2, 3, 2}, s_i64[1] = {6}, s_i32[1] = {5}, s_u8[2] = {16, 16}, s_b[1] = {7};
    st_writer *w = st_writer_new();
    cnn_status st = st_writer_add(w, "features.0.weight", ST_F32, 2, s_f32, f32);
    if (st == CNN_OK) st = st_writer_add(w, "f64", ST_F64, 3, s_f64, f64);
    if (st == CNN_OK) st = st_writer_add(w, "bn.num_batches_tracked", ST_I64, 1, s_i64, i64);
    if (st == CNN_OK) st = st_writer_add(w, "i32", ST_I32, 1, s_i32, i32);
    if (st == CNN_OK) st = st_writer_add(w, "u8", ST_U8, 2, s_u8, u8);
    if (st == CNN_OK) st = st_writer_add(w, "bool", ST_BOOL, 1, s_b, b);
    if (st == CNN_OK) st = st_writer_add(w, "scalar", ST_F32, 0, NULL, &f32[1]);
    if (st == CNN_OK) st = st_writer_meta(w, "producer", "cnn.c");
    if (st == CNN_OK) st = st_writer_meta(w, "note", "quote \" backslash \\ newline \n tab \t bell \a caf\xc3\xa9 \xf0\x9f\x98\x80");
    if (st == CNN_OK) st = st_writer_save(w, out);
    if (st != CNN_OK) fprintf(stderr, "%s\n", cnn_last_error());
    st_writer_free(w);
    return st != CNN_OK;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "copy")) return mode_copy(argv[2], argv[3]);
    if (argc == 3 && !strcmp(argv[1], "fixture")) return mode_fixture(argv[2]);
    if (argc != 1) {
        fprintf(stderr, "usage: %s [copy IN OUT | fixture OUT]\n", argv[0]);
        return 2;
    }
    snprintf(dir, sizeof dir, "st_test_%ld", (long)getpid());
    if (make_dirs(dir) != CNN_OK) { fprintf(stderr, "%s\n", cnn_last_error()); return 1; }
    test_round_trip();
    test_exact_bytes();
    test_hand_built();
    test_malformed();
    test_mutations();
    test_writer_args();
    test_atomic();
    test_fileio();
    remove_tree(dir);
    return test_report("test_safetensors");
}
