/* cmd_sanity.c — `cnn sanity --model M [train options]`: the checklist before a long training
 * (seed 004, question 11): initial loss against ln(C), overfitting a small sample, an LR range
 * test with a suggested learning rate; a verdict per check, exit status 4 when one fails. */
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "core/error.h"
#include "train/plot.h"
#include "train/sanity.h"
#include "train_opts.h"

static const cli_command sanity_command = {
    "sanity", "--model M [options]",
    "Runs the checklist before a long training: (1) the initial loss against ln(C),\n"
    "(2) overfitting a small sample to 100% training accuracy, (3) an LR range test that\n"
    "suggests a learning rate. Prints a verdict per check; exits with 4 if one fails."};

static const char *verdict(bool pass) { return pass ? "PASS" : "FAIL"; }

static void print_initial(const sanity_initial *r) {
    printf("1. initial loss %.4f, ln(%d) = %.4f: off by %.4f (tolerance %.2f; logits spread %.3f across classes)  %s\n",
           r->loss, r->classes, r->expected, r->loss - r->expected, r->tolerance, r->logit_std, verdict(r->pass));
    if (!r->pass)
        printf("   a fresh model should predict nearly uniformly: check the initialization and the last layer\n");
}

static void print_overfit(const sanity_overfit *r) {
    int per_pass = r->sample / r->batch * r->batch;
    printf("2. overfitting %d images (batch %d, no augmentation): %.0f/%d right after %d steps, loss %.4f  %s\n", r->sample,
           r->batch, r->top1 * per_pass, per_pass, r->steps, r->loss, verdict(r->pass));
    if (!r->pass)
        printf("   a model that cannot learn a handful of images by heart has a bug, or --lr is far off: see check 3\n");
}

static void print_range(const sanity_range *r, const sanity_cfg *c) {
    printf("3. LR range test, lr %g to %g over %d steps%s: smoothed loss from %.4f down to %.4f at lr %.3g\n",
           c->range_start, c->range_end, r->n, r->diverged ? " (stopped: diverged)" : "", r->start_loss, r->min_loss,
           r->lr_at_min);
    if (r->steepest > 0) printf("   steepest fall at lr %.3g\n", r->steepest);
    printf("   suggested lr %.3g (a tenth of the lr at the lowest smoothed loss)  %s\n", r->suggested, verdict(r->pass));
    if (!r->pass) printf("   the loss does not fall at any learning rate: check the data, the labels and the model\n");
}

int cmd_sanity(int argc, char **argv) {
    train_opts t;
    train_opts_init(&t, TO_MODEL | TO_OPTIM);
    sanity_cfg sc;
    sanity_defaults(&sc);
    const char *plot = NULL;
    float fstart = (float)sc.range_start, fend = (float)sc.range_end; /* the parser fills floats */
    cli_opt extra[] = {
        {"sample", OPT_INT, &sc.sample, "N", "check 2: images to overfit", 1, 100000},
        {"overfit-steps", OPT_INT, &sc.overfit_steps, "N", "check 2: most steps", 1, 1000000},
        {"range-steps", OPT_INT, &sc.range_steps, "N", "check 3: steps of the LR range test", 10, 1000000},
        {"range-start", OPT_FLOAT, &fstart, "F", "check 3: first lr", 1e-12, 1e3},
        {"range-end", OPT_FLOAT, &fend, "F", "check 3: last lr", 1e-9, 1e4},
        {"plot", OPT_STRING, &plot, "FILE", "check 3: draw the loss against the lr into this PNG"},
    };
    for (size_t i = 0; i < sizeof extra / sizeof *extra; i++) t.o[t.n++] = extra[i];
    bool done;
    int rc = train_opts_parse(&t, &sanity_command, argc, argv, &done);
    if (rc || done) return rc;
    sc.range_start = fstart;
    sc.range_end = fend;
    if (t.c.threads > 0) omp_set_num_threads(t.c.threads);
    session s;
    memset(&s, 0, sizeof s);
    sanity_initial ri;
    sanity_overfit ro;
    sanity_range rr = {0};
    cnn_status st = session_data(&s, &t.c, false);
    if (!st) {
        printf("sanity checks of %s on %s: %lld training images, batch %d, %s at lr %g\n", t.c.model.name, t.c.dataset,
               (long long)s.count, t.c.batch, optim_name(t.c.opt.kind), t.c.opt.lr);
        st = sanity_initial_loss(&s, &ri);
    }
    if (!st) print_initial(&ri), fflush(stdout), st = sanity_overfit_sample(&s, &sc, &ro);
    if (!st) print_overfit(&ro), fflush(stdout), st = sanity_lr_range(&s, &sc, &rr);
    if (!st) print_range(&rr, &sc);
    if (!st && plot) {
        char title[160];
        snprintf(title, sizeof title, "%s on %s, %s, batch %d", t.c.model.name, t.c.dataset, optim_name(t.c.opt.kind),
                 t.c.batch);
        st = plot_lr_range(plot, rr.lr, rr.loss, rr.smoothed, rr.n, rr.suggested, title);
        if (!st) printf("wrote %s\n", plot);
    }
    bool pass = !st && ri.pass && ro.pass && rr.pass;
    sanity_range_free(&rr);
    session_close(&s);
    train_opts_free(&t);
    if (st) return cli_fail(&sanity_command, st);
    printf("%s\n", pass ? "all checks passed" : "a check failed");
    return pass ? EXIT_OK : EXIT_CHECK_FAILED;
}
