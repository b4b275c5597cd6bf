/* layout.c — channel copies between blocked tensors (concat, slice and their gradients). */
#include "ops/layout.h"
#include <string.h>

void blk_copy_channels(float *dst, blk d, int dc0, const float *src, blk s, int sc0, int nc, bool accumulate) {
    /* whole aligned blocks move as contiguous runs of s*b floats */
    bool aligned = dc0 % d.b == 0 && sc0 % s.b == 0 && (nc % d.b == 0 || sc0 + nc == s.c);
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
    /* per destination block, at most two runs of channels contiguous on both sides (split where the
     * source crosses a block boundary), at every position: each cache line read and written once,
     * where a channel at a time would read every line b times */
    const int b = d.b, first = dc0 / b, last = (dc0 + nc - 1) / b;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < d.n; n++)
        for (int db = first; db <= last; db++) {
            const int hi = (db + 1) * b < dc0 + nc ? (db + 1) * b : dc0 + nc;
            for (int lo = db * b > dc0 ? db * b : dc0; lo < hi;) {
                const int sc = sc0 + lo - dc0, len = hi - lo < b - sc % b ? hi - lo : b - sc % b;
                float *o = dst + blk_at(d, n, lo, 0);
                const float *i = src + blk_at(s, n, sc, 0);
                for (int k = 0; k < d.s; k++, o += b, i += b)
                    if (accumulate)
                        for (int j = 0; j < len; j++) o[j] += i[j];
                    else
                        for (int j = 0; j < len; j++) o[j] = i[j];
                lo += len;
            }
        }
}

void blk_zero_channels(float *dst, blk d, int c0, int c1) {
    if (c1 > d.cp) c1 = d.cp;
    if (c0 >= c1) return;
    /* per block, the run of its channels in [c0, c1) at every position (as blk_copy_channels) */
    const int b = d.b, first = c0 / b, last = (c1 - 1) / b;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < d.n; n++)
        for (int cb = first; cb <= last; cb++) {
            const int lo = cb * b > c0 ? cb * b : c0, hi = (cb + 1) * b < c1 ? (cb + 1) * b : c1;
            float *o = dst + blk_at(d, n, lo, 0);
            for (int k = 0; k < d.s; k++, o += b)
                for (int j = 0; j < hi - lo; j++) o[j] = 0;
        }
}
