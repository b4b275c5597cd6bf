/* test_zoo_init.c — the zoo's initialization against the rules of the PyTorch code it follows, read
 * from that code: torchvision's GoogLeNet (trunc_normal_(std=0.01, a=-2, b=2) on conv and linear
 * weights, PyTorch's default U(±1/sqrt(fan_in)) for linear biases), torchvision's EfficientNet
 * (kaiming_normal_(mode="fan_out") on conv weights, zero conv biases, U(±1/sqrt(out_features)) linear
 * weights, zero linear biases), timm's GhostNet (no init of its own: PyTorch's defaults, U(±1/sqrt(fan_in))
 * for conv and linear weights and biases), ghost_resnet56 as torchvision's ResNet (kaiming_normal_
 * fan_out on convs, PyTorch's default for fc); batch norm 1 and 0 everywhere. Every tensor's sample
 * statistics must fit its rule: the standard deviation within 5 standard errors, uniform values within
 * their bound, constants exact. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/plan.h"
#include "models/models.h"
#include "testutil.h"

enum dist { NORMAL, UNIFORM, CONST };

typedef struct rule {
    enum dist dist;
    double scale;   /* NORMAL: standard deviation; UNIFORM: bound; CONST: the value */
    double trunc;   /* NORMAL: truncation bound (0: none) */
} rule;

static bool ends(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The rule of a parameter: batch norm by shape and name, conv (4-D) and linear (2-D) weights, biases
 * by their weight's fan-in (the parameter before them). */
static rule rule_of(const char *model, const graph *g, int i, int classes) {
    const param *p = &g->params[i];
    bool googlenet = !strcmp(model, "googlenet"), effnet = !strcmp(model, "efficientnet_b0");
    bool resnet = !strcmp(model, "ghost_resnet56");
    if (p->role == PARAM_NORM) return (rule){CONST, ends(p->name, ".weight") ? 1.0 : 0.0, 0};
    if (p->ndim == 4) {
        if (googlenet) return (rule){NORMAL, 0.01, 2.0};
        if (effnet || resnet) return (rule){NORMAL, sqrt(2.0 / (double)p->fan_out), 0};
        return (rule){UNIFORM, 1 / sqrt((double)p->fan_in), 0};
    }
    if (p->ndim == 2) {
        if (googlenet) return (rule){NORMAL, 0.01, 2.0};
        if (effnet) return (rule){UNIFORM, 1 / sqrt((double)classes), 0};
        return (rule){UNIFORM, 1 / sqrt((double)p->fan_in), 0};
    }
    /* a bias: its weight is the parameter before it */
    if (effnet) return (rule){CONST, 0.0, 0};
    return (rule){UNIFORM, 1 / sqrt((double)g->params[i - 1].fan_in), 0};
}

static void check_param(const char *model, const graph *g, int i, rule r) {
    const param *p = &g->params[i];
    int64_t n = param_numel(p);
    float *v = malloc(sizeof(float) * n);
    CHECK_OK(graph_param_read(g, i, v));
    double sum = 0, sq = 0, amax = 0;
    for (int64_t k = 0; k < n; k++) {
        sum += v[k];
        sq += (double)v[k] * v[k];
        amax = fabs(v[k]) > amax ? fabs(v[k]) : amax;
        if (r.dist == CONST && v[k] != (float)r.scale) {
            CHECK(false, "%s %s[%lld] = %g, expected %g", model, p->name, (long long)k, v[k], r.scale);
            break;
        }
    }
    double sd = sqrt(sq / n), want = r.dist == UNIFORM ? r.scale / sqrt(3.0) : r.scale;
    if (r.dist != CONST && n >= 16)
        CHECK(fabs(sd / want - 1) < 5 / sqrt(2.0 * n) + 1e-3, "%s %s: rms %.5g, expected %.5g (%lld values)", model,
              p->name, sd, want, (long long)n);
    if (r.dist == UNIFORM)
        CHECK(amax <= r.scale * (1 + 1e-6), "%s %s: |value| up to %g > bound %g", model, p->name, amax, r.scale);
    if (r.trunc > 0) CHECK(amax <= r.trunc, "%s %s: |value| up to %g > %g", model, p->name, amax, r.trunc);
    free(v);
}

int main(void) {
    const char *models[] = {"googlenet", "efficientnet_b0", "ghostnet", "ghost_resnet56"};
    for (int m = 0; m < 4; m++) {
        model_cfg cfg;
        model_defaults(&cfg);
        cfg.name = models[m];
        cfg.in_c = 3;
        cfg.in_h = cfg.in_w = 64;
        cfg.classes = 10;
        cfg.seed = 7;
        graph *g = NULL;
        plan *p = NULL;
        CHECK_OK(model_build(&cfg, &g));
        if (!g) continue;
        CHECK_OK(plan_create(g, 1, PLAN_EVAL, &p)); /* fixes the layouts and initializes */
        int checked = 0;
        for (int i = 0; i < g->nparams; i++)
            if (param_trainable(&g->params[i])) {
                check_param(models[m], g, i, rule_of(models[m], g, i, cfg.classes));
                checked++;
            }
        printf("%-16s %d parameter tensors fit their rule\n", models[m], checked);
        plan_free(p);
        graph_free(g);
    }
    return test_report("test_zoo_init");
}
