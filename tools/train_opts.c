/* train_opts.c — the training options (see train_opts.h). */
#include "train_opts.h"
#include <stdio.h>
#include <string.h>
#include "backend/dnnl_backend.h"
#include "core/error.h"

#define ADD(group, ...)                                                      \
    do {                                                                     \
        if ((groups & (group)) && t->n < TRAIN_OPTS_MAX) t->o[t->n++] = (cli_opt){__VA_ARGS__}; \
    } while (0)

static void add_model_opts(train_opts *t, unsigned groups) {
    train_cfg *c = &t->c;
    ADD(TO_MODEL, "model", OPT_STRING, &c->model.name, "NAME", "network (cnn models lists them)");
    ADD(TO_MODEL, "dataset", OPT_CHOICE, &c->dataset, NULL, "data set (folder: DIR/train/<class>/*, DIR/val/<class>/*)", 0,
        0, "fashion-mnist|mnist|cifar10|cifar100|folder");
    ADD(TO_MODEL, "data", OPT_STRING, &c->data_dir, "DIR", "directory of the data set files (default: its Debian location)");
    ADD(TO_MODEL, "image-size", OPT_INT, &c->image_size, "N", "folder: side of the crops the model sees (0: 224)", 0, 8192);
    ADD(TO_MODEL, "resize", OPT_INT, &c->resize, "N", "folder: shorter side before the evaluation's center crop (0: size*256/224)",
        0, 16384);
    ADD(TO_MODEL, "full-decode", OPT_FLAG, &c->full_decode, NULL,
        "folder: decode JPEGs at full size even for small targets (pixel-exact with PIL; slower)");
    ADD(TO_MODEL, "workers", OPT_INT, &c->workers, "N",
        "threads decoding and augmenting (0: 1 for in-memory sets, the cores up to 8 for folders)", 0, 256);
    ADD(TO_MODEL, "bn", OPT_FLAG, &c->model.bn, NULL, "convnet: batch norm after each convolution");
    ADD(TO_MODEL, "dropout", OPT_FLOAT, &c->model.dropout, "P", "dropout of the classifier (-1: the model's default)", -1,
        0.99);
    ADD(TO_MODEL, "aux-dropout", OPT_FLOAT, &c->model.dropout_aux, "P",
        "googlenet: dropout of the auxiliary heads (-1: the model's default, 0.7)", -1, 0.99);
    ADD(TO_MODEL, "stochastic-depth", OPT_FLOAT, &c->model.stochastic_depth, "P", CLI_STOCHASTIC_DEPTH_HELP, -1, 0.95);
    ADD(TO_MODEL, CLI_OPT_REGULATOR(t->regulator));
    ADD(TO_MODEL, CLI_OPT_REGULATED_STAGES(t->regulated_stages));
    ADD(TO_MODEL, "crop", OPT_INT, &c->crop_pad, "PAD", "random crop after zero padding (-1: 4 on CIFAR, none on MNIST-like)",
        -1, 64);
    ADD(TO_MODEL, "flip", OPT_FLAG, &t->flip, NULL, "random horizontal flips (default on CIFAR and folders only)");
    ADD(TO_MODEL, "limit", OPT_INT64, &c->limit, "N", "train on the first N training images only (0: all)", 0, 1e12);
    ADD(TO_MODEL, "seed", OPT_INT64, &c->seed, "N", "seed of initialization, shuffling, augmentation, dropout", 0, 9e18);
    ADD(TO_MODEL, "threads", OPT_INT, &c->threads, "N", "threads (0: OMP_NUM_THREADS or all cores)", 0, 1024);
    ADD(TO_MODEL, "precision", OPT_CHOICE, &t->precision, NULL,
        "arithmetic: bf16 convolutions (needs AVX512-BF16; mixed precision, f32 weights)", 0, 0, "f32|bf16");
    ADD(TO_MODEL, "recompute", OPT_FLAG, &c->recompute, NULL, CLI_RECOMPUTE_HELP);
}

