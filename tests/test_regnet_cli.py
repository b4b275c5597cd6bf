"""test_regnet_cli.py — the RegNet models (Xu et al. 2021) from the command line: parameter counts of
`cnn summary` against the PyTorch reference of tools/torch_models.py (and, without the regulator, against
torchvision's published ResNet-18/50 counts), the regulator's extra
multiply-accumulates against a hand count, --regulator/--regulated-stages misuse, the help texts
that tell this RegNet from Facebook's RegNetX/Y, and a short training run whose checkpoint records the
regulator, which a resumed run and cnn eval keep (a resumed run refuses another one).

Hand count of the regulator's multiply-accumulates per image, for a stage of width w (input channels =
hidden channels = w, 3×3 kernels) at r×r with three blocks, the state zero before the first:
  ConvLSTM  first step: rows i, o, g over x alone       3w · w · 9
            later steps: 4w rows over [x; h]            4w · 2w · 9   (two of them)
  ConvGRU   first step: rows z and the candidate over x  2 · w · w · 9
            later steps: gates 2w and candidate w over [x; h] and [x; r·h]   3w · 2w · 9   (two)
  each block's conv_fuse 1×1, 2w → w                    2w · w        (three)
all times r². A cell that convolved the zero state too would cost more: the count checks that it does not."""
import json
import os
import re
import tempfile

from cnntest import check, cnn, report, write_mnist_like  # first: puts tools/ on the path
import safetensors_io  # noqa: E402
import torch_models  # noqa: E402


def summary(*args):
    rc, out, err = cnn("summary", "--no-layers", *args)
    check(rc == 0, f"cnn summary {' '.join(args)}: exit {rc}: {err.strip()}")
    params = re.search(r"parameters: (\d+)", out)
    cost = re.search(r"\+(\d+) parameters .* \+(\d+) multiply-accumulates .*\((\d+) parameters, (\d+) multiply", out)
    return (int(params.group(1)) if params else -1), (tuple(map(int, cost.groups())) if cost else None), out


def torch_params(model, h, w, **kw):
    net = torch_models.build(model, 3, h, w, 10 if h == 32 else 1000, **kw)
    return sum(p.numel() for p in net.parameters())


def hand_macs(regulator, stages=(1, 2, 3)):
    per_stage = {"convlstm": 3 * 9 + 2 * 8 * 9 + 3 * 2, "convgru": 2 * 9 + 2 * 6 * 9 + 3 * 2}[regulator]
    return sum(per_stage * (16 << s) ** 2 * (32 >> s) ** 2 for s in range(3) if s + 1 in stages)


def counts():
    resnet20 = torch_params("resnet20", 32, 32)
    for regulator, stages in (("convlstm", (1, 2, 3)), ("convgru", (1, 2, 3)), ("convgru", (1,)), ("none", None)):
        args = ["--model", "regnet20", "--regulator", regulator]
        if stages:
            args += ["--regulated-stages", ",".join(map(str, stages))]
        n, cost, out = summary(*args)
        ref = torch_params("regnet20", 32, 32, regulator=regulator, regulated_stages=stages)
        check(n == ref, f"regnet20 {regulator} {stages}: cnn counts {n} parameters, PyTorch {ref}")
        if regulator == "none":
            check(n == resnet20 and cost is None, f"regnet20 --regulator none: {n} parameters (resnet20 {resnet20}), "
                                                  f"no regulator line expected: {out!r}")
            continue
        if check(cost is not None, f"regnet20 {regulator}: no line comparing with --regulator none in {out!r}"):
            extra_p, extra_m, base_p, _ = cost
            check(base_p == resnet20 and extra_p == ref - resnet20,
                  f"regnet20 {regulator} {stages}: +{extra_p} over {base_p}, PyTorch +{ref - resnet20} over {resnet20}")
            check(extra_m == hand_macs(regulator, stages),
                  f"regnet20 {regulator} {stages}: +{extra_m} multiply-accumulates, hand count {hand_macs(regulator, stages)}")
    n, _, _ = summary("--model", "regnet50")
    ref = torch_params("regnet50", 224, 224, regulator="convlstm")
    check(n == ref, f"regnet50: cnn counts {n} parameters, PyTorch {ref}")
    # without the regulator the ImageNet layout is torchvision's ResNet: its published counts
    for model, published in (("regnet18", 11689512), ("regnet50", 25557032)):
        n, _, _ = summary("--model", model, "--regulator", "none")
        check(n == published, f"{model} --regulator none: {n} parameters, torchvision's ResNet has {published}")


