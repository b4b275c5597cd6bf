/* fuzz_safetensors.c — the safetensors reader (header JSON, dtypes, shapes, offsets, layout) and the
 * checkpoint metadata it carries ("cnn"), on a whole file as input. */
#include "fuzz.h"
#include "train/checkpoint.h"
#include "train/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    st_file f;
    if (st_read_buffer("fuzz.safetensors", buf, size, &f) != CNN_OK) return 0; /* buf is freed either way */
    size_t covered = 0;
    for (int i = 0; i < f.count; i++) {
        const st_tensor *t = &f.tensors[i];
        FUZZ_ASSERT(st_find(&f, t->name) == t);
        FUZZ_ASSERT((const uint8_t *)t->data >= f.buffer && t->offset + t->nbytes <= f.size);
        uint64_t elems = 1;
        for (int d = 0; d < t->ndim; d++) elems *= (uint64_t)t->shape[d];
        FUZZ_ASSERT(elems * st_dtype_size(t->dtype) == t->nbytes);
        covered += t->nbytes;
    }
    FUZZ_ASSERT(covered <= f.size);
    const char *meta = st_meta(&f, "cnn");
    ckpt_info info;
    if (meta && ckpt_parse_meta("fuzz.safetensors", meta, strlen(meta), &info) == CNN_OK) ckpt_info_free(&info);
    st_free(&f);
    return 0;
}