static void add_optim_opts(train_opts *t, unsigned groups) {
    train_cfg *c = &t->c;
    ADD(TO_OPTIM, "batch-size", OPT_INT, &c->batch, "N", "images per step", 1, 65536);
    ADD(TO_OPTIM, "lr", OPT_FLOAT, &c->opt.lr, "F", "learning rate (the peak for onecycle; adam/adamw: 0.001)", 0, 1e4);
    ADD(TO_OPTIM, "optimizer", OPT_CHOICE, &t->optimizer, NULL, "optimizer", 0, 0, "sgd|adam|adamw");
    ADD(TO_OPTIM, "momentum", OPT_FLOAT, &c->opt.momentum, "F", "sgd: momentum", 0, 0.999999);
    ADD(TO_OPTIM, "nesterov", OPT_FLAG, &c->opt.nesterov, NULL, "sgd: Nesterov momentum");
    ADD(TO_OPTIM, "weight-decay", OPT_FLOAT, &c->opt.weight_decay, "F",
        "weight decay (L2 for sgd/adam, decoupled for adamw; adamw: 0.01)", 0, 10);
    ADD(TO_OPTIM, "no-decay-bn-bias", OPT_FLAG, &c->opt.no_decay_bn_bias, NULL,
        "no weight decay on batch-norm and bias parameters");
    ADD(TO_OPTIM, "beta1", OPT_FLOAT, &c->opt.beta1, "F", "adam/adamw: beta1", 0, 0.999999);
    ADD(TO_OPTIM, "beta2", OPT_FLOAT, &c->opt.beta2, "F", "adam/adamw: beta2", 0, 0.999999999);
    ADD(TO_OPTIM, "eps", OPT_FLOAT, &c->opt.eps, "F", "adam/adamw: epsilon", 1e-30, 1);
    ADD(TO_OPTIM, "clip-norm", OPT_FLOAT, &c->opt.clip_norm, "F", "clip the global gradient norm to F (0: off)", 0, 1e9);
    ADD(TO_OPTIM, "label-smoothing", OPT_FLOAT, &c->label_smoothing, "F", "label smoothing of the cross-entropy", 0, 0.999);
}

