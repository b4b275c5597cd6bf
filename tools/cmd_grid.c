/* cmd_grid.c — `cnn grid --lr 0.001,0.01,0.1 --batch-size 16,32,64 [train options]`: trains every
 * cell of the grid in its own run directory and reports the best validation top-1 of each as a
 * matrix (rows: lr, columns: batch size), printed and written as grid.csv (seed 004, q. 11). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "core/error.h"
#include "core/fileio.h"
#include "train_opts.h"

#define GRID_MAX 16

static const cli_command grid_command = {
    "grid", "--lr F1,F2,... --batch-size N1,N2,... [train options]",
    "Trains a network for every (lr, batch size) pair with the other options of cnn train,\n"
    "each in its own run directory; prints the matrix of the best validation top-1 of each\n"
    "cell (rows: lr, columns: batch size) and writes it as grid.csv. A cell that diverges\n"
    "is reported as such and the grid goes on."};

typedef struct grid {
    double lr[GRID_MAX];
    int batch[GRID_MAX];
    int nlr, nbatch;
    double top1[GRID_MAX][GRID_MAX];   /* NAN: diverged or not run */
    int epoch[GRID_MAX][GRID_MAX];
    char root[512];
} grid;

/* "0.001,0.01" → values; integers when `integer`. */
static cnn_status parse_list(const char *flag, const char *text, bool integer, double *v, int *n) {
    *n = 0;
    for (const char *p = text; *p;) {
        char *end;
        double x = strtod(p, &end);
        bool ok = end != p && (*end == 0 || *end == ',') && isfinite(x) && x > 0 && *n < GRID_MAX &&
                  (!integer || (x == floor(x) && x <= 65536)) && x <= 1e4;
        if (!ok)
            return cnn_fail(CNN_ERR_ARG, "--%s %s: expected up to %d positive %s separated by commas", flag, text, GRID_MAX,
                            integer ? "integers" : "numbers");
        v[(*n)++] = x;
        p = *end ? end + 1 : end;
    }
    return CNN_OK;
}

static cnn_status grid_root(grid *g, const char *out) {
    if (out) {
        snprintf(g->root, sizeof g->root, "%s", out);
        char probe[600];
        snprintf(probe, sizeof probe, "%s/grid.csv", out);
        if (file_exists(probe)) return cnn_fail(CNN_ERR_ARG, "--out %s already holds a grid (grid.csv); choose another", out);
    } else {
        for (int i = 1;; i++) {
            if (i == 1) snprintf(g->root, sizeof g->root, "runs/grid");
            else snprintf(g->root, sizeof g->root, "runs/grid-%d", i);
            if (!dir_exists(g->root)) break;
        }
    }
    return make_dirs(g->root);
}

static void print_matrix(const grid *g) {
    printf("\nbest validation top-1 (%%), rows: lr, columns: batch size\n%-12s", "lr \\ batch");
    for (int j = 0; j < g->nbatch; j++) printf(" %9d", g->batch[j]);
    printf("\n");
    int bi = -1, bj = -1;
    for (int i = 0; i < g->nlr; i++) {
        printf("%-12g", g->lr[i]);
        for (int j = 0; j < g->nbatch; j++) {
            double v = g->top1[i][j];
            if (isnan(v)) printf(" %9s", g->epoch[i][j] < 0 ? "diverged" : "-");
            else printf(" %9.2f", 100 * v);
            if (!isnan(v) && (bi < 0 || v > g->top1[bi][bj])) bi = i, bj = j;
        }
        printf("\n");
    }
    if (bi >= 0)
        printf("best: lr %g, batch size %d: %.2f%% (epoch %d)\n", g->lr[bi], g->batch[bj], 100 * g->top1[bi][bj],
               g->epoch[bi][bj]);
}

static cnn_status write_csv(const grid *g) {
    char path[600], buf[8192];
    size_t len = snprintf(buf, sizeof buf, "lr/batch_size");
    for (int j = 0; j < g->nbatch; j++) len += snprintf(buf + len, sizeof buf - len, ",%d", g->batch[j]);
    for (int i = 0; i < g->nlr; i++) {
        len += snprintf(buf + len, sizeof buf - len, "\n%g", g->lr[i]);
        for (int j = 0; j < g->nbatch; j++)
            len += isnan(g->top1[i][j]) ? snprintf(buf + len, sizeof buf - len, ",")
                                        : snprintf(buf + len, sizeof buf - len, ",%.6f", g->top1[i][j]);
    }
    len += snprintf(buf + len, sizeof buf - len, "\n");
    snprintf(path, sizeof path, "%s/grid.csv", g->root);
    return file_write_atomic(path, buf, len);
}

