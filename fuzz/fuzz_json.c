/* fuzz_json.c — the strict JSON parser and the writer: whatever parses writes back, and what is
 * written parses to the same text again. Input: a limits byte (bit 0: tight limits), then the text. */
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
    size_t n1, n2;
    char *t1 = write_tree(v, &n1);
    json_free(v);
    if (!t1) return 0; /* e.g. a number beyond double's range, which the writer refuses */
    json_value *again;
    FUZZ_ASSERT(json_parse(t1, n1, NULL, &again, NULL) == CNN_OK);
    char *t2 = write_tree(again, &n2);
    FUZZ_ASSERT(t2 && n1 == n2 && memcmp(t1, t2, n1) == 0);
    json_free(again);
    free(t1);
    free(t2);
    return 0;
}
