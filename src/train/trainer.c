/* trainer.c — the training loop (see trainer.h): epochs of steps from a session, validation, the
 * monitors, checkpoints that hold everything needed to resume exactly, metrics.csv and curves.
 * Under mpirun every rank runs this loop on its shard of each batch and sees the same metrics;
 * rank 0 alone prints and writes the run directory. */
#include "train/trainer.h"
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include "core/error.h"
#include "core/fileio.h"
#include "train/diverge.h"
#include "train/evaluate.h"
#include "train/plot.h"
#include "train/progress.h"
#include "train/session.h"
#include "train/train_json.h"
#include "dist/dist.h"

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
    early_stop_defaults(&c->early);
    plateau_defaults(&c->plateau);
    c->crop_pad = c->flip = -1;
    c->seed = 1;
    c->progress = -1;
    c->plot = true;
}

cnn_status train_check(const train_cfg *c) {
    if (c->epochs <= 0 || c->batch <= 0) return cnn_fail(CNN_ERR_ARG, "epochs and batch size must be positive");
    if (c->eval_batch < 0 || c->threads < 0 || c->limit < 0 || c->val < 0 || c->checkpoint_every < 0)
        return cnn_fail(CNN_ERR_ARG, "negative eval batch size, threads, --limit, --val or --checkpoint-every");
    if (!(c->label_smoothing >= 0 && c->label_smoothing < 1))
        return cnn_fail(CNN_ERR_ARG, "--label-smoothing %g: expected a value in [0, 1)", c->label_smoothing);
    if (!(c->opt.clip_norm >= 0)) return cnn_fail(CNN_ERR_ARG, "--clip-norm %g: expected >= 0", c->opt.clip_norm);
    if (!(c->early.min_delta >= 0) || c->early.patience < 0)
        return cnn_fail(CNN_ERR_ARG, "--min-delta %g and --early-stop %d must not be negative", c->early.min_delta,
                        c->early.patience);
    const plateau_cfg *p = &c->plateau;
    if (c->sched.kind == SCHED_PLATEAU &&
        (!(p->factor > 0 && p->factor < 1) || p->patience < 0 || !(p->threshold >= 0) || p->cooldown < 0))
        return cnn_fail(CNN_ERR_ARG, "plateau: --plateau-factor %g must be in (0, 1); patience %d, threshold %g and "
                                     "cooldown %d must not be negative", p->factor, p->patience, p->threshold, p->cooldown);
    return sched_check(&c->sched, c->epochs);
}

typedef struct trainer {
    train_cfg cfg;             /* effective: as given, or as stored by the run being resumed */
    json_value *stored;        /* owns the resumed configuration's strings */
    st_file resume_file;       /* last.safetensors of the resumed run, until loaded */
    bool resuming, resuming_file;
    char data_dir[PATH_MAX];
    session s;
    evaluator *ev;
    ckpt_info info;
    char dir[512];
    int lock_fd;
    FILE *log;
    FILE *devnull;             /* the log of ranks other than 0 */
    bool lead;                 /* rank 0 (or the only process): prints and writes the run directory */
    progress pr;
    train_state st;
    train_position saved;      /* where last.safetensors stands (when has_saved) */
    bool has_saved;
} trainer;

static void trainer_free(trainer *t) {
    evaluator_free(t->ev);
    session_close(&t->s);
    ckpt_info_free(&t->info);
    train_state_free(&t->st);
    if (t->resuming_file) st_free(&t->resume_file);
    json_free(t->stored);
    if (t->lock_fd >= 0) close(t->lock_fd);
    if (t->devnull) fclose(t->devnull);
}

/* ---------- the configuration: given, or stored by the run to resume ---------- */

