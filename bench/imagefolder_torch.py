#!/usr/bin/python3
"""imagefolder_torch.py — the torchvision side of bench/imagefolder, and the images it uses.

  imagefolder_torch.py generate DIR [--images 2000] [--classes 10] [--size 500x375]
      writes DIR/<class>/<n>.jpg: photo-like JPEGs (smooth random shapes and gradients plus
      sensor-like noise, quality 90, 4:2:0), deterministic; DIR/.complete marks a finished set.
  imagefolder_torch.py run DIR --mode train|eval --batch B --workers W --size S [--resize R] [--epochs E]
      times ImageFolder + DataLoader with torchvision's ImageNet transforms; prints img/s and
      CPU ms per image (all processes).
"""
import argparse
import os
import sys
import time


def generate(a):
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter
    w, h = (int(v) for v in a.size.split("x"))
    rnd = np.random.default_rng(2026)
    for c in range(a.classes):
        os.makedirs(os.path.join(a.dir, f"class{c:02d}"), exist_ok=True)
    for i in range(a.images):
        c = i % a.classes
        base = rnd.integers(0, 256, (h // 32 + 2, w // 32 + 2, 3), dtype=np.uint8)
        im = Image.fromarray(base).resize((w, h), Image.BICUBIC)
        d = ImageDraw.Draw(im)
        for _ in range(12):
            x0, y0 = int(rnd.integers(0, w)), int(rnd.integers(0, h))
            x1, y1 = x0 + int(rnd.integers(10, w // 2)), y0 + int(rnd.integers(10, h // 2))
            color = tuple(int(v) for v in rnd.integers(0, 256, 3))
            (d.ellipse if rnd.random() < 0.5 else d.rectangle)((x0, y0, x1, y1), fill=color)
        im = im.filter(ImageFilter.GaussianBlur(1.2))
        px = np.asarray(im).astype(np.int16) + rnd.integers(-6, 7, (h, w, 3))
        Image.fromarray(np.clip(px, 0, 255).astype(np.uint8)).save(
            os.path.join(a.dir, f"class{c:02d}", f"{i:05d}.jpg"), quality=90)
    open(os.path.join(a.dir, ".complete"), "w").close()


def cpu_seconds():
    """User + system time of this process and of its reaped children (the DataLoader's workers,
    joined when an epoch's iterator is exhausted)."""
    import resource
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def run(a):
    import torch
    import torchvision.transforms as T
    from torchvision.datasets import ImageFolder
    norm = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    if a.mode == "train":
        tf = T.Compose([T.RandomResizedCrop(a.size), T.RandomHorizontalFlip(), T.ToTensor(), norm])
    else:
        tf = T.Compose([T.Resize(a.resize or round(a.size * 256 / 224)), T.CenterCrop(a.size), T.ToTensor(), norm])
    ds = ImageFolder(a.dir, tf)
    dl = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=a.mode == "train", num_workers=a.workers)
    images, t0, cpu0 = 0, time.perf_counter(), cpu_seconds()
    for _ in range(a.epochs):
        for x, y in dl:
            images += len(y)
    dt, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    print(f"{images / dt:.1f} {1e3 * cpu / images:.2f} {images} {dt:.2f}")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("dir")
    g.add_argument("--images", type=int, default=2000)
    g.add_argument("--classes", type=int, default=10)
    g.add_argument("--size", default="500x375")
    r = sub.add_parser("run")
    r.add_argument("dir")
    r.add_argument("--mode", choices=["train", "eval"], default="train")
    r.add_argument("--batch", type=int, default=64)
    r.add_argument("--workers", type=int, default=2)
    r.add_argument("--size", type=int, default=224)
    r.add_argument("--resize", type=int, default=0)
    r.add_argument("--epochs", type=int, default=1)
    a = ap.parse_args()
    generate(a) if a.cmd == "generate" else run(a)


if __name__ == "__main__":
    sys.exit(main())
