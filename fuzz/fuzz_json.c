/* fuzz_json.c — the strict JSON parser and the writer: whatever parses writes back, what is written
 * parses, and rewriting settles: the second rewrite equals the first. (Not always the first write: a
 * fraction whose double is integral, 9220233720368547540.5, is written 9.220233720368548e+18, which is
 * exactly an integer and is then written as one.) Input: a limits byte (bit 0: tight limits), the text. */
#include "core/json.h"
#include "fuzz.h"

static char *write_tree(const json_value *v, size_t *len) {
    json_writer w;
    json_writer_init(&w);
    json_write_value(&w, v);
    char *text = NULL;
    return json_writer_finish(&w, &text, len) == CNN_OK ? text : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    json_limits lim = json_default_limits();
    if (data[0] & 1) { /* tight limits, so that their checks are reached */
        lim.max_depth = 1 + (data[0] >> 1) % 8;
        lim.max_values = 1 + (data[0] >> 4);
    }
    const char *text = (const char *)data + 1;
    size_t len = size - 1, at = 0;
    json_value *v;
    if (json_parse(text, len, &lim, &v, &at) != CNN_OK) {
        FUZZ_ASSERT(v == NULL && at <= len);
        return 0;
    }
    json_get(v, "dtype");
    json_count_key(v, "shape");
    size_t n1;
    char *t1 = write_tree(v, &n1);
    json_free(v);
    if (!t1) return 0; /* e.g. a number beyond double's range, which the writer refuses */
    char *t[3] = {t1, NULL, NULL};
    size_t n[3] = {n1, 0, 0};
    for (int i = 1; i < 3; i++) {
        json_value *again;
        FUZZ_ASSERT(json_parse(t[i - 1], n[i - 1], NULL, &again, NULL) == CNN_OK);
        FUZZ_ASSERT((t[i] = write_tree(again, &n[i])) != NULL);
        json_free(again);
    }
    FUZZ_ASSERT(n[1] == n[2] && memcmp(t[1], t[2], n[1]) == 0);
    for (int i = 0; i < 3; i++) free(t[i]);
    return 0;
}