def misuse():
    for args, needle in (
        (["--model", "resnet20", "--regulator", "convlstm"], "regnet"),
        (["--model", "regnet20", "--regulated-stages", "4"], "stages 1 to 3"),
        (["--model", "regnet20", "--regulated-stages", "0"], "--regulated-stages"),
        (["--model", "regnet20", "--regulated-stages", "1,,2"], "--regulated-stages"),
        (["--model", "regnet20", "--regulator", "lstm"], "--regulator"),
    ):
        rc, _, err = cnn("summary", *args)
        check(rc == 2 and needle in err, f"cnn summary {' '.join(args)}: exit {rc}, message {err.strip()!r}")


def names():
    for cmd in ("train", "summary", "bench"):
        rc, out, _ = cnn(cmd, "--help")
        check(rc == 0 and "--regulator" in out and "--regulated-stages" in out and "not RegNetX/Y" in out,
              f"cnn {cmd} --help documents --regulator and tells RegNet from RegNetX/Y")
    rc, out, _ = cnn("models")
    lines = [l for l in out.splitlines() if l.split() and l.split()[0].startswith("regnet")]
    check(len(lines) == 7 and all("not RegNetX/Y" in l for l in lines), f"cnn models: {lines}")


def train_resume():
    """regnet20 with ConvGRU on stages 2 and 3, 8×8 images (an epoch of 4 steps): the checkpoint's model
    metadata and stored configuration name the regulator; --resume keeps it, refuses another."""
    with tempfile.TemporaryDirectory() as tmp:
        data, run = os.path.join(tmp, "data"), os.path.join(tmp, "run")
        write_mnist_like(data, train=64, test=32, size=8)
        base = ["--data", data, "--batch-size", "16", "--threads", "2", "--quiet"]
        rc, out, err = cnn("train", "--model", "regnet20", "--regulator", "convgru", "--regulated-stages", "2,3",
                           "--epochs", "1", "--out", run, *base)
        if not check(rc == 0, f"train regnet20 convgru: exit {rc}\n{out}\n{err}"):
            return
        _, meta = safetensors_io.load(os.path.join(run, "last.safetensors"))
        meta = json.loads(meta["cnn"])
        model, config = meta["model"], meta["train"]["config"]
        check(model.get("regulator") == "convgru" and model.get("regulated_stages") == [2, 3],
              f"checkpoint metadata model: {model}")
        check(config.get("regulator") == "convgru" and config.get("regulated_stages") == [2, 3],
              f"stored configuration: regulator {config.get('regulator')}, stages {config.get('regulated_stages')}")
        rc, _, err = cnn("train", "--resume", run, "--epochs", "2", "--regulator", "convlstm")
        check(rc == 2 and "--regulator convlstm" in err and "convgru" in err, f"resume with another regulator: exit "
                                                                              f"{rc}, {err.strip()!r}")
        rc, out, err = cnn("train", "--resume", run, "--epochs", "2", "--regulated-stages", "2,3", "--quiet")
        check(rc == 0, f"resume --epochs 2: exit {rc}\n{out}\n{err}")
        rc, out, err = cnn("eval", "--checkpoint", os.path.join(run, "last.safetensors"), "--data", data)
        check(rc == 0 and "top1" in out, f"eval of the resumed run: exit {rc}\n{out}\n{err}")


counts()
misuse()
names()
train_resume()
report("test_regnet_cli")
