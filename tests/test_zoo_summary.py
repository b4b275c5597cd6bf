"""test_zoo_summary.py — the model zoo's shapes, parameter counts and multiply-accumulates, from outside cnn.c.

- At 1000 classes and 3×224×224, `cnn summary` prints the published parameter counts (torchvision's model
  documentation and the ResNet/VGG papers' PyTorch implementations) for the models that have one.
- For every zoo model at 1×28×28, 3×32×32, 3×64×64 and 3×224×224 (the CIFAR-layout families at the first
  three), `cnn summary` builds it and prints exactly the parameter count of the PyTorch twin (torchvision's own
  model, or tools/torch_models.py's reference) and the multiply-accumulates a forward hook counts on that twin:
  per Conv2d, output elements × in_channels/groups × kh × kw; per Linear, in × out. Both count what a forward in
  evaluation mode runs (the parameters of the modules it calls), so GoogLeNet's auxiliary heads, which only
  training runs, are left out; cnn.c prints its training counts on a line of their own, compared with a
  training-mode forward of the twin (torchvision's 13,004,888 parameters with the heads). The MAC counts define
  the same thing, so the test asks them to agree within 0.5%: a wrong feature-map size anywhere (stem rule,
  VGG's pool rule, strides) moves it by more.
- The MACs at 224×224 agree within 2% with the published figures of torchvision's documentation (1.81 G for
  resnet18, 4.09 G for resnet50: torchvision's ResNet-50 strides on the 3×3, the paper's 3.8 G on the 1×1;
  1.50 G for googlenet, 0.39 G for efficientnet_b0).
- GhostNet and Ghost-ResNet-56 against the GhostNet paper (Han et al. 2020), whose figures are rounded:
  ghostnet 5.2 M parameters and 141 M MACs (table 7; timm lists ghostnet_100 at 5.18 M), Ghost-ResNet-56 at
  32×32 0.43 M and 63 M (table 3). cnn.c's Ghost-ResNet-56 keeps resnet56's 1×1 projection shortcuts and counts
  the cheap operations, which add ~5% to the paper's MACs; hence PAPER's tolerances.
The PyTorch models are built without running their initialization and on the meta device: only shapes count.
"""
import contextlib
import re
import sys

import torch
from torch import nn

from cnntest import check, cnn, report
import torch_models

PUBLISHED_PARAMS = {
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032, "resnet101": 44_549_160,
    "resnet152": 60_192_808, "resnext50_32x4d": 25_028_904, "wide_resnet50_2": 68_883_240,
    "vgg11": 132_863_336, "vgg13": 133_047_848, "vgg16": 138_357_544, "vgg19": 143_667_240,
    "vgg11_bn": 132_868_840, "vgg13_bn": 133_053_736, "vgg16_bn": 138_365_992, "vgg19_bn": 143_678_248,
    "googlenet": 6_624_904, "efficientnet_b0": 5_288_548,
}
PUBLISHED_TRAIN_PARAMS = {"googlenet": 13_004_888}  # with the auxiliary heads (torchvision: aux_logits=True)
# torchvision's documentation, "GFLOPS" column (multiply-accumulates of Conv2d and Linear), 224×224
PUBLISHED_GMACS = {
    "resnet18": 1.81, "resnet34": 3.66, "resnet50": 4.09, "resnet101": 7.80, "resnet152": 11.51,
    "resnext50_32x4d": 4.23, "wide_resnet50_2": 11.40, "vgg11": 7.61, "vgg13": 11.31, "vgg16": 15.47,
    "vgg19": 19.63, "vgg11_bn": 7.61, "vgg13_bn": 11.31, "vgg16_bn": 15.47, "vgg19_bn": 19.63,
    "googlenet": 1.50, "efficientnet_b0": 0.39,
}
# the GhostNet paper's rounded figures: (input, parameters, tolerance, MACs, tolerance)
PAPER = {"ghostnet": ((3, 224, 224), 5.2e6, 0.01, 141e6, 0.01),
         "ghost_resnet56": ((3, 32, 32), 0.43e6, 0.03, 63e6, 0.06)}
IMAGENET = list(torch_models.TORCHVISION) + ["se_resnet50", "preact_resnet18", "googlenet", "efficientnet_b0",
                                             "ghostnet"]
CIFAR = ["se_resnet20", "se_resnet56", "preact_resnet20", "preact_resnet56", "preact_resnet110", "highway20",
         "resnet20", "resnet110", "ghost_resnet56"]
SHAPES = [(1, 28, 28), (3, 32, 32), (3, 64, 64), (3, 224, 224)]


@contextlib.contextmanager
def no_init():
    """Skip torch.nn.init's work while building: only shapes matter here."""
    names = ["kaiming_uniform_", "uniform_", "normal_", "kaiming_normal_", "constant_", "ones_", "zeros_",
             "trunc_normal_"]
    saved = {n: getattr(nn.init, n) for n in names}
    for n in names:
        setattr(nn.init, n, lambda t, *a, **k: t)
    try:
        yield
    finally:
        for n, f in saved.items():
            setattr(nn.init, n, f)


