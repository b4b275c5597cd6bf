/* schedule.h — learning-rate schedules as PyTorch's: constant, step, multistep, exponential,
 * cosine annealing (with optional linear warm-up) and one-cycle; each a pure function of the
 * position in training, so resuming needs no scheduler state. ReduceLROnPlateau ("plateau")
 * depends on the metrics: its state machine is in monitor.h and the trainer applies it. */
#ifndef CNN_TRAIN_SCHEDULE_H
#define CNN_TRAIN_SCHEDULE_H
#include "cnn.h"

typedef enum sched_kind {
    SCHED_CONSTANT, SCHED_STEP, SCHED_MULTISTEP, SCHED_EXP, SCHED_COSINE, SCHED_ONECYCLE, SCHED_PLATEAU
} sched_kind;
#define SCHED_CHOICES "constant|step|multistep|exp|cosine|onecycle|plateau"

#define SCHED_MAX_MILESTONES 16

typedef struct sched_cfg {
    sched_kind kind;
    float gamma;              /* step, multistep, exp: factor (default 0.1) */
    int step_size;            /* step: epochs between decays (default 30) */
    int milestones[SCHED_MAX_MILESTONES];
    int nmilestones;
    float min_lr;             /* cosine: eta_min; plateau: the lowest lr */
    float warmup_epochs;      /* cosine: linear warm-up (per step) over this many epochs */
    float pct_start;          /* one-cycle: fraction of steps rising (default 0.3) */
    float div_factor;         /* one-cycle: initial lr = lr / div_factor (25) */
    float final_div_factor;   /* one-cycle: final lr = initial / final_div_factor (1e4) */
} sched_cfg;

void sched_defaults(sched_cfg *s);
const char *sched_name(sched_kind k);
cnn_status sched_parse_kind(const char *name, sched_kind *k);
/* "100,150" → milestones */
cnn_status sched_parse_milestones(const char *text, sched_cfg *s);
/* Settings that make no schedule (milestones past the end, warm-up as long as training, ...). */
cnn_status sched_check(const sched_cfg *s, int epochs);
/* The learning rate for step `step` (0-based) of epoch `epoch` (0-based), given the base lr, the
 * number of epochs and steps per epoch. Epoch-wise schedules (step, multistep, exp, cosine) change
 * at epoch boundaries, as PyTorch's scheduler.step() once per epoch; warm-up and one-cycle change
 * every step (scheduler.step() per batch). Plateau returns base_lr: its lr is the monitor's.
 *   warm-up: over the first N = round(warmup·steps_per_epoch) steps, lr = base·(i+1)/N at global
 *     step i (torch's LinearLR(start_factor=1/N, total_iters=N−1) stepped per batch); then
 *     CosineAnnealingLR(T_max = epochs − W) stepped per epoch from epoch W = ceil(warmup), the lr
 *     staying at base between the end of the warm-up and epoch W. */
float sched_lr(const sched_cfg *s, float base_lr, int epoch, int step, int epochs, int steps_per_epoch);
#endif
