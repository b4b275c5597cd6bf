/* mpi.c — dist.h's processes and collectives on MPI (built with -DCNN_MPI=ON). MPI calls return
 * their errors (MPI_ERRORS_RETURN) so that a failure is reported with what failed on which rank;
 * then every rank is ended (MPI_Abort): the others wait in collectives that can never complete. */
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include "core/error.h"
#include "dist/dist.h"

static struct {
    bool active, agreed, told;
    int rank, size;
    MPI_Comm comm;
    MPI_Request *req;
    int nreq, cap, open;   /* requests of this round (handles are indices), of which `open` not waited */
} d = {.size = 1};

static void check(int rc, const char *what) {
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    fprintf(stderr, "cnn: rank %d of %d: %s failed: %s; ending every rank (the run directory keeps its last "
                    "checkpoint)\n", d.rank, d.size, what, msg);
    fflush(stderr);
    /* the other ranks wait in collectives this rank will never join: only ending the job frees them */
    MPI_Abort(d.comm, 1);
}

void dist_init(int *argc, char ***argv) {
    if (d.active || (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMI_SIZE") && !getenv("PMIX_RANK"))) return;
    int provided;
    /* only the main thread calls MPI; the loader's and OpenMP's threads never do */
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "cnn: MPI_Init failed: continuing as a single process\n");
        return;
    }
    d.comm = MPI_COMM_WORLD;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    check(MPI_Comm_dup(MPI_COMM_WORLD, &d.comm), "MPI_Comm_dup");
    MPI_Comm_set_errhandler(d.comm, MPI_ERRORS_RETURN);
    check(MPI_Comm_rank(d.comm, &d.rank), "MPI_Comm_rank");
    check(MPI_Comm_size(d.comm, &d.size), "MPI_Comm_size");
    d.active = true;
}

void dist_finalize(int exit_status) {
    if (!d.active) return;
    if (exit_status && !d.agreed && d.size > 1) {
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(d.comm, exit_status); /* the others may wait for this rank forever */
    }
    free(d.req);
    MPI_Comm_free(&d.comm);
    MPI_Finalize();
    d.active = false;
}

bool dist_active(void) { return d.active; }
bool dist_failure_told(void) { return d.told; }
int dist_rank(void) { return d.rank; }
int dist_size(void) { return d.size; }

void dist_sum(double *v, int n) {
    if (d.size > 1) check(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, d.comm), "MPI_Allreduce");
}

void dist_broadcast(void *buf, size_t bytes) {
    for (size_t off = 0; d.size > 1 && off < bytes; off += INT_MAX / 2) {
        size_t n = bytes - off < INT_MAX / 2 ? bytes - off : INT_MAX / 2;
        check(MPI_Bcast((char *)buf + off, (int)n, MPI_BYTE, 0, d.comm), "MPI_Bcast");
    }
}

cnn_status dist_agree(cnn_status st) {
    if (d.size <= 1) return st;
    /* min: whether all went well, the first rank that failed, whether rank 0 did not */
    int v[3] = {st == CNN_OK, st == CNN_OK ? d.size : d.rank, d.rank != 0 || st == CNN_OK};
    check(MPI_Allreduce(MPI_IN_PLACE, v, 3, MPI_INT, MPI_MIN, d.comm), "MPI_Allreduce");
    if (v[0]) return CNN_OK;
    d.agreed = true;
    d.told = d.rank != 0 && (st == CNN_OK || !v[2]);
    if (st) return st;
    return cnn_fail(CNN_ERR_INTERNAL, "rank %d of %d failed (its message says why)", v[1], d.size);
}

int dist_sum_start(float *v, size_t n) {
    if (d.size <= 1) return -1;
    if (n > INT_MAX) check(MPI_ERR_COUNT, "MPI_Iallreduce of more than 2^31 floats");
    if (d.nreq == d.cap) { /* grows during the first step only: later rounds reuse it */
        int cap = d.cap ? 2 * d.cap : 64;
        MPI_Request *r = realloc(d.req, sizeof *r * cap);
        if (!r) check(MPI_ERR_NO_MEM, "allocating MPI requests");
        d.req = r;
        d.cap = cap;
    }
    check(MPI_Iallreduce(MPI_IN_PLACE, v, (int)n, MPI_FLOAT, MPI_SUM, d.comm, &d.req[d.nreq]), "MPI_Iallreduce");
    d.open++;
    return d.nreq++;
}

void dist_wait(int handle) {
    if (handle < 0 || handle >= d.nreq) return;
    check(MPI_Wait(&d.req[handle], MPI_STATUS_IGNORE), "MPI_Wait (all-reduce of gradients)");
    if (--d.open == 0) d.nreq = 0;
}

void dist_poll(void) {
    int done;
    if (d.open > 0) check(MPI_Testall(d.nreq, d.req, &done, MPI_STATUSES_IGNORE), "MPI_Testall");
}

void dist_replica_sum(double *v, int n, void *ctx) { dist_sum(v, n); }