static cnn_status open_resumed(trainer *t, const char *dir) {
    char path[600];
    snprintf(path, sizeof path, "%s/last.safetensors", dir);
    if (!dir_exists(dir)) return cnn_fail(CNN_ERR_ARG, "--resume %s: no such directory", dir);
    if (!file_exists(path))
        return cnn_fail(CNN_ERR_ARG, "--resume %s: no last.safetensors there (not a run directory, or its first epoch "
                                     "never finished)", dir);
    ckpt_info info;
    CNN_TRY(ckpt_open(path, &t->resume_file, &info));
    t->resuming = t->resuming_file = true;
    t->stored = info.meta;
    info.meta = NULL;
    ckpt_info_free(&info);
    cnn_status st = train_json_read(t->stored ? json_get(t->stored, "train") : NULL, &t->cfg, &t->st);
    return st ? cnn_fail_context(st, "%s", path) : CNN_OK;
}

cnn_status train_load_config(const char *run_dir, train_cfg *cfg, json_value **keep) {
    trainer t;
    memset(&t, 0, sizeof t);
    t.lock_fd = -1;
    cnn_status st = open_resumed(&t, run_dir);
    *cfg = t.cfg;
    *keep = st ? NULL : t.stored;
    if (!st) t.stored = NULL;
    trainer_free(&t);
    return st;
}

/* A resumed run keeps its configuration; what may change is taken from `in` (see trainer.h). */
static cnn_status setup_resume(trainer *t, const train_cfg *in) {
    CNN_TRY(open_resumed(t, in->resume_dir));
    train_cfg *c = &t->cfg;
    int done = t->st.pos.epoch, old_epochs = c->epochs;
    if (in->epochs > 0) c->epochs = in->epochs;
    c->threads = in->threads;
    c->workers = in->workers;
    c->eval_batch = in->eval_batch;
    c->checkpoint_every = in->checkpoint_every;
    c->recompute = in->recompute; /* the same gradients either way */
    if (in->data_dir) c->data_dir = in->data_dir;
    c->progress = in->progress;
    c->log = in->log;
    c->quiet = in->quiet;
    c->plot = in->plot;
    c->stop = in->stop;
    c->out_dir = in->resume_dir;
    c->resume_dir = in->resume_dir;
    if (t->st.early.stopped)
        return cnn_fail(CNN_ERR_ARG, "--resume %s: the run was stopped early after epoch %d (%s did not improve for %d "
                                     "epochs); there is nothing to continue", in->resume_dir, done,
                        metric_name(c->early.monitor), c->early.patience);
    if (done >= c->epochs && t->st.pos.batch == 0)
        return cnn_fail(CNN_ERR_ARG, "--resume %s: the run has finished its %d epochs; give --epochs N (more than %d) "
                                     "to continue it", in->resume_dir, done, done);
    if (c->epochs < done) return cnn_fail(CNN_ERR_ARG, "--epochs %d: the run has done %d already", c->epochs, done);
    if (c->epochs != old_epochs && (c->sched.kind == SCHED_COSINE || c->sched.kind == SCHED_ONECYCLE))
        fprintf(in->log ? in->log : stdout, "note: the %s schedule now spans %d epochs instead of %d: the learning "
                "rate follows the new curve from epoch %d on\n", sched_name(c->sched.kind), c->epochs, old_epochs, done + 1);
    return CNN_OK;
}

static cnn_status setup_model_info(trainer *t) {
    const session *s = &t->s;
    ckpt_info *i = &t->info;
    i->model = t->cfg.model;
    i->model.in_c = s->c;
    i->model.in_h = s->h;
    i->model.in_w = s->w;
    i->model.classes = s->classes;
    i->model.seed = t->cfg.seed;
    snprintf(i->name_buf, sizeof i->name_buf, "%s", t->cfg.model.name);
    i->model.name = i->name_buf;
    CNN_TRY(model_resolve(&i->model)); /* the checkpoint records the values used, the model's defaults included */
    snprintf(i->dataset, sizeof i->dataset, "%s", t->cfg.dataset);
    i->channels = s->c;
    memcpy(i->mean, s->mean, sizeof s->mean);
    memcpy(i->std, s->std, sizeof s->std);
    if (s->folder) {
        i->full_decode = t->cfg.full_decode;
        i->resize = s->ttest.resize;
    }
    return ckpt_info_set_classes(i, s->class_names, s->classes);
}

