"""test_checkpoint_roundtrip.py — a checkpoint cnn.c writes is a PyTorch state_dict: it loads into the PyTorch
twin of the model (tools/torch_models.py) with load_state_dict(strict=True) once the "optimizer.*" tensors are
set aside, and PyTorch's evaluation-mode logits on a batch match cnn.c's.

For each case tools/parity.py writes weights and a batch; tests/progs/parity_run loads them, takes SGD steps
(so the weights, running statistics and momentum buffers are cnn.c's own), saves a checkpoint with ckpt_save
and writes its evaluation logits. The torchvision models (resnet18, vgg11_bn) load into torchvision's own
class, torchvision.models.X(num_classes=10). The googlenet case is torchvision's own GoogLeNet with its
auxiliary heads, trained by cnn.c with torchvision's dropout (0.2, and 0.7 in the heads): in evaluation
PyTorch drops the heads, turns dropout off and uses the running statistics, and so must cnn.c. Checked:
  - the metadata describes the model (name, input, classes, bn, dropout settings; a regnet's regulator
    and regulated stages);
  - the parameters and buffers equal, bit for bit, the values parity_run reports for the model in memory;
  - every trainable parameter has its optimizer.<name>.momentum_buffer of the same shape, nothing else;
  - PyTorch loads it strictly and its eval logits match cnn.c's: max|a-b| / max|b| <= 1e-4;
  - cnn.c rebuilds the model from the checkpoint alone (ckpt_load_model) and gives the same logits (1e-6).

    /usr/bin/python3 tests/test_checkpoint_roundtrip.py [--keep DIR]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

SOURCE = os.environ.get("CNN_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
BUILD = os.environ.get("CNN_BUILD_DIR", os.path.join(SOURCE, "build"))
sys.path.insert(0, os.path.join(SOURCE, "tools"))

import torch  # noqa: E402
import torchvision  # noqa: E402
import parity  # noqa: E402
import safetensors_io as sio  # noqa: E402
import torch_models  # noqa: E402

PARITY_RUN = os.path.join(BUILD, "tests", "parity_run")
CASES = [  # (label, model, c×h×w, bn, batch, SGD steps, lr, dropout settings)
    ("resnet20 3x32x32", "resnet20", (3, 32, 32), False, 8, 3, 0.1, {}),
    ("convnet --bn 1x28x28", "convnet", (1, 28, 28), True, 8, 3, 0.1, {}),
    # torchvision's own classes, unmodified at these inputs: torchvision.models.X(num_classes=10)
    ("resnet18 3x96x96", "resnet18", (3, 96, 96), False, 2, 1, 0.01, {}),
    ("vgg11_bn 3x64x64", "vgg11_bn", (3, 64, 64), False, 2, 1, 0.01, {}),
    # torchvision.models.GoogLeNet(num_classes=10, aux_logits=True, transform_input=False) (torch_models.googlenet)
    ("googlenet 3x64x64", "googlenet", (3, 64, 64), False, 2, 1, 0.01, {"dropout": 0.2, "dropout_aux": 0.7}),
    ("regnet20 convgru 2,3", "regnet20", (3, 32, 32), False, 8, 3, 0.1,
     {"regulator": "convgru", "regulated_stages": (2, 3)}),
]
CLASSES = 10
TOL_TORCH, TOL_RELOAD = 1e-4, 1e-6


def rel(a, b):
    a, b = a.double(), b.double()
    return (a - b).abs().max().item() / b.abs().max().item()


def run(*args):
    env = dict(os.environ, OMP_NUM_THREADS="2")
    return subprocess.run([PARITY_RUN, *args], capture_output=True, text=True, timeout=600, env=env)


def check_case(label, model, shape, bn, batch, steps, lr, settings, workdir):
    """(list of failures, summary figures)."""
    fails, c, h, w = [], *shape
    d = os.path.join(workdir, model + ("_bn" if bn else ""))
    parity.generate(d, model, c, h, w, CLASSES, batch, bn=bn, steps=steps, lr=lr, inputs_only=True, **settings)
    ckpt = os.path.join(d, "model.safetensors")
    r = run(d, "--save-ckpt", ckpt)
    if r.returncode != 0:
        return [f"parity_run exited with {r.returncode}: {r.stderr.strip()}"], ""
    out, _ = sio.load(os.path.join(d, "out.safetensors"))
    tensors, meta = sio.load(ckpt)

    info = json.loads(meta.get("cnn", "{}")).get("model", {})
    want = {"name": model, "input": [c, h, w], "classes": CLASSES, "bn": bn}
    if "regulator" in settings:
        want.update(regulator=settings["regulator"], regulated_stages=list(settings["regulated_stages"]))
    for k, v in want.items():
        if info.get(k) != v:
            fails.append(f"metadata model.{k} = {info.get(k)!r}, expected {v!r}")
    for k, v in settings.items():
        if k in ("regulator", "regulated_stages"):
            continue
        if not abs(info.get(k, -1) - v) < 1e-6:
            fails.append(f"metadata model.{k} = {info.get(k)!r}, expected {v!r}")

    state = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}
    optim = {k: v for k, v in tensors.items() if k.startswith("optimizer.")}
    for k, v in state.items():
        mine = out.get("final." + k)
        if mine is None or mine.dtype != v.dtype or not torch.equal(mine, v):
            fails.append(f"{k}: the checkpoint's value is not the model's (parity_run final.{k})")

    if model in torch_models.TORCHVISION:
        net = getattr(torchvision.models, model)(num_classes=CLASSES)
    else:
        net = torch_models.build(model, c, h, w, CLASSES, bn=bn, **settings)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        return fails + [f"load_state_dict(strict=True) refused the checkpoint: {e}"], ""
    expected = {f"optimizer.{k}.momentum_buffer": list(p.shape) for k, p in net.named_parameters()}
    got = {k: list(v.shape) for k, v in optim.items()}
    if got != expected:
        missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
        wrong = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])
        fails.append(f"optimizer tensors: missing {missing[:3]}, unexpected {extra[:3]}, mis-shaped {wrong[:3]}")

    net.eval()
    batch, _ = sio.load(os.path.join(d, "batch.safetensors"))
    with torch.no_grad():
        torch_logits = net(batch["input"])
    e_torch = rel(out["eval_logits"], torch_logits)
    if not e_torch <= TOL_TORCH:
        fails.append(f"eval logits, PyTorch on cnn.c's checkpoint vs cnn.c: {e_torch:.2e} > {TOL_TORCH:g}")

    reload_path = os.path.join(d, "reload.safetensors")
    r = run("--eval-ckpt", ckpt, "--batch", os.path.join(d, "batch.safetensors"), "--out", reload_path)
    if r.returncode != 0:
        return fails + [f"parity_run --eval-ckpt exited with {r.returncode}: {r.stderr.strip()}"], ""
    reloaded, _ = sio.load(reload_path)
    e_reload = rel(reloaded["eval_logits"], out["eval_logits"])
    if not e_reload <= TOL_RELOAD:
        fails.append(f"eval logits, cnn.c rebuilt from the checkpoint vs cnn.c: {e_reload:.2e} > {TOL_RELOAD:g}")
    return fails, (f"{len(state)} tensors + {len(optim)} optimizer tensors; eval logits max|a-b|/max|b|: "
                   f"PyTorch {e_torch:.1e}, cnn.c reloaded {e_reload:.1e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keep", help="directory to keep the files in (default: a temporary one)")
    a = ap.parse_args()
    if not os.path.exists(PARITY_RUN):
        print(f"FAIL: {PARITY_RUN} is missing (build the project; CNN_BUILD_DIR={BUILD})", file=sys.stderr)
        return 1
    torch.set_num_threads(2)
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for label, model, shape, bn, batch, steps, lr, settings in CASES:
            fails, figures = check_case(label, model, shape, bn, batch, steps, lr, settings, a.keep or tmp)
            print(f"{'FAIL' if fails else 'ok':4s} {label:22s} {figures}")
            for f in fails[:12]:
                print(f"     {f}")
            failed += bool(fails)
    print(f"test_checkpoint_roundtrip: {failed} case(s) failed" if failed else "test_checkpoint_roundtrip: all pass")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
