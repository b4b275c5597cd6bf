"""safetensors_io.py — a small pure-Python safetensors reader/writer for cnn.c's oracle scripts.

Debian has no `safetensors` package, so this is our own: struct + json + torch (or numpy when torch is
missing). The layout is the same as cnn.c's C writer's, byte for byte: 8-byte little-endian header length,
compact JSON header ("__metadata__" first, then tensors in the order given) padded with spaces to a
multiple of 8, then the raw little-endian data grouped by element size (8, 4, 2, 1 bytes) so that
every tensor is aligned to its element size.

    from safetensors_io import load, save
    tensors, metadata = load("model.safetensors")   # dict name -> torch.Tensor, dict str -> str
    save("out.safetensors", tensors, {"epoch": "3"})
"""
import json
import os
import struct
import sys

try:
    import torch
except ImportError:  # numpy-only environments still get arrays
    torch = None
import numpy as np

MAX_HEADER_BYTES = 100_000_000
MAX_DIMS = 8

# name -> (bytes per element, numpy dtype or None, torch dtype attribute name or None)
DTYPES = {
    "F64": (8, "<f8", "float64"),
    "F32": (4, "<f4", "float32"),
    "F16": (2, "<f2", "float16"),
    "BF16": (2, None, "bfloat16"),
    "I64": (8, "<i8", "int64"),
    "I32": (4, "<i4", "int32"),
    "I16": (2, "<i2", "int16"),
    "I8": (1, "i1", "int8"),
    "U64": (8, "<u8", None),
    "U32": (4, "<u4", None),
    "U16": (2, "<u2", None),
    "U8": (1, "u1", "uint8"),
    "BOOL": (1, "?", "bool"),
}


class SafetensorsError(ValueError):
    pass


def _fail(path, msg):
    raise SafetensorsError(f"{path}: {msg}")


def _no_duplicates(path):
    def hook(pairs):
        seen = {}
        for k, v in pairs:
            if k in seen:
                _fail(path, f"key {k!r} given twice in the header")
            seen[k] = v
        return seen
    return hook


