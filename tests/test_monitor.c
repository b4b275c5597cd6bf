/* test_monitor.c — early stopping and the best epoch on scripted metric sequences, against Keras 3's
 * EarlyStopping rules worked by hand in each table (improvement: v < best − δ for min, v > best + δ
 * for max; wait counts epochs since the last improvement; stop when wait >= patience, never after
 * the first epoch); the training state's JSON round trip; metrics.csv written and read back.
 * ReduceLROnPlateau is compared with PyTorch itself in test_schedules_torch.py. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "testutil.h"
#include "train/history.h"
#include "train/monitor.h"
#include "train/train_json.h"

typedef struct es_case {
    const char *name;
    metric_id monitor;
    monitor_mode mode;
    float min_delta;
    int patience;
    int n;
    double values[12];
    const char *best;         /* per epoch: 'b' new best, '.' not */
    int stop_epoch;           /* 1-based epoch after which training stops; 0: never */
    int best_epoch;
} es_case;

static const es_case cases[] = {
    /* 1.0 b, 0.8 b, 0.85 (wait 1), 0.79 b, 0.80 (1), 0.81 (2 = patience: stop) */
    {"val_loss, patience 2", METRIC_VAL_LOSS, MODE_AUTO, 0, 2, 6, {1.0, 0.8, 0.85, 0.79, 0.80, 0.81}, "bb.b..", 6, 4},
    /* δ = 0.05, max: 0.54 − 0.05 = 0.49 < 0.5 no; 0.56 − 0.05 = 0.51 > 0.5 yes; 0.57 − 0.05 < 0.56 no;
     * 0.62 − 0.05 = 0.57 > 0.56 yes; 0.60 no (wait 1 < 3) */
    {"val_top1, min_delta 0.05, patience 3", METRIC_VAL_TOP1, MODE_AUTO, 0.05f, 3, 6, {0.5, 0.54, 0.56, 0.57, 0.62, 0.6},
     "b.b.b.", 0, 5},
    /* patience 1 (Keras' patience 0 and 1 alike): the first epoch without improvement stops */
    {"train_loss, patience 1", METRIC_TRAIN_LOSS, MODE_AUTO, 0, 1, 5, {0.3, 0.2, 0.25, 0.1, 0.05}, "bb.", 3, 2},
    /* equal is not better */
    {"equal values, patience 2", METRIC_VAL_LOSS, MODE_MIN, 0, 2, 4, {0.5, 0.5, 0.5, 0.4}, "b..", 3, 1},
    /* NaN never improves; no stop after the first epoch even with patience 1 */
    {"NaN first, patience 1", METRIC_VAL_LOSS, MODE_AUTO, 0, 1, 3, {NAN, NAN, 1.0}, "..", 2, 0},
    /* patience 0: never stops, only tracks the best */
    {"patience 0", METRIC_VAL_TOP1, MODE_AUTO, 0, 0, 6, {0.9, 0.1, 0.1, 0.1, 0.1, 0.1}, "b.....", 0, 1},
    /* mode max on a loss (an explicit mode wins over auto) */
    {"train_loss in max mode, patience 2", METRIC_TRAIN_LOSS, MODE_MAX, 0, 2, 5, {2.0, 1.5, 1.2, 1.0, 0.9}, "b..", 3, 1},
};

static void test_early_stop(void) {
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const es_case *k = &cases[c];
        early_stop_cfg cfg;
        early_stop_defaults(&cfg);
        cfg.monitor = k->monitor;
        cfg.mode = k->mode;
        cfg.min_delta = k->min_delta;
        cfg.patience = k->patience;
        early_stop e;
        early_stop_init(&e, &cfg);
        int stopped = 0;
        for (int i = 0; i < k->n && !stopped; i++) {
            bool best = early_stop_update(&e, i + 1, k->values[i]);
            CHECK(best == (k->best[i] == 'b'), "%s: epoch %d best %d, expected '%c'", k->name, i + 1, best, k->best[i]);
            if (e.stopped) stopped = i + 1;
        }
        CHECK(stopped == k->stop_epoch, "%s: stopped after epoch %d, expected %d", k->name, stopped, k->stop_epoch);
        CHECK(e.best_epoch == k->best_epoch, "%s: best epoch %d, expected %d", k->name, e.best_epoch, k->best_epoch);
    }
}

static void test_modes(void) {
    CHECK(mode_resolve(MODE_AUTO, METRIC_VAL_LOSS) == MODE_MIN, "val_loss is minimized");
    CHECK(mode_resolve(MODE_AUTO, METRIC_TRAIN_LOSS) == MODE_MIN, "train_loss is minimized");
    CHECK(mode_resolve(MODE_AUTO, METRIC_VAL_TOP1) == MODE_MAX, "val_top1 is maximized");
    CHECK(mode_resolve(MODE_AUTO, METRIC_VAL_TOP5) == MODE_MAX, "val_top5 is maximized");
    CHECK(mode_resolve(MODE_MIN, METRIC_VAL_TOP1) == MODE_MIN, "an explicit mode wins");
    metric_id m;
    CHECK(metric_parse("val_top5", &m) == CNN_OK && m == METRIC_VAL_TOP5, "parse val_top5");
    CHECK(metric_parse("val_acc", &m) == CNN_ERR_ARG && strstr(cnn_last_error(), "val_acc"), "bad metric named");
}

