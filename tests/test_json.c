/* test_json.c — the JSON parser and writer: round trips, escapes, UTF-8, exact numbers, limits, and
 * the byte offset named by every malformed input (expected offsets counted by hand in the tables). */
#include "core/error.h"
#include "testutil.h"
#include "core/json.h"
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static json_value *parse(const char *text) {
    json_value *v = NULL;
    cnn_status st = json_parse(text, strlen(text), NULL, &v, NULL);
    CHECK(st == CNN_OK, "parse %s: %s", text, cnn_last_error());
    return v;
}

/* Parse text, write it back compactly; the caller frees. */
static char *rewrite(const char *text, size_t len) {
    json_value *v = NULL;
    if (json_parse(text, len, NULL, &v, NULL) != CNN_OK) return NULL;
    json_writer w;
    json_writer_init(&w);
    json_write_value(&w, v);
    char *out = NULL;
    size_t n;
    json_writer_finish(&w, &out, &n);
    json_free(v);
    return out;
}

static void test_round_trips(void) {
    static const char *const cases[][2] = {
        {"  {\"a\" : [1, 2.5, -3e2, true, false, null], \"b\": {}, \"c\": [], \"d\": \"\"}  ",
         "{\"a\":[1,2.5,-300,true,false,null],\"b\":{},\"c\":[],\"d\":\"\"}"},
        {"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\\"\\\\/\\b\\f\\n\\r\\t\""},           /* \/ comes back as / */
        {"\"\\u0001\\u001F\\u007f\"", "\"\\u0001\\u001f\x7f\""},                     /* DEL is not escaped */
        {"\"\\u00e9\\u20AC\"", "\"\xc3\xa9\xe2\x82\xac\""},                          /* é € as raw UTF-8 */
        {"\"\\ud83d\\ude00\"", "\"\xf0\x9f\x98\x80\""},                               /* U+1F600 */
        {"\"\xe6\x97\xa5\xe6\x9c\xac\"", "\"\xe6\x97\xa5\xe6\x9c\xac\""},            /* raw UTF-8 passes */
        {"\"a\\u0000b\"", "\"a\\u0000b\""},                                           /* embedded NUL */
        {"{\"a\":1,\"a\":2}", "{\"a\":1,\"a\":2}"},                                   /* duplicates kept */
        {"[[[[]]],{\"x\":[{}]}]", "[[[[]]],{\"x\":[{}]}]"},
        {"[0,-0,1E+2,2.5E-1,9223372036854775807,-9223372036854775808]",
         "[0,0,100,0.25,9223372036854775807,-9223372036854775808]"},
        {"[0.1,1e300,-1.5e-7,123456789012]", "[0.1,1e+300,-1.5e-07,123456789012]"},
        {"[-0,-0.0,-1e-400,0e5]", "[0,0,0,0]"}, /* underflow to -0.0 too (found by fuzz_json) */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = rewrite(cases[i][0], strlen(cases[i][0]));
        CHECK(out && !strcmp(out, cases[i][1]), "case %zu: got %s, expected %s (%s)", i, out ? out : "(error)",
              cases[i][1], cnn_last_error());
        char *again = out ? rewrite(out, strlen(out)) : NULL; /* canonical form is a fixed point */
        CHECK(again && out && !strcmp(again, out), "case %zu not idempotent: %s", i, again ? again : "(error)");
        free(out);
        free(again);
    }
}

