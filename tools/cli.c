/* cli.c — what the cnn subcommands share: --help, the usage line on misuse, and the mapping from
 * failures to exit statuses (see cli.h). */
#include "cli.h"
#include "core/error.h"
#include <stdio.h>
#include <string.h>

static void usage_line(const cli_command *cmd) {
    fprintf(stderr, "usage: cnn %s%s%s   (cnn %s --help for the options)\n", cmd->name, *cmd->synopsis ? " " : "",
            cmd->synopsis, cmd->name);
}

int cli_run_parse(const cli_command *cmd, int argc, char **argv, cli_opt *opts, int nopts, char **pos, int max_pos,
                  int *npos, bool *done) {
    *done = false;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--")) break;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: cnn %s%s%s\n\n%s\n", cmd->name, *cmd->synopsis ? " " : "", cmd->synopsis, cmd->about);
            if (nopts) {
                printf("\noptions:\n");
                cli_help(stdout, opts, nopts);
            }
            *done = true;
            return EXIT_OK;
        }
    }
    char err[512];
    if (cli_parse(argc, argv, opts, nopts, pos, max_pos, npos, err, sizeof err)) {
        fprintf(stderr, "cnn %s: %s\n", cmd->name, err);
        usage_line(cmd);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

int cli_status(cnn_status st) {
    return st == CNN_OK ? EXIT_OK : st == CNN_ERR_ARG ? EXIT_USAGE : st == CNN_ERR_DIVERGED ? EXIT_DIVERGED : EXIT_FAIL;
}

int cli_fail(const cli_command *cmd, cnn_status st) {
    fprintf(stderr, "cnn %s: %s\n", cmd->name, cnn_last_error());
    if (st == CNN_ERR_ARG) usage_line(cmd);
    return cli_status(st);
}

cnn_status cli_regulator(const char *regulator, const char *stages, model_cfg *m) {
    if (regulator) CNN_TRY(model_parse_regulator(regulator, &m->regulator));
    if (stages) CNN_TRY(model_parse_stages(stages, &m->regulated_stages));
    return CNN_OK;
}
