/* fuzz_cifar.c — the CIFAR-10/100 binary reader and the class-names text file. Input: a flags byte
 * (bit 0: CIFAR-100; bits 1-3: 1 to 5 batch files; bit 4: a class-names file follows), then the
 * files separated by FUZZ_SEP. */
#include "data/dataset.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int variant = data[0] & 1 ? 100 : 10, nfiles = (data[0] >> 1 & 7) % 5 + 1, with_names = data[0] >> 4 & 1;
    const uint8_t *part[6];
    size_t len[6];
    size_t n = fuzz_split(data + 1, size - 1, part, len, (size_t)(nfiles + with_names));
    if ((int)n < nfiles + with_names) return 0;
    data_file files[5];
    int opened = 0;
    while (opened < nfiles && data_file_open_memory(&files[opened], "batch", part[opened], len[opened]) == CNN_OK)
        opened++;
    data_set ds;
    if (opened == nfiles && data_cifar_decode(files, nfiles, variant, &ds) == CNN_OK) {
        int64_t records = 0;
        int plain = 1;
        for (int i = 0; i < nfiles; i++) {
            plain &= !files[i].gz;
            records += (int64_t)len[i] / ((variant == 100 ? 2 : 1) + 3072);
        }
        FUZZ_ASSERT(ds.n > 0 && ds.c == 3 && ds.h == 32 && ds.w == 32 && ds.num_classes == variant);
        FUZZ_ASSERT(!plain || records == ds.n);
        for (int64_t i = 0; i < ds.n; i++) FUZZ_ASSERT(ds.labels[i] >= 0 && ds.labels[i] < variant);
        if (with_names && data_parse_class_names(&ds, "names", (const char *)part[nfiles], len[nfiles]) == CNN_OK)
            for (int i = 0; i < ds.num_classes; i++) FUZZ_ASSERT(ds.class_names[i] && ds.class_names[i][0]);
        data_free(&ds);
    }
    for (int i = 0; i < opened; i++) data_file_close(&files[i]);
    if (with_names) { /* the names parser on its own too, whatever the batches were */
        data_set names = {.num_classes = variant};
        data_parse_class_names(&names, "names", (const char *)part[nfiles], len[nfiles]);
        data_free(&names);
    }
    return 0;
}
