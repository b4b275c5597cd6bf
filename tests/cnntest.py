"""cnntest.py — helpers shared by the Python tests: where things are, running the cnn binary,
writing small data sets in the real file formats, comparing two runs bit for bit, and a check counter."""
import csv
import gzip
import json
import os
import struct
import subprocess
import sys

BUILD = os.environ.get("CNN_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "build"))
SOURCE = os.environ.get("CNN_SOURCE_DIR", os.path.join(os.path.dirname(__file__), ".."))
CNN = os.path.join(BUILD, "cnn")
sys.path.insert(0, os.path.join(SOURCE, "tools"))

failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL", what, flush=True)
    return cond


def report(name):
    if failures:
        print(f"{name}: {failures} check(s) failed")
        sys.exit(1)
    print(f"{name}: all checks passed")


def cnn(*args, env=None, timeout=900):
    """Run the cnn binary; returns (exit status, stdout, stderr)."""
    e = dict(os.environ)
    e.setdefault("OMP_NUM_THREADS", "2")
    if env:
        e.update(env)
    r = subprocess.run([CNN, *map(str, args)], capture_output=True, text=True, env=e, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def write_cifar10(directory, per_batch=16, test=16, seed=0):
    """A tiny CIFAR-10 binary set: classes drawn from pixels so that it is learnable."""
    import random
    rnd = random.Random(seed)
    os.makedirs(directory, exist_ok=True)

    def record(label):
        base = 20 + 20 * label
        pixels = bytes(min(255, max(0, base + rnd.randint(-20, 20))) for _ in range(3072))
        return bytes([label]) + pixels

    for b in range(1, 6):
        with open(os.path.join(directory, f"data_batch_{b}.bin"), "wb") as f:
            f.write(b"".join(record(rnd.randrange(10)) for _ in range(per_batch)))
    with open(os.path.join(directory, "test_batch.bin"), "wb") as f:
        f.write(b"".join(record(i % 10) for i in range(test)))


def write_idx(directory, prefix, images, labels, compress=True, size=28):
    """IDX files (MNIST layout): images a list of size x size byte strings."""
    os.makedirs(directory, exist_ok=True)
    op = gzip.open if compress else open
    ext = ".gz" if compress else ""
    with op(os.path.join(directory, f"{prefix}-images-idx3-ubyte{ext}"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, len(images), size, size) + b"".join(images))
    with op(os.path.join(directory, f"{prefix}-labels-idx1-ubyte{ext}"), "wb") as f:
        f.write(struct.pack(">II", 0x801, len(labels)) + bytes(labels))


COLOR_CLASSES = {"blue": (40, 40, 200), "green": (40, 200, 40), "red": (200, 40, 40)}


def write_color_folder(root, split, per_class, seed):
    """An image folder root/split/<blue|green|red>/ of noisy single-color images, 40-90 pixels a side,
    odd ones JPEG and even ones PNG (a learnable ImageFolder); returns the paths."""
    import numpy as np
    from PIL import Image
    rnd = np.random.default_rng(seed)
    paths = []
    for name, color in COLOR_CLASSES.items():
        d = os.path.join(root, split, name)
        os.makedirs(d, exist_ok=True)
        for i in range(per_class):
            w, h = int(rnd.integers(40, 90)), int(rnd.integers(40, 90))
            px = np.clip(np.array(color)[None, None, :] + rnd.integers(-60, 60, (h, w, 3)), 0, 255).astype(np.uint8)
            p = os.path.join(d, f"{i:03d}.{'jpg' if i % 2 else 'png'}")
            Image.fromarray(px).save(p)
            paths.append(p)
    return paths


def write_mnist_like(directory, train=512, test=256, size=28, seed=0):
    """A small learnable IDX set in Fashion-MNIST's file names: class k is a bright square at one of
    ten places, over noise, so that the default convnet learns it in an epoch or two. Images are
    size x size (the models adapt to the input; smaller is faster)."""
    import random
    rnd = random.Random(seed)
    side = size * 2 // 7

    def image(label):
        y0, x0 = 1 + (size // 2) * (label // 5), (size // 5) * (label % 5)
        pix = bytearray(rnd.randrange(0, 96) for _ in range(size * size))
        for y in range(y0, min(size, y0 + side)):
            for x in range(x0, min(size, x0 + side)):
                pix[y * size + x] = min(255, 120 + rnd.randrange(0, 136))
        return bytes(pix)

    for prefix, n in (("train", train), ("t10k", test)):
        labels = [rnd.randrange(10) for _ in range(n)]
        write_idx(directory, prefix, [image(k) for k in labels], labels, size=size)


FASHION = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist


def cpu_has_bf16():
    """Whether the CPU has bf16 instructions, read from /proc/cpuinfo (not from cnn.c)."""
    flags = open("/proc/cpuinfo").read().split()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def write_fashion_subset(directory, train, test):
    """The first `train` training and `test` test images of the real Fashion-MNIST (FASHION), copied as a
    small IDX set in the same file names; fails the test with the reason when the package is missing."""
    def read(prefix, n):
        with gzip.open(os.path.join(FASHION, f"{prefix}-images-idx3-ubyte.gz")) as f:
            magic, count, rows, cols = struct.unpack(">IIII", f.read(16))
            pixels = f.read(n * rows * cols)
        with gzip.open(os.path.join(FASHION, f"{prefix}-labels-idx1-ubyte.gz")) as f:
            f.read(8)
            labels = list(f.read(n))
        if magic != 0x803 or (rows, cols) != (28, 28) or len(pixels) != n * 784 or len(labels) != n:
            raise SystemExit(f"FAIL: {FASHION}/{prefix}: not Fashion-MNIST's IDX files")
        return [pixels[i * 784:(i + 1) * 784] for i in range(n)], labels

    if not os.path.exists(os.path.join(FASHION, "train-images-idx3-ubyte.gz")):
        raise SystemExit(f"FAIL: {FASHION} is missing (Debian package dataset-fashion-mnist)")
    for prefix, n in (("train", train), ("t10k", test)):
        write_idx(directory, prefix, *read(prefix, n))


def train_header(path):
    """The "train" metadata of a checkpoint (configuration, position, history), reading the JSON header only."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        meta = json.loads(f.read(n))["__metadata__"]
    return json.loads(meta["cnn"])["train"]


def load_run(run, name="last.safetensors"):
    """A run's checkpoint: (tensor name -> raw bytes, the metadata's "train" member)."""
    import safetensors_io  # imports torch: only for the tests that compare runs
    tensors, meta = safetensors_io.load(os.path.join(run, name))
    raw = {k: v.numpy().tobytes() for k, v in tensors.items()}
    return raw, json.loads(meta["cnn"])["train"]


def csv_rows(run):
    """metrics.csv as dicts, without the seconds (wall time)."""
    with open(os.path.join(run, "metrics.csv")) as f:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)]


def same_run(a, b, what):
    """Checks that runs a and b end with the same bits: every tensor of last.safetensors (weights,
    optimizer state), the history and position it holds, and metrics.csv, wall times aside."""
    ta, sa = load_run(a)
    tb, sb = load_run(b)
    differing = sorted(k for k in ta if ta[k] != tb.get(k))
    ok = check(set(ta) == set(tb) and not differing, f"{what}: tensors differ: {differing[:5]}")
    rows = [[row[:-1] for row in s["history"]["rows"]] for s in (sa, sb)]  # seconds (wall time) is last
    ok &= check(rows[0] == rows[1], f"{what}: histories differ\n{sa['history']}\n{sb['history']}")
    ok &= check(sa["position"] == sb["position"], f"{what}: positions {sa['position']} vs {sb['position']}")
    ok &= check(csv_rows(a) == csv_rows(b), f"{what}: metrics.csv differ")
    return ok
