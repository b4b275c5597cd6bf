"""test_schedules_torch.py — cnn.c's learning-rate schedules against torch.optim.lr_scheduler (1.13):
the same lr at every step of N epochs, torch's computed here by stepping its schedulers as a training
loop does (epoch-wise ones once per epoch, OneCycleLR and the warm-up once per batch); and
ReduceLROnPlateau on scripted metric sequences. tests/progs/sched_dump prints cnn.c's side."""
import math
import os
import subprocess
import warnings

import torch

from cnntest import BUILD, check, report

DUMP = os.path.join(BUILD, "tests", "sched_dump")
warnings.filterwarnings("ignore")  # torch's "call optimizer.step() before lr_scheduler.step()" notes


def ours(kind, base, epochs, steps, **opts):
    args = [DUMP, "lr", kind, repr(base), str(epochs), str(steps)] + [f"{k}={v}" for k, v in opts.items()]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return [float(v) for v in out.split()]


def optimizer(lr):
    return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)


def per_epoch(make, base, epochs, steps):
    """lr of every step when the scheduler steps once per epoch."""
    opt = optimizer(base)
    sched = make(opt)
    lrs = []
    for _ in range(epochs):
        lrs += [opt.param_groups[0]["lr"]] * steps
        opt.step()
        sched.step()
    return lrs


def per_step(make, base, total):
    opt = optimizer(base)
    sched = make(opt)
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def warmup_cosine(base, epochs, steps, warm, eta_min):
    """Integer warm-up W: LinearLR(1/N → 1 over N−1 batches, N = W·steps) stepped per batch during the
    first W epochs, then CosineAnnealingLR(T_max = epochs − W) stepped per epoch."""
    n = warm * steps
    lrs = per_step(lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=1 / n, end_factor=1.0, total_iters=n - 1),
                   base, n)
    lrs += per_epoch(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=epochs - warm, eta_min=eta_min),
                     base, epochs - warm, steps)
    return lrs


def compare(name, got, want, rel=2e-6):
    ok = len(got) == len(want)
    worst = 0.0
    for g, w in zip(got, want):
        err = abs(g - w) / max(abs(w), 1e-12)
        worst = max(worst, err)
        ok = ok and (err <= rel or abs(g - w) <= 1e-12)
    check(ok, f"{name}: {len(got)} vs {len(want)} values, worst relative error {worst:.3g}\n ours  {got[:12]}\n torch {want[:12]}")
    print(f"{name}: {len(want)} steps agree (worst relative error {worst:.2g})")


