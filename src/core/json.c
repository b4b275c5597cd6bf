/* json.c — strict recursive-descent JSON parser (bounded depth, so recursion is safe) and a compact
 * writer. Numbers keep an exact int64 beside the double so that offsets and sizes above 2^53 survive. */
#include "core/json.h"
#include "core/error.h"
#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_limits json_default_limits(void) {
    json_limits l = {64, (size_t)100 * 1000 * 1000, (size_t)1 << 20};
    return l;
}

const char *json_type_name(json_type t) {
    switch (t) {
    case JSON_NULL: return "null";
    case JSON_BOOL: return "boolean";
    case JSON_NUMBER: return "number";
    case JSON_STRING: return "string";
    case JSON_ARRAY: return "array";
    case JSON_OBJECT: return "object";
    }
    return "?";
}

/* ---------------------------------------------------------------- UTF-8 */

/* Length of the valid UTF-8 sequence at s (avail bytes left), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t avail) {
    unsigned c = s[0];
    unsigned lo = 0x80, hi = 0xBF;
    size_t n;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;       /* overlong */
        if (c == 0xED) hi = 0x9F;       /* UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;       /* overlong */
        if (c == 0xF4) hi = 0x8F;       /* above U+10FFFF */
    } else return 0;
    if (avail < n) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return n;
}

int json_utf8_valid(const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(u + i, len - i);
        if (!n) return 0;
        i += n;
    }
    return 1;
}

static size_t utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---------------------------------------------------------------- parser */

typedef struct parser {
    const char *s;
    size_t len, pos;
    json_limits lim;
    size_t values;
    size_t err_pos;
} parser;

