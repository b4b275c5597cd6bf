/* trainer.c — the training loop (see trainer.h). */
#include "train/trainer.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/error.h"
#include "core/fileio.h"
#include "core/plan.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "data/folder.h"
#include "data/loader.h"
#include "ops/ops.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/progress.h"

void train_defaults(train_cfg *c) {
    memset(c, 0, sizeof *c);
    model_defaults(&c->model);
    c->model.name = "convnet";
    c->model.bn = true;
    c->dataset = "fashion-mnist";
    c->epochs = 2;
    c->batch = 64;
    optim_defaults(&c->opt, OPT_SGD);
    c->opt.lr = 0.05f;
    sched_defaults(&c->sched);
    c->sched.kind = SCHED_ONECYCLE;
    c->crop_pad = c->flip = -1;
    c->seed = 1;
    c->progress = -1;
}

typedef struct trainer {
    const train_cfg *cfg;
    data_set train, test;            /* in-memory data sets */
    folder_set ftrain, ftest;        /* or image folders */
    data_source *train_src, *val_src, *test_src; /* val_src: the held-out images (--val), else NULL */
    int workers;
    float mean[CKPT_MAX_CHANNELS], std[CKPT_MAX_CHANNELS];
    graph *g;
    plan *p;
    optimizer *opt;
    evaluator *ev;
    data_loader *loader;
    ckpt_info info;
    char dir[512];
    FILE *csv, *log;
    progress pr;
    int64_t step;
    double best;
} trainer;

static cnn_status setup_memory(trainer *t) {
    const train_cfg *c = t->cfg;
    const char *dir = c->data_dir ? c->data_dir : data_default_dir(c->dataset);
    if (!dir) return cnn_fail(CNN_ERR_ARG, "--dataset %s: unknown (fashion-mnist, mnist, cifar10, cifar100, folder)", c->dataset);
    if (c->image_size || c->resize)
        return cnn_fail(CNN_ERR_ARG, "--image-size and --resize apply to --dataset folder");
    CNN_TRY(data_load(c->dataset, dir, 0, &t->train));
    CNN_TRY(data_load(c->dataset, dir, 1, &t->test));
    if (c->val < 0 || c->val >= t->train.n)
        return cnn_fail(CNN_ERR_ARG, "--val %lld: must leave training images (the training split has %lld)",
                        (long long)c->val, (long long)t->train.n);
    int64_t first = c->val, count = t->train.n - c->val;
    if (c->limit > 0 && c->limit < count) count = c->limit;
    if (t->train.c > CKPT_MAX_CHANNELS) return cnn_fail(CNN_ERR_SHAPE, "%d-channel images", t->train.c);
    /* normalization from the training images only (seed 002, question 20) */
    data_channel_stats(&t->train, first, count, t->mean, t->std);
    bool cifar = strncmp(c->dataset, "cifar", 5) == 0;
    int pad = c->crop_pad >= 0 ? c->crop_pad : cifar ? 4 : 0, flip = c->flip >= 0 ? c->flip : cifar;
    CNN_TRY(memory_source_create(&t->train, first, count, pad, flip, t->mean, t->std, &t->train_src));
    if (c->val > 0) CNN_TRY(memory_source_create(&t->train, 0, c->val, 0, 0, t->mean, t->std, &t->val_src));
    return memory_source_create(&t->test, 0, t->test.n, 0, 0, t->mean, t->std, &t->test_src);
}

/* DIR/train and DIR/val with torchvision's ImageNet transforms; val keeps the training classes. */
static cnn_status setup_folder(trainer *t) {
    const train_cfg *c = t->cfg;
    if (!c->data_dir) return cnn_fail(CNN_ERR_ARG, "--dataset folder needs --data DIR (with DIR/train/<class>/ and DIR/val/<class>/)");
    if (c->val || c->limit) return cnn_fail(CNN_ERR_ARG, "--val and --limit apply to the in-memory data sets; a folder has its own val/");
    if (c->crop_pad > 0) return cnn_fail(CNN_ERR_ARG, "--crop applies to the in-memory data sets; folders use RandomResizedCrop");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/train", c->data_dir);
    CNN_TRY(folder_scan(dir, NULL, 0, &t->ftrain));
    snprintf(dir, sizeof dir, "%s/val", c->data_dir);
    CNN_TRY(folder_scan(dir, t->ftrain.class_names, t->ftrain.num_classes, &t->ftest));
    image_transform tt, te;
    int size = c->image_size > 0 ? c->image_size : 224;
    transform_defaults(&tt, 1, size);
    transform_defaults(&te, 0, size);
    if (c->resize > 0) te.resize = c->resize;
    if (c->flip == 0) tt.flip = 0;
    tt.reduced_dct = te.reduced_dct = !c->full_decode;
    t->info.full_decode = c->full_decode;
    memcpy(t->mean, te.mean, sizeof te.mean);
    memcpy(t->std, te.std, sizeof te.std);
    t->info.resize = te.resize;
    CNN_TRY(folder_source_create(&t->ftrain, &tt, &t->train_src));
    return folder_source_create(&t->ftest, &te, &t->test_src);
}

