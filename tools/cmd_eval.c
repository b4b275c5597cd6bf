/* cmd_eval.c — `cnn eval`: a checkpoint on a data set split: loss, top-1, top-5, per-class
 * accuracy and the confusion matrix with class names; --json for machines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "cli.h"
#include "core/error.h"
#include "core/graph.h"
#include "data/dataset.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"

static int64_t row_total(const eval_result *r, int i) {
    int64_t total = 0;
    for (int j = 0; j < r->classes; j++) total += r->confusion[(size_t)i * r->classes + j];
    return total;
}

static void print_text(const eval_result *r, const data_set *ds, const char *path, const char *split) {
    printf("%s on %s (%lld images): loss %.4f  top1 %.2f%%  top5 %.2f%%\n", path, split, (long long)r->n, r->loss,
           100.0 * r->top1 / r->n, 100.0 * r->top5 / r->n);
    int k = ds->num_classes;
    printf("\nper class:\n");
    for (int i = 0; i < k; i++) {
        int64_t total = row_total(r, i);
        printf("  %3d %-20.20s %6.2f%%  (%lld images)\n", i, ds->class_names[i],
               total ? 100.0 * r->confusion[(size_t)i * r->classes + i] / total : 0.0, (long long)total);
    }
    if (k > 20) {
        printf("\n(the %d×%d confusion matrix is in --json)\n", k, k);
        return;
    }
    printf("\nconfusion (rows: true class, columns: predicted class, by number):\n%24s", "");
    for (int j = 0; j < k; j++) printf(" %5d", j);
    printf("\n");
    for (int i = 0; i < k; i++) {
        printf("  %3d %-18.18s", i, ds->class_names[i]);
        for (int j = 0; j < k; j++) printf(" %5lld", (long long)r->confusion[(size_t)i * r->classes + j]);
        printf("\n");
    }
}

static void json_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
        else putchar(*s);
    }
    putchar('"');
}

static void print_json(const eval_result *r, const data_set *ds, const char *path, const char *dataset,
                       const ckpt_info *info, const char *split) {
    int k = ds->num_classes;
    printf("{\"checkpoint\": ");
    json_str(path);
    printf(", \"model\": ");
    json_str(info->model.name);
    printf(", \"dataset\": ");
    json_str(dataset);
    printf(", \"split\": \"%s\", \"images\": %lld, \"loss\": %.9g, \"top1\": %.9g, \"top5\": %.9g, \"classes\": [",
           split, (long long)r->n, r->loss, (double)r->top1 / r->n, (double)r->top5 / r->n);
    for (int i = 0; i < k; i++) {
        int64_t total = row_total(r, i);
        printf("%s{\"name\": ", i ? ", " : "");
        json_str(ds->class_names[i]);
        printf(", \"images\": %lld, \"correct\": %lld, \"accuracy\": %.9g}", (long long)total,
               (long long)r->confusion[(size_t)i * r->classes + i],
               total ? (double)r->confusion[(size_t)i * r->classes + i] / total : 0.0);
    }
    printf("], \"confusion\": [");
    for (int i = 0; i < k; i++) {
        printf("%s[", i ? ", " : "");
        for (int j = 0; j < k; j++) printf("%s%lld", j ? ", " : "", (long long)r->confusion[(size_t)i * r->classes + j]);
        printf("]");
    }
    printf("]}\n");
}

static const cli_command eval_command = {"eval", "--checkpoint FILE [options]",
                                         "Evaluates a checkpoint in evaluation mode."};

int cmd_eval_options(int argc, char **argv, eval_args *a, bool *done) {
    *a = (eval_args){.split = "test", .batch = 256};
    cli_opt o[] = {
        {"checkpoint", OPT_STRING, &a->path, "FILE", "checkpoint (.safetensors) written by cnn train"},
        {"dataset", OPT_CHOICE, &a->dataset, NULL, "data set (default: the checkpoint's)", 0, 0,
         "fashion-mnist|mnist|cifar10|cifar100"},
        {"data", OPT_STRING, &a->dir, "DIR", "directory of the data set files"},
        {"split", OPT_CHOICE, &a->split, NULL, "which split", 0, 0, "test|train"},
        {"batch-size", OPT_INT, &a->batch, "N", "images per step", 1, 65536},
        {"threads", OPT_INT, &a->threads, "N", "threads (0: all)", 0, 1024},
        {"json", OPT_FLAG, &a->json, NULL, "print JSON"},
    };
    int n = sizeof o / sizeof *o, npos;
    char *pos[1];
    int rc = cli_run_parse(&eval_command, argc, argv, o, n, pos, 0, &npos, done);
    if (rc || *done) return rc;
    if (!a->path) return cli_fail(&eval_command, cnn_fail(CNN_ERR_ARG, "--checkpoint FILE is required"));
    return EXIT_OK;
}

int cmd_eval(int argc, char **argv) {
    eval_args a;
    bool done;
    int rc = cmd_eval_options(argc, argv, &a, &done);
    if (rc || done) return rc;
    const char *path = a.path, *dataset = a.dataset, *dir = a.dir, *split = a.split;
    int batch = a.batch, threads = a.threads;
    bool json = a.json;
    if (threads > 0) omp_set_num_threads(threads);
    ckpt_info info;
    graph *g;
    cnn_status st = ckpt_load_model(path, &info, &g, batch, NULL);
    if (st) return cli_fail(&eval_command, st);
    if (!dataset) dataset = info.dataset[0] ? info.dataset : "fashion-mnist";
    data_set ds = {0};
    st = data_load(dataset, dir ? dir : data_default_dir(dataset), strcmp(split, "train") == 0 ? 0 : 1, &ds);
    if (!st && (ds.c != info.model.in_c || ds.h != info.model.in_h || ds.w != info.model.in_w))
        st = cnn_fail(CNN_ERR_SHAPE, "%s has %dx%dx%d images, the model in %s takes %dx%dx%d", dataset, ds.c, ds.h, ds.w,
                      path, info.model.in_c, info.model.in_h, info.model.in_w);
    evaluator *ev = NULL;
    eval_result r = {0};
    if (!st) st = evaluator_create(g, batch, &ev);
    if (!st) st = evaluator_run(ev, &ds, 0, ds.n, info.channels ? info.mean : NULL, info.channels ? info.std : NULL, true, &r);
    if (!st) {
        if (json) print_json(&r, &ds, path, dataset, &info, split);
        else print_text(&r, &ds, path, split);
    }
    eval_result_free(&r);
    evaluator_free(ev);
    data_free(&ds);
    graph_free(g);
    ckpt_info_free(&info);
    return st ? cli_fail(&eval_command, st) : EXIT_OK;
}
