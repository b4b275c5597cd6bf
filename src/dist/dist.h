/* dist.h — data-parallel training across processes: the processes (ranks) of an mpirun job, the
 * collective operations training needs, and gradient buckets all-reduced during backward. MPI
 * lives in mpi.c alone; without it (-DCNN_MPI=OFF, or not launched by mpirun) nompi.c makes one
 * process of rank 0, where every collective is the identity. */
#ifndef CNN_DIST_DIST_H
#define CNN_DIST_DIST_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/plan.h"

/* Joins the job when the process was started by mpirun (OpenMPI's or a PMI launcher's variables
 * are set); otherwise, and without MPI, one process. Call once, before any other dist call. */
void dist_init(int *argc, char ***argv);
/* Leaves the job: normally when exit_status is 0 or every rank knows of the failure (see
 * dist_agree); otherwise ends every rank with that status (MPI_Abort), since the others may be
 * waiting in a collective that will never complete. */
void dist_finalize(int exit_status);
bool dist_active(void);               /* dist_init joined an mpirun job (of any size) */
int dist_rank(void);
int dist_size(void);

/* Collectives. A failing MPI call (a dead peer, a broken link) cannot be recovered from: it
 * prints what failed on which rank and ends every rank; these calls therefore return nothing. */
void dist_sum(double *v, int n);                      /* in place, over all ranks */
void dist_broadcast(void *buf, size_t bytes);         /* rank 0's bytes to every rank */
/* Every rank learns whether any rank failed: returns st when this rank failed, else CNN_OK when
 * none did, else CNN_ERR_INTERNAL with a message naming a failed rank (which printed why). After
 * a failure agreed on this way every rank may return normally. */
cnn_status dist_agree(cnn_status st);
/* After a failed dist_agree: rank 0 reports it (it failed too, and other ranks' messages would
 * repeat its own) or this rank has nothing of its own to report. Always false on rank 0. */
bool dist_failure_told(void);
/* Non-blocking in-place sum of floats; dist_wait completes it. Handles are small integers. */
int dist_sum_start(float *v, size_t n);
void dist_wait(int handle);
/* Lets outstanding operations progress (MPI moves data only inside MPI calls). */
void dist_poll(void);

/* Gradient buckets: the trainable parameters' gradients (contiguous in the graph's arena) cut
 * into buckets of about bucket_bytes, in reverse order of the layers; during plan_backward (a hook
 * on the plan) a bucket's all-reduce starts as soon as the backward of every node using its
 * parameters has run. dist_grads_finish waits for all of them and divides by the number of
 * ranks: every rank then holds the mean gradient of the global batch. */
typedef struct dist_grads dist_grads;
cnn_status dist_grads_create(plan *p, size_t bucket_bytes, bool overlap, dist_grads **out);
void dist_grads_finish(dist_grads *d);
void dist_grads_free(dist_grads *d);
/* Measured: bytes all-reduced per step, buckets, and since creation the seconds spent in
 * dist_grads_finish (waiting for the all-reduces, and for the slowest rank) over `steps` steps. */
typedef struct dist_stats {
    size_t bytes;
    int buckets;
    double wait_s;
    int64_t steps;
} dist_stats;
dist_stats dist_grads_stats(const dist_grads *d);

/* For graph.replica_sum (synchronized batch norm): sums over the ranks, ctx unused. */
void dist_replica_sum(double *v, int n, void *ctx);
#endif
