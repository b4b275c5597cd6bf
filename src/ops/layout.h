/* layout.h — index arithmetic for the blocked activation layout (nChw{B}c) used by the ops
 * written in C: element (n, c, s) of a tensor with C channels, S = h*w spatial positions. */
#ifndef CNN_OPS_LAYOUT_H
#define CNN_OPS_LAYOUT_H
#include <stddef.h>
#include "core/plan.h"

typedef struct blk {
    int n, c, s, b;      /* batch, channels, spatial size, block */
    int cp;              /* channels rounded up to the block */
} blk;

static inline blk blk_of(const plan *p, int tid) {
    const tensor *t = graph_tensor(plan_graph(p), tid);
    blk k;
    k.n = plan_batch(p);
    k.c = t->c;
    k.s = t->h * t->w;
    k.b = t->layout == LAYOUT_BLOCKED ? be_block() : 1;
    k.cp = (k.c + k.b - 1) / k.b * k.b;
    return k;
}

/* Kernels written per channel block take the block width b as an argument; BLK_DISPATCH(B, call) expands
 * to call(16) or call(8), a literal, when B is AVX-512's or AVX2's block, so that the compiler emits whole
 * vectors, and to call(B) otherwise. `call` is a macro of one argument the caller defines around it. */
#define BLK_DISPATCH(B, call)                                                                           \
    do {                                                                                                \
        if ((B) == 16) call(16);                                                                        \
        else if ((B) == 8) call(8);                                                                     \
        else call(B);                                                                                   \
    } while (0)

/* floats in the physical buffer, padding included */
static inline size_t blk_size(blk k) { return (size_t)k.n * k.cp * k.s; }

static inline size_t blk_at(blk k, int n, int c, int s) {
    return (((size_t)n * (k.cp / k.b) + c / k.b) * k.s + s) * k.b + c % k.b;
}

/* Copy channels [sc0, sc0+nc) of src into [dc0, dc0+nc) of dst (same n, s and block: concat and slice
 * make their inputs blocked);
 * accumulate adds instead of overwriting. */
void blk_copy_channels(float *dst, blk d, int dc0, const float *src, blk s, int sc0, int nc, bool accumulate);
/* Zero channels [c0, c1) of every sample (c1 may run into the padding). */
void blk_zero_channels(float *dst, blk d, int c0, int c1);
#endif
