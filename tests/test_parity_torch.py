"""test_parity_torch.py — cnn.c against PyTorch on whole models: forward, loss, every gradient, batch-norm
running statistics, three SGD steps and evaluation, from the same weights and batch.

For each case tools/parity.py builds the PyTorch twin (tools/torch_models.py), writes weights, batch and
PyTorch's results; tests/progs/parity_run (the code under test) loads the weights strictly and computes
the same quantities in the same order. Every comparison is per tensor:

    rel = max|cnn - torch| / max|torch|

(loss and SGD losses: |cnn - torch| / |torch|; num_batches_tracked: exact). Some biases have a zero
gradient up to rounding: a conv bias followed by batch norm (which subtracts the mean), and, in
EfficientNet and GhostNet, batch-norm biases whose output reaches the loss only through 1×1 convs
followed by batch norm (a per-channel shift changes nothing). Their float32 gradient is the rounding
residue of a cancelling sum, ~1e-7 of the terms, which no two float32 implementations share. So for
a conv bias before batch norm, and for any bias whose PyTorch gradient is below ZERO_GRAD of its
module's weight gradient (too small for float32 to resolve to 1e-3 of itself), the figure is
max|cnn - torch| / max|gradient of that module's weight|.

Kinks. A deep ReLU network has ~10^6 pre-activations per pass; a few lie within float32 rounding
of zero, where two correct float32 implementations may take different sides (PyTorch's own float32
against float64 fails these tolerances on 4 of 6 seeds of resnet20). One such element moves the
gradients of the layers below it by ~1e-2 relative. Max pooling has the same kind of kink: two
candidates of a window within rounding of each other (GoogLeNet's ~10^6 windows per pass have a few),
and the gradient goes to one or the other. So when a case fails, the test replays PyTorch with cnn.c's
ReLU and max-pool decisions (parity_run --masks): the case passes if every decision that differs from
PyTorch's is within KINK_MARGIN of the kink (a pre-activation that close to zero, or two window
candidates that close, relative to the tensor's max |x|: the forward's own tolerance) and everything
then meets the same tolerances. Both sets of figures are printed.

    /usr/bin/python3 tests/test_parity_torch.py [--only NAME] [--seed N] [--keep DIR]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

SOURCE = os.environ.get("CNN_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
BUILD = os.environ.get("CNN_BUILD_DIR", os.path.join(SOURCE, "build"))
sys.path.insert(0, os.path.join(SOURCE, "tools"))

import numpy  # noqa: E402
import torch  # noqa: E402
import parity  # noqa: E402
import safetensors_io as sio  # noqa: E402

PARITY_RUN = os.path.join(BUILD, "tests", "parity_run")



def case(label, model, shape, ci=False, **settings):
    """A case: label, model, input c×h×w, whether the suite runs it (test_parity_zoo: ci) and run_case's
    settings (bn, batch, steps, lr, dropout, dropout_aux, stochastic_depth, replay_kinks, branch_gamma)."""
    return label, model, shape, ci, settings


CASES = [
    case("convnet 1x28x28", "convnet", (1, 28, 28)),
    case("convnet 1x28x28 bn", "convnet", (1, 28, 28), bn=True),
    case("convnet 3x32x32", "convnet", (3, 32, 32)),
    case("convnet 3x32x32 bn", "convnet", (3, 32, 32), bn=True),
    case("resnet20 3x32x32", "resnet20", (3, 32, 32)),
    # batch 64: the first stage's tensors reach 4 MiB, where the residual additions (and the batch norm they apply
    # for the convolution on cnn.c's own kernels before it) write with streaming stores (src/ops/stream.h)
    case("resnet20 3x32x32 b64", "resnet20", (3, 32, 32), batch=64, steps=1),
    case("residual8 3x32x32", "residual8", (3, 32, 32)),
    case("plain8 3x32x32", "plain8", (3, 32, 32)),
    # The regnets always have a few pre-activations at a kink (their gates and fusions add ReLUs): PyTorch
    # replays cnn.c's decisions from the start, which saves a PyTorch run; the verdict is the same rule.
    case("regnet20 convlstm 3x32x32", "regnet20", (3, 32, 32), regulator="convlstm", replay_kinks=True),
    case("regnet20 convgru 3x32x32", "regnet20", (3, 32, 32), regulator="convgru", replay_kinks=True),
    # 51 M parameters: a smaller batch and one SGD step keep it affordable; 32×32 keeps layer4 at 4×4. Residual
    # branches scaled (tools/parity.py scale_residual_branches): unscaled, PyTorch's own float32 is 0.7-1.4e-4
    # from float64 on these logits, at 0.3 within 3e-6.
    case("regnet50 convlstm 3x32x32", "regnet50", (3, 32, 32), regulator="convlstm", batch=4, steps=1,
         branch_gamma=0.3, replay_kinks=True),
]
BATCH, CLASSES, STEPS = 8, 10, 3

# kind -> tolerance; the kinds are the columns of the summary line
TOL = {"logits": 1e-4, "loss": 1e-5, "grad": 1e-3, "stats": 1e-4, "sgd": 1e-4, "final": 1e-4, "eval": 1e-4}
KINK_MARGIN = 1e-4
ZERO_GRAD = 1e-4


def rel(a, b):
    a, b = a.double(), b.double()
    scale = b.abs().max().item() if b.numel() else 0.0
    err = (a - b).abs().max().item() if b.numel() else 0.0
    return err / scale if scale > 0 else err


def worst_element(a, b):
    d = (a.double() - b.double()).abs().reshape(-1)
    i = int(d.argmax())
    idx = numpy.unravel_index(i, tuple(b.shape)) if b.dim() else []
    return f"at {[int(v) for v in idx]}: cnn {a.reshape(-1)[i].item():.7g}, torch {b.reshape(-1)[i].item():.7g}"


class Case:
    def __init__(self, label):
        self.label = label
        self.worst = {k: (0.0, "") for k in TOL}
        self.failures = []

    def check(self, kind, name, a, b, figure=None, how="rel"):
        if a is None:
            self.failures.append(f"{name}: missing from parity_run's output")
            return
        if list(a.shape) != list(b.shape):
            self.failures.append(f"{name}: shape {list(a.shape)}, torch {list(b.shape)}")
            return
        if not b.is_floating_point():
            figure = 0.0 if torch.equal(a, b) else float("inf")
            how = "exact"
        elif figure is None:
            figure = rel(a, b)
        if figure > self.worst[kind][0] or not self.worst[kind][1]:
            self.worst[kind] = (figure, name)
        if not figure <= TOL[kind]:
            self.failures.append(f"{name}: {how} {figure:.3e} > {TOL[kind]:g} ({worst_element(a, b)})")


def zero_by_rounding(ref, name):
    """a bias gradient below ZERO_GRAD of its module's weight gradient (see the top of the file)"""
    weight = name[:-len("bias")] + "weight"
    return name.endswith(".bias") and weight in ref and ref[name].abs().max() < ZERO_GRAD * ref[weight].abs().max()


