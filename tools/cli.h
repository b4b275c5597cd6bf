/* cli.h — shared pieces of the cnn subcommands. */
#ifndef CNN_TOOLS_CLI_H
#define CNN_TOOLS_CLI_H
#include "cli/options.h"
#include "cnn.h"

/* Exit statuses: 0 success, 1 failure (files, data, model), 2 misuse, 3 training diverged. */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_DIVERGED = 3 };

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_models(int argc, char **argv);
int cmd_bench(int argc, char **argv);

/* Parse options; on --help print the help and return 0 with *done set; on misuse print the
 * message and the usage line and return EXIT_USAGE. */
int cli_run_parse(const char *cmd, const char *synopsis, const char *about, int argc, char **argv, cli_opt *opts,
                  int nopts, char **pos, int max_pos, int *npos, bool *done);
/* Report a library failure: "cnn <cmd>: <message>", and the exit status for it. */
int cli_fail(const char *cmd, cnn_status st);
#endif