int data_default_workers(bool files) {
    if (!files) return 1;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 8 ? 8 : (int)n;
}

static cnn_status setup_data(trainer *t) {
    const train_cfg *c = t->cfg;
    bool folder = strcmp(c->dataset, "folder") == 0;
    t->workers = c->workers > 0 ? c->workers : data_default_workers(folder);
    CNN_TRY(folder ? setup_folder(t) : setup_memory(t));
    if (t->train_src->count < c->batch)
        return cnn_fail(CNN_ERR_ARG, "%lld training images are fewer than one batch of %d", (long long)t->train_src->count,
                        c->batch);
    return CNN_OK;
}

static cnn_status setup_model(trainer *t) {
    const train_cfg *c = t->cfg;
    model_cfg m = c->model;
    const data_source *src = t->train_src;
    m.in_c = src->c;
    m.in_h = src->h;
    m.in_w = src->w;
    m.classes = src->num_classes;
    m.seed = c->seed;
    CNN_TRY(model_build(&m, &t->g));
    graph_attach_losses(t->g, c->label_smoothing);
    if (!graph_ok(t->g)) return t->g->error;
    CNN_TRY(plan_create(t->g, c->batch, PLAN_TRAIN, &t->p));
    CNN_TRY(optim_create(t->g, &c->opt, &t->opt));
    CNN_TRY(evaluator_create(t->g, c->eval_batch > 0 ? c->eval_batch : c->batch, &t->ev));
    t->info.model = m;
    snprintf(t->info.name_buf, sizeof t->info.name_buf, "%s", m.name);
    t->info.model.name = t->info.name_buf;
    snprintf(t->info.dataset, sizeof t->info.dataset, "%s", c->dataset);
    t->info.channels = src->c;
    memcpy(t->info.mean, t->mean, sizeof t->mean);
    memcpy(t->info.std, t->std, sizeof t->std);
    return ckpt_info_set_classes(&t->info, src->class_names, src->num_classes);
}

static cnn_status setup_loader(trainer *t) {
    loader_config lc = {.src = t->train_src, .batch = t->cfg->batch, .shuffle = 1, .drop_last = 1, .fill_bad = 1,
                        .workers = t->workers, .seed = t->cfg->seed};
    return loader_create(&lc, &t->loader);
}

/* A fresh run directory: the given one must not hold a previous run; the default one gets a
 * numeric suffix instead of overwriting. */
static cnn_status setup_run_dir(trainer *t) {
    const train_cfg *c = t->cfg;
    if (c->out_dir) {
        snprintf(t->dir, sizeof t->dir, "%s", c->out_dir);
        char probe[600];
        snprintf(probe, sizeof probe, "%s/last.safetensors", t->dir);
        if (file_exists(probe))
            return cnn_fail(CNN_ERR_ARG, "--out %s already holds a run (last.safetensors); choose another directory "
                                         "or resume it with --resume %s", t->dir, t->dir);
    } else {
        for (int i = 1;; i++) {
            if (i == 1) snprintf(t->dir, sizeof t->dir, "runs/%s-%s", c->model.name, c->dataset);
            else snprintf(t->dir, sizeof t->dir, "runs/%s-%s-%d", c->model.name, c->dataset, i);
            if (!dir_exists(t->dir)) break;
        }
    }
    CNN_TRY(make_dirs(t->dir));
    char path[600];
    snprintf(path, sizeof path, "%s/metrics.csv", t->dir);
    t->csv = fopen(path, "w");
    if (!t->csv) return cnn_fail(CNN_ERR_IO, "cannot write %s", path);
    fprintf(t->csv, "epoch,lr,train_loss,train_top1,val_loss,val_top1,val_top5,seconds\n");
    fflush(t->csv);
    return CNN_OK;
}

