/* cnn.c — the command-line front end: `cnn <command> [options]`. Each command lives in
 * tools/cmd_<command>.c and what they share in tools/cli.c; this file dispatches. */
#include <stdio.h>
#include <string.h>
#include "cli.h"

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *about;
} commands[] = {
    {"train", cmd_train, "train a model (default: the TP ConvNet with batch norm on Fashion-MNIST)"},
    {"eval", cmd_eval, "evaluate a checkpoint: loss, top-1, top-5, per-class accuracy, confusion matrix"},
    {"predict", cmd_predict, "the most probable classes of image files under a checkpoint"},
    {"grid", cmd_grid, "train every (lr, batch size) of a grid; matrix of the best validation top-1"},
    {"sanity", cmd_sanity, "checks before training: initial loss, overfitting a sample, LR range test"},
    {"plot", cmd_plot, "learning curves of one or several runs into a PNG"},
    {"summary", cmd_summary, "layers of a model: type, output shape, parameters, multiply-accumulates"},
    {"models", cmd_models, "list the models cnn knows"},
    {"bench", cmd_bench, "time a model's training or inference step, with a per-op profile"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: cnn <command> [options]   (cnn <command> --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].about);
    fprintf(f, "\ncnn.c %s — convolutional image classifiers in C on oneDNN\n", cnn_version());
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("cnn.c %s\n", cnn_version());
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "cnn: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
