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
#include "data/folder.h"
#include "data/loader.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/trainer.h"

static int64_t row_total(const eval_result *r, int i) {
    int64_t total = 0;
    for (int j = 0; j < r->classes; j++) total += r->confusion[(size_t)i * r->classes + j];
    return total;
}

static void print_text(const eval_result *r, const data_source *ds, const char *path, const char *split) {
    printf("%s on %s (%lld images): loss %.4f  top1 %.2f%%  top5 %.2f%%\n", path, split, (long long)r->n, r->loss,
           100.0 * r->top1 / r->n, 100.0 * r->top5 / r->n);
    if (r->bad) printf("%lld unreadable images skipped\n", (long long)r->bad);
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

static void print_json(const eval_result *r, const data_source *ds, const char *path, const char *dataset,
                       const ckpt_info *info, const char *split) {
    int k = ds->num_classes;
    printf("{\"checkpoint\": ");
    json_str(path);
    printf(", \"model\": ");
    json_str(info->model.name);
    printf(", \"dataset\": ");
    json_str(dataset);
    printf(", \"split\": \"%s\", \"images\": %lld, \"unreadable\": %lld, \"loss\": %.9g, \"top1\": %.9g, "
           "\"top5\": %.9g, \"classes\": [", split, (long long)r->n, (long long)r->bad, r->loss, (double)r->top1 / r->n,
           (double)r->top5 / r->n);
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

/* The data to evaluate on: an in-memory split, or DIR/val (DIR/train) of an image folder with the
   checkpoint's classes and evaluation transform. */
typedef struct eval_data {
    data_set ds;
    folder_set fs;
    data_source *src;
} eval_data;

static cnn_status open_data(const ckpt_info *info, const char *dataset, const char *dir, bool train, eval_data *d) {
    const float *mean = info->channels ? info->mean : NULL, *std = info->channels ? info->std : NULL;
    if (strcmp(dataset, "folder") != 0) {
        CNN_TRY(data_load(dataset, dir ? dir : data_default_dir(dataset), train ? 0 : 1, &d->ds));
        return memory_source_create(&d->ds, 0, d->ds.n, 0, 0, mean, std, &d->src);
    }
    if (!dir) return cnn_fail(CNN_ERR_ARG, "--dataset folder needs --data DIR (the folder with train/ and val/)");
    if (!info->class_names) return cnn_fail(CNN_ERR_FORMAT, "the checkpoint has no class names to match the folders with");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, train ? "train" : "val");
    image_transform t;
    CNN_TRY(ckpt_eval_transform(info, &t));
    CNN_TRY(folder_scan(path, info->class_names, info->num_classes, &d->fs));
    return folder_source_create(&d->fs, &t, &d->src);
}

static const cli_command eval_command = {"eval", "--checkpoint FILE [options]",
                                         "Evaluates a checkpoint in evaluation mode."};

int cmd_eval_options(int argc, char **argv, eval_args *a, bool *done) {
    *a = (eval_args){.split = "test", .batch = 256};
    cli_opt o[] = {
        {"checkpoint", OPT_STRING, &a->path, "FILE", "checkpoint (.safetensors) written by cnn train"},
        {"dataset", OPT_CHOICE, &a->dataset, NULL, "data set (default: the checkpoint's)", 0, 0,
         "fashion-mnist|mnist|cifar10|cifar100|folder"},
        {"data", OPT_STRING, &a->dir, "DIR", "directory of the data set files (folder: the one with train/ and val/)"},
        {"split", OPT_CHOICE, &a->split, NULL, "which split (folder: test is val/)", 0, 0, "test|train"},
        {"batch-size", OPT_INT, &a->batch, "N", "images per step", 1, 65536},
        {"threads", OPT_INT, &a->threads, "N", "threads (0: all)", 0, 1024},
        {"workers", OPT_INT, &a->workers, "N", "threads decoding images (0: 1 for in-memory sets, the cores up to 8 for folders)", 0, 256},
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
    eval_data d = {0};
    st = open_data(&info, dataset, dir, strcmp(split, "train") == 0, &d);
    evaluator *ev = NULL;
    eval_result r = {0};
    if (!st) st = evaluator_create(g, batch, &ev);
    if (!st) st = evaluator_run(ev, d.src, a.workers > 0 ? a.workers : data_default_workers(d.fs.n > 0), true, &r);
    if (!st) {
        if (json) print_json(&r, d.src, path, dataset, &info, split);
        else print_text(&r, d.src, path, split);
    }
    eval_result_free(&r);
    evaluator_free(ev);
    source_free(d.src);
    data_free(&d.ds);
    folder_free(&d.fs);
    graph_free(g);
    ckpt_info_free(&info);
    return st ? cli_fail(&eval_command, st) : EXIT_OK;
}
