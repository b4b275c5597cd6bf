/* sanity.h — the course's checklist before a long training (seed 004, question 11): is the
 * initial loss what a uniform guess gives (ln C)? can the model overfit a small sample? which
 * learning rate makes the loss fall (an LR range test)? Each check gives numbers and a verdict. */
#ifndef CNN_TRAIN_SANITY_H
#define CNN_TRAIN_SANITY_H
#include "train/session.h"

typedef struct sanity_cfg {
    int sample;               /* images to overfit (64) */
    int overfit_steps;        /* most steps to get them all right (300) */
    int range_steps;          /* steps of the LR range test (100) */
    double range_start, range_end;   /* its lr from, to (1e-7, 10) */
} sanity_cfg;

void sanity_defaults(sanity_cfg *c);

/* The initial loss: mean cross-entropy of the freshly initialized model over up to 4 training
 * batches (training mode, no update). With logits of spread σ across classes the expected loss
 * is about ln C + σ²/2: within `tolerance` of ln C means σ is below about 0.7 (nearly uniform
 * predictions, as a good initialization gives). */
typedef struct sanity_initial {
    int classes;
    double loss, expected, tolerance;
    double logit_std;         /* mean over images of the std of the logits across classes */
    bool pass;
} sanity_initial;
cnn_status sanity_initial_loss(session *s, sanity_initial *r);

/* Overfitting `sample` training images (no augmentation, constant lr, the configured optimizer):
 * passes until one pass gets every image right, or the step budget runs out. */
typedef struct sanity_overfit {
    int sample, batch, steps;
    double loss, top1;        /* of the last pass (training mode) */
    bool pass;
} sanity_overfit;
cnn_status sanity_overfit_sample(session *s, const sanity_cfg *c, sanity_overfit *r);

/* The LR range test (Smith 2017; fastai's lr_find): from a fresh model, one step at each lr of a
 * geometric sweep from range_start to range_end, recording the loss and its smoothed value (an
 * exponential moving average with β = 0.9, bias-corrected); it stops early when the smoothed loss
 * exceeds 4× its minimum (divergence). Suggested lr: a tenth of the lr where the smoothed loss is
 * lowest (past that point it blows up; a tenth is back on the steadily falling part). Also given:
 * the lr of the steepest fall of the smoothed loss. Passes when the smoothed loss fell by at
 * least 10% somewhere. */
typedef struct sanity_range {
    int n;                    /* steps taken */
    double *lr, *loss, *smoothed;
    double lr_at_min, steepest, suggested;
    double start_loss, min_loss;
    bool diverged, pass;
} sanity_range;
cnn_status sanity_lr_range(session *s, const sanity_cfg *c, sanity_range *r);
void sanity_range_free(sanity_range *r);
#endif
