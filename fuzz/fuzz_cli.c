/* fuzz_cli.c — the command line: option parsing of every cnn subcommand (numbers, ranges, choices,
 * shapes, flags and their --no- forms, "--name=value", "--", milestones), without running it.
 * Input: a byte choosing the command, then the arguments separated by NUL bytes. */
#include <stdio.h>
#include "cli.h"
#include "fuzz.h"
#include "train_opts.h"

#define MAX_ARGS 64

static int run(int command, int argc, char **argv) {
    bool done, layers;
    switch (command) {
    case 0: {
        train_opts t;
        int rc = cmd_train_options(argc, argv, &t, &done);
        train_opts_free(&t);
        return rc;
    }
    case 1: {
        eval_args a;
        return cmd_eval_options(argc, argv, &a, &done);
    }
    case 2: {
        model_cfg m;
        return cmd_summary_options(argc, argv, &m, &layers, &done);
    }
    case 3: {
        bench_args a;
        return cmd_bench_options(argc, argv, &a, &done);
    }
    case 5: {
        char *files[MAX_ARGS + 1];
        predict_args a = {.files = files};
        return cmd_predict_options(argc, argv, &a, &done);
    }
    default: return cmd_models(argc, argv);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    char *text = malloc(size); /* the arguments, each NUL-terminated */
    if (!text) return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;
    char *argv[MAX_ARGS + 1];
    int argc = 0;
    for (char *p = text; p < text + size - 1 && argc < MAX_ARGS; p += strlen(p) + 1) argv[argc++] = p;
    argv[argc] = NULL;
    static FILE *null;
    if (!null) null = fopen("/dev/null", "w");
    FILE *out = stdout, *err = stderr; /* messages and help go nowhere; sanitizer reports still reach fd 2 */
    stdout = stderr = null;
    int rc = run(data[0] % 6, argc, argv);
    stdout = out;
    stderr = err;
    FUZZ_ASSERT(rc == 0 || rc == 2); /* parsing alone succeeds or is a misuse, nothing else */
    free(text);
    return 0;
}