/* ---------- the run directory ---------- */

/* One cnn train per run directory at a time: a second one would interleave checkpoints. */
static cnn_status lock_run_dir(trainer *t) {
    char path[600];
    snprintf(path, sizeof path, "%s/.lock", t->dir);
    t->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (t->lock_fd < 0) return cnn_fail(CNN_ERR_IO, "cannot create %s", path);
    if (flock(t->lock_fd, LOCK_EX | LOCK_NB) != 0)
        return cnn_fail(CNN_ERR_ARG, "%s is in use by another cnn train", t->dir);
    return CNN_OK;
}

static cnn_status write_csv(trainer *t) {
    char path[600];
    snprintf(path, sizeof path, "%s/metrics.csv", t->dir);
    return history_write_csv(&t->st.hist, path);
}

/* Temporaries of the files a run writes, left by a cnn train killed while saving (fileio.h names
 * them ".<base>.tmp.<pid>[.<n>]"); the run's lock says that their writer is gone. */
static void remove_stale_temporaries(const trainer *t) {
    static const char *const files[] = {"last.safetensors", "best.safetensors", "metrics.csv", "curves.png"};
    DIR *d = opendir(t->dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));)
        for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
            char prefix[64];
            snprintf(prefix, sizeof prefix, ".%s.tmp.", files[i]);
            if (!strncmp(e->d_name, prefix, strlen(prefix))) unlinkat(dirfd(d), e->d_name, 0);
        }
    closedir(d);
}

/* A fresh run directory: the given one must not hold a previous run; the default one gets a
 * numeric suffix instead of overwriting. A resumed run continues in its own. */
static cnn_status setup_run_dir(trainer *t) {
    const train_cfg *c = &t->cfg;
    if (t->resuming) {
        snprintf(t->dir, sizeof t->dir, "%s", c->resume_dir);
        CNN_TRY(lock_run_dir(t));
        remove_stale_temporaries(t);
        return CNN_OK;
    }
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
    CNN_TRY(lock_run_dir(t));
    return write_csv(t);
}

static cnn_status setup(trainer *t, const train_cfg *in) {
    if (in->resume_dir) CNN_TRY(setup_resume(t, in));
    else {
        t->cfg = *in;
        train_state_init(&t->st, &t->cfg);
    }
    train_cfg *c = &t->cfg;
    CNN_TRY(train_check(c));
    int ranks = dist_size();
    if (c->batch % ranks)
        return cnn_fail(CNN_ERR_ARG, "--batch-size %d: the batch is split evenly across the %d processes; give a "
                                     "multiple of %d", c->batch, ranks, ranks);
    if (c->threads > 0) omp_set_num_threads(c->threads);
    c->threads = omp_get_max_threads(); /* recorded: the same count gives the same bits */
    if (c->data_dir && realpath(c->data_dir, t->data_dir)) c->data_dir = t->data_dir;
    CNN_TRY(session_data(&t->s, c, true));
    c->crop_pad = t->s.crop_pad; /* recorded resolved */
    c->flip = t->s.flip;
    t->s.rank = dist_rank();
    t->s.ranks = ranks;
    CNN_TRY(session_model(&t->s, c->batch / ranks));
    CNN_TRY(session_loader(&t->s, t->s.count, true));
    int eval_batch = c->eval_batch > 0 ? c->eval_batch : c->batch;
    CNN_TRY(evaluator_create(t->s.g, (eval_batch + ranks - 1) / ranks, &t->ev));
    evaluator_shard(t->ev, t->s.rank, ranks);
    CNN_TRY(setup_model_info(t));
    if (t->lead) CNN_TRY(setup_run_dir(t));
    if (!t->resuming) return CNN_OK;
    const char *path = "last.safetensors of the resumed run";
    CNN_TRY(ckpt_load_params(&t->resume_file, path, t->s.g));
    CNN_TRY(ckpt_load_optim(&t->resume_file, path, t->s.opt));
    st_free(&t->resume_file); /* the file's copy of the weights is not needed any more */
    t->resuming_file = false;
    t->s.opt->step = t->st.pos.optimizer_steps;
    t->s.step = t->st.pos.step;
    t->saved = t->st.pos, t->has_saved = true;
    return t->lead ? write_csv(t) : CNN_OK; /* rows after the checkpoint (a crash between the two) go */
}

