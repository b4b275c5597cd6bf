/* cmd_train.c — `cnn train`: options to a train_cfg, then the training loop. */
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "core/error.h"
#include "train/trainer.h"

static const cli_command train_command = {
    "train", "[options]",
    "Trains a network; prints progress per epoch; writes metrics.csv and the last and best\n"
    "checkpoints (safetensors, PyTorch names) into the run directory."};

int cmd_train_options(int argc, char **argv, train_cfg *out, bool *done) {
    train_cfg c;
    train_defaults(&c);
    const char *optimizer = "sgd", *schedule = sched_name(c.sched.kind), *milestones = NULL;
    bool flip = false, nesterov = false, no_decay = false;
    int crop = -1;
    float lr = c.opt.lr, momentum = c.opt.momentum, wd = c.opt.weight_decay, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
    cli_opt o[] = {
        {"model", OPT_STRING, &c.model.name, "NAME", "network (cnn models lists them)"},
        {"dataset", OPT_CHOICE, &c.dataset, NULL, "data set (folder: DIR/train/<class>/*, DIR/val/<class>/*)", 0, 0,
         "fashion-mnist|mnist|cifar10|cifar100|folder"},
        {"data", OPT_STRING, &c.data_dir, "DIR", "directory of the data set files (default: its Debian location)"},
        {"image-size", OPT_INT, &c.image_size, "N", "folder: side of the crops the model sees (0: 224)", 0, 8192},
        {"resize", OPT_INT, &c.resize, "N", "folder: shorter side before the evaluation's center crop (0: size*256/224)", 0, 16384},
        {"full-decode", OPT_FLAG, &c.full_decode, NULL, "folder: decode JPEGs at full size even for small targets (pixel-exact with PIL; slower)"},
        {"workers", OPT_INT, &c.workers, "N", "threads decoding and augmenting (0: 1 for in-memory sets, the cores up to 8 for folders)", 0, 256},
        {"out", OPT_STRING, &c.out_dir, "DIR", "run directory (default: runs/<model>-<dataset>[-N], never reused)"},
        {"epochs", OPT_INT, &c.epochs, "N", "epochs", 1, 100000},
        {"batch-size", OPT_INT, &c.batch, "N", "images per step", 1, 65536},
        {"eval-batch-size", OPT_INT, &c.eval_batch, "N", "images per evaluation step (0: the batch size)", 0, 65536},
        {"lr", OPT_FLOAT, &lr, "F", "learning rate (the peak for onecycle)", 0, 1e4},
        {"optimizer", OPT_CHOICE, &optimizer, NULL, "optimizer", 0, 0, "sgd|adam|adamw"},
        {"momentum", OPT_FLOAT, &momentum, "F", "SGD momentum", 0, 1},
        {"nesterov", OPT_FLAG, &nesterov, NULL, "Nesterov momentum"},
        {"weight-decay", OPT_FLOAT, &wd, "F", "weight decay (L2 for sgd/adam, decoupled for adamw)", 0, 10},
        {"no-decay-bn-bias", OPT_FLAG, &no_decay, NULL, "no weight decay on batch-norm and bias parameters"},
        {"beta1", OPT_FLOAT, &beta1, "F", "Adam beta1", 0, 0.999999},
        {"beta2", OPT_FLOAT, &beta2, "F", "Adam beta2", 0, 0.999999999},
        {"eps", OPT_FLOAT, &eps, "F", "Adam epsilon", 1e-30, 1},
        {"clip-norm", OPT_FLOAT, &c.opt.clip_norm, "F", "clip the global gradient norm (0: off)", 0, 1e9},
        {"schedule", OPT_CHOICE, &schedule, NULL, "learning-rate schedule", 0, 0,
         "constant|step|multistep|exp|cosine|onecycle"},
        {"milestones", OPT_STRING, &milestones, "E1,E2", "multistep: epochs where the lr is multiplied by gamma"},
        {"gamma", OPT_FLOAT, &c.sched.gamma, "F", "step/multistep/exp decay factor", 0, 1},
        {"step-size", OPT_INT, &c.sched.step_size, "N", "step: epochs between decays", 1, 100000},
        {"warmup", OPT_FLOAT, &c.sched.warmup_epochs, "EPOCHS", "cosine: linear warm-up epochs", 0, 100000},
        {"min-lr", OPT_FLOAT, &c.sched.min_lr, "F", "cosine: final learning rate", 0, 1e4},
        {"label-smoothing", OPT_FLOAT, &c.label_smoothing, "F", "label smoothing of the cross-entropy", 0, 0.999},
        {"bn", OPT_FLAG, &c.model.bn, NULL, "convnet: batch norm after each convolution"},
        {"dropout", OPT_FLOAT, &c.model.dropout, "P", "dropout before the classifier (convnet; -1: model default)", -1, 0.99},
        {"crop", OPT_INT, &crop, "PAD", "random crop after zero padding (-1: 4 on CIFAR, none on MNIST-like)", -1, 64},
        {"flip", OPT_FLAG, &flip, NULL, "random horizontal flips (default on CIFAR and folders only)"},
        {"limit", OPT_INT64, &c.limit, "N", "train on the first N training images only (0: all)", 0, 1e12},
        {"val", OPT_INT64, &c.val, "N", "hold out the first N training images for validation (0: validate on test)", 0,
         1e12},
        {"seed", OPT_INT64, &c.seed, "N", "seed of initialization, shuffling, augmentation, dropout", 0, 9e18},
        {"threads", OPT_INT, &c.threads, "N", "threads (0: OMP_NUM_THREADS or all cores)", 0, 1024},
    };
    int n = sizeof o / sizeof *o, npos;
    char *pos[1];
    int rc = cli_run_parse(&train_command, argc, argv, o, n, pos, 0, &npos, done);
    if (rc || *done) return rc;
    if (!model_find(c.model.name)) /* before loading any data */
        return cli_fail(&train_command, cnn_fail(CNN_ERR_ARG, "--model %s: unknown model (cnn models lists them)", c.model.name));
    optim_kind kind;
    if (optim_parse_kind(optimizer, &kind)) return cli_fail(&train_command, CNN_ERR_ARG);
    if (!cli_find(o, n, "lr")->seen && kind != OPT_SGD) lr = 1e-3f;
    float clip = c.opt.clip_norm;
    optim_defaults(&c.opt, kind);
    c.opt.lr = lr;
    c.opt.clip_norm = clip;
    c.opt.nesterov = nesterov;
    c.opt.no_decay_bn_bias = no_decay;
    c.opt.beta1 = beta1;
    c.opt.beta2 = beta2;
    c.opt.eps = eps;
    if (kind == OPT_SGD) c.opt.momentum = momentum;
    if (cli_find(o, n, "weight-decay")->seen || kind != OPT_ADAMW) c.opt.weight_decay = wd;
    if (nesterov && kind != OPT_SGD) return cli_fail(&train_command, cnn_fail(CNN_ERR_ARG, "--nesterov applies to --optimizer sgd"));
    if (sched_parse_kind(schedule, &c.sched.kind)) return cli_fail(&train_command, CNN_ERR_ARG);
    if (milestones && sched_parse_milestones(milestones, &c.sched)) return cli_fail(&train_command, CNN_ERR_ARG);
    if (c.sched.kind == SCHED_MULTISTEP && !milestones)
        return cli_fail(&train_command, cnn_fail(CNN_ERR_ARG, "--schedule multistep needs --milestones, e.g. 100,150"));
    c.crop_pad = crop;
    if (cli_find(o, n, "flip")->seen) c.flip = flip;
    *out = c;
    return EXIT_OK;
}

int cmd_train(int argc, char **argv) {
    train_cfg c;
    bool done;
    int rc = cmd_train_options(argc, argv, &c, &done);
    if (rc || done) return rc;
    train_summary s;
    cnn_status st = train_run(&c, &s);
    if (st) return cli_fail(&train_command, st);
    printf("done: %d epochs in %.1fs (%.0f img/s); best val top-1 %.2f%%; run directory %s\n", s.epochs_done, s.seconds,
           s.images_per_second, 100 * s.best_val_top1, s.run_dir);
    return EXIT_OK;
}