static cnn_status perr(parser *p, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static cnn_status perr(parser *p, size_t at, const char *fmt, ...) {
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    p->err_pos = at;
    return cnn_fail(CNN_ERR_FORMAT, "JSON: %s at byte %zu", what, at);
}

/* "'x'" for a printable byte, "byte 0xNN" otherwise, or "end of input". */
static const char *describe_at(parser *p, size_t at, char buf[32]) {
    if (at >= p->len) return "end of input";
    unsigned char c = (unsigned char)p->s[at];
    if (c >= 0x20 && c < 0x7F) snprintf(buf, 32, "character '%c'", c);
    else snprintf(buf, 32, "byte 0x%02x", c);
    return buf;
}

static void skip_ws(parser *p) {
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static int hex4(const char *s, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

/* A \uXXXX escape (with its low surrogate if any) at p->s[i] == '\\'; appends UTF-8 to out. */
static cnn_status parse_u_escape(parser *p, size_t *i, char *out, size_t *n) {
    size_t at = *i;
    uint32_t cp, lo;
    if (at + 6 > p->len || !hex4(p->s + at + 2, &cp))
        return perr(p, at, "invalid \\u escape (expected 4 hex digits)");
    *i = at + 6;
    if (cp >= 0xDC00 && cp <= 0xDFFF) return perr(p, at, "unpaired low surrogate \\u%04x", (unsigned)cp);
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (*i + 6 > p->len || p->s[*i] != '\\' || p->s[*i + 1] != 'u' || !hex4(p->s + *i + 2, &lo) ||
            lo < 0xDC00 || lo > 0xDFFF)
            return perr(p, at, "high surrogate \\u%04x not followed by a low surrogate", (unsigned)cp);
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        *i += 6;
    }
    *n += utf8_encode(cp, out + *n);
    return CNN_OK;
}

/* Decode the string starting at the opening quote p->pos into a new NUL-terminated buffer. */
static cnn_status parse_string(parser *p, char **out, size_t *out_len) {
    size_t start = p->pos, end = start + 1;
    *out = NULL;
    while (end < p->len && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
    if (end >= p->len) return perr(p, start, "unterminated string");
    /* Escapes only shrink: the decoded text fits in the quoted span. */
    char *buf = malloc(end - start);
    if (!buf) return cnn_fail(CNN_ERR_NOMEM, "JSON: out of memory for a %zu-byte string", end - start);
    size_t n = 0, i = start + 1;
    cnn_status st = CNN_OK;
    while (i < end && st == CNN_OK) {
        unsigned char c = (unsigned char)p->s[i];
        if (c == '\\') {
            static const char names[] = "\"\\/bfnrt", values[] = "\"\\/\b\f\n\r\t";
            char e = p->s[i + 1];
            const char *simple = strchr(names, e);
            if (e == 'u') { st = parse_u_escape(p, &i, buf, &n); continue; }
            if (!e || !simple) {
                char d[32];
                st = perr(p, i, "invalid escape: backslash followed by %s", describe_at(p, i + 1, d));
                break;
            }
            buf[n++] = values[simple - names];
            i += 2;
        } else if (c < 0x20) {
            st = perr(p, i, "control byte 0x%02x in a string (must be escaped)", c);
        } else {
            size_t k = utf8_seq((const unsigned char *)p->s + i, end - i);
            if (!k) { st = perr(p, i, "invalid UTF-8 byte 0x%02x in a string", c); break; }
            memcpy(buf + n, p->s + i, k);
            n += k;
            i += k;
        }
    }
    if (st != CNN_OK) { free(buf); return st; }
    buf[n] = 0;
    *out = buf;
    *out_len = n;
    p->pos = end + 1;
    return CNN_OK;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* strtod on a copy of text[0..n) with '.' replaced by the locale's decimal point. */
static double to_double(const char *text, size_t n) {
    const char *dp = localeconv()->decimal_point;
    size_t dpl = dp && *dp ? strlen(dp) : 1;
    char small[96], *buf = small;
    size_t cap = n * dpl + 1;
    if (cap > sizeof small && !(buf = malloc(cap))) return NAN;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '.' && dp && *dp) { memcpy(buf + k, dp, dpl); k += dpl; }
        else buf[k++] = text[i];
    }
    buf[k] = 0;
    double v = strtod(buf, NULL);
    if (buf != small) free(buf);
    return v;
}

/* 1 if the (validated) literal s[0..n) is exactly an integer within int64, as "12", "1e3", "1.50e1"
   are and "1.0000000000000000001" or "-9.223372036854776e+18" are not (though their doubles are):
   the decision is made on the decimal digits, never on the rounded double. */
static int exact_int64(const char *s, size_t n, int64_t *out) {
    size_t i = s[0] == '-', a = i;
    while (i < n && is_digit(s[i])) i++;
    size_t int_len = i - a, c = i + 1, frac_len = 0;
    if (i < n && s[i] == '.')
        for (i++; i < n && is_digit(s[i]); i++) frac_len++;
    long exp = 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        int eneg = s[++i] == '-';
        if (s[i] == '-' || s[i] == '+') i++;
        for (; i < n; i++) exp = exp < 100000 ? exp * 10 + (s[i] - '0') : exp; /* saturates: 1e100000 is inf anyway */
        if (eneg) exp = -exp;
    }
    size_t len = int_len + frac_len;
#define DIGIT(j) ((j) < int_len ? s[a + (j)] : s[c + (j) - int_len])
    size_t end = len; /* digits [0, end) times 10^k */
    long k = exp - (long)frac_len;
    while (end > 0 && DIGIT(end - 1) == '0' && k < 0) end--, k++;
    uint64_t mag = 0, limit = s[0] == '-' ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (size_t j = 0; j < end; j++) {
        unsigned d = (unsigned)(DIGIT(j) - '0');
        if (mag > (limit - d) / 10) return 0;
        mag = mag * 10 + d;
    }
#undef DIGIT
    if (mag == 0) k = 0; /* 0e-5, 0.000 */
    if (k < 0) return 0;
    for (; k > 0; k--)
        if (mag > limit / 10) return 0;
        else mag *= 10;
    *out = s[0] == '-' ? (int64_t)(0 - mag) : (int64_t)mag;
    return 1;
}

static cnn_status parse_number(parser *p, json_value *v) {
    const char *s = p->s;
    size_t start = p->pos, i = start;
    if (i < p->len && s[i] == '-') i++;
    if (i >= p->len || !is_digit(s[i])) return perr(p, i, "invalid number: expected a digit");
    if (s[i] == '0' && i + 1 < p->len && is_digit(s[i + 1]))
        return perr(p, i, "invalid number: leading zeros are not allowed");
    while (i < p->len && is_digit(s[i])) i++;
    if (i < p->len && s[i] == '.') {
        if (++i >= p->len || !is_digit(s[i])) return perr(p, i, "invalid number: expected a digit after '.'");
        while (i < p->len && is_digit(s[i])) i++;
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        if (++i < p->len && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= p->len || !is_digit(s[i])) return perr(p, i, "invalid number: expected a digit in the exponent");
        while (i < p->len && is_digit(s[i])) i++;
    }
    v->type = JSON_NUMBER;
    v->number = to_double(s + start, i - start);
    if (isnan(v->number)) return cnn_fail(CNN_ERR_NOMEM, "JSON: out of memory for a number");
    if (isinf(v->number)) return perr(p, start, "number out of the range of a double");
    v->is_int = exact_int64(s + start, i - start, &v->integer);
    p->pos = i;
    return CNN_OK;
}

static cnn_status parse_value(parser *p, json_value *v, int depth);

/* Grow *arr (elements of size elem) so that index n fits; zero the new slot. */
static cnn_status grow(void **arr, size_t *cap, size_t n, size_t elem) {
    if (n < *cap) { memset((char *)*arr + n * elem, 0, elem); return CNN_OK; }
    size_t nc = *cap ? *cap * 2 : 4;
    void *na = realloc(*arr, nc * elem);
    if (!na) return cnn_fail(CNN_ERR_NOMEM, "JSON: out of memory for %zu elements", nc);
    *arr = na;
    *cap = nc;
    memset((char *)na + n * elem, 0, elem);
    return CNN_OK;
}

/* After an item: skip to ',' (returns 1) or the closer (returns 0), else fail. */
static cnn_status after_item(parser *p, char closer, const char *what, int *more) {
    char d[32];
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ',') { p->pos++; *more = 1; return CNN_OK; }
    if (p->pos < p->len && p->s[p->pos] == closer) { p->pos++; *more = 0; return CNN_OK; }
    return perr(p, p->pos, "expected ',' or '%c' in %s, found %s", closer, what, describe_at(p, p->pos, d));
}