/* Every rank takes rank 0's parameters and buffers: once at the start (the same seed gives the same
 * weights, but nothing else would notice if it did not), before evaluations (with per-rank batch
 * norm, rank 0's running statistics, as PyTorch DDP's broadcast_buffers) and after restoring the
 * best epoch (which rank 0 alone reads). */
static void share_weights(trainer *t) {
    graph *g = t->s.g;
    if (t->s.ranks <= 1) return;
    dist_broadcast(g->arena, g->grads_off);
    g->version++; /* layout views of the weights are out of date */
}

/* ---------- epochs ---------- */

static float current_lr(const trainer *t, int epoch, int64_t k, int64_t steps) {
    const train_cfg *c = &t->cfg;
    if (c->sched.kind == SCHED_PLATEAU) return t->st.plat.lr;
    return sched_lr(&c->sched, c->opt.lr, epoch, (int)k, c->epochs, (int)steps);
}

static cnn_status save(trainer *t, bool best) {
    char *state = NULL, path[600];
    int bad = diverge_bad_param(t->s.g, true); /* the last good checkpoint stays */
    if (bad >= 0)
        return cnn_fail(CNN_ERR_DIVERGED, "%s %s is not finite after step %lld: training diverged; try a smaller --lr",
                        param_trainable(&t->s.g->params[bad]) ? "parameter" : "running statistic",
                        t->s.g->params[bad].name, (long long)t->s.step);
    if (!t->lead) return CNN_OK; /* every rank checks (they hold the same weights), rank 0 writes */
    CNN_TRY(train_json_write(&t->cfg, &t->st, &state));
    snprintf(path, sizeof path, "%s/last.safetensors", t->dir);
    cnn_status st = ckpt_save(path, t->s.g, &t->info, state, t->s.opt);
    if (!st && best) {
        snprintf(path, sizeof path, "%s/best.safetensors", t->dir);
        st = ckpt_save(path, t->s.g, &t->info, state, NULL);
    }
    free(state);
    if (!st) t->saved = t->st.pos, t->has_saved = true;
    return st;
}

static cnn_status run_epoch(trainer *t, float *lr) {
    train_position *p = &t->st.pos;
    int64_t steps = loader_batches_per_epoch(t->s.loader);
    int batch = t->cfg.batch; /* global: session_step's loss and hits are the global batch's */
    loader_start_epoch(t->s.loader, p->epoch, p->batch);
    progress_begin(&t->pr, p->epoch, t->cfg.epochs, steps);
    t->pr.t0 -= p->seconds;
    *lr = current_lr(t, p->epoch, p->batch ? p->batch - 1 : 0, steps);
    for (int64_t k = p->batch; k < steps; k++) {
        *lr = current_lr(t, p->epoch, k, steps);
        double loss;
        int64_t correct;
        cnn_status st = session_step(&t->s, *lr, true, &loss, &correct);
        if (st) return cnn_fail_context(st, "epoch %d", p->epoch + 1);
        p->loss_sum += loss * batch;
        p->correct += correct;
        p->images += batch;
        p->batch = k + 1;
        p->step = t->s.step;
        p->optimizer_steps = t->s.opt->step;
        p->seconds = progress_now() - t->pr.t0; /* the position is complete after every step */
        if (!t->cfg.quiet) progress_step(&t->pr, k + 1, p->images, p->loss_sum / p->images, (double)p->correct / p->images);
        /* by the global step, so that a resumed run keeps the rhythm; the epoch's end saves anyway */
        int every = t->cfg.checkpoint_every;
        if (every > 0 && p->step % every == 0 && k + 1 < steps) CNN_TRY(save(t, false));
    }
    return CNN_OK;
}