static void add_schedule_opts(train_opts *t, unsigned groups) {
    train_cfg *c = &t->c;
    ADD(TO_SCHEDULE, "epochs", OPT_INT, &c->epochs, "N", "epochs (with --resume: the new total)", 1, 100000);
    ADD(TO_SCHEDULE, "val", OPT_INT64, &c->val, "N",
        "hold out the first N training images for validation (0: validate on the test split)", 0, 1e12);
    ADD(TO_SCHEDULE, "eval-batch-size", OPT_INT, &c->eval_batch, "N", "images per evaluation step (0: the batch size)", 0, 65536);
    ADD(TO_SCHEDULE, "schedule", OPT_CHOICE, &t->schedule, NULL, "learning-rate schedule", 0, 0, SCHED_CHOICES);
    ADD(TO_SCHEDULE, "milestones", OPT_STRING, &t->milestones, "E1,E2", "multistep: epochs where the lr is multiplied by gamma");
    ADD(TO_SCHEDULE, "gamma", OPT_FLOAT, &c->sched.gamma, "F", "step/multistep/exp: decay factor (exp: 0.95)", 1e-9, 1);
    ADD(TO_SCHEDULE, "step-size", OPT_INT, &c->sched.step_size, "N", "step: epochs between decays", 1, 100000);
    ADD(TO_SCHEDULE, "warmup", OPT_FLOAT, &c->sched.warmup_epochs, "EPOCHS", "cosine: linear warm-up epochs (per step)", 0,
        100000);
    ADD(TO_SCHEDULE, "min-lr", OPT_FLOAT, &c->sched.min_lr, "F", "cosine: final learning rate; plateau: the lowest", 0, 1e4);
    ADD(TO_SCHEDULE, "pct-start", OPT_FLOAT, &c->sched.pct_start, "F", "onecycle: fraction of the steps rising", 1e-6,
        0.999999);
    ADD(TO_SCHEDULE, "div-factor", OPT_FLOAT, &c->sched.div_factor, "F", "onecycle: initial lr = lr / F", 1, 1e9);
    ADD(TO_SCHEDULE, "final-div-factor", OPT_FLOAT, &c->sched.final_div_factor, "F",
        "onecycle: final lr = initial lr / F", 1, 1e12);
    ADD(TO_SCHEDULE, "plateau-monitor", OPT_CHOICE, &t->plateau_monitor, NULL, "plateau: the metric watched", 0, 0,
        METRIC_CHOICES);
    ADD(TO_SCHEDULE, "plateau-mode", OPT_CHOICE, &t->plateau_mode, NULL, "plateau: auto (losses min, accuracies max)", 0, 0,
        MODE_CHOICES);
    ADD(TO_SCHEDULE, "plateau-factor", OPT_FLOAT, &c->plateau.factor, "F", "plateau: lr multiplier", 1e-6, 0.999999);
    ADD(TO_SCHEDULE, "plateau-patience", OPT_INT, &c->plateau.patience, "N", "plateau: epochs without improvement tolerated",
        0, 100000);
    ADD(TO_SCHEDULE, "plateau-threshold", OPT_FLOAT, &c->plateau.threshold, "F", "plateau: smallest improvement (relative)",
        0, 1e9);
    ADD(TO_SCHEDULE, "plateau-abs", OPT_FLAG, &t->plateau_abs, NULL, "plateau: the threshold is absolute, not relative");
    ADD(TO_SCHEDULE, "plateau-cooldown", OPT_INT, &c->plateau.cooldown, "N", "plateau: epochs to wait after a reduction", 0,
        100000);
    ADD(TO_SCHEDULE, "monitor", OPT_CHOICE, &t->monitor, NULL, "the metric that picks the best epoch and stops early", 0, 0,
        METRIC_CHOICES);
    ADD(TO_SCHEDULE, "monitor-mode", OPT_CHOICE, &t->monitor_mode, NULL, "auto (losses min, accuracies max)", 0, 0,
        MODE_CHOICES);
    ADD(TO_SCHEDULE, "min-delta", OPT_FLOAT, &c->early.min_delta, "F", "smallest change of the monitor that is an improvement",
        0, 1e9);
    ADD(TO_SCHEDULE, "early-stop", OPT_INT, &c->early.patience, "N",
        "stop after N epochs without improvement of the monitor (0: never)", 0, 100000);
    ADD(TO_SCHEDULE, "restore-best", OPT_FLAG, &c->early.restore_best, NULL,
        "end with the best epoch's weights (final test, summary)");
}

void train_opts_init(train_opts *t, unsigned groups) {
    memset(t, 0, sizeof *t);
    train_defaults(&t->c);
    t->optimizer = optim_name(t->c.opt.kind);
    t->precision = "f32";
    t->schedule = sched_name(t->c.sched.kind);
    t->monitor = metric_name(t->c.early.monitor);
    t->monitor_mode = mode_name(t->c.early.mode);
    t->plateau_monitor = metric_name(t->c.plateau.monitor);
    t->plateau_mode = mode_name(t->c.plateau.mode);
    train_cfg *c = &t->c;
    ADD(TO_RUN, "out", OPT_STRING, &c->out_dir, "DIR", "run directory (default: runs/<model>-<dataset>[-N], never reused)");
    ADD(TO_RESUME, "resume", OPT_STRING, &t->resume, "DIR", "continue the run in DIR exactly where its last checkpoint is");
    add_model_opts(t, groups);
    add_optim_opts(t, groups);
    add_schedule_opts(t, groups);
    ADD(TO_RUN, "checkpoint-every", OPT_INT, &c->checkpoint_every, "N",
        "also save last.safetensors every N steps, mid-epoch, to resume after a crash (0: at epoch ends only)", 0,
        1000000000);
    ADD(TO_DIST, "sync-bn", OPT_FLAG, &c->sync_bn, NULL,
        "under mpirun: batch norm with the statistics of the global batch (default: each process's own)");
    ADD(TO_RUN, "plot", OPT_FLAG, &c->plot, NULL, "write curves.png in the run directory after every epoch");
    ADD(TO_RUN, "quiet", OPT_FLAG, &c->quiet, NULL, "no line per epoch");
}

void train_opts_free(train_opts *t) {
    json_free(t->stored);
    t->stored = NULL;
}