static cnn_status parse_array(parser *p, json_value *v, int depth) {
    size_t cap = 0;
    int more = 1;
    v->type = JSON_ARRAY;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ']') { p->pos++; return CNN_OK; }
    while (more) {
        CNN_TRY(grow((void **)&v->items, &cap, v->length, sizeof *v->items));
        v->length++; /* counted before parsing, so that json_free reaches a half-built item */
        CNN_TRY(parse_value(p, &v->items[v->length - 1], depth));
        CNN_TRY(after_item(p, ']', "an array", &more));
    }
    return CNN_OK;
}

static cnn_status parse_object(parser *p, json_value *v, int depth) {
    size_t cap = 0;
    int more = 1;
    char d[32];
    v->type = JSON_OBJECT;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == '}') { p->pos++; return CNN_OK; }
    while (more) {
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != '"')
            return perr(p, p->pos, "expected a string key in an object, found %s", describe_at(p, p->pos, d));
        CNN_TRY(grow((void **)&v->members, &cap, v->length, sizeof *v->members));
        json_member *m = &v->members[v->length++];
        CNN_TRY(parse_string(p, &m->key, &m->key_length));
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != ':')
            return perr(p, p->pos, "expected ':' after an object key, found %s", describe_at(p, p->pos, d));
        p->pos++;
        CNN_TRY(parse_value(p, &m->value, depth));
        CNN_TRY(after_item(p, '}', "an object", &more));
    }
    return CNN_OK;
}

