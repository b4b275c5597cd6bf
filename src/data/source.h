/* source.h — what a loader draws samples from: a numbered set of labelled samples, each made on
 * demand (decoded, augmented, normalized to float CHW) from its index and a random stream. An
 * in-memory data set is one kind of source (here), a folder of image files another (folder.h). */
#ifndef CNN_DATA_SOURCE_H
#define CNN_DATA_SOURCE_H
#include <stdint.h>
#include "cnn.h"
#include "data/dataset.h"

typedef struct data_source data_source;

struct data_source {
    int64_t count;               /* may be lowered after creation: the first `count` samples only */
    int c, h, w;                 /* one sample: c x h x w floats */
    const int32_t *labels;       /* count labels in [0, num_classes) */
    int num_classes;
    char *const *class_names;    /* num_classes names (borrowed from the data set) */
    /* Writes sample i (c*h*w floats) drawn with random stream `key`, using ws, the calling
       thread's workspace (from ws_new). A sample that cannot be made (an unreadable file)
       returns an error whose message names it. Must be safe to call from several threads. */
    cnn_status (*load)(const data_source *s, int64_t i, uint64_t key, void *ws, float *out);
    void *(*ws_new)(const data_source *s);   /* NULL: no workspace; returning NULL is out of memory */
    void (*ws_free)(void *ws);
    void (*destroy)(data_source *s);
    /* Sources whose samples may fail: per sample, set (atomically) once a failure was reported, so
       that a bad file is reported once however many epochs meet it. NULL for sources that cannot fail. */
    unsigned char *reported;
};

void source_free(data_source *s); /* NULL is fine */

/* ToTensor then Normalize as one table: lut[ch * 256 + v] = (v / 255 - mean[ch]) / std[ch], the
   same float operations as torchvision; NULL mean/std: 0 and 1. */
void data_normalize_lut(int channels, const float *mean, const float *std, float *lut);

/* Images [first, first + count) of an in-memory set (borrowed: must outlive the source), with
   torchvision's RandomCrop(size, padding=crop_pad) and RandomHorizontalFlip when asked, then
   Normalize(mean, std) (NULL: none). */
cnn_status memory_source_create(const data_set *ds, int64_t first, int64_t count, int crop_pad, int flip,
                                const float *mean, const float *std, data_source **out);
#endif
