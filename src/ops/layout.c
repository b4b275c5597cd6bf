/* layout.c — channel copies between blocked tensors (concat, slice and their gradients). */
#include "ops/layout.h"
#include <string.h>

void blk_copy_channels(float *dst, blk d, int dc0, const float *src, blk s, int sc0, int nc, bool accumulate) {
    /* whole aligned blocks move as contiguous runs of s*b floats */
    bool aligned = d.b == s.b && dc0 % d.b == 0 && sc0 % s.b == 0 && (nc % d.b == 0 || sc0 + nc == s.c);
    if (aligned && !accumulate) {
        int nblocks = (nc + d.b - 1) / d.b;
#pragma omp parallel for collapse(2) schedule(static)
        for (int n = 0; n < d.n; n++)
            for (int cb = 0; cb < nblocks; cb++)
                memcpy(dst + blk_at(d, n, dc0 + cb * d.b, 0), src + blk_at(s, n, sc0 + cb * s.b, 0),
                       sizeof(float) * (size_t)d.s * d.b);
        /* a partial last block copied whole carries src's zero padding into channels past nc */
        return;
    }
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < d.n; n++)
        for (int c = 0; c < nc; c++) {
            float *o = dst + blk_at(d, n, dc0 + c, 0);
            const float *i = src + blk_at(s, n, sc0 + c, 0);
            if (accumulate)
                for (int k = 0; k < d.s; k++) o[(size_t)k * d.b] += i[(size_t)k * s.b];
            else
                for (int k = 0; k < d.s; k++) o[(size_t)k * d.b] = i[(size_t)k * s.b];
        }
}

void blk_zero_channels(float *dst, blk d, int c0, int c1) {
    if (c1 > d.cp) c1 = d.cp;
    if (c0 >= c1) return;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < d.n; n++)
        for (int c = c0; c < c1; c++) {
            float *o = dst + blk_at(d, n, c, 0);
            for (int k = 0; k < d.s; k++) o[(size_t)k * d.b] = 0;
        }
}
