"""test_reliability.py — every bad input of docs/reliability.md, fed to the cnn command: each must end in a
clear message and exit status 1 (bad file, failure), 2 (misuse) or 3 (training diverged), never a crash;
and the table in docs/reliability.md must be what the program does now (rows are regenerated here and compared).
After a deliberate change of a message: /usr/bin/python3 tests/test_reliability.py --write (with CNN_BUILD_DIR
set, or a build in ./build) rewrites the table."""
import gzip
import json
import os
import re

import resource
import struct
import sys
import tempfile

from cnntest import SOURCE, check, cnn, report, write_cifar10, write_color_folder, write_idx, write_mnist_like

DOC = os.path.join(SOURCE, "docs", "reliability.md")
BEGIN, END = "<!-- bad-inputs:begin (tests/test_reliability.py writes this table) -->", "<!-- bad-inputs:end -->"
SANITIZED = os.environ.get("CNN_SANITIZE") == "1"  # AddressSanitizer reserves terabytes: no RLIMIT_AS there


def mnist_dir(tmp, name, images=None, labels=None, gz=False):
    """A 2-image MNIST directory whose train files are replaced by the given bytes (None: good ones)."""
    d = os.path.join(tmp, name)
    good = [bytes([i]) * 784 for i in range(2)]
    write_idx(d, "train", good, [1, 2], compress=False)
    write_idx(d, "t10k", good, [1, 2], compress=False)
    for kind, data in (("images-idx3-ubyte", images), ("labels-idx1-ubyte", labels)):
        if data is None:
            continue
        path = os.path.join(d, f"train-{kind}")
        os.remove(path)
        with open(path + (".gz" if gz else ""), "wb") as f:
            f.write(data)
    return d


def idx_images(n, rows=28, cols=28, pixels=None, magic=0x803):
    return struct.pack(">IIII", magic, n, rows, cols) + (bytes(n * rows * cols) if pixels is None else pixels)


def idx_labels(labels, n=None):
    return struct.pack(">II", 0x801, len(labels) if n is None else n) + bytes(labels)


def cifar_dir(tmp, name, replace=None, names=None):
    d = os.path.join(tmp, name)
    write_cifar10(d, per_batch=2, test=2)
    for fname, data in (replace or {}).items():
        with open(os.path.join(d, fname), "wb") as f:
            f.write(data)
    if names is not None:
        with open(os.path.join(d, "batches.meta.txt"), "wb") as f:
            f.write(names)
    return d


def safetensors(header, data=b"", length=None):
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(h) if length is None else length) + h + data


META = {"model": {"name": "convnet", "input": [1, 28, 28], "classes": 10}, "data": {"dataset": "mnist"}}


def ckpt(tmp, name, content):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(content)
    return path


def with_meta(meta, tensors=None):
    header = {"__metadata__": {"cnn": meta if isinstance(meta, str) else json.dumps(meta)}}
    header.update(tensors or {})
    return safetensors(header)