static bool seen(train_opts *t, const char *name) {
    cli_opt *o = cli_find(t->o, t->n, name);
    return o && o->seen;
}

/* Options that only mean something with some schedules or optimizers. */
static cnn_status check_applies(train_opts *t) {
    static const struct {
        const char *opt, *key, *values;
    } rules[] = {
        {"milestones", "schedule", " multistep "}, {"step-size", "schedule", " step "},
        {"gamma", "schedule", " step multistep exp "}, {"warmup", "schedule", " cosine "},
        {"min-lr", "schedule", " cosine plateau "}, {"pct-start", "schedule", " onecycle "},
        {"div-factor", "schedule", " onecycle "}, {"final-div-factor", "schedule", " onecycle "},
        {"plateau-monitor", "schedule", " plateau "}, {"plateau-mode", "schedule", " plateau "},
        {"plateau-factor", "schedule", " plateau "}, {"plateau-patience", "schedule", " plateau "},
        {"plateau-threshold", "schedule", " plateau "}, {"plateau-abs", "schedule", " plateau "},
        {"plateau-cooldown", "schedule", " plateau "}, {"momentum", "optimizer", " sgd "},
        {"nesterov", "optimizer", " sgd "}, {"beta1", "optimizer", " adam adamw "},
        {"beta2", "optimizer", " adam adamw "}, {"eps", "optimizer", " adam adamw "},
    };
    for (size_t i = 0; i < sizeof rules / sizeof *rules; i++) {
        if (!seen(t, rules[i].opt)) continue;
        const char *v = !strcmp(rules[i].key, "schedule") ? t->schedule : t->optimizer;
        char word[40], allowed[64];
        snprintf(word, sizeof word, " %s ", v);
        if (strstr(rules[i].values, word)) continue;
        snprintf(allowed, sizeof allowed, "%s", rules[i].values + 1); /* " a b " -> "a|b" */
        allowed[strlen(allowed) - 1] = 0;
        for (char *c = allowed; *c; c++) *c = *c == ' ' ? '|' : *c;
        return cnn_fail(CNN_ERR_ARG, "--%s applies to --%s %s (here %s)", rules[i].opt, rules[i].key, allowed, v);
    }
    return CNN_OK;
}

/* Names to enums, and the defaults that depend on other options (not for a resumed run, whose
 * values are all stored). */
static cnn_status finish(train_opts *t, bool resumed) {
    train_cfg *c = &t->c;
    CNN_TRY(check_applies(t));
    CNN_TRY(be_precision_check(t->precision, &c->bf16));
    CNN_TRY(optim_parse_kind(t->optimizer, &c->opt.kind));
    CNN_TRY(sched_parse_kind(t->schedule, &c->sched.kind));
    CNN_TRY(metric_parse(t->monitor, &c->early.monitor));
    CNN_TRY(mode_parse(t->monitor_mode, &c->early.mode));
    CNN_TRY(metric_parse(t->plateau_monitor, &c->plateau.monitor));
    CNN_TRY(mode_parse(t->plateau_mode, &c->plateau.mode));
    c->plateau.threshold_abs = t->plateau_abs;
    if (t->milestones) CNN_TRY(sched_parse_milestones(t->milestones, &c->sched));
    if (seen(t, "flip")) c->flip = t->flip;
    CNN_TRY(cli_regulator(t->regulator, t->regulated_stages, &c->model));
    if (resumed) return CNN_OK;
    CNN_TRY(model_resolve_regulator(&c->model)); /* stored spelled out: a resumed run compares with it */
    if (!seen(t, "lr") && c->opt.kind != OPT_SGD) c->opt.lr = 1e-3f;
    if (!seen(t, "weight-decay") && c->opt.kind == OPT_ADAMW) c->opt.weight_decay = 1e-2f;
    if (!seen(t, "gamma") && c->sched.kind == SCHED_EXP) c->sched.gamma = 0.95f;
    return CNN_OK;
}

