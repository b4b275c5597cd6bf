"""test_zoo_train.py — every zoo family trains from the command line: the smallest member of each on a small
learnable IDX set (cnntest.write_mnist_like: 1×28×28, so the small-input rules apply; class k is a bright square
at one of ten places), 2 epochs of batch 16 with Adam; the training loss of epoch 2 must be below epoch 1's, every
loss finite. (That each model computes what PyTorch computes, gradients and SGD steps included, is
test_parity_zoo's job; this one checks that training runs end to end and learns. VGG is left out: its
130 M parameters make each checkpoint 0.5 GB, and its path through the trainer is the same.) A training step
per image of GoogLeNet at 28×28 takes about 13 times resnet20's (11 times its multiply-accumulates), of
EfficientNet-B0 and GhostNet several times (many small layers; 5×5 depthwise convolutions, docs/design.md), so
these three train on SMALL images (2 steps per epoch). Where training and evaluation run different networks,
the checkpoint must record the settings (resnet20's --stochastic-depth 0.5, EfficientNet-B0's default 0.2),
and `cnn eval` rebuilds the evaluation network and gets the training's own validation top-1 and loss:
resnet20's without drop path, GoogLeNet's without the auxiliary heads that trained with it (an
evaluation-only graph, which loads the heads' parameters but runs no op of theirs)."""
import csv
import json
import math
import os
import tempfile
import time

from cnntest import check, cnn, report, write_mnist_like
import safetensors_io

TRAIN, SMALL, TEST = 128, 32, 32
# (model, extra options, training images, the checkpoint's metadata to check, whether `cnn eval` checks it)
CASES = [
    ("resnet18", [], TRAIN, {}, False),
    ("preact_resnet20", [], TRAIN, {}, False),
    ("se_resnet20", [], TRAIN, {}, False),
    ("highway20", [], TRAIN, {}, False),
    ("resnet20", ["--stochastic-depth", "0.5"], TRAIN, {"stochastic_depth": 0.5}, True),
    ("googlenet", [], SMALL, {}, True),
    ("efficientnet_b0", [], SMALL, {"stochastic_depth": 0.2}, False),
    ("ghostnet", [], SMALL, {}, False),
]


def train(model, extra, images, data, runs):
    out = os.path.join(runs, model)
    t0 = time.time()
    rc, stdout, err = cnn("train", "--model", model, "--dataset", "fashion-mnist", "--data", data, "--limit", images,
                          "--epochs", 2, "--batch-size", 16, "--optimizer", "adam", "--lr", 1e-3,
                          "--schedule", "constant", "--out", out, *extra)
    if not check(rc == 0, f"{model}: cnn train exited with {rc}: {err.strip()}"):
        return None
    rows = list(csv.DictReader(open(os.path.join(out, "metrics.csv"))))
    losses = [float(r["train_loss"]) for r in rows]
    check(len(losses) == 2 and all(math.isfinite(l) for l in losses) and losses[1] < losses[0],
          f"{model}: training losses {losses} (want a fall)")
    print(f"{model:16s} {' '.join(extra):22s} train loss {losses[0]:.3f} -> {losses[1]:.3f}, "
          f"val top-1 {float(rows[-1]['val_top1']):.3f}  [{time.time() - t0:.1f}s]", flush=True)
    return out, rows[-1]


def check_checkpoint(model, run, last_row, data, want, evaluate):
    ckpt = os.path.join(run, "last.safetensors")
    _, meta = safetensors_io.load(ckpt)
    info = json.loads(meta["cnn"])["model"]
    for key, value in want.items():
        check(abs(info.get(key, 99) - value) < 1e-6, f"{model}: checkpoint metadata model.{key} = {info.get(key)!r}, "
                                                     f"expected {value}")
    if not evaluate:
        return
    rc, out, err = cnn("eval", "--checkpoint", ckpt, "--dataset", "fashion-mnist", "--data", data, "--json")
    if check(rc == 0, f"cnn eval of the {model} checkpoint: exit {rc}: {err.strip()}"):
        r = json.loads(out)
        check(abs(r["top1"] - float(last_row["val_top1"])) < 1e-9 and abs(r["loss"] - float(last_row["val_loss"])) <= 1e-5 * abs(r["loss"]),
              f"{model}: eval of the checkpoint: top-1 {r['top1']}, loss {r['loss']}; training's validation "
              f"{last_row['val_top1']}, {last_row['val_loss']}")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        write_mnist_like(data, train=TRAIN, test=TEST)
        for model, extra, images, metadata, evaluate in CASES:
            result = train(model, extra, images, data, tmp)
            if result:
                check_checkpoint(model, *result, data, metadata, evaluate)
    report("test_zoo_train")


if __name__ == "__main__":
    main()
