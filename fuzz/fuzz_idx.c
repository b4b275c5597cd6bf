/* fuzz_idx.c — the IDX reader (MNIST, Fashion-MNIST), plain and gzip. Input: a flags byte, then the
 * images file, FUZZ_SEP, the labels file. Flags bit 0 / bit 1 gzip the images / labels here (so that
 * valid streams reach the header checks); the files may also be gzip themselves (seeds are). */
#include <zlib.h>
#include "data/dataset.h"
#include "fuzz.h"

static const char *const names[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};

/* gzip of src (level from the flags), malloc'd; NULL if zlib fails. */
static uint8_t *gzip(const uint8_t *src, size_t n, int level, size_t *out_n) {
    z_stream z = {0};
    if (deflateInit2(&z, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) return NULL;
    size_t cap = deflateBound(&z, n) + 32;
    uint8_t *out = malloc(cap);
    z.next_in = (Bytef *)src;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int r = out ? deflate(&z, Z_FINISH) : Z_MEM_ERROR;
    *out_n = z.total_out;
    deflateEnd(&z);
    if (r != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const uint8_t *part[2];
    size_t len[2];
    if (fuzz_split(data + 1, size - 1, part, len, 2) < 2) return 0;
    uint8_t *owned[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++)
        if (data[0] >> i & 1) {
            if (!(owned[i] = gzip(part[i], len[i], (data[0] >> 2) % 10, &len[i]))) goto done;
            part[i] = owned[i];
        }
    data_file img, lbl;
    if (data_file_open_memory(&img, "images", part[0], len[0]) == CNN_OK) {
        if (data_file_open_memory(&lbl, "labels", part[1], len[1]) == CNN_OK) {
            data_set ds;
            if (data_idx_decode(&img, &lbl, names, 10, &ds) == CNN_OK) {
                FUZZ_ASSERT(ds.n > 0 && ds.c == 1 && ds.h > 0 && ds.w > 0 && ds.class_names);
                for (int64_t i = 0; i < ds.n; i++) FUZZ_ASSERT(ds.labels[i] >= 0 && ds.labels[i] < 10);
                /* a plain images file holds exactly the header and the pixels */
                FUZZ_ASSERT(img.gz || (int64_t)len[0] == 16 + ds.n * ds.h * ds.w);
                data_free(&ds);
            } else {
                FUZZ_ASSERT(ds.pixels == NULL && ds.labels == NULL && ds.n == 0);
            }
            data_file_close(&lbl);
        }
        data_file_close(&img);
    }
done:
    free(owned[0]);
    free(owned[1]);
    return 0;
}
