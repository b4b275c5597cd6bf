/* loader.h — batches from a data source: epoch permutation, samples made by a pool of worker
 * threads into a bounded ring of batches ahead of the consumer, unreadable samples reported and
 * skipped. Batch k of epoch e is a pure function of (seed, e, k, config, the files), whatever the
 * number of workers or their timing: sample i at position p is made with the stream
 * rng_key(seed, RNG_AUGMENT, e, p). */
#ifndef CNN_DATA_LOADER_H
#define CNN_DATA_LOADER_H
#include <stdbool.h>
#include <stdint.h>
#include "cnn.h"
#include "data/source.h"

/* A pass (an epoch, an evaluation) fails with CNN_ERR_FORMAT once more than half of the samples
   it has met are unreadable, judged from LOADER_BAD_MIN samples on and at the end of the pass:
   one bad file among many is skipped, a folder of mostly bad files stops the run. */
#define LOADER_BAD_MIN 32
/* With fill_bad, an unreadable sample is replaced by the first readable one among the next
   LOADER_FILL_SCAN positions of the epoch's order (wrapping around). */
#define LOADER_FILL_SCAN 256

typedef struct loader_config {
    const data_source *src;     /* borrowed: must outlive the loader */
    int batch;
    int shuffle;                /* a new permutation every epoch, from rng_key(seed, RNG_SHUFFLE, epoch, 0) */
    int drop_last;              /* drop the last incomplete batch (training); else a short last batch */
    int fill_bad;               /* training: batches stay full, a bad sample's place taken by the next
                                   readable one (made with the bad one's stream); else batches shrink */
    int workers;                /* threads making samples (<= 0: 1) */
    /* Data-parallel: this process's part of every batch. With shards = K > 1, batch k is positions
       [k·K·batch, (k+1)·K·batch) of the epoch's order, of which this loader makes the `batch` from
       (k·K + shard)·batch on (without drop_last, the last one may be shorter, or missing for some
       shards); the K loaders together see what one loader of batch K·batch sees. 0 or 1: all. */
    int shard, shards;
    uint64_t seed;
    /* Called (from a worker) the first time a sample fails, with the message naming it; NULL:
       "cnn: skipping <message>" on stderr. */
    void (*report)(void *ctx, const char *message);
    void *report_ctx;
} loader_config;

typedef struct data_loader data_loader;

/* Copies cfg; starts the workers, idle until loader_start_epoch. */
cnn_status loader_create(const loader_config *cfg, data_loader **out);
/* Positions the loader at batch `first_batch` of `epoch` and starts making batches. May be called
   at any time, also with the previous epoch half consumed. */
void loader_start_epoch(data_loader *l, int epoch, int64_t first_batch);
int64_t loader_batches_per_epoch(const data_loader *l);
/* Copies the next batch into images (float NCHW, up to batch*c*h*w) and labels; *n gets the number
   of images (0 at the end of the epoch, or before any loader_start_epoch). Blocks while the
   workers are behind. Fails when a batch cannot be made (see LOADER_BAD_MIN, LOADER_FILL_SCAN).
   One consumer thread at a time. */
cnn_status loader_next(data_loader *l, float *images, int32_t *labels, int *n);
/* Unreadable samples among those handed out (or skipped) since loader_start_epoch. */
int64_t loader_bad_count(const data_loader *l);
/* Stops the workers (also mid-epoch) and frees everything; NULL is allowed. */
void loader_destroy(data_loader *l);
/* Loader threads when --workers is not given: 1 for in-memory sets, the cores (at most 8) for files. */
int data_default_workers(bool files);

#endif