def data_cases(tmp):
    train = ["train", "--dataset", "mnist", "--epochs", "1", "--data"]
    c10 = ["train", "--dataset", "cifar10", "--epochs", "1", "--data"]
    three = idx_images(3)
    comp = gzip.compress(idx_images(2, pixels=bytes(range(256)) * 6 + bytes(32)), mtime=0)
    flipped = bytearray(comp)
    flipped[len(flipped) // 2] ^= 0xFF
    return [
        ("IDX: data directory missing", train + [os.path.join(tmp, "nowhere")]),
        ("IDX: labels file missing", train + [mnist_dir(tmp, "nolabels")], lambda d: os.remove(
            os.path.join(d, "train-labels-idx1-ubyte"))),
        ("IDX: empty images file", train + [mnist_dir(tmp, "empty", images=b"")]),
        ("IDX: wrong magic number", train + [mnist_dir(tmp, "magic", images=idx_images(2, magic=0x802))]),
        ("IDX: header claims 99,999,999 images (file has 2)", train + [mnist_dir(tmp, "claims", images=idx_images(
            99999999, pixels=bytes(2 * 784)))]),
        ("IDX: header claims 2^32-1 x 2^32-1 x 2^32-1", train + [mnist_dir(tmp, "huge", images=struct.pack(
            ">IIII", 0x803, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF))]),
        ("IDX: images truncated", train + [mnist_dir(tmp, "trunc", images=idx_images(2)[:-100])]),
        ("IDX: trailing garbage", train + [mnist_dir(tmp, "trail", images=idx_images(2) + b"junk")]),
        ("IDX: 3 images but 2 labels", train + [mnist_dir(tmp, "count", images=three)]),
        ("IDX: label 10 of 10 classes", train + [mnist_dir(tmp, "label", labels=idx_labels([1, 10]))]),
        ("IDX gzip: a flipped byte in the deflate data", train + [mnist_dir(tmp, "gzflip", images=bytes(flipped),
                                                                          gz=True)]),
        ("IDX gzip: cut in half", train + [mnist_dir(tmp, "gzcut", images=comp[:len(comp) // 2], gz=True)]),
        ("IDX gzip: header claims more than 1032x the file", train + [mnist_dir(tmp, "gzclaim", images=gzip.compress(
            idx_images(200000, pixels=b""), mtime=0), gz=True)]),
        ("IDX gzip: not gzip after the magic bytes", train + [mnist_dir(tmp, "gzjunk", images=b"\x1f\x8b" + bytes(30),
                                                                         gz=True)]),
        ("CIFAR: batch file not a whole number of records", c10 + [cifar_dir(tmp, "c1", {"data_batch_2.bin": bytes(
            3073 + 100)})]),
        ("CIFAR: empty batch file", c10 + [cifar_dir(tmp, "c2", {"data_batch_5.bin": b""})]),
        ("CIFAR: label 10", c10 + [cifar_dir(tmp, "c3", {"data_batch_1.bin": bytes([10]) + bytes(3072)})]),
        ("CIFAR: batches.meta.txt with 3 names", c10 + [cifar_dir(tmp, "c4", names=b"cat\ndog\nbird\n")]),
        ("CIFAR: batches.meta.txt not UTF-8", c10 + [cifar_dir(tmp, "c5", names=b"\xff\xfe\n" * 10)]),
    ]


def folder_dir(tmp, name, per_class=2, change=None):
    """A 3-class image folder (train/ and val/); change(root) alters it."""
    d = os.path.join(tmp, name)
    write_color_folder(d, "train", per_class, 0)
    write_color_folder(d, "val", 1, 1)
    if change:
        change(d)
    return d


def folder_cases(tmp):
    """Whole-run failures of image folders (single unreadable images are skipped: tests/test_folder_cli.py)."""
    train = ["train", "--dataset", "folder", "--image-size", "8", "--epochs", "1", "--batch-size", "2", "--workers", "1",
             "--data"]  # one worker: skipped files are reported in a fixed order

    def empty_class(d):
        os.makedirs(os.path.join(d, "train", "gray"))
        open(os.path.join(d, "train", "gray", "notes.txt"), "w").close()

    def mostly_bad(d):
        for i in range(40):
            open(os.path.join(d, "train", "red", f"empty{i:02d}.jpg"), "w").close()

    ckpt = os.path.join(tmp, "folder-run", "best.safetensors")
    rc, _, err = cnn(*train, folder_dir(tmp, "fgood"), "--out", os.path.join(tmp, "folder-run"))
    check(rc == 0, f"training the checkpoint for the predict cases: {err[-300:]}")
    text = os.path.join(tmp, "not-an-image.jpg")
    open(text, "w").write("hello\n")
    cut = os.path.join(tmp, "cut.jpg")
    jpg = os.path.join(tmp, "fgood", "val", "red", "000.png")
    from PIL import Image
    Image.open(jpg).save(os.path.join(tmp, "whole.jpg"))
    open(cut, "wb").write(open(os.path.join(tmp, "whole.jpg"), "rb").read()[:400])
    png = bytearray(open(jpg, "rb").read())
    idat = png.index(b"IDAT") - 4
    png[idat:idat + 4] = (0x7FFFFFFF).to_bytes(4, "big")  # stb_image would allocate that before reading
    huge = os.path.join(tmp, "huge-chunk.png")
    open(huge, "wb").write(png)
    png[idat + 4:idat + 8] = b"\x1b[2J"  # a terminal's clear-screen sequence as the chunk type: not echoed
    escape = os.path.join(tmp, "escape-chunk.png")
    open(escape, "wb").write(png)
    return [
        ("folder: data directory missing", train + [os.path.join(tmp, "nowhere")]),
        ("folder: train/ without class directories", train + [folder_dir(tmp, "f1", change=lambda d: [
            os.rename(os.path.join(d, "train", c), os.path.join(d, c)) for c in ("red", "green", "blue")])]),
        ("folder: a class without image files", train + [folder_dir(tmp, "f2", change=empty_class)]),
        ("folder: val/ has a class train/ lacks", train + [folder_dir(tmp, "f3", change=lambda d: os.rename(
            os.path.join(d, "val", "red"), os.path.join(d, "val", "purple")))]),
        ("folder: more than half of the images unreadable", train + [folder_dir(tmp, "f4", 8, mostly_bad)]),
        ("predict: a text file named .jpg", ["predict", "--checkpoint", ckpt, text]),
        ("predict: a JPEG cut short", ["predict", "--checkpoint", ckpt, cut]),
        ("predict: a PNG whose IDAT chunk claims 2 GB", ["predict", "--checkpoint", ckpt, huge]),
        ("predict: a PNG chunk of 2 GB whose type is an escape sequence", ["predict", "--checkpoint", ckpt, escape]),
        ("predict: image missing", ["predict", "--checkpoint", ckpt, os.path.join(tmp, "nowhere.png")]),
    ]


def checkpoint_cases(tmp):
    ev = ["eval", "--checkpoint"]
    good_tensor = {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    return [
        ("checkpoint: missing file", ev + [os.path.join(tmp, "none.safetensors")]),
        ("checkpoint: a directory", ev + [tmp]),
        ("checkpoint: empty file", ev + [ckpt(tmp, "empty.safetensors", b"")]),
        ("checkpoint: header length beyond the file", ev + [ckpt(tmp, "len.safetensors", safetensors({}, length=4096))]),
        ("checkpoint: header length 2^64-1", ev + [ckpt(tmp, "len2.safetensors", safetensors({}, length=2**64 - 1))]),
        ("checkpoint: header not JSON", ev + [ckpt(tmp, "json.safetensors", safetensors(b"{not json}"))]),
        ("checkpoint: header nested 100 deep", ev + [ckpt(tmp, "deep.safetensors", safetensors(b"[" * 100 + b"]" * 100))]),
        ("checkpoint: unknown dtype", ev + [ckpt(tmp, "dtype.safetensors", safetensors(
            {"w": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}, bytes(16)))]),
        ("checkpoint: shape overflows 64 bits", ev + [ckpt(tmp, "shape.safetensors", safetensors(
            {"w": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 8]}}, bytes(8)))]),
        ("checkpoint: offsets past the data", ev + [ckpt(tmp, "offs.safetensors", safetensors(
            {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, bytes(8)))]),
        ("checkpoint: two tensors overlap", ev + [ckpt(tmp, "overlap.safetensors", safetensors(
            {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
             "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12)))]),
        ("checkpoint: no cnn.c metadata", ev + [ckpt(tmp, "nometa.safetensors", safetensors(good_tensor, bytes(8)))]),
        ("checkpoint: metadata not JSON", ev + [ckpt(tmp, "meta1.safetensors", with_meta("{model"))]),
        ("checkpoint: input shape [1, -28, 28]", ev + [ckpt(tmp, "meta2.safetensors", with_meta(
            dict(META, model={"name": "convnet", "input": [1, -28, 28]})))]),
        ("checkpoint: classes 1e30", ev + [ckpt(tmp, "meta3.safetensors", with_meta(
            '{"model":{"name":"convnet","input":[1,28,28],"classes":1e30}}'))]),
        ("checkpoint: 3 class names for 10 classes", ev + [ckpt(tmp, "meta4.safetensors", with_meta(
            dict(META, data={"class_names": ["a", "b", "c"]})))]),
        ("checkpoint: unknown model", ev + [ckpt(tmp, "meta5.safetensors", with_meta(
            {"model": {"name": "alexnet", "input": [3, 32, 32]}}))]),
        ("checkpoint: regulator \"lstm\"", ev + [ckpt(tmp, "meta6.safetensors", with_meta(
            {"model": {"name": "regnet20", "input": [3, 32, 32], "regulator": "lstm"}}))]),
        ("checkpoint: regulated stage 4 of a 3-stage regnet", ev + [ckpt(tmp, "meta7.safetensors", with_meta(
            {"model": {"name": "regnet20", "input": [3, 32, 32], "regulator": "convgru", "regulated_stages": [1, 4]}}))]),
        ("checkpoint: weights missing", ev + [ckpt(tmp, "weights.safetensors", with_meta(META))]),
    ]


def cli_cases():
    return [
        ("command line: no command", []),
        ("command line: unknown command", ["frobnicate"]),
        ("command line: unknown option", ["train", "--bogus"]),
        ("command line: option without its value", ["train", "--lr"]),
        ("command line: integer expected", ["train", "--epochs", "ten"]),
        ("command line: integer out of range", ["train", "--batch-size", "0"]),
        ("command line: number not finite", ["train", "--lr", "nan"]),
        ("command line: not one of the choices", ["train", "--optimizer", "rmsprop"]),
        ("command line: flag given a value", ["train", "--flip=yes"]),
        ("command line: stray argument", ["eval", "model.safetensors"]),
        ("command line: malformed shape", ["summary", "--input", "3x32x32x3"]),
        ("command line: unknown model", ["summary", "--model", "alexnet"]),
        ("command line: a regulator for a model without one", ["summary", "--model", "resnet20", "--regulator", "convgru"]),
        ("command line: required option missing", ["eval"]),
        ("command line: inconsistent options", ["train", "--schedule", "multistep"]),
        ("command line: option of another schedule", ["train", "--schedule", "cosine", "--milestones", "30"]),
        ("command line: resume a run that is not there", ["train", "--resume", "/nonexistent/run"]),
        ("command line: grid list with a non-number", ["grid", "--lr", "0.1,fast"]),
        ("command line: plot without a run", ["plot"]),
        ("command line: sanity sample of 0 images", ["sanity", "--sample", "0"]),
    ]


def limit_cases():
    cases = [("model too big for memory at compile time (planned activations)",
              ["bench", "--model", "resnet20", "--batch-size", "65536", "--input", "3x4096x4096"])]
    if not SANITIZED:  # the same failure, forced by a 1 GiB address-space limit on a 3 GB plan
        cases.append(("batch too big for a 1 GiB address-space limit (RLIMIT_AS)",
                      ["bench", "--model", "resnet20", "--batch-size", "2048", "--steps", "1"], 1 << 30))
    return cases


def diverge_cases(tmp):
    """A learning rate of 1000 overflows the convnet's activations within a few steps: exit 3, not 1."""
    d = os.path.join(tmp, "learnable")
    write_mnist_like(d, train=64, test=16)
    return [("training diverges (--lr 1000): NaN in the gradients", [
        "train", "--data", d, "--out", os.path.join(tmp, "diverged"), "--batch-size", "16", "--epochs", "1",
        "--schedule", "constant", "--lr", "1000", "--threads", "1"])]


def run_case(tmp, case):
    what, args = case[0], case[1]
    limit = case[2] if len(case) > 2 and isinstance(case[2], int) else None
    if len(case) > 2 and callable(case[2]):
        case[2](args[-1])
    env = {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":allocator_may_return_null=1"}
    if limit:
        import subprocess
        from cnntest import CNN
        r = subprocess.run([CNN, *args], capture_output=True, text=True, timeout=300, env=dict(os.environ, **env),
                           preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))
        rc, err = r.returncode, r.stderr
    else:
        rc, _, err = cnn(*args, env=env, timeout=300)
    # under ASan, allocator_may_return_null announces each refused allocation before returning NULL
    # and a warning (a slow oneDNN kernel for a tiny shape) is not the failure's message
    lines = [l for l in err.strip().splitlines()
             if not re.match(r"==\d+==WARNING: AddressSanitizer failed to allocate|cnn: warning: ", l)]
    message = lines[0] if lines else ""
    message = message.replace(tmp, "DIR")
    shown = " ".join(["cnn"] + [a.replace(tmp, "DIR") for a in args])
    expected = (3,) if what.startswith("training diverges") else (1, 2)
    check(rc in expected,
          f"{what}: `{shown}` exited {rc}, expected {expected} (a crash is negative), stderr {err[-500:]!r}")
    check(message.startswith(("cnn", "usage: cnn")), f"{what}: no message: {err[-300:]!r}")
    if "DIR/" in shown and rc == 1:
        path = [a for a in args if a.startswith(tmp)][-1]
        check(os.path.basename(path.rstrip("/")) in err or "DIR" in message, f"{what}: message does not name the file")
    return f"| {what} | `{shown}` | {rc} | {message.replace('|', '/')} |"


def table_rows(tmp):
    cases = data_cases(tmp) + folder_cases(tmp) + checkpoint_cases(tmp) + cli_cases() + limit_cases()
    cases += diverge_cases(tmp)
    return [run_case(tmp, c) for c in cases]


def main():
    write = "--write" in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        tmp = os.path.realpath(tmp)
        rows = table_rows(tmp)
    text = open(DOC).read()
    begin, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    table = "\n| bad input | command | exit | what cnn says (first line of stderr) |\n| --- | --- | --- | --- |\n"
    table += "\n".join(rows) + "\n"
    if write:
        with open(DOC, "w") as f:
            f.write(text[:begin] + table + text[end:])
        print(f"wrote {len(rows)} rows into {DOC}")
    else:
        # planned sizes depend on the CPU's channel block (8 on AVX2, 16 on AVX-512): compared without their figures
        def sizes_masked(row):
            return re.sub(r"\d+(\.\d+)? MB", "N MB", row)
        documented = [sizes_masked(r) for r in text[begin:end].splitlines()[3:] if r.startswith("| ")]  # after the headings
        for row in rows:
            check(sizes_masked(row) in documented,
                  f"docs/reliability.md does not say (rerun with --write if intended):\n  {row}")
        ran = {r.split(" | ")[0] for r in rows}
        for row in documented:
            if row.split(" | ")[0] not in ran and "RLIMIT_AS" not in row:
                check(False, f"docs/reliability.md lists a case this test no longer runs:\n  {row}")
    print(f"{len(rows)} bad inputs, each a message and exit status 1 or 2 (3: diverged)")
    report("test_reliability")


if __name__ == "__main__":
    main()