/* An evaluation pass; with several ranks each evaluates its shard and the sums are added. */
static cnn_status evaluate(trainer *t, const data_source *src, eval_result *r) {
    share_weights(t);
    CNN_TRY(evaluator_run(t->ev, src, t->s.workers, false, r));
    if (t->s.ranks <= 1) return CNN_OK;
    double v[5] = {r->loss * r->n, (double)r->n, (double)r->top1, (double)r->top5, (double)r->bad};
    dist_sum(v, 5);
    r->n = (int64_t)v[1], r->top1 = (int64_t)v[2], r->top5 = (int64_t)v[3], r->bad = (int64_t)v[4];
    r->loss = r->n ? v[0] / r->n : 0;
    return CNN_OK;
}

static cnn_status validate(trainer *t, eval_result *r) {
    const session *s = &t->s;
    return evaluate(t, s->val_src ? s->val_src : s->test_src, r);
}

static void write_curves(trainer *t) {
    if (!t->cfg.plot) return;
    char path[600], title[160];
    snprintf(path, sizeof path, "%s/curves.png", t->dir);
    snprintf(title, sizeof title, "%s on %s", t->cfg.model.name, t->cfg.dataset);
    plot_run run = {t->dir, &t->st.hist};
    if (plot_curves(path, &run, 1, title) != CNN_OK) {
        fprintf(t->log, "warning: cannot draw %s: %s (training goes on without curves)\n", path, cnn_last_error());
        t->cfg.plot = false;
    }
}

/* After an epoch's steps: validation, the monitors, the checkpoints, metrics.csv, curves. */
static cnn_status end_epoch(trainer *t, float lr) {
    train_state *s = &t->st;
    train_position *p = &s->pos;
    eval_result r;
    CNN_TRY(validate(t, &r));
    epoch_row row = {.epoch = p->epoch + 1, .lr = lr, .train_loss = p->loss_sum / p->images,
                     .train_top1 = (double)p->correct / p->images, .val_loss = r.loss,
                     .val_top1 = (double)r.top1 / r.n, .val_top5 = (double)r.top5 / r.n,
                     .seconds = progress_now() - t->pr.t0};
    int64_t images = p->images;
    bool best = early_stop_update(&s->early, row.epoch, epoch_row_metric(&row, t->cfg.early.monitor));
    bool reduced = t->cfg.sched.kind == SCHED_PLATEAU && plateau_step(&s->plat, epoch_row_metric(&row, t->cfg.plateau.monitor));
    *p = (train_position){.epoch = row.epoch, .step = t->s.step, .optimizer_steps = t->s.opt->step};
    CNN_TRY(history_add(&s->hist, &row));
    CNN_TRY(save(t, best));
    if (t->lead) {
        CNN_TRY(write_csv(t));
        write_curves(t);
    }
    char note[160] = "";
    if (best && row.epoch > 1) snprintf(note, sizeof note, "(best %s)", metric_name(t->cfg.early.monitor));
    if (reduced) snprintf(note + strlen(note), sizeof note - strlen(note), "%s(plateau: lr -> %.3g)", *note ? " " : "",
                          s->plat.lr);
    int64_t bad = loader_bad_count(t->s.loader) + r.bad;
    if (bad > 0)
        snprintf(note + strlen(note), sizeof note - strlen(note), "%s%lld unreadable images skipped", *note ? "  " : "",
                 (long long)bad);
    if (!t->cfg.quiet)
        progress_end(&t->pr, images, row.train_loss, row.train_top1, row.val_loss, row.val_top1, row.val_top5, lr,
                     *note ? note : NULL);
    return CNN_OK;
}

