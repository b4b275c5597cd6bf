/* options.h — table-driven command-line parsing for the cnn subcommands: "--name value",
 * "--name=value", flags and their "--no-" forms, strict numbers with ranges, choices and shapes.
 * Every misuse is reported as "flag: what was expected" for a usage message and exit status 2. */
#ifndef CNN_CLI_OPTIONS_H
#define CNN_CLI_OPTIONS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum opt_type {
    OPT_FLAG,     /* bool */
    OPT_INT,      /* int, within [min, max] */
    OPT_INT64,    /* int64_t, within [min, max] */
    OPT_FLOAT,    /* float, within [min, max], finite */
    OPT_STRING,   /* const char * (points into argv) */
    OPT_CHOICE,   /* const char *, one of "a|b|c" */
    OPT_SHAPE,    /* int[3]: CxHxW (or HxW with C unchanged) */
} opt_type;

typedef struct cli_opt {
    const char *name;        /* "batch-size" (without dashes) */
    opt_type type;
    void *target;
    const char *meta;        /* value placeholder in help, e.g. "N" */
    const char *help;
    double min, max;         /* numeric range (ignored when min == max == 0) */
    const char *choices;     /* OPT_CHOICE: "sgd|adam|adamw" */
    bool seen;               /* set when given on the command line */
} cli_opt;

/* Parse argv[0..argc) (no program or command name). Positional arguments are collected into
 * positional (at most max_pos). Returns 0, or 2 with a message in err ("--lr: expected ..."). */
int cli_parse(int argc, char **argv, cli_opt *opts, int nopts, char **positional, int max_pos, int *npos, char *err,
              size_t errlen);
/* Help text: one line per option with its default taken from the current target value. */
void cli_help(FILE *f, const cli_opt *opts, int nopts);
cli_opt *cli_find(cli_opt *opts, int nopts, const char *name);

/* An option's current value, kept to tell later whether the command line changed it. */
typedef union cli_value {
    bool b;
    int i;
    int64_t l;
    float f;
    const char *s;
    int shape[3];
} cli_value;
void cli_value_save(const cli_opt *o, cli_value *v);
bool cli_value_same(const cli_opt *o, const cli_value *v);
/* The value as text, e.g. for "--lr 0.1: the run uses 0.05". */
void cli_value_text(const cli_opt *o, char *buf, size_t n);
#endif
