/* cmd_train.c — `cnn train`: options to a train_cfg, then the training loop; Ctrl-C (or SIGTERM)
 * stops after the current epoch with the run saved and resumable. Under mpirun, each process is
 * a rank of a data-parallel training (src/dist); rank 0 alone prints. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include "cli.h"
#include "core/error.h"
#include "dist/dist.h"
#include "train_opts.h"

static const cli_command train_command = {
    "train", "[options]",
    "Trains a network; prints progress per epoch; writes metrics.csv, curves.png and the last\n"
    "and best checkpoints (safetensors, PyTorch names) into the run directory. --resume DIR\n"
    "continues a run exactly (bit for bit) where its last checkpoint stands."};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
    static const char msg[] = "\ncnn: stopping after this epoch, the run stays resumable (again to quit at once)\n";
    stop_requested = sig;
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    (void)ignored;
}

void cli_catch_stop_signals(volatile sig_atomic_t **flag) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND; /* a second signal takes the default action: quit now */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    *flag = &stop_requested;
}

int cmd_train_options(int argc, char **argv, train_opts *t, bool *done) {
    train_opts_init(t, TO_ALL);
    return train_opts_parse(t, &train_command, argc, argv, done);
}

/* Ranks other than 0 say nothing on stdout, and nothing about the options (rank 0 says the same). */
static int parse_quietly(int argc, char **argv, train_opts *t, bool *done) {
    if (dist_rank() == 0) return cmd_train_options(argc, argv, t, done);
    if (!freopen("/dev/null", "w", stdout)) fclose(stdout);
    fflush(stderr);
    int saved = dup(2), null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, 2);
    int rc = cmd_train_options(argc, argv, t, done);
    if (saved >= 0) dup2(saved, 2);
    if (saved >= 0) close(saved);
    if (null >= 0) close(null);
    return rc;
}

static int train(int argc, char **argv) {
    train_opts t;
    bool done;
    int rc = parse_quietly(argc, argv, &t, &done);
    if (rc || done) {
        train_opts_free(&t);
        dist_agree(rc ? CNN_ERR_ARG : CNN_OK); /* every rank parsed the same line: all fail together */
        return rc;
    }
    /* under mpirun, mpirun itself ends the ranks on Ctrl-C (the last checkpoint stays whole) */
    if (dist_size() == 1) cli_catch_stop_signals(&t.c.stop);
    train_summary s;
    cnn_status st = train_run(&t.c, &s);
    train_opts_free(&t);
    if (st && dist_rank() != 0) {
        if (dist_failure_told()) return cli_status(st);
        cnn_fail_context(st, "rank %d of %d", dist_rank(), dist_size());
    }
    if (st) return cli_fail(&train_command, st);
    printf("done: %d epochs, %.1fs this session (%.0f img/s); best val top-1 %.2f%%; run directory %s\n", s.epochs_done,
           s.seconds, s.images_per_second, 100 * s.best_val_top1, s.run_dir);
    return s.interrupted ? EXIT_INTERRUPTED : EXIT_OK;
}

int cmd_train(int argc, char **argv) {
    dist_init(NULL, NULL);
    int rc = train(argc, argv);
    dist_finalize(rc == EXIT_INTERRUPTED ? EXIT_OK : rc);
    return rc;
}
