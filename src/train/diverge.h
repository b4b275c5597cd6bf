/* diverge.h — saying where training diverged. A step whose loss or gradients are not finite runs
 * once more with a hook on every op, to name the first op whose output (forward) or gradient
 * (backward) is not finite, or the parameter that already is: only after the fact, so that normal
 * steps pay nothing for it. */
#ifndef CNN_TRAIN_DIVERGE_H
#define CNN_TRAIN_DIVERGE_H
#include "core/plan.h"

/* No NaN nor infinity among a[0..n). */
bool diverge_finite(const float *a, size_t n);
/* The first float parameter of g (trained ones, and with `buffers` running statistics too) holding
 * a NaN or infinity, or -1. */
int diverge_bad_param(const graph *g, bool buffers);
/* "nan", "inf" or "-inf" (printf's %g may write "-nan"), else %g. */
const char *diverge_number(double v, char buf[32]);
/* After plan_forward(p, true, key) gave a non-finite loss (grads false), or plan_backward then gave
 * non-finite gradients (grads true): finds where, and returns CNN_ERR_DIVERGED with the message
 * "<what> at step <step>: training diverged: <where>; try a smaller --lr". The plan's activations
 * and batch-norm statistics are spent: training does not go on from this state. */
cnn_status diverge_report(plan *p, uint64_t key, bool grads, int64_t step, const char *what);
#endif