static void test_strings(void) {
    static const struct { const char *json; const char *bytes; size_t len; } cases[] = {
        {"\"\\u00e9\"", "\xc3\xa9", 2},
        {"\"\\u20ac\"", "\xe2\x82\xac", 3},
        {"\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4},
        {"\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf", 4}, /* U+10FFFF, the last code point */
        {"\"\\u0000\"", "\0", 1},
        {"\"\\u0041\\n\"", "A\n", 2},
        {"\"\"", "", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_value *v = parse(cases[i].json);
        if (!v) continue;
        CHECK(v->type == JSON_STRING && v->length == cases[i].len && !memcmp(v->string, cases[i].bytes, cases[i].len) &&
                  v->string[v->length] == 0,
              "string case %zu: length %zu", i, v->length);
        json_free(v);
    }
    json_value *v = parse("{\"k\":\"v\",\"k\":\"w\",\"z\":[1]}");
    if (v) {
        const json_value *k = json_get(v, "k");
        CHECK(k && !strcmp(k->string, "v"), "json_get returns the first duplicate");
        CHECK(json_count_key(v, "k") == 2 && json_count_key(v, "z") == 1 && json_count_key(v, "q") == 0, "counts");
        CHECK(json_get(v, "missing") == NULL && json_get(json_get(v, "z"), "k") == NULL, "absent keys");
        CHECK(k && k->offset == 5, "offset of the value: %zu", k ? k->offset : 0);
        json_free(v);
    }
}

static void test_numbers(void) {
    struct { const char *text; int is_int; int64_t integer; double number; } cases[] = {
        {"9007199254740993", 1, 9007199254740993LL, 9007199254740992.0}, /* 2^53 + 1: exact int, rounded double */
        {"9223372036854775807", 1, INT64_MAX, 9223372036854775808.0},
        {"-9223372036854775808", 1, INT64_MIN, -9223372036854775808.0},
        {"9223372036854775808", 0, 0, 9223372036854775808.0},           /* 2^63 does not fit int64 */
        {"18446744073709551616", 0, 0, 18446744073709551616.0},
        {"1e3", 1, 1000, 1000.0},
        {"-0.5e-2", 0, 0, -0.005},
        {"2.5E-1", 0, 0, 0.25},
        {"1.0", 1, 1, 1.0},
        {"-0", 1, 0, 0.0},
        {"0", 1, 0, 0.0},
        {"1.7976931348623157e308", 0, 0, DBL_MAX},
        {"1e-400", 0, 0, 0.0},                       /* underflows to zero, but 10^-400 is no integer */
        {"1.0000000000000000001", 0, 0, 1.0},        /* its double is 1, its value not an integer */
        {"-9.223372036854776e+18", 0, 0, -9223372036854775808.0}, /* -9223372036854776000 < INT64_MIN */
        {"-9.223372036854775808e18", 1, INT64_MIN, -9223372036854775808.0},
        {"1.50e1", 1, 15, 15.0},
        {"12300e-2", 1, 123, 123.0},
        {"0e99999999999999999999", 1, 0, 0.0},
        {"1e18", 1, 1000000000000000000LL, 1e18},
        {"1e19", 0, 0, 1e19},
        {"4.9406564584124654e-324", 0, 0, 4.9406564584124654e-324},     /* smallest subnormal */
        {"123456789.125", 0, 0, 123456789.125},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_value *v = parse(cases[i].text);
        if (!v) continue;
        CHECK(v->type == JSON_NUMBER && v->number == cases[i].number, "%s: number %.17g", cases[i].text, v->number);
        CHECK(v->is_int == cases[i].is_int, "%s: is_int %d", cases[i].text, v->is_int);
        if (cases[i].is_int) CHECK(v->integer == cases[i].integer, "%s: integer %lld", cases[i].text, (long long)v->integer);
        json_free(v);
    }
    /* Writer: shortest form that reads back exactly. */
    static const struct { double v; const char *text; } out[] = {
        {0.1, "0.1"}, {-2.5, "-2.5"}, {1e300, "1e+300"}, {123456789012.0, "123456789012"},
        {9007199254740991.0, "9007199254740991"}, {1.0 / 3.0, "0.3333333333333333"}, {5e-324, "4.94065645841247e-324"},
    };
    for (size_t i = 0; i < sizeof out / sizeof out[0]; i++) {
        json_writer w;
        char *text;
        json_writer_init(&w);
        json_write_number(&w, out[i].v);
        CHECK(json_writer_finish(&w, &text, NULL) == CNN_OK && !strcmp(text, out[i].text), "write %.17g: %s", out[i].v, text);
        CHECK(text && strtod(text, NULL) == out[i].v, "write %.17g reads back", out[i].v);
        free(text);
    }
    json_writer w;
    char *text;
    json_writer_init(&w);
    json_write_number(&w, NAN);
    CHECK(json_writer_finish(&w, &text, NULL) == CNN_ERR_ARG && !text, "NaN refused");
    json_writer_init(&w);
    json_write_int(&w, INT64_MIN);
    CHECK(json_writer_finish(&w, &text, NULL) == CNN_OK && !strcmp(text, "-9223372036854775808"), "int64 min: %s", text);
    free(text);
}

/* Each malformed input, with the byte offset where the parser must stop (counted by hand). */
static void test_malformed(void) {
    static const struct { const char *text; size_t len; size_t at; const char *what; } cases[] = {
        {"", 0, 0, "end of input"},
        {"   ", 3, 3, "end of input"},
        {"[1,]", 4, 3, "expected a value"},
        {"[1 2]", 5, 3, "expected ','"},
        {"{\"a\" 1}", 7, 5, "expected ':'"},
        {"{\"a\":1,}", 8, 7, "string key"},
        {"{1:2}", 5, 1, "string key"},
        {"\"abc", 4, 0, "unterminated"},
        {"01", 2, 0, "leading zeros"},
        {"[-01]", 5, 2, "leading zeros"},
        {"1.", 2, 2, "after '.'"},
        {"-", 1, 1, "expected a digit"},
        {"1e", 2, 2, "exponent"},
        {"1e+", 3, 3, "exponent"},
        {"+1", 2, 0, "expected a value"},
        {".5", 2, 0, "expected a value"},
        {"tru", 3, 0, "invalid literal"},
        {"nul", 3, 0, "invalid literal"},
        {"NaN", 3, 0, "expected a value"},
        {"Infinity", 8, 0, "expected a value"},
        {"1e400", 5, 0, "out of the range"},
        {"[1]x", 4, 3, "after the value"},
        {"\"x\"\0", 4, 3, "after the value"},
        {"\"a\\x\"", 5, 2, "invalid escape"},
        {"\"\\u12G4\"", 8, 1, "\\u escape"},
        {"\"\\u12\"", 6, 1, "\\u escape"},
        {"\"\\ud800\"", 8, 1, "high surrogate"},
        {"\"\\udc00\"", 8, 1, "low surrogate"},
        {"\"\\ud800\\u0041\"", 14, 1, "high surrogate"},
        {"\"a\tb\"", 5, 2, "control byte 0x09"},
        {"\"\xff\"", 3, 1, "UTF-8"},
        {"\"\xc0\xaf\"", 4, 1, "UTF-8"},          /* overlong '/' */
        {"\"\xed\xa0\x80\"", 5, 1, "UTF-8"},      /* a surrogate encoded in UTF-8 */
        {"\"\xe2\x82\"", 4, 1, "UTF-8"},          /* truncated sequence */
        {"\"\xf4\x90\x80\x80\"", 6, 1, "UTF-8"},  /* above U+10FFFF */
        {"[", 1, 1, "end of input"},
        {"{\"a\":1", 6, 6, "expected ','"},
        {"[1,2", 4, 4, "expected ','"},
        {"{\"a\"", 4, 4, "expected ':'"},
        {"\xef\xbb\xbf{}", 5, 0, "byte 0xef"},    /* a BOM is not JSON */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_value *v = (json_value *)1;
        size_t at = 9999;
        char want[32];
        cnn_status st = json_parse(cases[i].text, cases[i].len, NULL, &v, &at);
        snprintf(want, sizeof want, "at byte %zu", cases[i].at);
        CHECK(st == CNN_ERR_FORMAT && v == NULL, "case %zu (%s) accepted", i, cases[i].text);
        CHECK(at == cases[i].at, "case %zu (%s): offset %zu, expected %zu: %s", i, cases[i].text, at, cases[i].at,
              cnn_last_error());
        CHECK(strstr(cnn_last_error(), want) && strstr(cnn_last_error(), cases[i].what), "case %zu: message '%s' lacks '%s' / '%s'",
              i, cnn_last_error(), want, cases[i].what);
    }
}

static void test_limits(void) {
    char deep[200];
    json_value *v;
    size_t at;
    for (int depth = 63; depth <= 65; depth++) { /* default limit: 64 levels */
        memset(deep, '[', (size_t)depth);
        memset(deep + depth, ']', (size_t)depth);
        cnn_status st = json_parse(deep, 2 * (size_t)depth, NULL, &v, &at);
        if (depth <= 64) CHECK(st == CNN_OK, "depth %d: %s", depth, cnn_last_error());
        else CHECK(st == CNN_ERR_FORMAT && at == 64 && strstr(cnn_last_error(), "nesting"), "depth 65: %s", cnn_last_error());
        json_free(v);
    }
    json_limits lim = json_default_limits();
    lim.max_depth = 2;
    CHECK(json_parse("[{\"a\":1}]", 9, &lim, &v, &at) == CNN_OK, "depth 2 within limit 2");
    json_free(v);
    CHECK(json_parse("[{\"a\":[]}]", 10, &lim, &v, &at) == CNN_ERR_FORMAT && at == 6, "depth 3 over limit 2: %zu", at);
    lim = json_default_limits();
    lim.max_values = 3; /* the array itself is a value: 1, 2 fit, 3 is the fourth */
    CHECK(json_parse("[1,2]", 5, &lim, &v, &at) == CNN_OK, "3 values within 3");
    json_free(v);
    CHECK(json_parse("[1,2,3]", 7, &lim, &v, &at) == CNN_ERR_FORMAT && at == 5 && strstr(cnn_last_error(), "values"),
          "4 values over 3: %zu %s", at, cnn_last_error());
    lim = json_default_limits();
    lim.max_bytes = 4;
    CHECK(json_parse("[1,2]", 5, &lim, &v, &at) == CNN_ERR_FORMAT && strstr(cnn_last_error(), "limit"), "5 bytes over 4");
}

static void test_writer(void) {
    json_writer w;
    char *text;
    size_t len;
    json_writer_init(&w);
    json_begin_object(&w);
    json_write_key(&w, "s");
    /* Every byte that needs escaping, then bytes that must stay raw. */
    json_write_string_n(&w, "\"\\/\x01\x1f\x7f\xc3\xa9\0", 9);
    json_write_key(&w, "list");
    json_begin_array(&w);
    json_write_int(&w, -7);
    json_write_bool(&w, 1);
    json_write_bool(&w, 0);
    json_write_null(&w);
    json_begin_object(&w);
    json_end_object(&w);
    json_end_array(&w);
    json_write_key(&w, "t\n");
    json_write_string(&w, "\b\f\n\r\t");
    json_end_object(&w);
    CHECK(json_writer_finish(&w, &text, &len) == CNN_OK, "%s", cnn_last_error());
    const char *want = "{\"s\":\"\\\"\\\\/\\u0001\\u001f\x7f\xc3\xa9\\u0000\",\"list\":[-7,true,false,null,{}],"
                       "\"t\\n\":\"\\b\\f\\n\\r\\t\"}";
    CHECK(text && !strcmp(text, want) && len == strlen(want), "writer output %s", text);
    free(text);

    /* Misuse is reported, not written. */
    struct { int kind; const char *what; } misuse[] = {
        {0, "key outside"}, {1, "without a key"}, {2, "unbalanced"}, {3, "second top-level"},
        {4, "nothing written"}, {5, "unclosed"}, {6, "UTF-8"}, {7, "after another key"},
    };
    for (size_t i = 0; i < sizeof misuse / sizeof misuse[0]; i++) {
        json_writer_init(&w);
        switch (misuse[i].kind) {
        case 0: json_write_key(&w, "k"); break;
        case 1: json_begin_object(&w); json_write_int(&w, 1); json_end_object(&w); break;
        case 2: json_begin_object(&w); json_end_array(&w); break;
        case 3: json_write_int(&w, 1); json_write_int(&w, 2); break;
        case 4: break;
        case 5: json_begin_array(&w); break;
        case 6: json_write_string(&w, "\xff"); break;
        case 7: json_begin_object(&w); json_write_key(&w, "a"); json_write_key(&w, "b"); break;
        }
        cnn_status st = json_writer_finish(&w, &text, &len);
        CHECK(st == CNN_ERR_ARG && !text && strstr(cnn_last_error(), misuse[i].what), "misuse %zu: %s", i, cnn_last_error());
    }
}

/* Mutated and truncated documents must fail cleanly or parse; never crash (run under ASan/valgrind). */
static void test_mutations(void) {
    const char *doc = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                      "\"__metadata__\":{\"k\":\"v\\u00e9\\ud83d\\ude00\",\"n\":\"-1.5e3\"},\"z\":[true,false,null,1e5]}";
    size_t n = strlen(doc);
    char *buf = malloc(n);
    uint64_t s = 12345;
    int parsed = 0;
    for (size_t cut = 0; cut < n; cut++) {
        json_value *v;
        char *prefix = malloc(cut ? cut : 1); /* exactly cut bytes, so reading past them is caught */
        memcpy(prefix, doc, cut);
        CHECK(json_parse(prefix, cut, NULL, &v, NULL) != CNN_OK, "prefix of %zu bytes accepted", cut);
        free(prefix);
    }
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(buf, doc, n);
        for (int k = 0; k < 1 + iter % 4; k++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            buf[(s >> 33) % n] = (char)(s >> 13);
        }
        json_value *v;
        if (json_parse(buf, n, NULL, &v, NULL) == CNN_OK) parsed++;
        json_free(v);
    }
    free(buf);
    printf("mutations: %d of 20000 still parsed\n", parsed);
}

int main(void) {
    test_round_trips();
    test_strings();
    test_numbers();
    test_malformed();
    test_limits();
    test_writer();
    test_mutations();
    return test_report("test_json");
}