def _count(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _parse_header(path, blob):
    """Validated header: (list of (name, dtype, shape, begin, end) in header order, metadata, data start)."""
    if len(blob) < 8:
        _fail(path, f"{len(blob)} bytes, too short for a safetensors file")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > MAX_HEADER_BYTES:
        _fail(path, f"header length {n} is over the limit of {MAX_HEADER_BYTES}")
    if n > len(blob) - 8:
        _fail(path, f"header length {n} is more than the {len(blob) - 8} bytes that follow")
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"), object_pairs_hook=_no_duplicates(path))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        _fail(path, f"header is not valid JSON: {e}")
    if not isinstance(header, dict):
        _fail(path, "header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        _fail(path, "__metadata__ must be an object of strings")
    data_size = len(blob) - 8 - n
    entries = []
    for name, e in header.items():
        if not isinstance(e, dict) or not {"dtype", "shape", "data_offsets"} <= e.keys():
            _fail(path, f"tensor {name!r}: expected an object with dtype, shape and data_offsets")
        dtype, shape, offs = e["dtype"], e["shape"], e["data_offsets"]
        if dtype not in DTYPES:
            _fail(path, f"tensor {name!r}: unknown dtype {dtype!r}")
        if not isinstance(shape, list) or len(shape) > MAX_DIMS or not all(_count(d) for d in shape):
            _fail(path, f"tensor {name!r}: shape {shape!r} is not a list of at most {MAX_DIMS} non-negative integers")
        if not isinstance(offs, list) or len(offs) != 2 or not all(_count(o) for o in offs):
            _fail(path, f"tensor {name!r}: data_offsets {offs!r} are not two non-negative integers")
        begin, end = offs
        need = DTYPES[dtype][0]
        for d in shape:
            need *= d
        if begin > end or end > data_size or end - begin != need:
            _fail(path, f"tensor {name!r}: data_offsets {offs} do not fit shape {shape} of {dtype} "
                        f"within a data section of {data_size} bytes")
        entries.append((name, dtype, shape, begin, end))
    at = 0
    for name, _, _, begin, end in sorted(entries, key=lambda t: (t[3], t[4])):
        if begin != at:
            _fail(path, f"tensor {name!r} at data byte {begin}: {'overlap' if begin < at else 'gap'} (expected {at})")
        at = end
    if at != data_size:
        _fail(path, f"data bytes {at}..{data_size} belong to no tensor")
    return entries, metadata, 8 + n


def _to_tensor(raw, dtype, shape):
    size, np_dtype, torch_name = DTYPES[dtype]
    if torch is not None and torch_name is not None:
        tdt = getattr(torch, torch_name)
        if len(raw) == 0:
            return torch.empty(shape, dtype=tdt)
        flat = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
        return flat.view(tdt).reshape(shape).clone()
    if np_dtype is None:
        raise SafetensorsError(f"dtype {dtype} needs torch")
    return np.frombuffer(raw, dtype=np_dtype).reshape(shape).copy()


def load(path):
    """(dict name -> tensor in header order, metadata dict). Tensors are torch tensors when torch is
    importable (numpy arrays for U16/U32/U64, which torch 1.13 lacks), numpy arrays otherwise."""
    with open(path, "rb") as f:
        blob = f.read()
    entries, metadata, start = _parse_header(path, blob)
    tensors = {}
    for name, dtype, shape, begin, end in entries:
        tensors[name] = _to_tensor(blob[start + begin:start + end], dtype, shape)
    return tensors, dict(metadata)


def _dtype_and_bytes(name, t):
    if torch is not None and isinstance(t, torch.Tensor):
        names = {v[2]: k for k, v in DTYPES.items() if v[2]}
        key = str(t.dtype).replace("torch.", "")
        if key not in names:
            raise SafetensorsError(f"tensor {name!r}: dtype {t.dtype} is not supported")
        flat = t.detach().cpu().contiguous().reshape(-1)
        return names[key], list(t.shape), flat.view(torch.uint8).numpy().tobytes()
    a = np.asarray(t)
    for key, (_, np_dtype, _) in DTYPES.items():
        if np_dtype is not None and a.dtype == np.dtype(np_dtype):
            return key, list(a.shape), np.ascontiguousarray(a, dtype=np.dtype(np_dtype).newbyteorder("<")).tobytes()
    raise SafetensorsError(f"tensor {name!r}: dtype {a.dtype} is not supported")


def layout(entries):
    """Data offsets for [(name, dtype, shape, nbytes)]: grouped by element size, largest first, in the
    given order within a group, so every tensor is aligned to its element size (as cnn.c's writer does;
    PyTorch's loaders view the bytes in place and fail on misaligned offsets)."""
    offsets, at = {}, 0
    for size in (8, 4, 2, 1):
        for name, dtype, _, nbytes in entries:
            if DTYPES[dtype][0] == size:
                offsets[name] = (at, at + nbytes)
                at += nbytes
    return offsets


def header_bytes(entries, metadata):
    """The padded JSON header for [(name, dtype, shape, nbytes)]: "__metadata__" first, then the tensors
    in the given order."""
    header = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise SafetensorsError(f"metadata {k!r}: keys and values must be strings")
        header["__metadata__"] = dict(metadata)
    offsets = layout(entries)
    for name, dtype, shape, nbytes in entries:
        if name == "__metadata__" or not name:
            raise SafetensorsError(f"tensor name {name!r} is empty or reserved")
        if len(shape) > MAX_DIMS:
            raise SafetensorsError(f"tensor {name!r}: more than {MAX_DIMS} dims")
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": list(offsets[name])}
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return text + b" " * (-len(text) % 8)


def save(path, tensors, metadata=None):
    """Write tensors (dict name -> torch.Tensor or numpy array, in that order) atomically."""
    entries, blobs = [], {}
    for name, t in tensors.items():
        dtype, shape, raw = _dtype_and_bytes(name, t)
        entries.append((name, dtype, shape, len(raw)))
        blobs[name] = raw
    text = header_bytes(entries, metadata)
    offsets = layout(entries)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp.{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for name in sorted(blobs, key=lambda k: offsets[k]):
                f.write(blobs[name])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


if __name__ == "__main__":  # python3 safetensors_io.py FILE: list what a file holds
    for p in sys.argv[1:]:
        ts, meta = load(p)
        for k, v in meta.items():
            print(f"meta {k} = {v}")
        for k, v in ts.items():
            print(f"{k} {str(v.dtype).replace('torch.', '')} {list(v.shape)}")
