/* evaluate.h — accuracy metrics (top-1, top-5, confusion) and evaluation of a model over a data
 * set range in evaluation mode (running BN statistics, no dropout, no auxiliary heads). */
#ifndef CNN_TRAIN_EVALUATE_H
#define CNN_TRAIN_EVALUATE_H
#include "core/graph.h"
#include "data/source.h"

typedef struct eval_result {
    double loss;           /* mean cross-entropy of the main output */
    int64_t n, top1, top5;
    int64_t bad;           /* unreadable images skipped */
    int classes;
    int64_t *confusion;    /* classes×classes, row = true class, column = predicted; NULL unless asked */
} eval_result;

void eval_result_free(eval_result *r);

/* Count correct top-1/top-5 predictions in a batch of logits (n×k); confusion may be NULL. A
 * sample is top-k correct when fewer than k classes score strictly higher than the true one. */
void metrics_count(const float *logits, const int32_t *labels, int n, int k, int64_t *top1, int64_t *top5,
                   int64_t *confusion);

typedef struct evaluator evaluator;
/* Plans for full batches of `batch` and, on demand, one shorter remainder batch. */
cnn_status evaluator_create(graph *g, int batch, evaluator **out);
void evaluator_free(evaluator *e);
/* Data-parallel: the passes evaluate only this process's part of every batch (see loader_config's
 * shard); the caller adds the results over the processes. */
void evaluator_shard(evaluator *e, int shard, int shards);
/* One pass over every sample of src (or its shard), in order, made by `workers` loader threads (<= 0: 1). */
cnn_status evaluator_run(evaluator *e, const data_source *src, int workers, bool confusion, eval_result *r);
#endif
