"""test_folder_cli.py — image folders from the command line: `cnn train --dataset folder` on a tree
this test writes, with bad files among the good ones (truncated JPEGs, an empty file, text named
.jpg, a broken symlink, a named pipe, a TIFF): each reported once with its path and reason, skipped,
counted in the epoch lines, training finishes; a tree of mostly bad files stops training with a
message. Then `cnn eval` on the folder and `cnn predict` (text and --json), whose probabilities
must be PyTorch's: the checkpoint in torch_models' twin, torchvision's evaluation transform."""
import json
import os
import re
import tempfile

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image

from cnntest import COLOR_CLASSES, check, cnn, report, write_color_folder
import safetensors_io as sio  # noqa: E402
import torch_models  # noqa: E402

CLASSES = sorted(COLOR_CLASSES)
write_split = write_color_folder


def add_bad_files(d):
    """Six unreadable files in directory d; returns {path: expected words of the reason}."""
    good = [f for f in sorted(os.listdir(d)) if f.endswith(".jpg")][0]
    data = open(os.path.join(d, good), "rb").read()
    bad = {}
    p = os.path.join(d, "x_truncated_header.jpg")
    open(p, "wb").write(data[:200])
    bad[p] = "truncated"
    p = os.path.join(d, "x_empty.jpg")
    open(p, "wb").close()
    bad[p] = "empty file"
    p = os.path.join(d, "x_text.jpg")
    open(p, "w").write("this is not an image\n")
    bad[p] = "not an image"
    p = os.path.join(d, "x_dangling.png")
    os.symlink(os.path.join(d, "nowhere.png"), p)
    bad[p] = "No such file"
    p = os.path.join(d, "x_pipe.jpg")  # root reads anything: a named pipe is a file that cannot be read
    os.mkfifo(p)
    bad[p] = "not a regular file"
    p = os.path.join(d, "x_tiff.tif")
    Image.new("RGB", (20, 20)).save(p)
    bad[p] = "TIFF images are not supported"
    return bad