def schedules():
    S = torch.optim.lr_scheduler
    E, K = 12, 5
    compare("StepLR(step_size=3, gamma=0.5)", ours("step", 0.1, E, K, step_size=3, gamma=0.5),
            per_epoch(lambda o: S.StepLR(o, step_size=3, gamma=0.5), 0.1, E, K))
    compare("MultiStepLR([4, 9], gamma=0.1)", ours("multistep", 0.1, E, K, milestones="4,9", gamma=0.1),
            per_epoch(lambda o: S.MultiStepLR(o, milestones=[4, 9], gamma=0.1), 0.1, E, K))
    compare("MultiStepLR([1, 2, 3], gamma=0.3)", ours("multistep", 0.05, E, K, milestones="1,2,3", gamma=0.3),
            per_epoch(lambda o: S.MultiStepLR(o, milestones=[1, 2, 3], gamma=0.3), 0.05, E, K))
    compare("ExponentialLR(gamma=0.95)", ours("exp", 0.1, E, K, gamma=0.95),
            per_epoch(lambda o: S.ExponentialLR(o, gamma=0.95), 0.1, E, K))
    compare("CosineAnnealingLR(T_max=12)", ours("cosine", 0.1, E, K),
            per_epoch(lambda o: S.CosineAnnealingLR(o, T_max=E), 0.1, E, K))
    compare("CosineAnnealingLR(T_max=12, eta_min=1e-3)", ours("cosine", 0.1, E, K, min_lr=1e-3),
            per_epoch(lambda o: S.CosineAnnealingLR(o, T_max=E, eta_min=1e-3), 0.1, E, K))
    compare("LinearLR warm-up 2 epochs + CosineAnnealingLR", ours("cosine", 0.1, E, K, warmup=2, min_lr=1e-4),
            warmup_cosine(0.1, E, K, 2, 1e-4))
    compare("OneCycleLR(pct_start=0.3)", ours("onecycle", 0.05, E, K),
            per_step(lambda o: S.OneCycleLR(o, max_lr=0.05, total_steps=E * K, cycle_momentum=False), 0.05, E * K))
    compare("OneCycleLR(pct_start=0.25, div_factor=10, final_div_factor=100)",
            ours("onecycle", 0.4, 7, 13, pct_start=0.25, div_factor=10, final_div_factor=100),
            per_step(lambda o: S.OneCycleLR(o, max_lr=0.4, total_steps=7 * 13, pct_start=0.25, div_factor=10,
                                            final_div_factor=100, cycle_momentum=False), 0.4, 7 * 13))
    compare("constant", ours("constant", 0.01, 3, 4), [0.01] * 12)
    # fractional warm-up, by hand: N = round(1.5·4) = 6 steps of base·(i+1)/6, then base until epoch
    # ceil(1.5) = 2, then cosine over T_max = 6 − 2 = 4 epochs stepped per epoch
    hand = [0.1 * (i + 1) / 6 for i in range(6)] + [0.1] * 2
    hand += [0.1 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4) for _ in range(4)]
    compare("cosine with 1.5 warm-up epochs (by hand)", ours("cosine", 0.1, 6, 4, warmup=1.5), hand)


def plateau_case(name, values, mode="min", factor=0.1, patience=2, threshold=1e-4, abs_=False, cooldown=0, min_lr=0.0,
                 lr=0.1):
    args = [DUMP, "plateau", repr(lr), repr(min_lr), repr(factor), str(patience), repr(threshold), str(int(abs_)),
            str(cooldown), mode] + [repr(v) for v in values]
    got = [float(v) for v in subprocess.run(args, capture_output=True, text=True, check=True).stdout.split()]
    opt = optimizer(lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode=mode, factor=factor, patience=patience,
                                                       threshold=threshold, threshold_mode="abs" if abs_ else "rel",
                                                       cooldown=cooldown, min_lr=min_lr)
    want = []
    for v in values:
        opt.step()
        sched.step(v)
        want.append(opt.param_groups[0]["lr"])
    compare(f"ReduceLROnPlateau {name}", got, want)


def plateaus():
    losses = [1.0, 0.9, 0.9, 0.91, 0.95, 0.89, 0.89, 0.8899, 0.88995, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.7]
    plateau_case("min rel, patience 2", losses)
    plateau_case("min rel, patience 0, factor 0.5, min_lr 0.02", losses, patience=0, factor=0.5, min_lr=0.02)
    plateau_case("min abs threshold 0.05, cooldown 2", losses, patience=1, threshold=0.05, abs_=True, cooldown=2)
    acc = [0.1, 0.3, 0.3, 0.3, 0.30001, 0.5, 0.5, 0.49, 0.5, 0.9, 0.9, 0.9, 0.9]
    plateau_case("max rel threshold 0.01", acc, mode="max", patience=1, threshold=0.01)
    plateau_case("max abs, cooldown 1, factor 0.2", acc, mode="max", patience=0, threshold=0.0, abs_=True, cooldown=1,
                 factor=0.2)
    plateau_case("NaN never improves", [1.0, float("nan"), float("nan"), 0.5, float("nan")], patience=1)
    plateau_case("reductions stop at min_lr (within eps)", [1.0] * 12, patience=0, factor=0.5, min_lr=0.01)


def main():
    schedules()
    plateaus()
    report("test_schedules_torch")


if __name__ == "__main__":
    main()