static cnn_status parse_literal(parser *p, json_value *v) {
    static const char *const words[3] = {"null", "false", "true"};
    for (int k = 0; k < 3; k++) {
        size_t n = strlen(words[k]);
        if (p->len - p->pos >= n && memcmp(p->s + p->pos, words[k], n) == 0) {
            v->type = k == 0 ? JSON_NULL : JSON_BOOL;
            v->boolean = k == 2;
            p->pos += n;
            return CNN_OK;
        }
    }
    return perr(p, p->pos, "invalid literal (expected true, false or null)");
}

static cnn_status parse_value(parser *p, json_value *v, int depth) {
    char d[32];
    skip_ws(p);
    v->offset = p->pos;
    if (p->pos >= p->len) return perr(p, p->pos, "unexpected end of input, expected a value");
    if (++p->values > p->lim.max_values)
        return perr(p, p->pos, "more than %zu values (limit)", p->lim.max_values);
    char c = p->s[p->pos];
    if (c == '{' || c == '[') {
        if (depth >= p->lim.max_depth) return perr(p, p->pos, "nesting deeper than %d levels", p->lim.max_depth);
        return c == '{' ? parse_object(p, v, depth + 1) : parse_array(p, v, depth + 1);
    }
    if (c == '"') {
        v->type = JSON_STRING;
        return parse_string(p, &v->string, &v->length);
    }
    if (c == '-' || is_digit(c)) return parse_number(p, v);
    if (c == 't' || c == 'f' || c == 'n') return parse_literal(p, v);
    return perr(p, p->pos, "unexpected %s, expected a value", describe_at(p, p->pos, d));
}

static void free_contents(json_value *v) {
    if (v->type == JSON_STRING) free(v->string);
    if (v->type == JSON_ARRAY) {
        for (size_t i = 0; i < v->length; i++) free_contents(&v->items[i]);
        free(v->items);
    }
    if (v->type == JSON_OBJECT) {
        for (size_t i = 0; i < v->length; i++) {
            free(v->members[i].key);
            free_contents(&v->members[i].value);
        }
        free(v->members);
    }
}

void json_free(json_value *v) {
    if (!v) return;
    free_contents(v);
    free(v);
}

cnn_status json_parse(const char *text, size_t len, const json_limits *limits, json_value **out,
                      size_t *err_offset) {
    parser p = {text, len, 0, limits ? *limits : json_default_limits(), 0, 0};
    char d[32];
    cnn_status st;
    *out = NULL;
    if (len > p.lim.max_bytes) {
        st = perr(&p, 0, "input of %zu bytes exceeds the limit of %zu", len, p.lim.max_bytes);
    } else {
        json_value *root = calloc(1, sizeof *root);
        if (!root) return cnn_fail(CNN_ERR_NOMEM, "JSON: out of memory");
        st = parse_value(&p, root, 0);
        if (st == CNN_OK) {
            skip_ws(&p);
            if (p.pos < len) st = perr(&p, p.pos, "unexpected %s after the value", describe_at(&p, p.pos, d));
        }
        if (st == CNN_OK) *out = root;
        else json_free(root);
    }
    if (st != CNN_OK && err_offset) *err_offset = p.err_pos;
    return st;
}

const json_value *json_get(const json_value *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT) return NULL;
    size_t kl = strlen(key);
    for (size_t i = 0; i < obj->length; i++)
        if (obj->members[i].key_length == kl && memcmp(obj->members[i].key, key, kl) == 0)
            return &obj->members[i].value;
    return NULL;
}

size_t json_count_key(const json_value *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT) return 0;
    size_t kl = strlen(key), n = 0;
    for (size_t i = 0; i < obj->length; i++)
        n += obj->members[i].key_length == kl && memcmp(obj->members[i].key, key, kl) == 0;
    return n;
}

