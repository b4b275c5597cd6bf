"""test_zoo_train.py — every zoo family trains: the smallest member of each, on the first 256 Fashion-MNIST
training images (1×28×28, so the small-input rules apply), 2 epochs of batch 32 with SGD; the training loss
of epoch 2 is below epoch 1's and below chance (ln 10). The data are the real files' first images, rewritten
as a small IDX set (64 test images) so that validation stays quick. resnet110 trains with --stochastic-depth
0.5: its checkpoint records it, and `cnn eval` rebuilds that network (drop path off) and gets the training's
own validation top-1 and loss."""
import csv
import gzip
import json
import math
import os
import struct
import tempfile
import time

from cnntest import check, cnn, report, write_idx
import safetensors_io

DATA = "/usr/share/datasets/fashion-mnist"
TRAIN, TEST = 256, 64
# (model, extra options)
CASES = [
    ("resnet18", []),
    ("vgg11_bn", []),
    ("vgg11", []),
    ("preact_resnet20", []),
    ("se_resnet20", []),
    ("highway20", []),
    ("resnet110", ["--stochastic-depth", "0.5"]),
]


def read_idx(prefix, n):
    with gzip.open(os.path.join(DATA, f"{prefix}-images-idx3-ubyte.gz")) as f:
        _, count, h, w = struct.unpack(">IIII", f.read(16))
        images = [f.read(h * w) for _ in range(n)]
    with gzip.open(os.path.join(DATA, f"{prefix}-labels-idx1-ubyte.gz")) as f:
        f.read(8)
        labels = list(f.read(n))
    return images, labels


def train(model, extra, data, runs):
    out = os.path.join(runs, model)
    t0 = time.time()
    rc, stdout, err = cnn("train", "--model", model, "--dataset", "fashion-mnist", "--data", data, "--limit", TRAIN,
                          "--epochs", 2, "--batch-size", 32, "--optimizer", "sgd", "--lr", 0.02, "--momentum", 0.9,
                          "--schedule", "constant", "--out", out, *extra)
    if not check(rc == 0, f"{model}: cnn train exited with {rc}: {err.strip()}"):
        return None
    rows = list(csv.DictReader(open(os.path.join(out, "metrics.csv"))))
    losses = [float(r["train_loss"]) for r in rows]
    check(len(losses) == 2 and losses[1] < losses[0] and losses[1] < math.log(10),
          f"{model}: training losses {losses} (want a fall, below ln 10 = 2.303)")
    print(f"{model:16s} {' '.join(extra):22s} train loss {losses[0]:.3f} -> {losses[1]:.3f}, "
          f"val top-1 {float(rows[-1]['val_top1']):.3f}  [{time.time() - t0:.1f}s]", flush=True)
    return out, rows[-1]


def stochastic_depth_checkpoint(run, last_row, data):
    ckpt = os.path.join(run, "last.safetensors")
    _, meta = safetensors_io.load(ckpt)
    sd = json.loads(meta["cnn"])["model"].get("stochastic_depth")
    check(sd == 0.5, f"checkpoint metadata model.stochastic_depth = {sd!r}, expected 0.5")
    rc, out, err = cnn("eval", "--checkpoint", ckpt, "--dataset", "fashion-mnist", "--data", data, "--json")
    if check(rc == 0, f"cnn eval of the stochastic-depth checkpoint: exit {rc}: {err.strip()}"):
        r = json.loads(out)
        check(abs(r["top1"] - float(last_row["val_top1"])) < 1e-9 and abs(r["loss"] - float(last_row["val_loss"])) < 1e-4,
              f"eval of the checkpoint: top-1 {r['top1']}, loss {r['loss']}; training's validation "
              f"{last_row['val_top1']}, {last_row['val_loss']}")


def main():
    if not os.path.exists(os.path.join(DATA, "train-images-idx3-ubyte.gz")):
        print(f"FAIL: {DATA} is missing (Debian package dataset-fashion-mnist)")
        raise SystemExit(1)
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        write_idx(data, "train", *read_idx("train", TRAIN))
        write_idx(data, "t10k", *read_idx("t10k", TEST))
        for model, extra in CASES:
            result = train(model, extra, data, tmp)
            if result and extra:
                stochastic_depth_checkpoint(*result, data)
    report("test_zoo_train")


if __name__ == "__main__":
    main()
