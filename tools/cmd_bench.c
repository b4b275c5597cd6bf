/* cmd_bench.c — `cnn bench`: times a model's training step (forward, backward, SGD update) or
 * inference step on random data, profiles where the time goes per op type (convolutions by kind, with their
 * GFLOP/s), times checkpoint saves
 * against the step (--save); or, with --data,
 * the data loader alone on an image folder (decoding and transforms, as bench/imagefolder compares
 * with torchvision). */
#include <omp.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "backend/dnnl_backend.h"
#include "core/error.h"
#include "core/plan.h"
#include "core/rng.h"
#include "data/folder.h"
#include "data/loader.h"
#include "models/models.h"
#include "ops/ops.h"
#include "train/checkpoint.h"
#include "train/optim.h"
#include "train/progress.h"

#define MAX_ROWS 64

/* --profile: time per op type, convolutions split by how they run (op_def.kind), with the arithmetic
 * of the ops that count it (convolutions and linear layers: their direct multiply-adds) */
typedef struct profile {
    char row[MAX_ROWS][112];
    double fwd[MAX_ROWS], bwd[MAX_ROWS], flop[MAX_ROWS];
    int nrows;
    double last;
    bool on;
} profile;

/* A node's arithmetic in one pass: the forward's multiply-adds, or in the backward those of the weight
 * gradient plus, where its input needs one, the input gradient (every weight is trained here). */
static double node_flop(const plan *p, int nid, bool backward) {
    const node *n = &plan_graph(p)->nodes[nid];
    if (!n->op->macs) return 0;
    double f = 2.0 * (double)n->op->macs(plan_graph(p), n) * plan_batch(p);
    return backward ? f * ((n->nparams > 0) + plan_needs_grad(p, n->in[0])) : f;
}

static void profile_hook(plan *p, int nid, bool backward, void *ctx) {
    profile *pr = ctx;
    double now = progress_now();
    if (!pr->on) {
        pr->last = now;
        return;
    }
    const op_def *op = plan_graph(p)->nodes[nid].op;
    const char *kind = op->kind ? op->kind(p, nid) : NULL;
    char row[sizeof pr->row[0]];
    snprintf(row, sizeof row, "%s%s%s", op->type, kind ? " " : "", kind ? kind : "");
    int i = 0;
    while (i < pr->nrows && strcmp(pr->row[i], row)) i++;
    if (i == pr->nrows && pr->nrows < MAX_ROWS) snprintf(pr->row[pr->nrows++], sizeof row, "%s", row);
    if (i < MAX_ROWS) {
        (backward ? pr->bwd : pr->fwd)[i] += now - pr->last;
        pr->flop[i] += node_flop(p, nid, backward);
    }
    pr->last = now;
}

