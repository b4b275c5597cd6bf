/* silu.h — SiLU's kernels (silu.c), for the op and its test: y = z·σ(z) over n floats (streaming stores
 * where the output is large, ops/stream.h), and dz (+)= dy·σ(z)·(1 + z·(1 − σ(z))). */
#ifndef CNN_OPS_SILU_H
#define CNN_OPS_SILU_H
#include <stdbool.h>
#include <stddef.h>

void silu_forward_kernel(float *y, const float *z, size_t n);
void silu_backward_kernel(float *dz, bool accumulate, const float *z, const float *dy, size_t n);
#endif
