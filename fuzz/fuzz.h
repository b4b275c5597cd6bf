/* fuzz.h — what the fuzz targets share: the libFuzzer entry point, splitting one input into the
 * several files (or arguments) a parser takes, and the trap for a broken invariant. */
#ifndef CNN_FUZZ_H
#define CNN_FUZZ_H
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Inputs holding several files separate them with this line (seeds in tests/fuzz/ do too). */
#define FUZZ_SEP "\n--8<--\n"
#define FUZZ_SEP_LEN 7

/* Splits data at FUZZ_SEP into at most max parts (the last one takes the rest); returns the count. */
static inline size_t fuzz_split(const uint8_t *data, size_t size, const uint8_t **part, size_t *len, size_t max) {
    size_t n = 0;
    while (n + 1 < max) {
        const uint8_t *sep = size >= FUZZ_SEP_LEN ? memmem(data, size, FUZZ_SEP, FUZZ_SEP_LEN) : NULL;
        if (!sep) break;
        part[n] = data;
        len[n++] = (size_t)(sep - data);
        size -= (size_t)(sep - data) + FUZZ_SEP_LEN;
        data = sep + FUZZ_SEP_LEN;
    }
    part[n] = data;
    len[n++] = size;
    return n;
}

/* A property the code under test promises did not hold: crash so that the fuzzer keeps the input. */
#define FUZZ_ASSERT(cond)          \
    do {                           \
        if (!(cond)) __builtin_trap(); \
    } while (0)

#endif
