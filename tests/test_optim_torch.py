"""test_optim_torch.py — cnn.c's optimizers against torch.optim: the same initial parameters of a
small network (conv, batch norm and linear weights, so blocked layouts are involved) and the same
sequence of gradients, for SGD (momentum, dampening, Nesterov, weight decay, decay excluded from
BN and biases), Adam (L2 decay) and AdamW, with and without gradient-norm clipping; the final
parameters must agree to float32 rounding."""
import json
import os
import subprocess
import tempfile

import torch

from cnntest import BUILD, check, report  # first: puts tools/ on the path
import safetensors_io  # noqa: E402
import torch_models  # noqa: E402

STEPS = 5
BASE = {"momentum": 0.0, "dampening": 0.0, "nesterov": False, "weight_decay": 0.0, "beta1": 0.9,
        "beta2": 0.999, "eps": 1e-8, "clip_norm": 0.0, "no_decay_bn_bias": False}
CASES = [
    ("sgd", dict(lr=0.1)),
    ("sgd", dict(lr=0.05, momentum=0.9, weight_decay=5e-4)),
    ("sgd", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-3)),
    ("sgd", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)),
    ("sgd", dict(lr=0.05, momentum=0.9, weight_decay=1e-2, no_decay_bn_bias=True)),
    ("sgd", dict(lr=0.05, momentum=0.9, clip_norm=0.5)),
    ("adam", dict(lr=1e-3)),
    ("adam", dict(lr=2e-3, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=1e-2)),
    ("adamw", dict(lr=1e-3, weight_decay=1e-2)),
    ("adamw", dict(lr=1e-3, weight_decay=5e-2, clip_norm=1.0, no_decay_bn_bias=True)),
]


def torch_optimizer(kind, cfg, model):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        is_bn_or_bias = p.dim() == 1
        (no_decay if cfg["no_decay_bn_bias"] and is_bn_or_bias else decay).append(p)
    groups = [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=cfg["lr"], momentum=cfg["momentum"], dampening=cfg["dampening"],
                               nesterov=cfg["nesterov"], weight_decay=cfg["weight_decay"])
    cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
    return cls(groups, lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["eps"],
               weight_decay=cfg["weight_decay"])


def run_case(tmp, i, kind, overrides):
    cfg = dict(BASE, **overrides)
    torch.manual_seed(i)
    model = torch_models.build("convnet", 1, 16, 16, 10, bn=True)
    tensors = {k: v.detach().clone() for k, v in model.state_dict().items()}
    params = dict(model.named_parameters())
    grads = [{n: torch.randn_like(p) * (0.1 + k) for n, p in params.items()} for k in range(STEPS)]
    for k, g in enumerate(grads):
        for n, t in g.items():
            tensors[f"grad.{k}.{n}"] = t
    meta = dict(cfg, model="convnet", input=[1, 16, 16], classes=10, optimizer=kind, steps=STEPS)
    case = os.path.join(tmp, f"case{i}.safetensors")
    out = os.path.join(tmp, f"out{i}.safetensors")
    safetensors_io.save(case, tensors, {"case": json.dumps(meta)})
    r = subprocess.run([os.path.join(BUILD, "tests", "optim_run"), case, out], capture_output=True, text=True,
                       env=dict(os.environ, OMP_NUM_THREADS="2"))
    if not check(r.returncode == 0, f"optim_run case {i}: {r.stderr}"):
        return
    opt = torch_optimizer(kind, cfg, model)
    for g in grads:
        for n, p in params.items():
            p.grad = g[n].clone()
        if cfg["clip_norm"] > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["clip_norm"])
        opt.step()
    got, _ = safetensors_io.load(out)
    worst, where = 0.0, ""
    for n, p in params.items():
        ref = p.detach()
        err = ((got[f"final.{n}"] - ref).abs().max() / ref.abs().max().clamp_min(1e-12)).item()
        if err > worst:
            worst, where = err, n
    desc = ", ".join(f"{k}={v}" for k, v in overrides.items())
    check(worst < 2e-6, f"{kind} ({desc}): final parameters differ by {worst:.2e} relative ({where})")
    print(f"{kind:6s} {desc:70s} worst {worst:.1e}")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        for i, (kind, overrides) in enumerate(CASES):
            run_case(tmp, i, kind, overrides)
    report("test_optim_torch")


if __name__ == "__main__":
    main()