/* ---------------------------------------------------------------- writer */

void json_writer_init(json_writer *w) { memset(w, 0, sizeof *w); }

void json_writer_free(json_writer *w) {
    free(w->data);
    json_writer_init(w);
}

static void wfail(json_writer *w, cnn_status st, const char *what) {
    if (w->status == CNN_OK) {
        w->status = st;
        cnn_fail(st, "JSON writer: %s", what);
    }
}

static void put(json_writer *w, const char *s, size_t n) {
    if (w->status != CNN_OK) return;
    if (w->len + n + 1 > w->cap) {
        size_t nc = w->cap ? w->cap : 256;
        while (nc < w->len + n + 1) nc *= 2;
        char *nd = realloc(w->data, nc);
        if (!nd) { wfail(w, CNN_ERR_NOMEM, "out of memory"); return; }
        w->data = nd;
        w->cap = nc;
    }
    memcpy(w->data + w->len, s, n);
    w->len += n;
    w->data[w->len] = 0;
}

/* Before any value: place it (comma, after a key, or at top level) or record misuse. */
static int begin_value(json_writer *w) {
    if (w->status != CNN_OK) return 0;
    if (w->depth == 0) {
        if (w->done) { wfail(w, CNN_ERR_ARG, "a second top-level value"); return 0; }
        return 1;
    }
    if (w->in_object[w->depth - 1]) {
        if (!w->have_key) { wfail(w, CNN_ERR_ARG, "a value in an object without a key"); return 0; }
        w->have_key = 0;
        return 1;
    }
    if (w->nonempty[w->depth - 1]) put(w, ",", 1);
    w->nonempty[w->depth - 1] = 1;
    return 1;
}

static void end_value(json_writer *w) {
    if (w->depth == 0) w->done = 1;
}

static void put_escaped(json_writer *w, const char *s, size_t n) {
    if (!json_utf8_valid(s, n)) { wfail(w, CNN_ERR_ARG, "string is not valid UTF-8"); return; }
    put(w, "\"", 1);
    size_t run = 0; /* bytes copied verbatim in one go */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[8];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (c < 0x20) { snprintf(u, sizeof u, "\\u%04x", c); esc = u; }
        }
        if (!esc) continue;
        put(w, s + run, i - run);
        put(w, esc, strlen(esc));
        run = i + 1;
    }
    put(w, s + run, n - run);
    put(w, "\"", 1);
}

void json_write_key_n(json_writer *w, const char *key, size_t len) {
    if (w->status != CNN_OK) return;
    if (w->depth == 0 || !w->in_object[w->depth - 1] || w->have_key) {
        wfail(w, CNN_ERR_ARG, "a key outside an object or after another key");
        return;
    }
    if (w->nonempty[w->depth - 1]) put(w, ",", 1);
    w->nonempty[w->depth - 1] = 1;
    put_escaped(w, key, len);
    put(w, ":", 1);
    w->have_key = 1;
}

void json_write_key(json_writer *w, const char *key) { json_write_key_n(w, key, strlen(key)); }

static void begin_container(json_writer *w, int is_object) {
    if (!begin_value(w)) return;
    if (w->depth >= JSON_WRITER_MAX_DEPTH) { wfail(w, CNN_ERR_ARG, "nesting too deep"); return; }
    w->in_object[w->depth] = (unsigned char)is_object;
    w->nonempty[w->depth] = 0;
    w->depth++;
    put(w, is_object ? "{" : "[", 1);
}

static void end_container(json_writer *w, int is_object) {
    if (w->status != CNN_OK) return;
    if (w->depth == 0 || w->in_object[w->depth - 1] != is_object || w->have_key) {
        wfail(w, CNN_ERR_ARG, is_object ? "unbalanced end of object" : "unbalanced end of array");
        return;
    }
    w->depth--;
    put(w, is_object ? "}" : "]", 1);
    end_value(w);
}