def torch_counts(name, shape, classes, training=False):
    """(parameters, multiply-accumulates per image) of what a forward of the PyTorch twin runs in that mode."""
    with no_init():
        model = torch_models.build(name, *shape, classes)
    model = model.to("meta").train(training)
    macs, called = [0], {}

    def hook(m, inputs, out):
        called[id(m)] = m
        if isinstance(m, nn.Conv2d):
            macs[0] += out[0].numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            macs[0] += m.in_features * m.out_features

    for m in model.modules():
        m.register_forward_hook(hook)
    batch = 2 if training else 1  # batch norm in training needs two samples; the hook counts one
    with torch.no_grad():
        model(torch.empty(batch, *shape, device="meta"))
    return sum(p.numel() for m in called.values() for p in m.parameters(recurse=False)), macs[0]


def cnn_counts(name, shape, classes):
    """(parameters, MACs, training parameters, training MACs): the training counts are None unless summary prints
    them apart (auxiliary heads)."""
    rc, out, err = cnn("summary", "--model", name, "--input", "x".join(map(str, shape)), "--classes", classes,
                       "--no-layers")
    if not check(rc == 0, f"cnn summary --model {name} --input {shape}: exit {rc}: {err.strip()}"):
        return None, None, None, None
    get = lambda pattern: int(re.search(pattern, out).group(1)) if re.search(pattern, out) else None  # noqa: E731
    return (get(r"parameters: (\d+)"), get(r"multiply-accumulates per image: (\d+)"),
            get(r"auxiliary heads: parameters (\d+)"), get(r"auxiliary heads: parameters \d+, multiply-accumulates (\d+)"))


def check_training_counts(name, shape, classes, p, tp, train_p, train_m):
    """GoogLeNet's auxiliary heads: counted apart by cnn.c, run by the twin in training only. Returns a note."""
    ttp, ttm = torch_counts(name, shape, classes, training=True)
    if ttp == tp:
        check(train_p is None, f"{name} {shape}: summary prints training counts but nothing trains apart")
        return ""
    check(train_p == ttp, f"{name} {shape}: {train_p} parameters in training, PyTorch's twin {ttp}")
    check(train_m is not None and abs(train_m - ttm) <= 0.005 * ttm,
          f"{name} {shape}: {train_m} MACs in training, PyTorch hook {ttm}")
    if shape == (3, 224, 224) and name in PUBLISHED_TRAIN_PARAMS:
        check(train_p == PUBLISHED_TRAIN_PARAMS[name], f"{name}: {train_p} parameters in training, published "
                                                       f"{PUBLISHED_TRAIN_PARAMS[name]}")
    return f"  (in training {train_p:,}, {train_m / 1e9:.3f} G)"


def check_paper(name, shape, p, m):
    if name not in PAPER or shape != PAPER[name][0]:
        return ""
    _, pub_p, tol_p, pub_m, tol_m = PAPER[name]
    check(abs(p - pub_p) <= tol_p * pub_p, f"{name}: {p} parameters, the paper's {pub_p:g} (tolerance {tol_p:g})")
    check(abs(m - pub_m) <= tol_m * pub_m, f"{name}: {m} MACs, the paper's {pub_m:g} (tolerance {tol_m:g})")
    return f"  (paper {pub_p / 1e6:g} M, {pub_m / 1e6:g} M MACs)"


def main():
    for name in IMAGENET + CIFAR:
        classes = 1000 if name in IMAGENET else 10
        for shape in SHAPES if name in IMAGENET else SHAPES[:3]:
            p, m, train_p, train_m = cnn_counts(name, shape, classes)
            if p is None:
                continue
            tp, tm = torch_counts(name, shape, classes)
            check(p == tp, f"{name} {shape}: {p} parameters, PyTorch's twin {tp}")
            check(abs(m - tm) <= 0.005 * tm, f"{name} {shape}: {m} MACs, PyTorch hook {tm}")
            line = f"{name:16s} {'x'.join(map(str, shape)):10s} {p:>12,} parameters  {m / 1e9:8.3f} GMACs"
            line += check_training_counts(name, shape, classes, p, tp, train_p, train_m) + check_paper(name, shape, p, m)
            if shape == (3, 224, 224) and name in PUBLISHED_PARAMS:
                check(p == PUBLISHED_PARAMS[name], f"{name}: {p} parameters, published {PUBLISHED_PARAMS[name]}")
                pub = PUBLISHED_GMACS[name]
                check(abs(m / 1e9 - pub) <= 0.02 * pub, f"{name}: {m / 1e9:.3f} GMACs, published {pub}")
                line += f"  (published {PUBLISHED_PARAMS[name]:,}, {pub} G)"
            print(line, flush=True)
    report("test_zoo_summary")


if __name__ == "__main__":
    sys.exit(main())