static void trainer_free(trainer *t) {
    loader_destroy(t->loader);
    evaluator_free(t->ev);
    optim_free(t->opt);
    plan_free(t->p);
    graph_free(t->g);
    source_free(t->train_src);
    source_free(t->val_src);
    source_free(t->test_src);
    data_free(&t->train);
    data_free(&t->test);
    folder_free(&t->ftrain);
    folder_free(&t->ftest);
    ckpt_info_free(&t->info);
    if (t->csv) fclose(t->csv);
}

typedef struct epoch_stats {
    double loss, top1;
    int64_t images, bad;
    float lr;
} epoch_stats;

static cnn_status train_step(trainer *t, int n, float lr, epoch_stats *s, double *loss_sum, int64_t *correct) {
    uint64_t key = rng_key(t->cfg->seed, RNG_DROPOUT, (uint64_t)t->step, 0);
    CNN_TRY(plan_forward(t->p, true, key));
    double loss = plan_loss(t->p);
    if (!isfinite(loss))
        return cnn_fail(CNN_ERR_DIVERGED, "the loss is %g at step %lld (epoch %d): training diverged; try a smaller --lr",
                        loss, (long long)t->step, t->pr.epoch + 1);
    CNN_TRY(plan_backward(t->p));
    optim_step(t->opt, lr);
    int64_t top5 = 0;
    metrics_count(plan_logits(t->p), plan_labels(t->p), n, t->train_src->num_classes, correct, &top5, NULL);
    *loss_sum += loss * n;
    s->images += n;
    t->step++;
    return CNN_OK;
}

static cnn_status run_epoch(trainer *t, int epoch, epoch_stats *s) {
    const train_cfg *c = t->cfg;
    int64_t steps = loader_batches_per_epoch(t->loader);
    memset(s, 0, sizeof *s);
    loader_start_epoch(t->loader, epoch, 0);
    progress_begin(&t->pr, epoch, c->epochs, steps);
    double loss_sum = 0;
    int64_t correct = 0;
    for (int64_t k = 0; k < steps; k++) {
        int n;
        CNN_TRY(loader_next(t->loader, plan_input(t->p), plan_labels(t->p), &n));
        if (n != c->batch) return cnn_fail(CNN_ERR_INTERNAL, "loader gave %d images, expected %d", n, c->batch);
        s->lr = sched_lr(&c->sched, c->opt.lr, epoch, (int)k, c->epochs, (int)steps);
        CNN_TRY(train_step(t, n, s->lr, s, &loss_sum, &correct));
        progress_step(&t->pr, k + 1, s->images, loss_sum / s->images, (double)correct / s->images);
    }
    s->loss = loss_sum / s->images;
    s->top1 = (double)correct / s->images;
    s->bad = loader_bad_count(t->loader);
    return CNN_OK;
}

static cnn_status train_state_json(trainer *t, int epochs_done, char **out) {
    const train_cfg *c = t->cfg;
    json_writer w;
    json_writer_init(&w);
    json_begin_object(&w);
    json_write_key(&w, "epoch");
    json_write_int(&w, epochs_done);
    json_write_key(&w, "step");
    json_write_int(&w, t->step);
    json_write_key(&w, "epochs");
    json_write_int(&w, c->epochs);
    json_write_key(&w, "seed");
    json_write_int(&w, (int64_t)c->seed);
    json_write_key(&w, "batch_size");
    json_write_int(&w, c->batch);
    json_write_key(&w, "optimizer");
    json_write_string(&w, optim_name(c->opt.kind));
    json_write_key(&w, "lr");
    json_write_number(&w, c->opt.lr);
    json_write_key(&w, "momentum");
    json_write_number(&w, c->opt.momentum);
    json_write_key(&w, "weight_decay");
    json_write_number(&w, c->opt.weight_decay);
    json_write_key(&w, "schedule");
    json_write_string(&w, sched_name(c->sched.kind));
    json_write_key(&w, "optimizer_steps");
    json_write_int(&w, t->opt->step);
    json_write_key(&w, "val");
    json_write_int(&w, c->val);
    json_write_key(&w, "limit");
    json_write_int(&w, c->limit);
    json_write_key(&w, "best_val_top1");
    json_write_number(&w, t->best);
    json_end_object(&w);
    size_t len;
    return json_writer_finish(&w, out, &len);
}