/* Everything a resumed run needs comes back exactly: configuration, position, monitors, history. */
static void test_state_round_trip(void) {
    train_cfg c;
    train_defaults(&c);
    c.model.name = "resnet20";
    c.dataset = "cifar10";
    c.opt.lr = 0.1f;
    c.opt.kind = OPT_ADAMW;
    c.sched.kind = SCHED_MULTISTEP;
    CHECK_OK(sched_parse_milestones("3,7", &c.sched));
    c.early.patience = 4;
    c.early.monitor = METRIC_VAL_LOSS;
    c.plateau.factor = 0.3f;
    c.seed = 123456789012345ULL;
    train_state s;
    train_state_init(&s, &c);
    s.pos = (train_position){.epoch = 3, .batch = 17, .step = 407, .optimizer_steps = 407, .images = 1088,
                             .correct = 555, .loss_sum = 1234.5678901234567, .seconds = 9.75};
    early_stop_update(&s.early, 1, 0.7);
    early_stop_update(&s.early, 2, 0.6); /* val_loss: lower is better */
    plateau_step(&s.plat, 1.0 / 3.0);
    epoch_row rows[2] = {{1, 0.1, 2.302585092994046, 0.1, 1.9, 0.3, 0.8, 12.5}, {2, 0.1, 1.5, 0.45, NAN, 0.5, 0.9, 11}};
    CHECK_OK(history_add(&s.hist, &rows[0]));
    CHECK_OK(history_add(&s.hist, &rows[1]));
    char *text = NULL;
    CHECK_OK(train_json_write(&c, &s, &text));
    json_value *v = NULL;
    CHECK_OK(json_parse(text, strlen(text), NULL, &v, NULL));
    train_cfg c2;
    train_state s2;
    CHECK_OK(train_json_read(v, &c2, &s2));
    CHECK(!strcmp(c2.model.name, "resnet20") && !strcmp(c2.dataset, "cifar10"), "names");
    CHECK(c2.opt.lr == 0.1f && c2.opt.kind == OPT_ADAMW && c2.sched.kind == SCHED_MULTISTEP, "optimizer and schedule");
    CHECK(c2.sched.nmilestones == 2 && c2.sched.milestones[1] == 7, "milestones");
    CHECK(c2.early.patience == 4 && c2.early.monitor == METRIC_VAL_LOSS && c2.plateau.factor == 0.3f, "monitors");
    CHECK(c2.seed == 123456789012345ULL, "seed %llu", (unsigned long long)c2.seed);
    CHECK(!memcmp(&s2.pos, &s.pos, sizeof s.pos), "position");
    CHECK(s2.early.best == 0.6 && s2.early.best_epoch == 2 && s2.early.wait == 0 && !s2.early.stopped, "early stop state");
    CHECK(s2.plat.best == 1.0 / 3.0 && s2.plat.lr == s.plat.lr, "plateau state");
    CHECK(s2.hist.n == 2 && s2.hist.rows[0].train_loss == rows[0].train_loss && isnan(s2.hist.rows[1].val_loss) &&
              s2.hist.rows[1].val_top5 == 0.9, "history");
    train_state_free(&s2);
    json_free(v);
    free(text);
    train_state_free(&s);
}

static void test_csv(void) {
    history h = {0}, back = {0};
    epoch_row r = {1, 0.05, 1.5, 0.25, 1.25, 0.5, 0.75, 3.5};
    CHECK_OK(history_add(&h, &r));
    r.epoch = 2;
    r.train_loss = 0.75;
    CHECK_OK(history_add(&h, &r));
    const char *path = "test_monitor_metrics.csv";
    CHECK_OK(history_write_csv(&h, path));
    CHECK_OK(history_read_csv(path, &back));
    CHECK(back.n == 2 && back.rows[1].epoch == 2 && back.rows[1].train_loss == 0.75 && back.rows[0].val_top5 == 0.75,
          "metrics.csv read back: %d rows", back.n);
    FILE *f = fopen(path, "w");
    fputs("epoch,lr,train_loss\n1,0.1,abc\n", f);
    fclose(f);
    history_free(&back);
    CHECK(history_read_csv(path, &back) == CNN_ERR_FORMAT && strstr(cnn_last_error(), "line 2") &&
              strstr(cnn_last_error(), "train_loss"), "bad number named: %s", cnn_last_error());
    remove(path);
    history_free(&h);
}

int main(void) {
    test_early_stop();
    test_modes();
    test_state_round_trip();
    test_csv();
    return test_report("test_monitor");
}