static void print_profile(const profile *pr, int steps) {
    double total = 0;
    for (int i = 0; i < pr->nrows; i++) total += pr->fwd[i] + pr->bwd[i];
    printf("\nper op (ms per step; GFLOP per step and GFLOP/s of convolutions and linear layers, forward and backward,\n"
           "counting direct multiply-adds; share of the time inside ops):\n  %-24s %10s %10s %10s %8s %7s\n",
           "op", "forward", "backward", "GFLOP", "GFLOP/s", "share");
    for (int i = 0; i < pr->nrows; i++) {
        const double t = pr->fwd[i] + pr->bwd[i];
        printf("  %-24s %10.3f %10.3f ", pr->row[i], 1e3 * pr->fwd[i] / steps, 1e3 * pr->bwd[i] / steps);
        if (pr->flop[i] > 0)
            printf("%10.5g %8.1f", pr->flop[i] / steps / 1e9, pr->flop[i] / t / 1e9);
        else
            printf("%10s %8s", "-", "-");
        printf(" %6.1f%%\n", 100 * t / total);
    }
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* --save DIR: `steps` writes of the model's checkpoint with its optimizer state, as cnn train writes
 * last.safetensors (temporary file, fsync, rename, fsync of the directory), against the step time. */
static cnn_status time_saves(const model_cfg *m, const graph *g, const optimizer *o, const char *dir, int steps,
                             double step_seconds) {
    ckpt_info info = {.model = *m, .channels = m->in_c <= CKPT_MAX_CHANNELS ? m->in_c : 0};
    snprintf(info.name_buf, sizeof info.name_buf, "%s", m->name);
    info.model.name = info.name_buf;
    snprintf(info.dataset, sizeof info.dataset, "random");
    for (int c = 0; c < CKPT_MAX_CHANNELS; c++) info.std[c] = 1;
    char path[4096];
    snprintf(path, sizeof path, "%s/bench.safetensors", dir);
    double *t = malloc(sizeof(double) * steps);
    if (!t) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    cnn_status st = CNN_OK;
    for (int i = 0; i < steps && !st; i++) {
        double t0 = progress_now();
        st = ckpt_save(path, g, &info, NULL, o);
        t[i] = progress_now() - t0;
    }
    struct stat sb;
    if (!st && stat(path, &sb) == 0) {
        qsort(t, steps, sizeof *t, by_value);
        double median = t[steps / 2];
        printf("checkpoint save (%.1f MB, weights and optimizer state, %s): median %.1f ms, min %.1f, max %.1f of %d; "
               "%.2f steps' time; --checkpoint-every 100 adds %.2f%%\n", sb.st_size / 1048576.0, path, 1e3 * median,
               1e3 * t[0], 1e3 * t[steps - 1], steps, median / step_seconds, 100 * median / (100 * step_seconds));
    }
    unlink(path);
    free(t);
    return st;
}

static cnn_status run(bench_args *a) {
    model_cfg *m = &a->model;
    int batch = a->batch, steps = a->steps, warmup = a->warmup;
    bool train = strcmp(a->mode, "train") == 0, prof = a->profile;
    graph *g;
    CNN_TRY(model_build(m, &g));
    g->bf16 = a->bf16;
    g->recompute = a->recompute;
    graph_attach_losses(g, 0);
    plan *p = NULL;
    optimizer *o = NULL;
    optim_cfg oc;
    optim_defaults(&oc, OPT_SGD);
    oc.lr = 0.01f;
    cnn_status st = plan_create(g, batch, train ? PLAN_TRAIN : PLAN_EVAL, &p);
    if (!st && train) st = optim_create(g, &oc, &o);
    if (!st) {
        rng r = rng_stream(rng_key(1, RNG_SPLIT, 0, 0));
        size_t n = (size_t)batch * m->in_c * m->in_h * m->in_w;
        for (size_t i = 0; i < n; i++) plan_input(p)[i] = rng_normal(&r);
        for (int i = 0; i < batch; i++) plan_labels(p)[i] = (int32_t)rng_below(&r, (uint32_t)m->classes);
    }
    profile pr = {0};
    if (prof) plan_set_hook(p, profile_hook, &pr);
    double t0 = 0;
    for (int i = 0; !st && i < warmup + steps; i++) {
        if (i == warmup) t0 = progress_now();
        pr.on = prof && i >= warmup;
        pr.last = progress_now();
        st = plan_forward(p, train, (uint64_t)i);
        if (!st && train) st = plan_backward(p);
        if (!st && train) optim_step(o, oc.lr);
    }
    if (!st) {
        double dt = progress_now() - t0;
        /* a training step is three convolutions' worth per layer: forward, backward data, backward weights */
        double flop = 2.0 * (double)graph_macs(g) * (train ? 3 : 1);
        printf("%s %s%s, input %dx%dx%d, batch %d, %d threads: %.1f img/s (%.2f ms per step, %d steps); activations %.1f MB; "
               "%.3f GFLOP per image, %.1f GFLOP/s\n", m->name, train ? "training" : "inference", a->bf16 ? " in bf16" : "",
               m->in_c, m->in_h, m->in_w,
               batch, omp_get_max_threads(), steps * batch / dt, 1e3 * dt / steps, steps, plan_arena_bytes(p) / 1048576.0,
               flop / 1e9, flop * steps * batch / dt / 1e9);
        if (prof) print_profile(&pr, steps);
        if (a->save && train) st = time_saves(m, g, o, a->save, steps, dt / steps);
    }
    optim_free(o);
    plan_free(p);
    graph_free(g);
    return st;
}

/* The machine's f32 matrix-multiply rate through oneDNN (dnnl_sgemm, n x n x n): the ceiling that
 * convolutions, themselves GEMM-like, come near at best. bench/run divides by it for "% of limit". The
 * fastest of `steps` calls (after two warm-up calls): on a shared machine a slow spell lowers the mean and
 * with it the ceiling, which would flatter every share of it (a mean of 318 GFLOP/s was seen where calls
 * reach 360-395). */
static cnn_status run_peak(int n, int steps) {
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n), *c = malloc(sizeof(float) * n * n);
    cnn_status st = a && b && c ? CNN_OK : cnn_fail(CNN_ERR_NOMEM, "out of memory for three %dx%d matrices", n, n);
    for (int64_t i = 0; !st && i < (int64_t)n * n; i++) a[i] = b[i] = (float)(i % 7) * 0.125f;
    double best = 0;
    for (int i = 0; !st && i < steps + 2; i++) {
        double t0 = progress_now();
        st = be_check(dnnl_sgemm('N', 'N', n, n, n, 1.0f, a, n, b, n, 0.0f, c, n), "dnnl_sgemm");
        double dt = progress_now() - t0;
        if (i >= 2 && dt > 0 && (best == 0 || dt < best)) best = dt;
    }
    if (!st)
        printf("sgemm %dx%dx%d, %d threads, fastest of %d calls: %.1f GFLOP/s\n", n, n, n, omp_get_max_threads(), steps,
               2.0 * n * n * (double)n / best / 1e9);
    free(a), free(b), free(c);
    return st;
}