static cnn_status save(trainer *t, int epochs_done, bool best) {
    char *state = NULL, path[600];
    CNN_TRY(train_state_json(t, epochs_done, &state));
    snprintf(path, sizeof path, "%s/last.safetensors", t->dir);
    cnn_status st = ckpt_save(path, t->g, &t->info, state, t->opt);
    if (!st && best) {
        snprintf(path, sizeof path, "%s/best.safetensors", t->dir);
        st = ckpt_save(path, t->g, &t->info, state, NULL);
    }
    free(state);
    return st;
}

static cnn_status validate(trainer *t, eval_result *r) {
    return evaluator_run(t->ev, t->val_src ? t->val_src : t->test_src, t->workers, false, r);
}

/* The epoch line's note: best so far, unreadable images skipped. */
static const char *epoch_note(char *buf, size_t n, bool best, const epoch_stats *s, const eval_result *r) {
    snprintf(buf, n, "%s", best ? "(best)" : "");
    if (s->bad + r->bad > 0)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%lld unreadable images skipped", best ? "  " : "",
                 (long long)(s->bad + r->bad));
    return buf[0] ? buf : NULL;
}

static cnn_status run_epochs(trainer *t, train_summary *sum) {
    const train_cfg *c = t->cfg;
    double t0 = progress_now();
    int64_t images = 0;
    t->best = -1;
    for (int e = 0; e < c->epochs; e++) {
        epoch_stats s;
        eval_result r;
        CNN_TRY(run_epoch(t, e, &s));
        CNN_TRY(validate(t, &r));
        double vtop1 = (double)r.top1 / r.n, vtop5 = (double)r.top5 / r.n;
        bool best = vtop1 > t->best;
        if (best) t->best = vtop1;
        double secs = progress_now() - t->pr.t0;
        char note[96];
        progress_end(&t->pr, s.images, s.loss, s.top1, r.loss, vtop1, vtop5, s.lr, epoch_note(note, sizeof note, best && e, &s, &r));
        fprintf(t->csv, "%d,%.6g,%.6f,%.6f,%.6f,%.6f,%.6f,%.3f\n", e + 1, s.lr, s.loss, s.top1, r.loss, vtop1, vtop5, secs);
        fflush(t->csv);
        CNN_TRY(save(t, e + 1, best));
        images += s.images;
        *sum = (train_summary){.epochs_done = e + 1, .train_loss = s.loss, .train_top1 = s.top1, .val_loss = r.loss,
                               .val_top1 = vtop1, .val_top5 = vtop5, .best_val_top1 = t->best, .test_top1 = -1,
                               .test_top5 = -1};
    }
    sum->seconds = progress_now() - t0;
    sum->images_per_second = images / sum->seconds;
    return CNN_OK;
}

cnn_status train_run(const train_cfg *cfg, train_summary *sum) {
    trainer t;
    memset(&t, 0, sizeof t);
    memset(sum, 0, sizeof *sum);
    t.cfg = cfg;
    if (cfg->epochs <= 0 || cfg->batch <= 0) return cnn_fail(CNN_ERR_ARG, "epochs and batch size must be positive");
    if (cfg->threads > 0) omp_set_num_threads(cfg->threads);
    t.log = cfg->log ? cfg->log : stdout;
    progress_init(&t.pr, t.log, cfg->progress);
    cnn_status st = setup_data(&t);
    if (!st) st = setup_model(&t);
    if (!st) st = setup_loader(&t);
    if (!st) st = setup_run_dir(&t);
    if (!st) {
        const data_source *src = t.train_src;
        fprintf(t.log, "training %s on %s: %lld images of %dx%dx%d, %d classes, %lld parameters; run directory %s\n",
                cfg->model.name, cfg->dataset, (long long)src->count, src->c, src->h, src->w, src->num_classes,
                (long long)graph_param_count(t.g, true), t.dir);
        st = run_epochs(&t, sum);
    }
    if (!st && cfg->val > 0) {
        eval_result r;
        st = evaluator_run(t.ev, t.test_src, t.workers, false, &r);
        if (!st) {
            sum->test_top1 = (double)r.top1 / r.n;
            sum->test_top5 = (double)r.top5 / r.n;
            fprintf(t.log, "test: loss %.4f  top1 %.2f%%  top5 %.2f%%\n", r.loss, 100 * sum->test_top1,
                    100 * sum->test_top5);
        }
    }
    snprintf(sum->run_dir, sizeof sum->run_dir, "%s", t.dir);
    trainer_free(&t);
    return st;
}
