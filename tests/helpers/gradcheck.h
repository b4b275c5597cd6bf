/* gradcheck.h — finite-difference check of a subgraph's gradients. The subgraph under test is
 * built on an input x (which requires a gradient); the scalar checked is L = Σ r·y with fixed
 * random r (a probe op defined in gradcheck.c), or the cross-entropy when the output is logits.
 * Analytic gradients of x and of every trainable parameter are compared with central
 * differences of L at a sample of coordinates.
 *
 * freeze_relus: in a network with batch norm and many ReLUs, some pre-activation lies within a
 * step eps of its kink for almost any coordinate perturbed, and the central difference straddles
 * the kink. Backpropagation differentiates the piecewise-linear function whose pieces the
 * unperturbed pass selected; with freeze_relus the perturbed passes evaluate that same function
 * (every ReLU applies the unperturbed pass's mask to its input), so the comparison is exact up to
 * rounding. A wrong ReLU backward still shows: its mask comes from its own output. The ReLUs then
 * run apart (not fused into the batch norm or add before them): fused ReLUs are checked without it. */
#ifndef CNN_GRADCHECK_H
#define CNN_GRADCHECK_H
#include <stdbool.h>
#include "core/graph.h"

typedef int (*gc_build)(graph *g, int x, void *ctx);

typedef struct gc_opts {
    int batch, c, h, w;
    float eps;             /* finite-difference step (default 1e-2) */
    double rtol, atol;     /* default 2e-2, 2e-3 */
    int samples;           /* coordinates checked per tensor (default 24) */
    bool distinct_inputs;  /* inputs a shuffled grid spaced 3·eps apart (max pooling, ReLU kinks) */
    bool xent;             /* output is logits: check softmax cross-entropy against labels */
    bool freeze_relus;     /* perturbed passes keep the ReLU decisions of the unperturbed one (below) */
    float smoothing;
    uint64_t seed;
} gc_opts;

/* Returns the number of failed comparisons (0: pass); prints a line per tensor. */
int gradcheck(const char *name, gc_build build, void *ctx, gc_opts o);

/* The probe alone, for tests with their own oracle: attaches L = Σ r·y as the loss of y (the main
 * output), so that backward starts from dL/dy = r; r in canonical nchw order is gc_probe_weights. */
int gc_attach_probe(graph *g, int y);
void gc_probe_weights(float *r, int64_t n);
#endif