def train_with_bad_files(tmp):
    root = os.path.join(tmp, "data")
    write_split(root, "train", 20, 0)
    write_split(root, "val", 6, 1)
    bad = add_bad_files(os.path.join(root, "train", "red"))
    # a JPEG cut in its scan data, in val/: the evaluation decodes every row and finds it short
    src = os.path.join(root, "val", "green", "001.jpg")
    cut = os.path.join(root, "val", "green", "zz_cut.jpg")
    data = open(src, "rb").read()
    open(cut, "wb").write(data[:len(data) * 2 // 3])
    out = os.path.join(tmp, "run")
    rc, stdout, stderr = cnn("train", "--dataset", "folder", "--data", root, "--image-size", "32", "--model",
                             "convnet", "--bn", "--epochs", "2", "--batch-size", "6", "--workers", "3",
                             "--out", out, "--lr", "0.02")
    check(rc == 0, f"training with 6 bad files among 66: exit {rc}\n{stderr}")
    for path, reason in bad.items():
        lines = [l for l in stderr.splitlines() if path in l]
        check(len(lines) == 1 and reason in lines[0], f"{path}: reported {len(lines)} times, expected once with "
                                                       f"'{reason}': {lines}")
    cut_lines = [l for l in stderr.splitlines() if cut in l]
    check(len(cut_lines) == 1 and "truncated" in cut_lines[0], f"cut JPEG in val: {cut_lines}")
    epochs = [l for l in stdout.splitlines() if l.startswith("epoch ")]
    check(len(epochs) == 2 and all("7 unreadable images skipped" in l for l in epochs),
          f"epoch lines should count 6 bad training files and 1 bad validation file: {epochs}")
    meta = json.loads(sio.load(os.path.join(out, "best.safetensors"))[1]["cnn"])
    check(meta["data"]["class_names"] == CLASSES and meta["data"]["resize"] == 37 and
          meta["model"]["input"] == [3, 32, 32], f"checkpoint metadata: {meta['data']} {meta['model']}")
    print(f"training: 7 bad files reported once each and skipped; {epochs[-1].strip()}")
    return root, os.path.join(out, "best.safetensors"), cut


def mostly_bad(tmp):
    root = os.path.join(tmp, "bad")
    write_split(root, "train", 12, 2)
    write_split(root, "val", 2, 3)
    d = os.path.join(root, "train", "red")
    for i in range(40):  # 40 empty files of 76
        open(os.path.join(d, f"empty{i:02d}.jpg"), "wb").close()
    rc, out, err = cnn("train", "--dataset", "folder", "--data", root, "--image-size", "32", "--epochs", "1",
                       "--batch-size", "4", "--out", os.path.join(tmp, "badrun"))
    check(rc == 1 and "more than half" in err and "stopping" in err, f"mostly bad: exit {rc}, {err[-300:]!r}")
    print(f"mostly bad files: training stops: {err.strip().splitlines()[-1]}")


def eval_folder(root, ckpt):
    rc, out, err = cnn("eval", "--checkpoint", ckpt, "--data", root, "--json")
    check(rc == 0, f"eval: {err}")
    r = json.loads(out)
    check(r["images"] == 18 and r["unreadable"] == 1 and [c["name"] for c in r["classes"]] == CLASSES,
          f"eval on val/: {r['images']} images, {r['unreadable']} unreadable")
    check(r["top1"] > 0.9, f"eval top-1 {r['top1']}")
    print(f"eval: {r['images']} images, 1 unreadable, top-1 {100 * r['top1']:.1f}%")


def torch_probabilities(ckpt, paths):
    tensors, meta = sio.load(ckpt)
    meta = json.loads(meta["cnn"])
    c, h, w = meta["model"]["input"]
    net = torch_models.build(meta["model"]["name"], c, h, w, meta["model"]["classes"], bn=meta["model"]["bn"])
    net.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("optimizer.")}, strict=True)
    net.eval()
    tf = T.Compose([T.Resize(meta["data"]["resize"]), T.CenterCrop(h), T.ToTensor(),
                    T.Normalize(meta["data"]["mean"], meta["data"]["std"])])
    x = torch.stack([tf(Image.open(p).convert("RGB")) for p in paths])
    with torch.no_grad():
        return torch.softmax(net(x).double(), 1).numpy()


def predict(root, ckpt, cut):
    paths = [os.path.join(root, "val", c, f) for c in CLASSES for f in ("000.png", "003.jpg")]
    rc, out, err = cnn("predict", "--checkpoint", ckpt, "--json", *paths)
    check(rc == 0, f"predict: {err}")
    got = json.loads(out)
    want = torch_probabilities(ckpt, paths)
    worst = 0.0
    for r, p, q in zip(got, paths, want):
        check(r["file"] == p and len(r["top"]) == 3, f"predict entry {r}")
        order = np.argsort(-q, kind="stable")
        check([t["index"] for t in r["top"]] == list(order), f"{p}: order {[t['index'] for t in r['top']]} vs "
                                                             f"PyTorch's {list(order)}")
        for t in r["top"]:
            check(t["class"] == CLASSES[t["index"]], f"class name {t}")
            worst = max(worst, abs(t["probability"] - q[t["index"]]))
    check(worst < 1e-4, f"probabilities differ from PyTorch's by {worst}")
    rc, out, err = cnn("predict", "--checkpoint", ckpt, "--top", "2", paths[0], cut, paths[1])
    check(rc == 1 and cut in err and "truncated" in err, f"predict with a bad file: exit {rc}, {err!r}")
    blocks = re.findall(r"^(\S.*)\n((?:  .*\n)+)", out, re.M)
    check([b[0] for b in blocks] == [paths[0], paths[1]] and all(len(b[1].splitlines()) == 2 for b in blocks),
          f"text output: {out!r}")
    print(f"predict: top classes and probabilities as PyTorch's (max difference {worst:.2e}); a bad file is "
          "reported, the others still classified")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        root, ckpt, cut = train_with_bad_files(tmp)
        eval_folder(root, ckpt)
        predict(root, ckpt, cut)
        mostly_bad(tmp)
    report("test_folder_cli")


if __name__ == "__main__":
    main()
