/* train_opts.h — the training options of cnn train, shared with cnn grid and cnn sanity: one table
 * (documented defaults, ranges, choices), then the rules no table says: defaults that depend on
 * the optimizer or schedule, options that apply to some schedules only, what a resumed run may
 * change. */
#ifndef CNN_TOOLS_TRAIN_OPTS_H
#define CNN_TOOLS_TRAIN_OPTS_H
#include "cli.h"
#include "core/json.h"
#include "train/trainer.h"

/* Option groups: a command takes the groups it needs. */
enum {
    TO_MODEL = 1,      /* model, data set, data, augmentation, seed, threads */
    TO_OPTIM = 2,      /* batch size, lr, optimizer and its settings, clipping, label smoothing */
    TO_SCHEDULE = 4,   /* epochs, schedules, plateau, monitor, early stopping, validation split */
    TO_RUN = 8,        /* out, plot, quiet */
    TO_RESUME = 16,    /* resume */
    TO_DIST = 32,      /* data-parallel training (mpirun): sync-bn */
    TO_ALL = 63,
};

#define TRAIN_OPTS_MAX 80

typedef struct train_opts {
    train_cfg c;
    const char *optimizer, *schedule, *milestones, *monitor, *monitor_mode, *plateau_monitor, *plateau_mode;
    const char *resume, *regulator, *regulated_stages;
    const char *precision;             /* f32 or bf16 (where the CPU has it: be_precision_check) */
    bool flip, plateau_abs;
    char milestones_buf[256], stages_buf[64];
    json_value *stored;                /* the resumed run's configuration */
    cli_opt o[TRAIN_OPTS_MAX];
    int n;
} train_opts;

/* Defaults and the option table for the given groups. `t` must stay where it is (the table
 * points into it). */
void train_opts_init(train_opts *t, unsigned groups);
/* Parse the command line (after the command's own options were added to t->o) into t->c:
 * returns EXIT_OK, EXIT_USAGE with a message, or EXIT_OK with *done for --help. With --resume,
 * the run's stored configuration is the base and options that would change it are refused. */
int train_opts_parse(train_opts *t, const cli_command *cmd, int argc, char **argv, bool *done);
void train_opts_free(train_opts *t);
#endif
