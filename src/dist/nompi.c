/* nompi.c — dist.h without MPI (built with -DCNN_MPI=OFF): one process of rank 0, where a sum
 * over the ranks is the value itself and nothing waits. */
#include <stdio.h>
#include <stdlib.h>
#include "dist/dist.h"

void dist_init(int *argc, char ***argv) {
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    if (n && atoi(n) > 1)
        fprintf(stderr, "cnn: started by mpirun as one of %s processes, but this cnn was built without MPI "
                        "(cmake -DCNN_MPI=OFF): each process trains alone\n", n);
}
void dist_finalize(int exit_status) {}
bool dist_active(void) { return false; }
bool dist_failure_told(void) { return false; }
int dist_rank(void) { return 0; }
int dist_size(void) { return 1; }
void dist_sum(double *v, int n) {}
void dist_broadcast(void *buf, size_t bytes) {}
cnn_status dist_agree(cnn_status st) { return st; }
int dist_sum_start(float *v, size_t n) { return -1; }
void dist_wait(int handle) {}
void dist_poll(void) {}
void dist_replica_sum(double *v, int n, void *ctx) {}