def compare(case, ref, out, zero_grad_biases):
    for name, b in ref.items():
        a = out.get(name)
        kind = name.split(".")[0]
        if name == "logits":
            case.check("logits", name, a, b)
        elif name in ("loss", "main_loss"):
            case.check("loss", name, a, b, rel(a, b) if a is not None else None, "|a-b|/|b|")
        elif name == "eval_loss":  # after the SGD steps a batch may be learnt (loss ~1e-5): absolute below 1
            figure = abs(a.item() - b.item()) / max(abs(b.item()), 1.0) if a is not None else None
            case.check("eval", name, a, b, figure, "|a-b|/max(|b|,1)")
        elif name == "sgd_losses":
            figure = ((a.double() - b) / b).abs().max().item() if a is not None and a.shape == b.shape else None
            case.check("sgd", name, a, b, figure, "max |a-b|/|b|")
        elif name == "eval_logits":
            case.check("eval", name, a, b)
            case.check("eval", name + ".train_plan", out.get(name + ".train_plan"), b)
        elif kind == "grad" and (name[5:] in zero_grad_biases or zero_by_rounding(ref, name)):
            weight = ref[name[:-len("bias")] + "weight"]
            figure = (a.double() - b).abs().max().item() / weight.abs().max().item() if a is not None else None
            case.check("grad", name, a, b, figure, "abs/max|dW|")
        elif kind in ("grad", "stats", "final"):
            case.check(kind, name, a, b)
        else:
            case.failures.append(f"{name}: no rule to compare it")
    extra = set(out) - set(ref) - {"eval_logits.train_plan"}
    if extra:
        case.failures.append(f"parity_run wrote tensors PyTorch has no counterpart for: {sorted(extra)}")


