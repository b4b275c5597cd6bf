/* sched_dump.c — prints what cnn.c's schedules compute, for tests/test_schedules_torch.py to
 * compare with torch.optim.lr_scheduler:
 *   sched_dump lr SCHEDULE BASE_LR EPOCHS STEPS [gamma=F step_size=N milestones=A,B min_lr=F
 *              warmup=F pct_start=F div_factor=F final_div_factor=F]
 *       one line per step: the lr of step k of epoch e, in epoch-major order
 *   sched_dump plateau LR MIN_LR FACTOR PATIENCE THRESHOLD ABS(0|1) COOLDOWN MODE(min|max) V1 V2 ...
 *       one line per value: the lr after ReduceLROnPlateau's step(value) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cnn.h"
#include "train/monitor.h"
#include "train/schedule.h"

static int set_option(sched_cfg *s, const char *arg) {
    const char *eq = strchr(arg, '=');
    if (!eq) return 1;
    size_t n = (size_t)(eq - arg);
    const char *v = eq + 1;
    if (!strncmp(arg, "gamma", n)) s->gamma = strtof(v, NULL);
    else if (!strncmp(arg, "step_size", n)) s->step_size = atoi(v);
    else if (!strncmp(arg, "milestones", n)) return sched_parse_milestones(v, s) != CNN_OK;
    else if (!strncmp(arg, "min_lr", n)) s->min_lr = strtof(v, NULL);
    else if (!strncmp(arg, "warmup", n)) s->warmup_epochs = strtof(v, NULL);
    else if (!strncmp(arg, "pct_start", n)) s->pct_start = strtof(v, NULL);
    else if (!strncmp(arg, "div_factor", n)) s->div_factor = strtof(v, NULL);
    else if (!strncmp(arg, "final_div_factor", n)) s->final_div_factor = strtof(v, NULL);
    else return 1;
    return 0;
}

static int dump_lr(int argc, char **argv) {
    if (argc < 4) return 2;
    sched_cfg s;
    sched_defaults(&s);
    if (sched_parse_kind(argv[0], &s.kind)) return 2;
    float base = strtof(argv[1], NULL);
    int epochs = atoi(argv[2]), steps = atoi(argv[3]);
    for (int i = 4; i < argc; i++)
        if (set_option(&s, argv[i])) {
            fprintf(stderr, "sched_dump: bad option %s\n", argv[i]);
            return 2;
        }
    if (sched_check(&s, epochs)) {
        fprintf(stderr, "sched_dump: %s\n", cnn_last_error());
        return 2;
    }
    for (int e = 0; e < epochs; e++)
        for (int k = 0; k < steps; k++) printf("%.9g\n", sched_lr(&s, base, e, k, epochs, steps));
    return 0;
}

static int dump_plateau(int argc, char **argv) {
    if (argc < 8) return 2;
    plateau_cfg c;
    plateau_defaults(&c);
    c.factor = strtof(argv[2], NULL);
    c.patience = atoi(argv[3]);
    c.threshold = strtof(argv[4], NULL);
    c.threshold_abs = atoi(argv[5]) != 0;
    c.cooldown = atoi(argv[6]);
    c.mode = !strcmp(argv[7], "max") ? MODE_MAX : MODE_MIN;
    plateau p;
    plateau_init(&p, &c, strtof(argv[0], NULL), strtof(argv[1], NULL));
    for (int i = 8; i < argc; i++) {
        plateau_step(&p, strtod(argv[i], NULL));
        printf("%.9g\n", p.lr);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "lr")) return dump_lr(argc - 2, argv + 2);
    if (argc >= 2 && !strcmp(argv[1], "plateau")) return dump_plateau(argc - 2, argv + 2);
    fprintf(stderr, "usage: sched_dump lr SCHEDULE BASE EPOCHS STEPS [k=v...] | sched_dump plateau ...\n");
    return 2;
}
