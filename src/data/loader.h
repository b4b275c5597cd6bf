/* loader.h — batches from an in-memory data set: epoch permutation, random crop and flip,
 * normalization to float NCHW, prefetched by one background thread into a small ring.
 * Batch k of epoch e is a pure function of (seed, e, k, config), whatever the thread timing. */
#ifndef CNN_DATA_LOADER_H
#define CNN_DATA_LOADER_H
#include <stdint.h>
#include "cnn.h"
#include "data/dataset.h"

typedef struct loader_config {
    const data_set *ds;         /* borrowed: must outlive the loader */
    int64_t first, count;       /* the images this loader serves: [first, first+count) of ds */
    int batch;
    int shuffle;                /* a new permutation every epoch, from rng_key(seed, RNG_SHUFFLE, epoch, 0) */
    int drop_last;              /* drop the last incomplete batch (training); else a short last batch */
    int crop_pad;               /* random crop after zero-padding by this many pixels (0: none) */
    int flip;                   /* random horizontal flip with probability 0.5 */
    const float *mean, *std;    /* per channel, [0,1] scale: out = (pixel/255 - mean) / std; NULL: 0 and 1 */
    uint64_t seed;
} loader_config;

typedef struct data_loader data_loader;

/* Copies what it needs from cfg (mean and std included); starts the prefetch thread, idle
   until loader_start_epoch. */
cnn_status loader_create(const loader_config *cfg, data_loader **out);
/* Positions the loader at batch `first_batch` of `epoch` and starts prefetching. May be called
   at any time, also with the previous epoch half consumed. */
void loader_start_epoch(data_loader *l, int epoch, int64_t first_batch);
int64_t loader_batches_per_epoch(const data_loader *l);
/* Copies the next batch into images (float, NCHW, batch*c*h*w) and labels; returns the
   number of images in it (0 at the end of the epoch, or before any loader_start_epoch).
   Blocks only if the prefetch is behind. One consumer thread at a time. */
int loader_next(data_loader *l, float *images, int32_t *labels);
/* Stops the thread (also mid-epoch) and frees everything; NULL is allowed. */
void loader_destroy(data_loader *l);

#endif