def drop_path_check(case, ref, stochastic_depth):
    """Stochastic depth replayed from cnn.c (PyTorch scaling the kept samples by its own 1/(1-p) per block):
    blocks both dropped and kept over the training passes, i.e. drop path is active in training (evaluation
    is compared as usual)."""
    dropped, kept = ref.pop("drop_path", (None, None))
    if dropped is None or stochastic_depth <= 0:  # dropout alone replays masks but drops no path
        return ""
    if not dropped or not kept:
        case.failures.append(f"drop path in training: {dropped} samples dropped, {kept} kept over all blocks and passes")
    return f"drop path: {dropped} block-samples dropped, {kept} kept in the training passes"


def flip_verdict(flips, steps):
    """(decisions far from the kink, a line on the ReLU and max-pool decisions that differ from PyTorch's)."""
    far = [f for f in flips if not f[3] <= KINK_MARGIN]
    closest = max((f[3] for f in flips), default=0.0)
    where = ", ".join(sorted({f[1].split()[0] for f in flips})) or "none"
    note = (f"ReLU and max-pool decisions that differ from PyTorch's: {sum(f[2] for f in flips)} elements in "
            f"{len(flips)} calls ({where}) of {steps + 1} training passes, the farthest from the kink at {closest:.1e} "
            f"of the tensor's max |x| (margin {KINK_MARGIN:g})" + (": more than rounding" if far else ""))
    far_lines = [f"first decision far from the kink: training pass {p}, {k}: {n} elements, up to {r:.1e} of the "
                 f"tensor's max |x| from it" for p, k, n, r in far[:1]]
    return far_lines, note


