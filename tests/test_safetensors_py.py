"""test_safetensors_py.py — the C safetensors code against tools/safetensors_io.py, both ways, exactly.

Python writes random tensors of every dtype -> the C program reads and rewrites them -> the bytes must
be identical and Python must read back the same bits. The C program writes tensors from formulas ->
Python recomputes the formulas with torch and compares exactly. Malformed files are refused by both.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

SOURCE = os.environ.get("CNN_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
BUILD = os.environ.get("CNN_BUILD_DIR", os.path.join(SOURCE, "build"))
sys.path.insert(0, os.path.join(SOURCE, "tools"))

import torch  # noqa: E402
import safetensors_io as sio  # noqa: E402

HELPER = os.path.join(BUILD, "tests", "test_safetensors")
failures = 0


def check(cond, msg):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", msg, file=sys.stderr)


def raw(t):
    """The tensor's bytes (so NaN payloads and -0.0 compare exactly)."""
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def same(a, b):
    return a.dtype == b.dtype and list(a.shape) == list(b.shape) and raw(a) == raw(b)


def c_tool(*args):
    return subprocess.run([HELPER, *args], capture_output=True, text=True, timeout=120)


def random_tensors():
    g = torch.Generator().manual_seed(1234)

    def bits(n, dtype_bits, shape):
        # Random bit patterns: NaN payloads, subnormals, infinities and -0 all turn up.
        x = torch.randint(0, 256, (n * dtype_bits // 8,), generator=g, dtype=torch.uint8)
        return x.view({8: torch.uint8, 16: torch.int16, 32: torch.int32, 64: torch.int64}[dtype_bits]).reshape(shape)

    t = {}
    t["conv1.weight"] = bits(2 * 3 * 3 * 3, 32, (2, 3, 3, 3)).view(torch.float32)
    t["layer1.0.bn1.running_var"] = torch.rand(7, generator=g, dtype=torch.float64)
    t["f64.bits"] = bits(5, 64, (5,)).view(torch.float64)
    t["f16"] = bits(9, 16, (3, 3)).view(torch.float16)
    t["bf16"] = bits(4, 16, (4,)).view(torch.bfloat16)
    t["layer1.0.bn1.num_batches_tracked"] = torch.tensor(123456789012345, dtype=torch.int64)
    t["i64"] = bits(6, 64, (2, 3))
    t["i32"] = bits(5, 32, (5,))
    t["i16"] = bits(3, 16, (3,))
    t["i8"] = bits(11, 8, (11,)).view(torch.int8)
    t["u8"] = bits(13, 8, (13,))
    t["mask"] = torch.rand(10, generator=g) > 0.5
    t["empty"] = torch.zeros(3, 0, 2)
    t["eight"] = torch.arange(6, dtype=torch.float32).reshape(1, 1, 1, 1, 1, 1, 2, 3)
    t["caf\u00e9.\u65e5\u672c.\U0001F600"] = torch.tensor([1.5, -2.0])
    t["odd \"name\" \\ with\ttab"] = torch.tensor([7], dtype=torch.int32)
    return t


METADATA = {
    "format": "pt",
    "cnn": '{"model": "resnet20", "classes": ["T-shirt/top", "caf\u00e9"], "mean": [0.5]}',
    "control": "bell \a nul-free \x01\x1f del \x7f newline \n quote \" backslash \\",
    "emoji \U0001F600": "\u2028 line separator",
}


def test_python_to_c(tmp):
    src, dst = os.path.join(tmp, "py.safetensors"), os.path.join(tmp, "c_copy.safetensors")
    tensors = random_tensors()
    sio.save(src, tensors, METADATA)
    r = c_tool("copy", src, dst)
    check(r.returncode == 0, f"C copy failed: {r.stderr}")
    if r.returncode:
        return
    with open(src, "rb") as f:
        a = f.read()
    with open(dst, "rb") as f:
        b = f.read()
    check(a == b, "the C writer's bytes differ from the Python writer's for the same tensors")
    back, meta = sio.load(dst)
    check(list(back) == list(tensors), f"names/order differ: {list(back)}")
    for k, v in tensors.items():
        check(k in back and same(back[k], v), f"tensor {k!r} differs after the C round trip")
    check(meta == METADATA, f"metadata differ: {meta}")
    (n,) = struct.unpack("<Q", b[:8])
    check(n % 8 == 0, f"header length {n} not a multiple of 8")
    # As the reference PyTorch loader does: view each tensor's bytes in place inside the whole file's
    # storage, which torch refuses unless the offset is a multiple of the element size.
    header = json.loads(b[8:8 + n])
    whole = torch.frombuffer(bytearray(b), dtype=torch.uint8)
    for k, e in header.items():
        if k == "__metadata__" or k not in tensors or tensors[k].numel() == 0:
            continue
        begin, end = e["data_offsets"]
        try:
            v = whole[8 + n + begin:8 + n + end].view(tensors[k].dtype).reshape(tensors[k].shape)
            check(same(v, tensors[k]), f"{k!r}: in-place view differs")
        except RuntimeError as err:
            check(False, f"{k!r} not viewable in place (misaligned?): {err}")


def fixture_expected():
    i = torch.arange(12)
    num = (i * 37) % 101 - 50
    i64 = [(k - 3) * 3037000499 for k in range(4)] + [2**63 - 1, -2**63]
    return {
        "features.0.weight": (num.to(torch.float32) / 7).reshape(3, 4),
        "f64": (num.to(torch.float64) / 7).reshape(2, 3, 2),
        "bn.num_batches_tracked": torch.tensor(i64, dtype=torch.int64),
        "i32": torch.tensor([-2**31, -1, 0, 1, 2**31 - 1], dtype=torch.int32),
        "u8": (255 - torch.arange(256)).to(torch.uint8).reshape(16, 16),
        "bool": torch.arange(7) % 3 == 0,
        "scalar": torch.tensor(-13, dtype=torch.float32) / 7,
    }, {
        "producer": "cnn.c",
        "note": "quote \" backslash \\ newline \n tab \t bell \a caf\u00e9 \U0001F600",
    }


def test_c_to_python(tmp):
    path = os.path.join(tmp, "c_fixture.safetensors")
    r = c_tool("fixture", path)
    check(r.returncode == 0, f"C fixture failed: {r.stderr}")
    if r.returncode:
        return
    got, meta = sio.load(path)
    want, want_meta = fixture_expected()
    check(list(got) == list(want), f"names/order: {list(got)}")
    for k, v in want.items():
        check(k in got and same(got[k], v), f"fixture tensor {k!r}: got {got.get(k)}, expected {v}")
    check(meta == want_meta, f"fixture metadata: {meta}")
    # The Python writer given the same tensors must produce the same bytes.
    again = os.path.join(tmp, "py_fixture.safetensors")
    sio.save(again, want, want_meta)
    with open(path, "rb") as f:
        a = f.read()
    with open(again, "rb") as f:
        b = f.read()
    check(a == b, "Python's bytes differ from the C writer's for the fixture")


def test_rejections(tmp):
    good = os.path.join(tmp, "good.safetensors")
    sio.save(good, {"a": torch.ones(2), "b": torch.zeros(3, dtype=torch.int64)}, {"k": "v"})
    with open(good, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = blob[8:8 + n]
    cases = {
        "truncated": blob[:-1],
        "short": blob[:5],
        "bad-length": struct.pack("<Q", len(blob)) + blob[8:],
        "bad-offsets": blob[:8] + header.replace(b"[24,32]", b"[24,33]") + blob[8 + n:],  # a after b's 24 bytes
        "bad-dtype": blob[:8] + header.replace(b'"F32"', b'"F33"') + blob[8 + n:],
        "dup-name": blob[:8] + header.replace(b'"b"', b'"a"') + blob[8 + n:],
        "meta-not-string": blob[:8] + header.replace(b'"v"', b"123") + blob[8 + n:],
    }
    for name, data in cases.items():
        check(data != blob, f"{name}: the mutation did not apply")
        path = os.path.join(tmp, f"bad-{name}.safetensors")
        with open(path, "wb") as f:
            f.write(data)
        try:
            sio.load(path)
            check(False, f"Python accepted the {name} file")
        except sio.SafetensorsError as e:
            check(path in str(e), f"Python message lacks the path: {e}")
        r = c_tool("copy", path, os.path.join(tmp, "never.safetensors"))
        check(r.returncode == 1 and path in r.stderr, f"C accepted the {name} file or its message lacks the path: {r.stderr!r}")
    check(not os.path.exists(os.path.join(tmp, "never.safetensors")), "C wrote output for a bad input")
    leftovers = [f for f in os.listdir(tmp) if ".tmp." in f]
    check(not leftovers, f"temporaries left behind: {leftovers}")


def main():
    if not os.access(HELPER, os.X_OK):
        print(f"test_safetensors_py: C helper {HELPER} is not built", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="st_py_", dir=os.getcwd()) as tmp:
        test_python_to_c(tmp)
        test_c_to_python(tmp)
        test_rejections(tmp)
    if failures:
        print(f"test_safetensors_py: {failures} failure(s)", file=sys.stderr)
        return 1
    print("test_safetensors_py: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
