"""test_imagefolder.py — image folders against PIL and torchvision on files this test writes:
ImageFolder's classes, file order and extension rule; decoded pixels of every format (JPEG
4:2:0/4:2:2/4:4:4, progressive, grayscale, CMYK; PNG RGB/RGBA/L/LA/P/1-bit; BMP; PPM; PGM), also of
partial JPEG decodes; the training transform (RandomResizedCrop + flip) driven with the crop
parameters cnn.c drew and with ones torchvision drew, the evaluation transform (Resize + CenterCrop),
ToTensor + Normalize: bit-exact with reduced-scale decoding off, within a stated tolerance with it on;
RandomResizedCrop's fallback; the same epoch whatever the worker count."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image
from torchvision.datasets import ImageFolder

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cnntest import BUILD, check, report  # noqa: E402

DUMP = os.path.join(BUILD, "tests", "folder_dump")
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
# Reduced-scale JPEG decoding (1/2, 1/4, 1/8 when the target is >= 2x smaller than the reduced
# source) against PIL's full decode: per image, mean absolute difference at most 1.5 gray levels
# (measured 0.6-0.8 on average, 1.9 at worst on photos) and 99% of values within 12 gray levels.
REDUCED_MEAN, REDUCED_P99 = 1.5, 12.0


def dump(*args):
    r = subprocess.run([DUMP, *map(str, args)], capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"folder_dump {' '.join(map(str, args))}: {r.stderr}")
    return r.stdout


def photo(w, h, seed):
    """A photo-like RGB image: smooth random colors with fine noise."""
    r = np.random.default_rng(seed)
    small = r.integers(0, 256, (max(2, h // 16), max(2, w // 16), 3), dtype=np.uint8)
    a = np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC)).astype(np.int16)
    return Image.fromarray(np.clip(a + r.integers(-12, 13, (h, w, 3)), 0, 255).astype(np.uint8))


FORMATS = [  # name, size, how to save
    ("a420.jpg", (500, 375), lambda im, p: im.save(p, quality=90)),
    ("b444.JPG", (97, 61), lambda im, p: im.save(p, "JPEG", quality=95, subsampling=0)),
    ("c422.jpeg", (333, 201), lambda im, p: im.save(p, quality=80, subsampling=1)),
    ("d_progressive.jpg", (300, 260), lambda im, p: im.save(p, quality=85, progressive=True)),
    ("e_gray.jpg", (123, 77), lambda im, p: im.convert("L").save(p, quality=90)),
    ("f_cmyk.jpg", (150, 90), lambda im, p: im.convert("CMYK").save(p, quality=90)),
    ("g_rgb.png", (64, 48), lambda im, p: im.save(p)),
    ("h_rgba.Png", (65, 49), lambda im, p: im.convert("RGBA").save(p)),
    ("i_palette.png", (40, 30), lambda im, p: im.convert("P").save(p)),
    ("j_gray.png", (41, 31), lambda im, p: im.convert("L").save(p)),
    ("k_la.png", (44, 30), lambda im, p: im.convert("LA").save(p)),
    ("l_bits.png", (45, 29), lambda im, p: im.convert("1").save(p)),
    ("m.bmp", (41, 31), lambda im, p: im.save(p)),
    ("n.ppm", (42, 32), lambda im, p: im.save(p)),
    ("o.pgm", (43, 33), lambda im, p: im.convert("L").save(p)),
    ("p_wide.png", (1000, 10), lambda im, p: im.save(p)),   # RandomResizedCrop's fallback
    ("q_tall.jpg", (10, 1000), lambda im, p: im.save(p)),
]


def write_tree(root):
    """Two classes of every format, subdirectories whose sorted order differs from a tree walk,
    a directory reached through a symlink, and files ImageFolder ignores."""
    for c, cls in enumerate(["dogs", "cats"]):
        for i, (name, size, save) in enumerate(FORMATS):
            sub = ["", "sub", "sub-a", "sub a"][i % 4]
            d = os.path.join(root, cls, sub)
            os.makedirs(d, exist_ok=True)
            save(photo(*size, seed=100 * c + i), os.path.join(d, name))
        for ignored in ["notes.txt", "anim.gif", ".DS_Store"]:
            open(os.path.join(root, cls, ignored), "w").write("x")
    os.makedirs(os.path.join(root, "extra", "real"))
    photo(50, 40, 7).save(os.path.join(root, "extra", "real", "z.jpg"))
    os.symlink(os.path.join(root, "extra", "real"), os.path.join(root, "extra", "linked"))


def test_scan(root):
    ds = ImageFolder(root)
    lines = dump("scan", root).splitlines()
    classes = [l[6:] for l in lines if l.startswith("class ")]
    files = [(l.split(" ", 2)[2], int(l.split(" ", 2)[1])) for l in lines if l.startswith("file ")]
    check(classes == ds.classes, f"classes {classes} vs ImageFolder's {ds.classes}")
    check(files == ds.samples, f"files differ from ImageFolder's samples:\n{files[:8]}\n{ds.samples[:8]}")
    print(f"scan: {len(classes)} classes, {len(files)} files, as ImageFolder lists them")


def test_decode(root, rng):
    worst_regions = 0
    for path, _ in ImageFolder(root).samples:
        for ch, mode in ((3, "RGB"), (1, "L")):
            ref = np.asarray(Image.open(path).convert(mode)).reshape(-1)
            pil = Image.open(path)
            w, h = pil.size
            out = os.path.join(os.path.dirname(root), "px.bin")
            dump("decode", path, out, 1, 0, 0, w, h, ch)
            got = np.fromfile(out, np.uint8)
            check(got.shape == ref.shape and np.array_equal(got, ref), f"{path} as {mode}: pixels differ from PIL's")
            if pil.format != "JPEG":
                continue
            full = ref.reshape(h, w, ch)
            for _ in range(6):  # partial decodes: the rectangle asked for equals the full decode's
                x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
                x1, y1 = int(rng.integers(x0 + 1, w + 1)), int(rng.integers(y0 + 1, h + 1))
                sw, sh, rx, ry, rw, rh, c = map(int, dump("decode", path, out, 1, x0, y0, x1, y1, ch).split())
                part = np.fromfile(out, np.uint8).reshape(rh, rw, ch)
                ok = rx <= x0 and ry <= y0 and rx + rw >= x1 and ry + rh >= y1
                ok = ok and np.array_equal(part[y0 - ry:y1 - ry, x0 - rx:x1 - rx], full[y0:y1, x0:x1])
                worst_regions += not ok
                check(ok, f"{path} {mode}: region [{x0},{x1})x[{y0},{y1}) differs from the full decode")
    print(f"decode: every file equals PIL's convert('RGB') and convert('L'); partial JPEG decodes exact "
          f"({worst_regions} failures)")


def torchvision_sample(path, rec, train, size, resize, channels):
    idx, label, x, y, w, h, rw, rh, ox, oy, flip = rec
    img = Image.open(path).convert("RGB" if channels == 3 else "L")
    if train:
        img = F.resized_crop(img, y, x, h, w, [size, size])
        if flip:
            img = F.hflip(img)
    else:
        img = T.CenterCrop(size)(T.Resize(resize)(img))
    return F.normalize(F.to_tensor(img), MEAN[:channels], STD[:channels]).numpy()


def loader_epoch(root, train, size, resize, reduced, channels=3, workers=3, epoch=0, seed=7):
    out = os.path.join(os.path.dirname(root), f"epoch{workers}.f32")
    lines = dump("loader", root, out, int(train), size, resize, seed, epoch, workers, 5, int(reduced), channels)
    lines = lines.splitlines()
    check(lines[0] == "bad 0", f"unexpected unreadable files: {lines[0]}")
    recs = [list(map(int, l.split())) for l in lines[1:]]
    return recs, np.fromfile(out, np.float32).reshape(len(recs), channels, size, size)


def gray_levels(a, b):
    """Absolute differences in units of pixel values (0..255), undoing Normalize."""
    return np.abs(a - b) * np.array(STD[:a.shape[0]])[:, None, None] * 255


def test_transforms(root):
    samples = ImageFolder(root).samples
    for train in (True, False):
        for size, resize, channels in ((32, 37, 3), (64, 73, 3), (48, 48, 1)):
            recs, got = loader_epoch(root, train, size, resize, False, channels)
            worst = 0.0
            for rec, g in zip(recs, got):
                path, label = samples[rec[0]]
                check(label == rec[1], f"{path}: label {rec[1]}, ImageFolder says {label}")
                ref = torchvision_sample(path, rec, train, size, resize, channels)
                worst = max(worst, float(np.abs(ref - g).max()))
            check(worst == 0.0, f"{'train' if train else 'eval'} {size}: max difference {worst} with torchvision")
            print(f"{'training' if train else 'evaluation'} transform {size}x{size}x{channels}: "
                  f"{len(recs)} samples bit-exact with torchvision")


def test_crop_params(root):
    """cnn.c's RandomResizedCrop parameters obey torchvision's algorithm; the transform applied
    with parameters torchvision drew equals torchvision's output."""
    samples = ImageFolder(root).samples
    recs, _ = loader_epoch(root, True, 32, 37, False)
    for idx, label, x, y, w, h, *_ in recs:
        W, H = Image.open(samples[idx][0]).size
        if (W, H) == (1000, 10):  # every try fails: the fallback keeps the 4:3 central crop
            check((x, y, w, h) == (493, 0, 13, 10), f"fallback of 1000x10: {(x, y, w, h)}")
        elif (W, H) == (10, 1000):
            check((x, y, w, h) == (0, 493, 10, 13), f"fallback of 10x1000: {(x, y, w, h)}")
        else:
            area = w * h / (W * H)
            ok = 0 < w <= W and 0 < h <= H and x + w <= W and y + h <= H
            # rounding of w and h moves area and ratio a little past the ranges
            ok = ok and 0.08 * 0.8 - 2 / min(W, H) <= area <= 1 and 3 / 4 * 0.8 <= w / h <= 4 / 3 * 1.25
            check(ok, f"crop {(x, y, w, h)} of {W}x{H}")
    torch.manual_seed(3)
    rrc = T.RandomResizedCrop(40)
    out = os.path.join(os.path.dirname(root), "apply.f32")
    for path, _ in samples[:12]:
        img = Image.open(path).convert("RGB")
        i, j, h, w = rrc.get_params(img, rrc.scale, rrc.ratio)
        flip = int(torch.rand(1) < 0.5)
        dump("apply", path, out, 1, 40, 46, 0, 3, j, i, w, h, 40, 40, 0, 0, flip)
        ref = torchvision_sample(path, [0, 0, j, i, w, h, 40, 40, 0, 0, flip], True, 40, 46, 3)
        check(np.array_equal(np.fromfile(out, np.float32).reshape(3, 40, 40), ref),
              f"{path}: torchvision's crop {(i, j, h, w)} applied by cnn.c differs")
    print("RandomResizedCrop: parameters within torchvision's ranges, its fallback exact, "
          "torchvision's own parameters reproduced exactly")


