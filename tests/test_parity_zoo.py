"""test_parity_zoo.py — the model zoo against PyTorch, with test_parity_torch.py's machinery and tolerances
(logits 1e-4, loss 1e-5, every gradient 1e-3, BN running statistics, SGD steps, eval logits; ReLU-kink replay).

torchvision's models are torchvision's own code with its own random initialization (tools/torch_models.py
torchvision_model), exported to safetensors and loaded by cnn.c; the other families (pre-activation, SE,
highway, stochastic depth) against the references defined in tools/torch_models.py. The inputs are small
(batch 2) to keep the deep networks quick, and chosen to cover each input rule: 64×64 takes the
ImageNet stem (layer4 at 2×2), 32×32 and 28×28 the small stem; VGG at 64×64 ends on a 2×2 map that the
pooling to 7×7 reads with overlapping bins, at 28×28 on a 1×1 map repeated 49 times, its fifth max pool left
out. The deep residual networks run with their branches scaled (DEEP below). Dropout (vgg11) and stochastic
depth (resnet110) run in training with PyTorch replaying cnn.c's draws: the training passes then compare
exactly, and the evaluation logits check that both are off in evaluation. At batch 2 a deep network nearly
always has a few pre-activations within rounding of a ReLU kink, so PyTorch replays cnn.c's ReLU decisions
from the start; the case still fails if one of them is farther than test_parity_torch's KINK_MARGIN.

    /usr/bin/python3 tests/test_parity_zoo.py [--all] [--only NAME] [--seed N] [--keep DIR]
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_parity_torch as base  # noqa: E402

# The bottleneck networks and resnet110 (16 to 54 blocks) with their residual branches' last BN gamma scaled by
# 0.1 (tools/parity.py scale_residual_branches: unscaled, PyTorch's own float32 misses its float64 result by more
# than the tolerances on resnet152).
DEEP = {"branch_gamma": 0.1}
# (label, model, input c×h×w, SGD steps, extra settings). Every case runs with --all (about 15 minutes on 2
# cores: VGG's 130 M parameters are written and read several times, and PyTorch's float64 check of the deep
# networks is slow); the suite runs the cases marked CI, one per kind of block and input rule (about 4 minutes).
# The others differ from a CI case only in depth or width (same block code, counts checked by test_zoo_summary).
CI = True
CASES = [
    ("resnet18 3x64x64", "resnet18", (3, 64, 64), 3, {}, CI),
    ("resnet18 1x28x28", "resnet18", (1, 28, 28), 1, {}, CI),
    ("resnet34 3x64x64", "resnet34", (3, 64, 64), 1, {}, False),
    ("resnet50 3x64x64", "resnet50", (3, 64, 64), 1, DEEP, CI),
    ("resnet101 3x64x64", "resnet101", (3, 64, 64), 1, DEEP, False),
    ("resnet152 3x64x64", "resnet152", (3, 64, 64), 1, DEEP, False),
    ("resnext50_32x4d 3x64x64", "resnext50_32x4d", (3, 64, 64), 1, DEEP, CI),
    ("wide_resnet50_2 3x64x64", "wide_resnet50_2", (3, 64, 64), 1, DEEP, False),
    ("vgg11 1x28x28 dropout 0.5", "vgg11", (1, 28, 28), 1, {"dropout": 0.5}, CI),
    ("vgg13 3x64x64", "vgg13", (3, 64, 64), 1, {}, False),
    ("vgg16 3x64x64", "vgg16", (3, 64, 64), 1, {}, False),
    ("vgg19 3x64x64", "vgg19", (3, 64, 64), 1, {}, False),
    ("vgg11_bn 3x64x64", "vgg11_bn", (3, 64, 64), 1, {}, False),
    ("vgg13_bn 3x64x64", "vgg13_bn", (3, 64, 64), 1, {}, False),
    ("vgg16_bn 3x64x64", "vgg16_bn", (3, 64, 64), 1, {}, False),
    ("vgg19_bn 3x64x64", "vgg19_bn", (3, 64, 64), 1, {}, False),
    ("preact_resnet18 3x64x64", "preact_resnet18", (3, 64, 64), 1, {}, False),
    ("preact_resnet20 3x32x32", "preact_resnet20", (3, 32, 32), 3, {}, CI),
    ("se_resnet20 3x32x32", "se_resnet20", (3, 32, 32), 3, {}, CI),
    ("se_resnet50 3x64x64", "se_resnet50", (3, 64, 64), 1, DEEP, False),
    ("highway20 3x32x32", "highway20", (3, 32, 32), 3, {}, CI),
    ("resnet110 3x32x32 stochastic depth 0.5", "resnet110", (3, 32, 32), 2, dict(DEEP, stochastic_depth=0.5), CI),
]
BATCH, LR = 2, 0.01  # at lr 0.1 three SGD steps drive the loss of 2 images to 0 (no relative comparison)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="run the cases whose label contains this")
    ap.add_argument("--all", action="store_true", help="every case, not only those the suite runs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", help="directory to keep the files in (default: a temporary one)")
    a = ap.parse_args()
    if not os.path.exists(base.PARITY_RUN):
        print(f"FAIL: {base.PARITY_RUN} is missing (build the project; CNN_BUILD_DIR={base.BUILD})", file=sys.stderr)
        return 1
    base.torch.set_num_threads(2)
    print("figures: worst per kind, max|cnn - torch| / max|torch| per tensor (loss, sgd: |a-b|/|b|); "
          "tolerances " + ", ".join(f"{k} {v:g}" for k, v in base.TOL.items()))
    failed, t_start = 0, time.time()
    for label, model, shape, steps, extra, ci in CASES:
        if (a.only and a.only not in label) or (not a.only and not a.all and not ci):
            continue
        with tempfile.TemporaryDirectory() as tmp:  # one at a time: the VGG files are ~1.5 GB
            workdir = os.path.join(a.keep, label.replace(" ", "_")) if a.keep else tmp
            ok, lines, t_torch, t_cnn = base.run_case(label, model, shape, False, a.seed, workdir, batch=BATCH,
                                                      steps=steps, lr=LR, replay_relu=True, **extra)
        print(f"{'ok' if ok else 'FAIL':4s} {label:24s} batch {BATCH}, {steps} SGD steps: {lines[0]}  "
              f"[torch {t_torch:.1f}s, cnn {t_cnn:.1f}s]", flush=True)
        for line in lines[1:13]:
            print(f"     {line}")
        if len(lines) > 13:
            print(f"     ... and {len(lines) - 13} more")
        failed += not ok
    print(f"test_parity_zoo: {failed} of the cases failed" if failed else
          f"test_parity_zoo: all cases pass ({time.time() - t_start:.0f}s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