static cnn_status run_epochs(trainer *t, train_summary *sum) {
    const train_cfg *c = &t->cfg;
    train_state *s = &t->st;
    while (s->pos.epoch < c->epochs) {
        float lr;
        CNN_TRY(run_epoch(t, &lr));
        CNN_TRY(end_epoch(t, lr));
        if (s->early.stopped) {
            sum->stopped_early = true;
            fprintf(t->log, "early stopping: %s has not improved for %d epochs (best %.6g at epoch %d)\n",
                    metric_name(c->early.monitor), c->early.patience, s->early.best, s->early.best_epoch);
            break;
        }
        double stop = c->stop && *c->stop;
        if (t->s.ranks > 1) dist_sum(&stop, 1); /* all ranks stop together */
        if (stop && s->pos.epoch < c->epochs) {
            sum->interrupted = true;
            fprintf(t->log, "interrupted: the run is saved after epoch %d; continue it with cnn train --resume %s\n",
                    s->pos.epoch, t->dir);
            break;
        }
    }
    return CNN_OK;
}

/* ---------- the end ---------- */

/* A diverged run says which checkpoint it leaves: the last one saved before, untouched. */
static cnn_status diverged(const trainer *t, cnn_status st) {
    const train_position *p = &t->saved;
    char msg[1024], kept[700];
    snprintf(msg, sizeof msg, "%s", cnn_last_error());
    if (!t->has_saved) snprintf(kept, sizeof kept, "nothing was saved: it diverged before the first checkpoint");
    else if (p->batch == 0)
        snprintf(kept, sizeof kept, "%s/last.safetensors stays as saved after epoch %d (step %lld)", t->dir, p->epoch,
                 (long long)p->step);
    else
        snprintf(kept, sizeof kept, "%s/last.safetensors stays as saved at step %lld (epoch %d, batch %lld)", t->dir,
                 (long long)p->step, p->epoch + 1, (long long)p->batch);
    return cnn_fail(st, "%s; %s", msg, kept);
}

static cnn_status restore_best(trainer *t) {
    const early_stop *e = &t->st.early;
    if (!t->cfg.early.restore_best || e->best_epoch <= 0 || e->best_epoch == t->st.pos.epoch) return CNN_OK;
    cnn_status st = CNN_OK;
    if (t->lead) {
        char path[600];
        snprintf(path, sizeof path, "%s/best.safetensors", t->dir);
        st_file f;
        st = st_read(path, &f);
        if (!st) {
            st = ckpt_load_params(&f, path, t->s.g);
            st_free(&f);
        }
    }
    st = dist_agree(st);
    if (!st) share_weights(t);
    if (!st)
        fprintf(t->log, "restored the weights of epoch %d (best %s %.6g)\n", e->best_epoch,
                metric_name(t->cfg.early.monitor), e->best);
    return st;
}

static cnn_status final_test(trainer *t, train_summary *sum) {
    if (t->cfg.val <= 0) return CNN_OK;
    eval_result r;
    CNN_TRY(evaluate(t, t->s.test_src, &r));
    sum->test_top1 = (double)r.top1 / r.n;
    sum->test_top5 = (double)r.top5 / r.n;
    fprintf(t->log, "test: loss %.4f  top1 %.2f%%  top5 %.2f%%\n", r.loss, 100 * sum->test_top1, 100 * sum->test_top5);
    return CNN_OK;
}