def test_reduced(root):
    samples = ImageFolder(root).samples
    worst_mean = worst_p99 = 0.0
    n_reduced = 0
    for train in (True, False):
        for epoch in range(3 if train else 1):
            recs, got = loader_epoch(root, train, 32, 37, True, epoch=epoch)
            for rec, g in zip(recs, got):
                d = gray_levels(g, torchvision_sample(samples[rec[0]][0], rec, train, 32, 37, 3))
                if d.max() > 0:
                    n_reduced += 1
                worst_mean, worst_p99 = max(worst_mean, d.mean()), max(worst_p99, np.percentile(d, 99))
    check(n_reduced > 5, f"only {n_reduced} samples used reduced-scale decoding")
    check(worst_mean <= REDUCED_MEAN and worst_p99 <= REDUCED_P99,
          f"reduced-scale decoding: worst mean difference {worst_mean:.2f}, worst 99th percentile {worst_p99:.2f}")
    print(f"reduced-scale JPEG decoding: {n_reduced} samples, worst mean difference {worst_mean:.2f} gray levels, "
          f"worst 99th percentile {worst_p99:.1f}")


def test_workers(root):
    a, ga = loader_epoch(root, True, 32, 37, True, workers=1, epoch=2)
    b, gb = loader_epoch(root, True, 32, 37, True, workers=4, epoch=2)
    check(a == b and np.array_equal(ga, gb), "1 and 4 workers give different epochs")
    print("1 and 4 workers: identical epochs")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "tree")
        write_tree(root)
        rng = np.random.default_rng(0)
        test_scan(root)
        test_decode(root, rng)
        test_transforms(root)
        test_crop_params(root)
        test_reduced(root)
        test_workers(root)
    report("test_imagefolder")


if __name__ == "__main__":
    main()
