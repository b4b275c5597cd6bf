/* schedule.c — the learning-rate schedules (formulas of torch.optim.lr_scheduler, 1.13). */
#include "train/schedule.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"

void sched_defaults(sched_cfg *s) {
    memset(s, 0, sizeof *s);
    s->kind = SCHED_CONSTANT;
    s->gamma = 0.1f;
    s->step_size = 30;
    s->pct_start = 0.3f;
    s->div_factor = 25.0f;
    s->final_div_factor = 1e4f;
}

static const char *const names[] = {"constant", "step", "multistep", "exp", "cosine", "onecycle", "plateau"};

const char *sched_name(sched_kind k) { return names[k]; }

cnn_status sched_parse_kind(const char *name, sched_kind *k) {
    for (int i = 0; i <= SCHED_PLATEAU; i++)
        if (!strcmp(name, names[i])) {
            *k = (sched_kind)i;
            return CNN_OK;
        }
    return cnn_fail(CNN_ERR_ARG, "--schedule %s: expected one of " SCHED_CHOICES, name);
}

cnn_status sched_parse_milestones(const char *text, sched_cfg *s) {
    s->nmilestones = 0;
    const char *p = text;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v <= 0 || v > 1000000 || (*end && *end != ',') || s->nmilestones == SCHED_MAX_MILESTONES ||
            (s->nmilestones && v <= s->milestones[s->nmilestones - 1]))
            return cnn_fail(CNN_ERR_ARG, "--milestones %s: expected increasing positive epochs separated by commas "
                                         "(at most %d)", text, SCHED_MAX_MILESTONES);
        s->milestones[s->nmilestones++] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (!s->nmilestones) return cnn_fail(CNN_ERR_ARG, "--milestones: empty list");
    return CNN_OK;
}

cnn_status sched_check(const sched_cfg *s, int epochs) {
    if (s->kind == SCHED_STEP || s->kind == SCHED_MULTISTEP || s->kind == SCHED_EXP)
        if (!(s->gamma > 0 && s->gamma <= 1)) return cnn_fail(CNN_ERR_ARG, "--gamma %g: expected a factor in (0, 1]", s->gamma);
    if (s->kind == SCHED_STEP && s->step_size < 1)
        return cnn_fail(CNN_ERR_ARG, "--step-size %d: expected at least 1 epoch", s->step_size);
    if (s->kind == SCHED_MULTISTEP && s->nmilestones == 0)
        return cnn_fail(CNN_ERR_ARG, "--schedule multistep needs --milestones, e.g. 100,150");
    if (s->kind == SCHED_MULTISTEP && s->milestones[0] >= epochs)
        return cnn_fail(CNN_ERR_ARG, "--milestones: the first, %d, is not within the %d epochs", s->milestones[0], epochs);
    if (s->warmup_epochs > 0 && s->kind != SCHED_COSINE)
        return cnn_fail(CNN_ERR_ARG, "--warmup applies to --schedule cosine (onecycle has its own rise, --pct-start)");
    if (s->warmup_epochs < 0 || (s->kind == SCHED_COSINE && s->warmup_epochs >= epochs))
        return cnn_fail(CNN_ERR_ARG, "--warmup %g: must be shorter than the %d epochs", s->warmup_epochs, epochs);
    if (s->kind == SCHED_ONECYCLE && !(s->pct_start > 0 && s->pct_start < 1 && s->div_factor >= 1 && s->final_div_factor >= 1))
        return cnn_fail(CNN_ERR_ARG, "onecycle: --pct-start %g must be in (0, 1), --div-factor %g and --final-div-factor %g "
                                     "at least 1", s->pct_start, s->div_factor, s->final_div_factor);
    if (s->min_lr < 0) return cnn_fail(CNN_ERR_ARG, "--min-lr %g: must not be negative", s->min_lr);
    return CNN_OK;
}

static float onecycle(const sched_cfg *s, float max_lr, double t, double total) {
    /* torch's OneCycleLR (cos annealing, three_phase=False): phase ends at pct_start*total - 1
     * and total - 1, in steps */
    double initial = max_lr / s->div_factor, final = initial / s->final_div_factor;
    double end1 = (double)s->pct_start * total - 1, end2 = total - 1;
    double lo, hi, pct;
    if (t <= end1) {
        lo = initial;
        hi = max_lr;
        pct = end1 > 0 ? t / end1 : 1; /* torch divides by zero when the rise is under a step */
    } else {
        lo = max_lr;
        hi = final;
        pct = end2 > end1 ? (t - end1) / (end2 - end1) : 1;
    }
    if (pct > 1) pct = 1;
    return (float)(hi + (lo - hi) / 2.0 * (cos(M_PI * pct) + 1.0));
}

float sched_lr(const sched_cfg *s, float base_lr, int epoch, int step, int epochs, int steps_per_epoch) {
    switch (s->kind) {
    case SCHED_CONSTANT: return base_lr;
    case SCHED_STEP: return base_lr * powf(s->gamma, (float)(epoch / (s->step_size > 0 ? s->step_size : 1)));
    case SCHED_MULTISTEP: {
        int passed = 0;
        for (int i = 0; i < s->nmilestones; i++) passed += epoch >= s->milestones[i];
        return base_lr * powf(s->gamma, (float)passed);
    }
    case SCHED_EXP: return base_lr * powf(s->gamma, (float)epoch);
    case SCHED_COSINE: {
        double warm = s->warmup_epochs;
        int64_t n = (int64_t)llround(warm * steps_per_epoch), i = (int64_t)epoch * steps_per_epoch + step;
        if (warm > 0 && n < 1) n = 1;
        if (i < n) return (float)(base_lr * (double)(i + 1) / (double)n);
        /* CosineAnnealingLR with T_max = the epochs after warm-up, stepped per epoch */
        int first = (int)ceil(warm), span = epochs - first, e = epoch < first ? 0 : epoch - first;
        if (span <= 0) return base_lr;
        return (float)(s->min_lr + (base_lr - s->min_lr) * (1 + cos(M_PI * e / span)) / 2);
    }
    case SCHED_ONECYCLE:
        return onecycle(s, base_lr, (double)epoch * steps_per_epoch + step, (double)epochs * steps_per_epoch);
    case SCHED_PLATEAU: return base_lr;
    }
    return base_lr;
}
