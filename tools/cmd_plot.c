/* cmd_plot.c — `cnn plot RUN...`: learning curves (loss and top-1 per epoch, training and
 * validation) of one or several runs from their metrics.csv, drawn into one PNG. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "core/error.h"
#include "core/fileio.h"
#include "train/plot.h"

#define MAX_RUNS 32

static const cli_command plot_command = {
    "plot", "RUN... [--out FILE]",
    "Draws the learning curves of runs (directories written by cnn train, or their metrics.csv):\n"
    "loss and top-1 accuracy per epoch, training solid and validation dashed, a colour per run."};

/* A run directory (its metrics.csv) or a metrics.csv file itself. */
static cnn_status read_run(const char *arg, history *h) {
    char path[4096];
    if (dir_exists(arg)) snprintf(path, sizeof path, "%s/metrics.csv", arg);
    else snprintf(path, sizeof path, "%s", arg);
    if (!file_exists(path)) return cnn_fail(CNN_ERR_IO, "%s: no such run directory or metrics.csv", arg);
    CNN_TRY(history_read_csv(path, h));
    if (h->n == 0) return cnn_fail(CNN_ERR_FORMAT, "%s: no epoch finished yet, nothing to plot", path);
    return CNN_OK;
}

int cmd_plot(int argc, char **argv) {
    const char *out = "curves.png", *title = "learning curves";
    cli_opt o[] = {
        {"out", OPT_STRING, &out, "FILE", "the PNG to write"},
        {"title", OPT_STRING, &title, "TEXT", "title above the panels"},
    };
    int npos;
    bool done;
    char *pos[MAX_RUNS];
    int rc = cli_run_parse(&plot_command, argc, argv, o, 2, pos, MAX_RUNS, &npos, &done);
    if (rc || done) return rc;
    if (npos == 0) return cli_fail(&plot_command, cnn_fail(CNN_ERR_ARG, "give at least one run directory, e.g. cnn plot runs/a"));
    history h[MAX_RUNS];
    plot_run runs[MAX_RUNS];
    memset(h, 0, sizeof h);
    cnn_status st = CNN_OK;
    for (int i = 0; i < npos && !st; i++) {
        st = read_run(pos[i], &h[i]);
        runs[i] = (plot_run){pos[i], &h[i]};
    }
    if (!st) st = plot_curves(out, runs, npos, title);
    for (int i = 0; i < npos; i++) history_free(&h[i]);
    if (st) return cli_fail(&plot_command, st);
    printf("wrote %s (%d run%s)\n", out, npos, npos > 1 ? "s" : "");
    return EXIT_OK;
}
