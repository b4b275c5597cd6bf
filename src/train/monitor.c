/* monitor.c — best epoch, early stopping and ReduceLROnPlateau as state machines (see monitor.h).
 * The rules are transcribed from Keras 3's EarlyStopping and torch 1.13's ReduceLROnPlateau. */
#include "train/monitor.h"
#include <math.h>
#include <string.h>
#include "core/error.h"

static const char *const metric_names[] = {"train_loss", "train_top1", "val_loss", "val_top1", "val_top5"};
static const char *const mode_names[] = {"auto", "min", "max"};

const char *metric_name(metric_id m) { return metric_names[m]; }
const char *mode_name(monitor_mode m) { return mode_names[m]; }

cnn_status metric_parse(const char *name, metric_id *m) {
    for (int i = 0; i < 5; i++)
        if (!strcmp(name, metric_names[i])) {
            *m = (metric_id)i;
            return CNN_OK;
        }
    return cnn_fail(CNN_ERR_ARG, "metric %s: expected one of " METRIC_CHOICES, name);
}

cnn_status mode_parse(const char *name, monitor_mode *m) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, mode_names[i])) {
            *m = (monitor_mode)i;
            return CNN_OK;
        }
    return cnn_fail(CNN_ERR_ARG, "mode %s: expected one of " MODE_CHOICES, name);
}

monitor_mode mode_resolve(monitor_mode mode, metric_id m) {
    if (mode != MODE_AUTO) return mode;
    return m == METRIC_TRAIN_LOSS || m == METRIC_VAL_LOSS ? MODE_MIN : MODE_MAX;
}

void early_stop_defaults(early_stop_cfg *c) {
    memset(c, 0, sizeof *c);
    c->monitor = METRIC_VAL_TOP1;
    c->mode = MODE_AUTO;
}

void early_stop_init(early_stop *e, const early_stop_cfg *c) {
    memset(e, 0, sizeof *e);
    e->cfg = *c;
    e->mode = mode_resolve(c->mode, c->monitor);
}

bool early_stop_update(early_stop *e, int epoch, double value) {
    double d = e->cfg.min_delta;
    /* Keras: monitor_op(current - min_delta, best) with min_delta negated for "min" */
    bool better = !isnan(value) && (!e->has_best || (e->mode == MODE_MIN ? value + d < e->best : value - d > e->best));
    e->wait++;
    if (better) {
        e->has_best = true;
        e->best = value;
        e->best_epoch = epoch;
        e->wait = 0;
        return true;
    }
    if (e->cfg.patience > 0 && e->wait >= e->cfg.patience && epoch > 1) e->stopped = true;
    return false;
}

void plateau_defaults(plateau_cfg *c) {
    memset(c, 0, sizeof *c);
    c->monitor = METRIC_VAL_LOSS;
    c->mode = MODE_AUTO;
    c->factor = 0.1f;
    c->patience = 10;
    c->threshold = 1e-4f;
}

void plateau_init(plateau *p, const plateau_cfg *c, float lr, float min_lr) {
    memset(p, 0, sizeof *p);
    p->cfg = *c;
    p->mode = mode_resolve(c->mode, c->monitor);
    p->lr = lr;
    p->min_lr = min_lr;
}

static bool plateau_better(const plateau *p, double a) {
    if (isnan(a)) return false;
    if (!p->has_best) return true; /* torch starts from best = ±inf */
    double t = p->cfg.threshold, best = p->best;
    if (p->mode == MODE_MIN) return p->cfg.threshold_abs ? a < best - t : a < best * (1.0 - t);
    return p->cfg.threshold_abs ? a > best + t : a > best * (t + 1.0);
}

bool plateau_step(plateau *p, double value) {
    if (plateau_better(p, value)) {
        p->has_best = true;
        p->best = value;
        p->bad_epochs = 0;
    } else {
        p->bad_epochs++;
    }
    if (p->cooldown_counter > 0) {
        p->cooldown_counter--;
        p->bad_epochs = 0; /* bad epochs in cooldown are ignored */
    }
    if (p->bad_epochs <= p->cfg.patience) return false;
    p->cooldown_counter = p->cfg.cooldown;
    p->bad_epochs = 0;
    /* torch computes in Python floats (double) and stores the lr as a float of the group */
    double old = p->lr, lr = fmax(old * p->cfg.factor, p->min_lr);
    if (old - lr <= 1e-8) return false;
    p->lr = (float)lr;
    p->reductions++;
    return true;
}