def run_case(label, model, shape, seed, workdir, bn=False, batch=BATCH, steps=STEPS, dropout=0.0, dropout_aux=0.0,
             stochastic_depth=0.0, lr=0.1, replay_kinks=False, branch_gamma=1.0, regulator=None, regulated_stages=None):
    """(verdict, lines to print, seconds in torch, seconds in cnn.c). With dropout or stochastic depth, PyTorch
    replays cnn.c's random draws in the training passes (parity_run --masks records them). replay_kinks: replay
    cnn.c's ReLU and max-pool decisions from the start (deep networks at batch 2 nearly always have a few at the
    kink; this saves the first PyTorch run) instead of only after a failure; the verdict is the same rule.
    branch_gamma: parity.scale_residual_branches (deep residual networks). regulator, regulated_stages: a
    regnet's."""
    c, h, w = shape
    d = os.path.join(workdir, label.replace(" ", "_").replace(",", "_"))
    t0 = time.time()
    settings = dict(classes=CLASSES, batch=batch, bn=bn, dropout=dropout, dropout_aux=dropout_aux, steps=steps,
                    seed=seed, lr=lr, stochastic_depth=stochastic_depth, branch_gamma=branch_gamma,
                    regulator=regulator, regulated_stages=regulated_stages)
    draws = dropout > 0 or dropout_aux > 0 or stochastic_depth > 0
    kinds = (("dropout", "drop_path") if draws else ()) + (parity.KINKS if replay_kinks else ())
    ref = parity.generate(d, model, c, h, w, inputs_only=bool(kinds), **settings)
    t1 = time.time()
    env = dict(os.environ, OMP_NUM_THREADS="2")
    masks_path = os.path.join(d, "masks.safetensors")
    r = subprocess.run([PARITY_RUN, d, "--masks", masks_path], capture_output=True, text=True, timeout=600, env=env)
    t_cnn = time.time() - t1
    case = Case(label)
    if r.returncode != 0:
        case.failures.append(f"parity_run exited with {r.returncode}: {r.stderr.strip()}")
        return False, [summary(case)] + case.failures, t1 - t0, t_cnn
    drawn = parity.load_decisions(masks_path, steps + 1, kinds) if kinds else {}
    if kinds:
        ref = parity.generate(d, model, c, h, w, replay=drawn, **settings)
    out, _ = sio.load(os.path.join(d, "out.safetensors"))
    zero_grad_biases = ref.pop("biases_before_batchnorm")
    notes = [n for n in [drop_path_check(case, ref, stochastic_depth)] if n]
    flips = ref.pop("kink_flips", []) if replay_kinks else None
    compare(case, ref, out, zero_grad_biases)
    seconds = lambda: (time.time() - t0 - t_cnn, t_cnn)  # noqa: E731
    if flips is not None:
        far_lines, note = flip_verdict(flips, steps)
        return not case.failures and not far_lines, [summary(case), note] + notes + far_lines + case.failures, *seconds()
    if not case.failures:
        return True, [summary(case)] + notes, *seconds()
    # Replay PyTorch with cnn.c's ReLU and max-pool decisions (see the top of the file).
    drawn.update(parity.load_decisions(masks_path, steps + 1, parity.KINKS))
    aligned = parity.generate(os.path.join(d, "aligned"), model, c, h, w, replay=drawn, **settings)
    far_lines, note = flip_verdict(aligned.pop("kink_flips", []), steps)
    aligned.pop("biases_before_batchnorm")
    replay = Case(label)
    drop_path_check(replay, aligned, stochastic_depth)
    compare(replay, aligned, out, zero_grad_biases)
    if not replay.failures and not far_lines:
        return True, [summary(replay) + "   (PyTorch replaying cnn.c's decisions at kinks)", note,
                      "against PyTorch's own decisions: " + summary(case)] + notes, *seconds()
    lines = [summary(case), note, "with cnn.c's decisions at kinks replayed: " + summary(replay)] + notes + far_lines
    return False, lines + case.failures, *seconds()


def summary(case):
    cols = []
    for kind in TOL:
        figure, name = case.worst[kind]
        where = f" ({name})" if kind in ("grad", "stats", "final") and name else ""
        cols.append(f"{kind} {figure:.1e}{where}" if name else f"{kind} -")
    return "  ".join(cols)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="run the cases whose label contains this")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", help="directory to keep the files in (default: a temporary one)")
    a = ap.parse_args()
    if not os.path.exists(PARITY_RUN):
        print(f"FAIL: {PARITY_RUN} is missing (build the project; CNN_BUILD_DIR={BUILD})", file=sys.stderr)
        return 1
    torch.set_num_threads(2)
    print("figures: worst per kind, max|cnn - torch| / max|torch| per tensor (loss, sgd: |a-b|/|b|); "
          "tolerances " + ", ".join(f"{k} {v:g}" for k, v in TOL.items()))
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        workdir = a.keep or tmp
        for label, model, shape, _, settings in CASES:
            if a.only and a.only not in label:
                continue
            ok, lines, t_torch, t_cnn = run_case(label, model, shape, a.seed, workdir, **settings)
            print(f"{'ok' if ok else 'FAIL':4s} {label:20s} batch {settings.get('batch', BATCH)}: {lines[0]}  [torch {t_torch:.1f}s, cnn {t_cnn:.1f}s]")
            for line in lines[1:13]:
                print(f"     {line}")
            if len(lines) > 13:
                print(f"     ... and {len(lines) - 13} more")
            failed += not ok
    print(f"test_parity_torch: {failed} of the cases failed" if failed else "test_parity_torch: all cases pass")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
