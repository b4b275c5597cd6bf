/* json.h — a small strict JSON (RFC 8259) parser to a tree, and a writer into a growable buffer.
 * Inputs are untrusted (safetensors headers, checkpoint metadata): depth, size and value-count limits
 * are enforced and every error names the byte offset where parsing stopped. */
#ifndef CNN_CORE_JSON_H
#define CNN_CORE_JSON_H
#include <stddef.h>
#include <stdint.h>
#include "cnn.h"

typedef enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json_value json_value;
typedef struct json_member json_member;

struct json_value {
    json_type type;
    int boolean;       /* JSON_BOOL: 0 or 1 */
    int is_int;        /* JSON_NUMBER: integral and within int64, so `integer` holds it exactly */
    double number;     /* JSON_NUMBER: nearest double (always set) */
    int64_t integer;   /* JSON_NUMBER with is_int: exact value (integer literals are not rounded) */
    char *string;      /* JSON_STRING: UTF-8, NUL-terminated; may hold NULs from \u0000, see length */
    size_t length;     /* string bytes, array items or object members */
    json_value *items; /* JSON_ARRAY: items[length] */
    json_member *members; /* JSON_OBJECT: members[length], in document order, duplicates kept */
    size_t offset;     /* byte offset of the value in the parsed text, for messages */
};

struct json_member {
    char *key;         /* NUL-terminated UTF-8 */
    size_t key_length;
    json_value value;
};

typedef struct json_limits {
    int max_depth;     /* nesting of arrays/objects; 64 by default */
    size_t max_bytes;  /* input length; 100 MB by default */
    size_t max_values; /* values in the whole tree, bounds memory (~100 bytes each); 1 << 20 by default */
} json_limits;

json_limits json_default_limits(void);

/* Parse exactly one JSON value (surrounding whitespace allowed) from text[0..len).
 * limits NULL means the defaults. On failure *out is NULL, the message reads
 * "JSON: <what> at byte N" and, when err_offset is not NULL, *err_offset = N. */
cnn_status json_parse(const char *text, size_t len, const json_limits *limits, json_value **out,
                      size_t *err_offset);
void json_free(json_value *v);

/* First member of obj named key (NULL if obj is not an object or has no such key). */
const json_value *json_get(const json_value *obj, const char *key);
/* Number of members of obj named key (to reject duplicates where they matter). */
size_t json_count_key(const json_value *obj, const char *key);
const char *json_type_name(json_type t);

/* Writer: compact JSON (no spaces), strings escaped like serde_json and Python's json.dumps with
 * ensure_ascii=False (\" \\ \b \f \n \r \t, other control characters as \u00xx, the rest raw UTF-8).
 * Calls after an error do nothing; json_writer_finish reports the first error. */
#define JSON_WRITER_MAX_DEPTH 64
typedef struct json_writer {
    char *data;
    size_t len, cap;
    int depth;
    unsigned char in_object[JSON_WRITER_MAX_DEPTH]; /* container kind at each depth */
    unsigned char nonempty[JSON_WRITER_MAX_DEPTH];  /* something was written in the container */
    int have_key;    /* a key was written and awaits its value */
    int done;        /* a complete top-level value was written */
    cnn_status status;
} json_writer;

void json_writer_init(json_writer *w);
void json_writer_free(json_writer *w);
void json_begin_object(json_writer *w);
void json_end_object(json_writer *w);
void json_begin_array(json_writer *w);
void json_end_array(json_writer *w);
void json_write_key(json_writer *w, const char *key);
void json_write_key_n(json_writer *w, const char *key, size_t len);
void json_write_string(json_writer *w, const char *s);           /* must be valid UTF-8 */
void json_write_string_n(json_writer *w, const char *s, size_t len);
void json_write_int(json_writer *w, int64_t v);
void json_write_number(json_writer *w, double v);                 /* shortest round-trip form; NaN/Inf refused */
void json_write_bool(json_writer *w, int v);
void json_write_null(json_writer *w);
void json_write_value(json_writer *w, const json_value *v);       /* a parsed tree, e.g. for round trips */
/* Check that one complete value was written and hand over the text (NUL-terminated, caller frees).
 * The writer is reset either way. */
cnn_status json_writer_finish(json_writer *w, char **text, size_t *len);

/* 1 if s[0..len) is valid UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF). */
int json_utf8_valid(const char *s, size_t len);

#endif
