"""test_parity_zoo.py — the model zoo against PyTorch, with test_parity_torch.py's machinery and tolerances
(logits 1e-4, loss 1e-5, every gradient 1e-3, BN running statistics, SGD steps, eval logits; kink replay).

torchvision's models (ResNets, VGG, GoogLeNet, EfficientNet-B0) are torchvision's own code with its own random
initialization (tools/torch_models.py), exported to safetensors and loaded by cnn.c; the other families
(pre-activation, SE, highway, stochastic depth, GhostNet as timm's, Ghost-ResNet-56) against the references
defined in tools/torch_models.py. The inputs are small (batch 2; EfficientNet 8, see below) to keep the deep
networks quick, and chosen to cover each input rule: 64×64 takes the ImageNet stem (layer4 at 2×2), 32×32 and
28×28 the small stem; VGG at 64×64 ends on a 2×2 map that the pooling to 7×7 reads with overlapping bins, at
28×28 on a 1×1 map repeated 49 times, its fifth max pool left out. The deep residual networks run with their
branches scaled (DEEP below).
Dropout (vgg11, googlenet and its auxiliary heads, ghostnet) and stochastic depth (resnet110, efficientnet_b0)
run in training with PyTorch replaying cnn.c's draws: the training passes then compare exactly, and the
evaluation logits and loss check that both are off in evaluation (and GoogLeNet's auxiliary heads gone). At
batch 2 a deep network nearly always has a few pre-activations within rounding of a ReLU kink (and GoogLeNet a
few max-pool windows with two maxima within rounding), so PyTorch replays cnn.c's ReLU and max-pool decisions
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
# Every case runs with --all (about 15 minutes on 2 cores: VGG's 130 M parameters are written and read several
# times, and PyTorch's float64 check of the deep networks is slow); the suite runs the cases marked ci, one per
# kind of block and input rule (about 4 minutes). The others differ from a ci case only in depth, width or input
# rule (same block code, counts checked by test_zoo_summary). GoogLeNet, EfficientNet and GhostNet run with
# torchvision's (timm's) dropout and stochastic depth, replayed: GoogLeNet's auxiliary heads train with their
# own dropout and are gone in evaluation, as in PyTorch.
case = base.case
CASES = [
    case("resnet18 3x64x64", "resnet18", (3, 64, 64), ci=True, steps=3),
    case("resnet18 1x28x28", "resnet18", (1, 28, 28), ci=True),
    # 224×224: evaluation's own Winograd with each tile size at stride 1 (56×56 and 28×28 maps F(6×6), 14×14
    # F(5×5), 7×7 F(4×4)) and at stride 2 (ResNet-50's 56→28 F(4×4), ResNet-18's 28→14 F(2×2))
    case("resnet18 3x224x224", "resnet18", (3, 224, 224), ci=True),
    case("resnet50 3x224x224", "resnet50", (3, 224, 224), ci=True, **DEEP),
    case("resnet34 3x64x64", "resnet34", (3, 64, 64)),
    case("resnet50 3x64x64", "resnet50", (3, 64, 64), ci=True, **DEEP),
    case("resnet101 3x64x64", "resnet101", (3, 64, 64), **DEEP),
    case("resnet152 3x64x64", "resnet152", (3, 64, 64), **DEEP),
    case("resnext50_32x4d 3x64x64", "resnext50_32x4d", (3, 64, 64), ci=True, **DEEP),
    case("wide_resnet50_2 3x64x64", "wide_resnet50_2", (3, 64, 64), **DEEP),
    case("vgg11 1x28x28 dropout 0.5", "vgg11", (1, 28, 28), ci=True, dropout=0.5),
    case("vgg13 3x64x64", "vgg13", (3, 64, 64)),
    case("vgg16 3x64x64", "vgg16", (3, 64, 64)),
    case("vgg19 3x64x64", "vgg19", (3, 64, 64)),
    case("vgg11_bn 3x64x64", "vgg11_bn", (3, 64, 64)),
    case("vgg13_bn 3x64x64", "vgg13_bn", (3, 64, 64)),
    case("vgg16_bn 3x64x64", "vgg16_bn", (3, 64, 64)),
    case("vgg19_bn 3x64x64", "vgg19_bn", (3, 64, 64)),
    case("preact_resnet18 3x64x64", "preact_resnet18", (3, 64, 64)),
    case("preact_resnet20 3x32x32", "preact_resnet20", (3, 32, 32), ci=True, steps=3),
    case("se_resnet20 3x32x32", "se_resnet20", (3, 32, 32), ci=True, steps=3),
    case("se_resnet50 3x64x64", "se_resnet50", (3, 64, 64), **DEEP),
    case("highway20 3x32x32", "highway20", (3, 32, 32), ci=True, steps=3),
    case("resnet110 3x32x32 stochastic depth 0.5", "resnet110", (3, 32, 32), ci=True, steps=2, stochastic_depth=0.5,
         **DEEP),
    # 28×28: the small stem; the auxiliary heads pool a 7×7 map to 4×4 with overlapping bins
    case("googlenet 1x28x28 dropout 0.2 aux 0.7", "googlenet", (1, 28, 28), ci=True, dropout=0.2, dropout_aux=0.7),
    # 80×80: the ImageNet stem, and every ceil_mode max pool keeps a window the floor would drop
    case("googlenet 3x80x80", "googlenet", (3, 80, 80)),
    # batch 8: at batch 2 the batch norms over EfficientNet's last 2×2 and 1×1 maps put PyTorch's own float32
    # up to 2e-5 from its float64 loss (seeds 0-2; cnn.c as close), at batch 4 cnn.c 1.8e-5 on seed 1 (PyTorch
    # 4e-6); at batch 8 both are within 3e-6 on seeds 0-3
    case("efficientnet_b0 3x32x32 stochastic depth 0.2", "efficientnet_b0", (3, 32, 32), ci=True, batch=8,
         dropout=0.2, stochastic_depth=0.2),
    case("efficientnet_b0 3x64x64", "efficientnet_b0", (3, 64, 64), batch=8),
    case("ghostnet 3x32x32 dropout 0.2", "ghostnet", (3, 32, 32), ci=True, dropout=0.2),
    case("ghostnet 3x64x64", "ghostnet", (3, 64, 64)),
    case("ghost_resnet56 3x32x32", "ghost_resnet56", (3, 32, 32)),
]
# batch 2, one SGD step unless the case says: at lr 0.1 three SGD steps drive the loss of 2 images to 0 (no
# relative comparison), and after more than one step the deep networks' parameters move beyond 1e-4 between
# PyTorch's own float32 and float64 (GoogLeNet 4e-4, GhostNet 3e-3 after three: 50-60 batch norms on batch 2
# make the trajectory ill-conditioned). PyTorch replays cnn.c's kink decisions from the start (see the top).
SETTINGS = dict(batch=2, steps=1, lr=0.01, replay_kinks=True)


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
    for label, model, shape, ci, settings in CASES:
        if (a.only and a.only not in label) or (not a.only and not a.all and not ci):
            continue
        settings = dict(SETTINGS, **settings)
        with tempfile.TemporaryDirectory() as tmp:  # one at a time: the VGG files are ~1.5 GB
            workdir = os.path.join(a.keep, label.replace(" ", "_")) if a.keep else tmp
            ok, lines, t_torch, t_cnn = base.run_case(label, model, shape, a.seed, workdir, **settings)
        print(f"{'ok' if ok else 'FAIL':4s} {label:24s} batch {settings['batch']}, {settings['steps']} SGD steps: "
              f"{lines[0]}  [torch {t_torch:.1f}s, cnn {t_cnn:.1f}s]", flush=True)
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