static const cli_command bench_command = {
    "bench", "[--model NAME] [--input CxHxW] [--batch-size N] [--mode train|eval] [--profile]",
    "Times training steps (forward, backward, SGD update) or inference steps on random data."};

/* User + system time of all this process's threads. */
static double cpu_seconds(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

/* Whole epochs of an image folder through the loader, as training or evaluation would read it. */
static cnn_status run_loader(const bench_args *b) {
    folder_set f;
    CNN_TRY(folder_scan(b->data, NULL, 0, &f));
    image_transform t;
    int train = strcmp(b->mode, "train") == 0;
    transform_defaults(&t, train, b->image_size);
    if (b->resize) t.resize = b->resize;
    t.reduced_dct = !b->full_decode;
    data_source *src = NULL;
    data_loader *l = NULL;
    loader_config lc = {.batch = b->batch, .shuffle = train, .workers = b->workers, .seed = 1};
    cnn_status st = folder_source_create(&f, &t, &src);
    lc.src = src;
    if (!st) st = loader_create(&lc, &l);
    float *img = malloc(sizeof(float) * b->batch * 3 * b->image_size * b->image_size);
    int32_t *lab = malloc(sizeof(int32_t) * b->batch);
    if (!st && (!img || !lab)) st = cnn_fail(CNN_ERR_NOMEM, "out of memory for a batch");
    int64_t images = 0;
    double t0 = progress_now(), cpu0 = cpu_seconds();
    for (int e = 0; e < b->epochs && !st; e++) {
        loader_start_epoch(l, e, 0);
        int n;
        while (!(st = loader_next(l, img, lab, &n)) && n > 0) images += n;
    }
    double dt = progress_now() - t0, cpu = cpu_seconds() - cpu0;
    if (!st)
        printf("loader: %s transform, %dx%d, batch %d, %d workers: %.1f img/s (%lld images in %.2f s), "
               "CPU %.2f ms/img\n", train ? "training" : "evaluation", b->image_size, b->image_size, b->batch,
               b->workers, images / dt, (long long)images, dt, 1e3 * cpu / images);
    free(img), free(lab);
    loader_destroy(l);
    source_free(src);
    folder_free(&f);
    return st;
}

int cmd_bench_options(int argc, char **argv, bench_args *a, bool *done) {
    *a = (bench_args){.batch = 128, .steps = 20, .warmup = 3, .mode = "train", .precision = "f32", .workers = 2,
                      .image_size = 224,
                      .epochs = 1};
    model_defaults(&a->model);
    a->model.name = "resnet20";
    int input[3] = {0, 0, 0};
    const char *reg = NULL, *stages = NULL;
    cli_opt o[] = {
        {"model", OPT_STRING, &a->model.name, "NAME", "network (cnn models lists them)"},
        {"input", OPT_SHAPE, input, "CxHxW", "input shape (default: the model's)"},
        {"classes", OPT_INT, &a->model.classes, "N", "classes (default: the model's)", 2, 1000000},
        {"bn", OPT_FLAG, &a->model.bn, NULL, "convnet: batch norm after each convolution"},
        {"stochastic-depth", OPT_FLOAT, &a->model.stochastic_depth, "P", CLI_STOCHASTIC_DEPTH_HELP, -1, 0.95},
        {CLI_OPT_REGULATOR(reg)},
        {CLI_OPT_REGULATED_STAGES(stages)},
        {"batch-size", OPT_INT, &a->batch, "N", "images per step", 1, 65536},
        {"steps", OPT_INT, &a->steps, "N", "timed steps", 1, 1000000},
        {"warmup", OPT_INT, &a->warmup, "N", "untimed steps first", 0, 1000000},
        {"mode", OPT_CHOICE, &a->mode, NULL, "what a step is", 0, 0, "train|eval"},
        {"profile", OPT_FLAG, &a->profile, NULL, "time per op type, convolutions by kind (size, stride, Winograd), with their GFLOP/s (compare --peak)"},
        {"peak", OPT_FLAG, &a->peak, NULL, "time oneDNN's sgemm (2048^3) instead, the fastest of --steps calls: the f32 ceiling of this machine"},
        {"precision", OPT_CHOICE, &a->precision, NULL, "arithmetic: bf16 convolutions (needs AVX512-BF16; mixed precision, f32 weights)", 0, 0,
         "f32|bf16"},
        {"recompute", OPT_FLAG, &a->recompute, NULL, CLI_RECOMPUTE_HELP},
        {"save", OPT_STRING, &a->save, "DIR", "then time as many checkpoint saves (with optimizer state) into DIR"},
        {"threads", OPT_INT, &a->threads, "N", "threads (0: OMP_NUM_THREADS or all cores)", 0, 1024},
        {"data", OPT_STRING, &a->data, "DIR", "time the loader alone on an image folder DIR/<class>/<images>"},
        {"workers", OPT_INT, &a->workers, "N", "--data: loader threads", 1, 256},
        {"image-size", OPT_INT, &a->image_size, "N", "--data: output side", 1, 8192},
        {"resize", OPT_INT, &a->resize, "N", "--data: evaluation's shorter side (0: size*256/224)", 0, 16384},
        {"epochs", OPT_INT, &a->epochs, "N", "--data: epochs timed", 1, 1000},
        {"full-decode", OPT_FLAG, &a->full_decode, NULL, "--data: no reduced-scale JPEG decoding"},
    };
    int n = sizeof o / sizeof *o, npos;
    char *pos[1];
    int rc = cli_run_parse(&bench_command, argc, argv, o, n, pos, 0, &npos, done);
    if (rc || *done) return rc;
    if (be_precision_check(a->precision, &a->bf16)) return cli_fail(&bench_command, CNN_ERR_ARG);
    cnn_status st = cli_regulator(reg, stages, &a->model);
    if (st) return cli_fail(&bench_command, st);
    a->model.in_c = input[0];
    a->model.in_h = input[1];
    a->model.in_w = input[2];
    return EXIT_OK;
}

int cmd_bench(int argc, char **argv) {
    bench_args a;
    bool done;
    int rc = cmd_bench_options(argc, argv, &a, &done);
    if (rc || done) return rc;
    if (a.threads > 0) omp_set_num_threads(a.threads);
    if (a.peak) {
        cnn_status st = run_peak(2048, a.steps);
        return st ? cli_fail(&bench_command, st) : EXIT_OK;
    }
    if (a.data) {
        cnn_status st = run_loader(&a);
        return st ? cli_fail(&bench_command, st) : EXIT_OK;
    }
    if (a.save && strcmp(a.mode, "train"))
        return cli_fail(&bench_command, cnn_fail(CNN_ERR_ARG, "--save times the checkpoints of training: use --mode train"));
    if (a.recompute && strcmp(a.mode, "train"))
        return cli_fail(&bench_command, cnn_fail(CNN_ERR_ARG, "--recompute saves training's activation memory: use --mode train"));
    cnn_status st = run(&a);
    return st ? cli_fail(&bench_command, st) : EXIT_OK;
}