/* One cell: a run in <root>/lr<lr>-bs<batch>; a diverged run is a result, not a failure. */
static cnn_status run_cell(grid *g, const train_cfg *base, int i, int j, bool *interrupted) {
    train_cfg c = *base;
    char dir[700];
    snprintf(dir, sizeof dir, "%s/lr%g-bs%d", g->root, g->lr[i], g->batch[j]);
    c.out_dir = dir;
    c.opt.lr = (float)g->lr[i];
    c.batch = g->batch[j];
    train_summary s;
    cnn_status st = train_run(&c, &s);
    g->top1[i][j] = NAN;
    if (st == CNN_ERR_DIVERGED) {
        g->epoch[i][j] = -1;
        printf("lr %g, batch size %d: diverged (%s)\n", g->lr[i], g->batch[j], cnn_last_error());
        fflush(stdout);
        return CNN_OK;
    }
    CNN_TRY(st);
    g->top1[i][j] = s.best_val_top1;
    g->epoch[i][j] = s.best_val_top1_epoch;
    printf("lr %g, batch size %d: best val top-1 %.2f%% at epoch %d of %d, %.1fs (%s)%s\n", g->lr[i], g->batch[j],
           100 * s.best_val_top1, s.best_val_top1_epoch, s.epochs_done, s.seconds, dir,
           s.interrupted ? " — interrupted: the grid stops here" : "");
    fflush(stdout);
    *interrupted = s.interrupted;
    return CNN_OK;
}

int cmd_grid(int argc, char **argv) {
    train_opts t;
    train_opts_init(&t, TO_MODEL | TO_OPTIM | TO_SCHEDULE | TO_RUN);
    const char *lrs = NULL, *batches = NULL;
    cli_opt *lr = cli_find(t.o, t.n, "lr"), *bs = cli_find(t.o, t.n, "batch-size"), *out = cli_find(t.o, t.n, "out");
    *lr = (cli_opt){"lr", OPT_STRING, &lrs, "F1,F2,...", "learning rates: the rows (default: cnn train's)"};
    *bs = (cli_opt){"batch-size", OPT_STRING, &batches, "N1,N2,...", "batch sizes: the columns (default: cnn train's)"};
    out->help = "root directory: a run per cell in <root>/lr<lr>-bs<batch>, and grid.csv (default: runs/grid[-N])";
    t.c.quiet = true;
    cli_find(t.o, t.n, "quiet")->help = "no line per epoch (use --no-quiet to see them)";
    bool done;
    int rc = train_opts_parse(&t, &grid_command, argc, argv, &done);
    if (rc || done) return rc;
    grid g;
    memset(&g, 0, sizeof g);
    double b[GRID_MAX];
    cnn_status st = CNN_OK;
    if (lrs) st = parse_list("lr", lrs, false, g.lr, &g.nlr);
    else g.lr[g.nlr++] = t.c.opt.lr;
    if (!st && batches) st = parse_list("batch-size", batches, true, b, &g.nbatch);
    else if (!st) b[g.nbatch++] = t.c.batch;
    for (int j = 0; j < g.nbatch; j++) g.batch[j] = (int)b[j];
    if (!st) st = train_check(&t.c);
    if (!st) st = grid_root(&g, t.c.out_dir);
    if (st) return cli_fail(&grid_command, st);
    cli_catch_stop_signals(&t.c.stop);
    printf("grid of %d x %d runs in %s\n", g.nlr, g.nbatch, g.root);
    bool interrupted = false;
    for (int i = 0; i < g.nlr; i++)
        for (int j = 0; j < g.nbatch; j++) g.top1[i][j] = NAN;
    for (int i = 0; i < g.nlr && !st && !interrupted; i++)
        for (int j = 0; j < g.nbatch && !st && !interrupted; j++) st = run_cell(&g, &t.c, i, j, &interrupted);
    if (st) return cli_fail(&grid_command, st);
    print_matrix(&g);
    st = write_csv(&g);
    if (st) return cli_fail(&grid_command, st);
    printf("wrote %s/grid.csv\n", g.root);
    return interrupted ? EXIT_INTERRUPTED : EXIT_OK;
}
