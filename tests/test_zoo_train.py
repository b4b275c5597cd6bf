"""test_zoo_train.py — every zoo family trains from the command line on real Fashion-MNIST: one member of
each (resnet50 for the bottleneck blocks; the basic block trains in resnet20 and its variants) on the first 256
training images (1×28×28, so the small-input rules apply; validation on the first 64 test images), 2 epochs of
batch 16 with Adam at 1e-3; the training loss of epoch 2 must be below epoch 1's, every loss finite. The
tightest are GoogLeNet and EfficientNet-B0: over seeds 1–5 their losses fell by at least 0.77 and 0.5 (with 128
images by as little as 0.15: hence 256). (That each model computes what PyTorch computes, gradients
and SGD steps included, is test_parity_zoo's job; this one checks that training runs end to end and learns. VGG
is left out: its 130 M parameters make each checkpoint 0.5 GB, one such run of vgg11_bn took 76 s here, and on
this budget its loss rose (SGD 0.01, momentum 0.9, seeds 1–3: 2.7 → 4.3–5.7) while its gradients and SGD steps
match PyTorch's (test_parity_zoo); its path through the trainer is the others'.)
Where training and evaluation run different networks, the checkpoint must record the settings (resnet20's
--stochastic-depth 0.5, EfficientNet-B0's default 0.2), and `cnn eval` rebuilds the evaluation network and gets
the training's own validation top-1 and loss: resnet20's without drop path, GoogLeNet's without the auxiliary
heads that trained with it (an evaluation-only graph, which loads the heads' parameters but runs no op of theirs).
ZOO_TRAIN_SEED=N picks the seed (default 1)."""
import csv
import json
import math
import os
import tempfile
import time

from cnntest import check, cnn, report, write_fashion_subset
import safetensors_io

TRAIN, TEST = 256, 64
SEED = int(os.environ.get("ZOO_TRAIN_SEED", "1"))
# (model, extra options, the checkpoint's metadata to check, whether `cnn eval` checks it)
CASES = [
    ("resnet50", [], {}, False),
    ("preact_resnet20", [], {}, False),
    ("se_resnet20", [], {}, False),
    ("highway20", [], {}, False),
    ("resnet20", ["--stochastic-depth", "0.5"], {"stochastic_depth": 0.5}, True),
    ("googlenet", [], {}, True),
    ("efficientnet_b0", [], {"stochastic_depth": 0.2}, False),
    ("ghostnet", [], {}, False),
    ("ghost_resnet56", [], {}, False),
]


def train(model, extra, data, runs):
    out = os.path.join(runs, model)
    t0 = time.time()
    rc, stdout, err = cnn("train", "--model", model, "--dataset", "fashion-mnist", "--data", data, "--limit", TRAIN,
                          "--epochs", 2, "--batch-size", 16, "--optimizer", "adam", "--lr", 1e-3,
                          "--schedule", "constant", "--seed", SEED, "--out", out, *extra)
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
        write_fashion_subset(data, train=TRAIN, test=TEST)
        for model, extra, metadata, evaluate in CASES:
            result = train(model, extra, data, tmp)
            if result:
                check_checkpoint(model, *result, data, metadata, evaluate)
    report("test_zoo_train")


if __name__ == "__main__":
    main()
