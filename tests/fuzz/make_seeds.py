"""make_seeds.py — writes the seed inputs of the fuzz corpora (tests/fuzz/<target>/seed-*): small valid
files of each format in the input layout of fuzz/fuzz_<target>.c. Inputs that found bugs sit beside them
as regress-* and are never regenerated. Run: /usr/bin/python3 tests/fuzz/make_seeds.py"""
import gzip
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
SEP = b"\n--8<--\n"  # FUZZ_SEP in fuzz/fuzz.h


def put(target, name, data):
    os.makedirs(os.path.join(HERE, target), exist_ok=True)
    with open(os.path.join(HERE, target, "seed-" + name), "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, mtime=0)


def idx_seeds():
    n, rows, cols = 3, 2, 3
    images = struct.pack(">IIII", 0x803, n, rows, cols) + bytes(range(1, 1 + n * rows * cols))
    labels = struct.pack(">II", 0x801, n) + bytes([2, 0, 9])
    put("idx", "plain", b"\x00" + images + SEP + labels)
    put("idx", "gzip-here", b"\x1b" + images + SEP + labels)  # the target gzips both (level 6)
    put("idx", "gzip-files", b"\x00" + gz(images) + SEP + gz(labels))
    put("idx", "gzip-two-members", b"\x00" + gz(images[:10]) + gz(images[10:]) + SEP + labels)
    put("idx", "28x28", b"\x03" + struct.pack(">IIII", 0x803, 1, 28, 28) + bytes(784) + SEP +
        struct.pack(">II", 0x801, 1) + b"\x07")


def cifar_seeds():
    def rec10(label):
        return bytes([label]) + bytes((label * 7 + i) % 256 for i in range(3072))

    def rec100(coarse, fine):
        return bytes([coarse, fine]) + bytes((fine + i) % 256 for i in range(3072))

    put("cifar", "cifar10-one-file", b"\x00" + rec10(3) + rec10(9))                # flags: 1 file
    put("cifar", "cifar10-two-files", b"\x02" + rec10(1) + SEP + rec10(0))         # 2 files
    put("cifar", "cifar100", b"\x01" + rec100(19, 99))
    names = "\n".join(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"])
    put("cifar", "cifar10-names", b"\x10" + rec10(5) + SEP + names.encode())     # 1 file + names
    put("cifar", "cifar10-gzip", b"\x00" + gz(rec10(2)))


def safetensors(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, bytes)."""
    header, at, data = {}, 0, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [at, at + len(raw)]}
        at += len(raw)
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


META = {
    "format": "cnn.c checkpoint 1",
    "model": {"name": "convnet", "input": [1, 28, 28], "classes": 10, "bn": True, "dropout": -1},
    "data": {"dataset": "fashion-mnist", "class_names": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
             "mean": [0.286], "std": [0.353]},
    "train": {"epoch": 2, "step": 1874},
}


def safetensors_seeds():
    meta = json.dumps(META, separators=(",", ":"))
    put("safetensors", "checkpoint", safetensors([
        ("features.0.weight", "F32", [2, 1, 1, 1], struct.pack("<2f", 0.5, -0.25)),
        ("features.0.bias", "F32", [2], struct.pack("<2f", 0.0, 1.0)),
        ("features.1.num_batches_tracked", "I64", [], struct.pack("<q", 7)),
    ], {"cnn": meta}))
    put("safetensors", "dtypes", safetensors([
        ("a", "F64", [1], struct.pack("<d", 1.0)), ("b", "F16", [2], b"\x00\x3c\x00\x40"),
        ("c", "BF16", [1], b"\x80\x3f"), ("d", "U8", [0, 3], b""), ("e", "BOOL", [2], b"\x01\x00"),
        ("f", "I32", [1, 1], struct.pack("<i", -3))]))
    put("safetensors", "empty", safetensors([]))
    put("safetensors", "metadata-only", safetensors([], {"k": "v", "cnn": "{}"}))


def json_seeds():
    docs = [b'{"a":[1,2.5,-3e-7,true,false,null],"b":{"c":"\\u00e9\\ud83d\\ude00\\n"}}',
            b'[9223372036854775807,-9223372036854775808,18446744073709551616,1e308,-0.0]',
            b'"\\u0000 nul inside"', b'{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}',
            b'  [[[[[[[[[[]]]]]]]]]]  ', json.dumps(META).encode()]
    for i, d in enumerate(docs):
        put("json", f"doc{i}", b"\x00" + d)
    put("json", "tight-limits", b"\x07" + docs[0])


def ckpt_meta_seeds():
    put("ckpt_meta", "convnet", json.dumps(META).encode())
    m = dict(META, model={"name": "resnet20", "input": [3, 32, 32], "classes": 10, "bn": False, "dropout": 0.0},
             data={"dataset": "cifar10", "class_names": [], "mean": [0.49, 0.48, 0.45], "std": [0.25, 0.24, 0.26]})
    put("ckpt_meta", "resnet20", json.dumps(m).encode())
    put("ckpt_meta", "minimal", b'{"model":{"name":"plain8","input":[1,8,8]}}')
    put("ckpt_meta", "regnet20", b'{"model":{"name":"regnet20","input":[3,32,32],"regulator":"convgru",'
                                 b'"regulated_stages":[1,3]}}')


def cli_seeds():
    commands = {0: [["--model", "resnet20", "--dataset", "cifar10", "--epochs", "30", "--batch-size=128", "--lr", "0.1",
                     "--optimizer", "adamw", "--schedule", "multistep", "--milestones", "10,20", "--no-flip", "--bn"],
                    ["--help"], ["--seed", "9000000000000000000", "--crop", "-1", "--", "extra"],
                    ["--schedule", "cosine", "--warmup", "1.5", "--min-lr", "1e-5", "--nesterov", "--momentum", "0.9"]],
                1: [["--checkpoint", "runs/x/best.safetensors", "--split", "train", "--json", "--threads", "2"]],
                2: [["--model", "convnet", "--input", "3x32x32", "--classes", "100", "--no-layers"], ["--input", "32x32"]],
                3: [["--model", "resnet20", "--mode", "eval", "--profile", "--steps", "5", "--warmup=0"]],
                4: [[], ["--help"]],
                5: [["--checkpoint", "runs/x/best.safetensors", "--top", "3", "--json", "a.jpg", "b.png"]]}
    for cmd, lists in commands.items():
        for i, args in enumerate(lists):
            put("cli", f"cmd{cmd}-{i}", bytes([cmd]) + b"\0".join(a.encode() for a in args))



def image_seeds():
    """Small images of every kind an image folder holds, behind the target's four option bytes."""
    import io
    from PIL import Image
    base = Image.new("RGB", (37, 29))
    base.putdata([((x * 7) % 256, (y * 9) % 256, (x * y) % 256) for y in range(29) for x in range(37)])
    kinds = {
        "jpeg-420": ("JPEG", base, {"quality": 80}),
        "jpeg-444-progressive": ("JPEG", base, {"quality": 90, "subsampling": 0, "progressive": True}),
        "jpeg-gray": ("JPEG", base.convert("L"), {}),
        "jpeg-cmyk": ("JPEG", base.convert("CMYK"), {}),
        "png-rgba": ("PNG", base.convert("RGBA"), {}),
        "png-palette": ("PNG", base.convert("P"), {}),
        "bmp": ("BMP", base, {}),
        "pgm": ("PPM", base.convert("L"), {}),
    }
    for i, (name, (fmt, im, kw)) in enumerate(kinds.items()):
        buf = io.BytesIO()
        im.save(buf, fmt, **kw)
        put("image", name, bytes([i % 8, 16 + 8 * i, i, 7 * i]) + buf.getvalue())


if __name__ == "__main__":
    idx_seeds()
    cifar_seeds()
    safetensors_seeds()
    json_seeds()
    ckpt_meta_seeds()
    cli_seeds()
    image_seeds()