void json_begin_object(json_writer *w) { begin_container(w, 1); }
void json_end_object(json_writer *w) { end_container(w, 1); }
void json_begin_array(json_writer *w) { begin_container(w, 0); }
void json_end_array(json_writer *w) { end_container(w, 0); }

void json_write_string_n(json_writer *w, const char *s, size_t len) {
    if (!begin_value(w)) return;
    put_escaped(w, s, len);
    end_value(w);
}

void json_write_string(json_writer *w, const char *s) { json_write_string_n(w, s, strlen(s)); }

void json_write_int(json_writer *w, int64_t v) {
    char buf[32];
    if (!begin_value(w)) return;
    snprintf(buf, sizeof buf, "%" PRId64, v);
    put(w, buf, strlen(buf));
    end_value(w);
}

/* Shortest %.Ng (N = 15..17) that reads back to the same double, with a '.' whatever the locale. */
static void format_double(double v, char *buf, size_t cap) {
    const char *dp = localeconv()->decimal_point;
    if (v == 0 && signbit(v)) { snprintf(buf, cap, "-0.0"); return; }
    if (v == floor(v) && fabs(v) < 9007199254740992.0) { snprintf(buf, cap, "%" PRId64, (int64_t)v); return; }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    if (dp && dp[0] && strcmp(dp, ".") != 0) {
        char *at = strstr(buf, dp);
        if (at) {
            size_t dl = strlen(dp);
            *at = '.';
            memmove(at + 1, at + dl, strlen(at + dl) + 1);
        }
    }
}

void json_write_number(json_writer *w, double v) {
    char buf[64];
    if (!isfinite(v)) { wfail(w, CNN_ERR_ARG, "NaN or infinity has no JSON form"); return; }
    if (!begin_value(w)) return;
    format_double(v, buf, sizeof buf);
    put(w, buf, strlen(buf));
    end_value(w);
}

void json_write_bool(json_writer *w, int v) {
    if (!begin_value(w)) return;
    put(w, v ? "true" : "false", v ? 4 : 5);
    end_value(w);
}

void json_write_null(json_writer *w) {
    if (!begin_value(w)) return;
    put(w, "null", 4);
    end_value(w);
}

void json_write_value(json_writer *w, const json_value *v) {
    if (w->status != CNN_OK) return;
    switch (v->type) {
    case JSON_NULL: json_write_null(w); break;
    case JSON_BOOL: json_write_bool(w, v->boolean); break;
    case JSON_NUMBER:
        /* zeros, whatever their sign or form (-0.0, 1e-400), are written "0": a fixed point of rewriting */
        if (v->is_int || v->number == 0) json_write_int(w, v->is_int ? v->integer : 0);
        else json_write_number(w, v->number);
        break;
    case JSON_STRING: json_write_string_n(w, v->string, v->length); break;
    case JSON_ARRAY:
        json_begin_array(w);
        for (size_t i = 0; i < v->length && w->status == CNN_OK; i++) json_write_value(w, &v->items[i]);
        json_end_array(w);
        break;
    case JSON_OBJECT:
        json_begin_object(w);
        for (size_t i = 0; i < v->length && w->status == CNN_OK; i++) {
            json_write_key_n(w, v->members[i].key, v->members[i].key_length);
            json_write_value(w, &v->members[i].value);
        }
        json_end_object(w);
        break;
    }
}

cnn_status json_writer_finish(json_writer *w, char **text, size_t *len) {
    cnn_status st = w->status;
    *text = NULL;
    if (len) *len = 0;
    if (st == CNN_OK && (!w->done || w->depth != 0))
        st = cnn_fail(CNN_ERR_ARG, "JSON writer: %s", w->depth ? "unclosed object or array" : "nothing written");
    if (st == CNN_OK) {
        *text = w->data;
        if (len) *len = w->len;
        w->data = NULL;
    }
    json_writer_free(w);
    return st;
}