/* Under mpirun: where a step's time went (docs/distributed.md uses these figures). */
static void report_allreduce(const trainer *t) {
    const session *s = &t->s;
    if (s->backward_steps == 0) return;
    fprintf(t->log, "data-parallel: %d process%s of batch %d: backward %.2f ms per step", s->ranks, s->ranks > 1 ? "es" : "",
            s->batch, 1e3 * s->backward_s / s->backward_steps);
    if (s->sync) {
        dist_stats d = dist_grads_stats(s->sync);
        fprintf(t->log, ", then %.2f ms waiting for the all-reduce of %.2f MB (%d buckets)", 1e3 * d.wait_s / d.steps,
                d.bytes / 1e6, d.buckets);
    }
    fprintf(t->log, "\n");
}

static void summarize(const trainer *t, train_summary *sum, double seconds, int64_t images) {
    const history *h = &t->st.hist;
    sum->epochs_done = t->st.pos.epoch;
    sum->best_epoch = t->st.early.best_epoch;
    if (h->n) {
        const epoch_row *last = &h->rows[h->n - 1];
        sum->train_loss = last->train_loss;
        sum->train_top1 = last->train_top1;
        sum->val_loss = last->val_loss;
        sum->val_top1 = last->val_top1;
        sum->val_top5 = last->val_top5;
        sum->best_val_top1 = history_best_top1(h)->val_top1;
        sum->best_val_top1_epoch = history_best_top1(h)->epoch;
    }
    sum->seconds = seconds;
    sum->images_per_second = seconds > 0 ? images / seconds : 0;
}

cnn_status train_run(const train_cfg *cfg, train_summary *sum) {
    trainer t;
    memset(&t, 0, sizeof t);
    memset(sum, 0, sizeof *sum);
    sum->test_top1 = sum->test_top5 = -1;
    t.lock_fd = -1;
    t.lead = dist_rank() == 0;
    t.log = cfg->log ? cfg->log : stdout;
    if (!t.lead && (t.devnull = fopen("/dev/null", "w"))) t.log = t.devnull;
    /* under mpirun rank 0's stdout is a terminal of mpirun's, whatever mpirun's own output is: lines */
    progress_init(&t.pr, t.log, dist_active() && cfg->progress < 0 ? 0 : cfg->progress);
    cnn_status st = dist_agree(setup(&t, cfg)); /* a rank that cannot start stops them all */
    if (!st) share_weights(&t);
    double t0 = progress_now(), seconds = 0;
    int64_t step0 = t.st.pos.step;
    if (!st) {
        const train_cfg *c = &t.cfg;
        if (t.resuming)
            fprintf(t.log, "resuming %s at epoch %d of %d (step %lld)\n", t.dir, t.st.pos.epoch + 1, c->epochs,
                    (long long)t.st.pos.step);
        else
            fprintf(t.log, "training %s on %s: %lld images of %dx%dx%d, %d classes, %lld parameters; run directory %s\n",
                    c->model.name, c->dataset, (long long)t.s.count, t.s.c, t.s.h, t.s.w, t.s.classes, (long long)graph_param_count(t.s.g, true), t.dir);
        if (t.s.ranks > 1)
            fprintf(t.log, "data-parallel: %d processes, %d images each of every batch of %d; batch norm %s\n",
                    t.s.ranks, t.s.batch, c->batch, c->sync_bn ? "synchronized (global batch statistics)" :
                    "per process (running statistics of rank 0)");
        fflush(t.log);
        st = run_epochs(&t, sum);
        /* every rank meets a divergence at the same step (loss, gradients and weights are alike on all) */
        if (st == CNN_ERR_DIVERGED) st = dist_agree(diverged(&t, st));
        seconds = progress_now() - t0;
        if (!st && dist_active()) report_allreduce(&t);
    }
    if (!st) st = restore_best(&t);
    if (!st) st = final_test(&t, sum);
    summarize(&t, sum, seconds, (t.st.pos.step - step0) * t.cfg.batch);
    snprintf(sum->run_dir, sizeof sum->run_dir, "%s", t.dir);
    trainer_free(&t);
    return st;
}
