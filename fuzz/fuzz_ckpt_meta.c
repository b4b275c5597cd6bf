/* fuzz_ckpt_meta.c — the "cnn" metadata of checkpoints (model, input shape, classes, class names,
 * normalization); what parses must build its model when the shape is small (larger ones only cost
 * time: model_build checks them the same way). Input: the metadata JSON text. */
#include "fuzz.h"
#include "models/models.h"
#include "train/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ckpt_info info;
    if (ckpt_parse_meta("fuzz", (const char *)data, size, &info) != CNN_OK) {
        FUZZ_ASSERT(info.meta == NULL && info.class_names == NULL);
        return 0;
    }
    FUZZ_ASSERT(info.model.in_c >= 1 && info.model.in_h >= 1 && info.model.in_w >= 1);
    FUZZ_ASSERT(info.channels >= 0 && info.channels <= CKPT_MAX_CHANNELS);
    if ((int64_t)info.model.in_c * info.model.in_h * info.model.in_w <= 4 * 40 * 40 && info.model.classes <= 100) {
        graph *g;
        if (model_build(&info.model, &g) == CNN_OK) graph_free(g);
    }
    ckpt_info_free(&info);
    return 0;
}
