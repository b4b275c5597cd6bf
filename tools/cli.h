/* cli.h — shared pieces of the cnn subcommands: exit statuses, usage and failure reports, and each
 * command's option parsing apart from its running (so that tests and the fuzzer reach it alone). */
#ifndef CNN_TOOLS_CLI_H
#define CNN_TOOLS_CLI_H
#include <signal.h>
#include "cli/options.h"
#include "cnn.h"
#include "models/models.h"
#include "train/trainer.h"

/* Exit statuses: 0 success, 1 failure (files, data, model), 2 misuse, 3 training diverged,
 * 4 a sanity check failed, 130 training interrupted by a signal (saved, resumable). */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_DIVERGED = 3, EXIT_CHECK_FAILED = 4, EXIT_INTERRUPTED = 130 };

typedef struct cli_command {
    const char *name;     /* "train" */
    const char *synopsis; /* "[options]" */
    const char *about;    /* the paragraph of --help */
} cli_command;

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_models(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_grid(int argc, char **argv);
int cmd_sanity(int argc, char **argv);
int cmd_plot(int argc, char **argv);

/* Option parsing of each command, without running it: EXIT_OK (with *done set after --help, which
 * printed the help) or EXIT_USAGE after printing the message and the usage line. */
struct train_opts;
/* (train_opts.h: the training options, which a resumed run reads from its checkpoint; free them with
 * train_opts_free.) */
int cmd_train_options(int argc, char **argv, struct train_opts *out, bool *done);
typedef struct eval_args {
    const char *path, *dataset, *dir, *split;
    int batch, threads, workers;
    bool json;
} eval_args;
int cmd_eval_options(int argc, char **argv, eval_args *out, bool *done);
typedef struct predict_args {
    const char *path;
    int top, threads;
    bool json;
    char **files;       /* the images (pointing into argv); the caller gives room for argc of them */
    int nfiles;
} predict_args;
int cmd_predict_options(int argc, char **argv, predict_args *out, bool *done);
int cmd_summary_options(int argc, char **argv, model_cfg *out, bool *layers, bool *done);
typedef struct bench_args {
    model_cfg model;
    int batch, steps, warmup, threads;
    const char *mode;
    const char *precision;           /* f32 or bf16 (where the CPU has it: be_precision_check) */
    bool bf16;                       /* precision is bf16 */
    bool recompute;                  /* --recompute: batch norm outputs recomputed in backward (graph.recompute) */
    bool profile;
    bool peak;                       /* --peak: time sgemm, the machine's f32 ceiling */
    const char *save;                /* --save: time checkpoint saves into this directory */
    const char *data;                /* --data: time the loader alone on this image folder */
    int workers, image_size, resize, epochs;
    bool full_decode;
} bench_args;
int cmd_bench_options(int argc, char **argv, bench_args *out, bool *done);

/* The help of --recompute (train, bench). */
#define CLI_RECOMPUTE_HELP                                                                          \
    "training keeps less activation memory: the outputs of batch norm (with its ReLU), SiLU, SE products " \
    "and concatenations are computed again in the backward pass instead of kept (same gradients)"
/* The help of --stochastic-depth (train, summary, bench): one option for every residual family. */
#define CLI_STOCHASTIC_DEPTH_HELP                                                                    \
    "stochastic depth: residual branches drop with a probability rising linearly with depth to P " \
    "(efficientnet_b0: torchvision's stochastic_depth_prob; 0: off; -1: the model's default, 0.2 "  \
    "for efficientnet_b0, else 0)"
/* --regulator and --regulated-stages (regnets) in the commands that build a model: each option's
 * fields (a table entry is {CLI_OPT_REGULATOR(target)}), and their values, parsed, into m. */
#define CLI_OPT_REGULATOR(target)                                                                          \
    "regulator", OPT_CHOICE, &(target), NULL,                                                              \
        "regnet: the ConvRNN regulating its stages (Xu et al.'s RegNet, not RegNetX/Y; default convlstm)", 0, 0, \
        "convlstm|convgru|none"
#define CLI_OPT_REGULATED_STAGES(target) \
    "regulated-stages", OPT_STRING, &(target), "S1,S2", "regnet: the stages with the regulator (default: all)"
cnn_status cli_regulator(const char *regulator, const char *stages, model_cfg *m);

/* Parse options; on --help (anywhere before "--") print the help and return 0 with *done set; on
 * misuse print the message and the usage line and return EXIT_USAGE. */
int cli_run_parse(const cli_command *cmd, int argc, char **argv, cli_opt *opts, int nopts, char **pos, int max_pos,
                  int *npos, bool *done);
/* SIGINT and SIGTERM set *flag's target (training stops after the epoch); a second one quits. */
void cli_catch_stop_signals(volatile sig_atomic_t **flag);
/* Report a failure: "cnn <cmd>: <message>" (and the usage line when it is a misuse, CNN_ERR_ARG);
 * returns the exit status for it. */
int cli_fail(const cli_command *cmd, cnn_status st);
/* The exit status of a failure, without a word. */
int cli_status(cnn_status st);
#endif