/* The stored configuration as option values. */
static void from_stored(train_opts *t) {
    train_cfg *c = &t->c;
    t->optimizer = optim_name(c->opt.kind);
    t->precision = c->bf16 ? "bf16" : "f32";
    t->schedule = sched_name(c->sched.kind);
    t->monitor = metric_name(c->early.monitor);
    t->monitor_mode = mode_name(c->early.mode);
    t->plateau_monitor = metric_name(c->plateau.monitor);
    t->plateau_mode = mode_name(c->plateau.mode);
    t->plateau_abs = c->plateau.threshold_abs;
    t->flip = c->flip > 0;
    t->regulator = c->model.regulator != REGULATOR_DEFAULT ? model_regulator_name(c->model.regulator) : NULL;
    model_format_stages(c->model.regulated_stages, t->stages_buf, sizeof t->stages_buf);
    t->regulated_stages = c->model.regulated_stages ? t->stages_buf : NULL;
    t->milestones = NULL;
    size_t len = 0;
    for (int i = 0; i < c->sched.nmilestones && len < sizeof t->milestones_buf - 16; i++)
        len += snprintf(t->milestones_buf + len, sizeof t->milestones_buf - len, "%s%d", i ? "," : "",
                        c->sched.milestones[i]);
    if (c->sched.nmilestones) t->milestones = t->milestones_buf;
}

static const char *const changeable[] = {"resume",          "epochs",           "threads", "data",  "workers",
                                         "eval-batch-size", "checkpoint-every", "plot",    "quiet", "recompute"};

static bool may_change(const char *name) {
    for (size_t i = 0; i < sizeof changeable / sizeof *changeable; i++)
        if (!strcmp(name, changeable[i])) return true;
    return false;
}

/* With --resume: parse again over the stored configuration; an option that changes a stored value
 * (other than those a resumed run may change) is refused. */
static cnn_status parse_resumed(train_opts *t, int argc, char **argv) {
    const char *dir = t->resume;
    train_cfg stored;
    CNN_TRY(train_load_config(dir, &stored, &t->stored));
    bool plot = t->c.plot, quiet = t->c.quiet;
    t->c = stored;
    t->c.plot = plot;
    t->c.quiet = quiet;
    from_stored(t);
    cli_value before[TRAIN_OPTS_MAX];
    for (int i = 0; i < t->n; i++) {
        cli_value_save(&t->o[i], &before[i]);
        t->o[i].seen = false;
    }
    char err[512], *pos[1];
    int npos;
    if (cli_parse(argc, argv, t->o, t->n, pos, 0, &npos, err, sizeof err)) return cnn_fail(CNN_ERR_ARG, "%s", err);
    for (int i = 0; i < t->n; i++) {
        cli_opt *o = &t->o[i];
        if (!o->seen || may_change(o->name) || cli_value_same(o, &before[i])) continue;
        char now[128], was[128];
        cli_value_text(o, now, sizeof now);
        cli_opt old = *o;
        old.target = &before[i];
        cli_value_text(&old, was, sizeof was);
        return cnn_fail(CNN_ERR_ARG, "--%s %s: the run in %s was trained with %s, and a resumed run keeps its settings "
                                     "(it may change --epochs, --threads, --data, --workers, --eval-batch-size, "
                                     "--checkpoint-every, --recompute); start a new run to try another value", o->name, now, dir, was);
    }
    t->c.resume_dir = dir;
    return CNN_OK;
}

int train_opts_parse(train_opts *t, const cli_command *cmd, int argc, char **argv, bool *done) {
    char *pos[1];
    int npos;
    int rc = cli_run_parse(cmd, argc, argv, t->o, t->n, pos, 0, &npos, done);
    if (rc || *done) return rc;
    if (t->resume && seen(t, "out"))
        return cli_fail(cmd, cnn_fail(CNN_ERR_ARG, "--resume continues in the run's own directory: leave out --out"));
    cnn_status st = t->resume ? parse_resumed(t, argc, argv) : CNN_OK;
    if (!st && !model_find(t->c.model.name)) /* before loading any data */
        st = cnn_fail(CNN_ERR_ARG, "--model %s: unknown model (cnn models lists them)", t->c.model.name);
    if (!st) st = finish(t, t->resume != NULL);
    return st ? cli_fail(cmd, st) : EXIT_OK;
}
