/* cmd_predict.c — `cnn predict`: the top classes of image files under a checkpoint, through the
 * public API (cnn_model_load, cnn_classify_file) with the checkpoint's evaluation transform. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include "cli.h"
#include "core/error.h"
#include "core/json.h"

static void print_text(const char *file, const cnn_prediction *top, int k) {
    printf("%s\n", file);
    for (int j = 0; j < k; j++) printf("  %7.3f%%  %s\n", 100.0 * top[j].probability, top[j].name);
}

static void json_one(json_writer *w, const char *file, const cnn_prediction *top, int k, cnn_status st) {
    json_begin_object(w);
    json_write_key(w, "file");
    json_write_string(w, file);
    if (st) {
        json_write_key(w, "error");
        json_write_string(w, cnn_last_error());
    } else {
        json_write_key(w, "top");
        json_begin_array(w);
        for (int j = 0; j < k; j++) {
            json_begin_object(w);
            json_write_key(w, "class");
            json_write_string(w, top[j].name);
            json_write_key(w, "index");
            json_write_int(w, top[j].index);
            json_write_key(w, "probability");
            char digits[32]; /* the float's 7 significant digits, not its exact binary value */
            snprintf(digits, sizeof digits, "%.7g", top[j].probability);
            json_write_number(w, strtod(digits, NULL));
            json_end_object(w);
        }
        json_end_array(w);
    }
    json_end_object(w);
}

/* Every image, even after a failing one; returns the number of failures. */
static int classify_all(cnn_model *m, char **files, int nfiles, int k, bool json) {
    cnn_prediction *top = calloc((size_t)k, sizeof *top);
    if (!top) return nfiles;
    int shown = k < cnn_model_classes(m) ? k : cnn_model_classes(m), failures = 0;
    json_writer w;
    json_writer_init(&w);
    json_begin_array(&w);
    for (int i = 0; i < nfiles; i++) {
        cnn_status st = cnn_classify_file(m, files[i], k, top);
        failures += st != CNN_OK;
        if (json) json_one(&w, files[i], top, shown, st);
        else if (st) fprintf(stderr, "cnn predict: %s\n", cnn_last_error());
        else print_text(files[i], top, shown);
    }
    json_end_array(&w);
    char *text = NULL;
    size_t len;
    if (json && json_writer_finish(&w, &text, &len) == CNN_OK) printf("%s\n", text);
    else if (json) fprintf(stderr, "cnn predict: %s\n", cnn_last_error()), failures = nfiles;
    else json_writer_free(&w);
    free(text);
    free(top);
    return failures;
}

static const cli_command predict_command = {
    "predict", "--checkpoint FILE [options] IMAGE...",
    "Prints the most probable classes of each image (JPEG, PNG, BMP, PPM/PGM, TGA, GIF), with\n"
    "the checkpoint's evaluation transform: shorter side resized, center crop, normalization."};

int cmd_predict_options(int argc, char **argv, predict_args *a, bool *done) {
    char **files = a->files;
    *a = (predict_args){.top = 5, .files = files};
    cli_opt o[] = {
        {"checkpoint", OPT_STRING, &a->path, "FILE", "checkpoint (.safetensors) written by cnn train"},
        {"top", OPT_INT, &a->top, "K", "classes shown per image", 1, 1000000},
        {"threads", OPT_INT, &a->threads, "N", "threads (0: all)", 0, 1024},
        {"json", OPT_FLAG, &a->json, NULL, "print JSON: [{\"file\", \"top\": [{\"class\", \"index\", \"probability\"}]}]"},
    };
    int n = sizeof o / sizeof *o;
    int rc = cli_run_parse(&predict_command, argc, argv, o, n, a->files, argc, &a->nfiles, done);
    if (rc || *done) return rc;
    if (!a->path) return cli_fail(&predict_command, cnn_fail(CNN_ERR_ARG, "--checkpoint FILE is required"));
    if (a->nfiles == 0) return cli_fail(&predict_command, cnn_fail(CNN_ERR_ARG, "no image files given"));
    return EXIT_OK;
}

int cmd_predict(int argc, char **argv) {
    predict_args a = {.files = calloc((size_t)argc + 1, sizeof(char *))};
    if (!a.files) return cli_fail(&predict_command, cnn_fail(CNN_ERR_NOMEM, "out of memory"));
    bool done;
    int rc = cmd_predict_options(argc, argv, &a, &done);
    if (!rc && !done) {
        if (a.threads > 0) omp_set_num_threads(a.threads);
        cnn_model *m = NULL;
        cnn_status st = cnn_model_load(a.path, &m);
        if (st) rc = cli_fail(&predict_command, st);
        else rc = classify_all(m, a.files, a.nfiles, a.top, a.json) ? EXIT_FAIL : EXIT_OK;
        cnn_model_free(m);
    }
    free(a.files);
    return rc;
}
