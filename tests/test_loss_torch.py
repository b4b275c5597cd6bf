"""test_loss_torch.py — cnn.c's softmax cross-entropy with label smoothing against PyTorch's
F.cross_entropy(label_smoothing=): the loss value and its gradient (through a linear layer with identity
weight, whose weight and bias gradients carry it) on the same logits. tests/progs/xent_run computes
cnn.c's side; the finite-difference check in test_ops_gradcheck.c shows the gradient fits cnn.c's own
loss, this shows the loss is PyTorch's."""
import os
import subprocess
import tempfile

import torch
import torch.nn.functional as F

from cnntest import BUILD, check, report
import safetensors_io

PROG = os.path.join(BUILD, "tests", "xent_run")


def run(*args):
    r = subprocess.run([PROG, *args], capture_output=True, text=True)
    check(r.returncode == 0, f"xent_run {args}: {r.stderr}")
    return r.returncode == 0


def rel(a, b):
    scale = b.abs().max().item()
    return (a.double() - b.double()).abs().max().item() / (scale if scale > 0 else 1)


def label_smoothing(tmp):
    gen = torch.Generator().manual_seed(5)
    n, k = 16, 10
    x = torch.randn(n, k, generator=gen) * 3
    y = torch.randint(0, k, (n,), generator=gen)
    for eps in (0.0, 0.1, 0.3):
        src, out = os.path.join(tmp, "x.safetensors"), os.path.join(tmp, "xo.safetensors")
        safetensors_io.save(src, {"x": x, "labels": y}, {"smoothing": repr(eps)})
        if not run(src, out):
            continue
        ours, _ = safetensors_io.load(out)
        lin = torch.nn.Linear(k, k).double()
        with torch.no_grad():
            lin.weight.copy_(torch.eye(k))
            lin.bias.zero_()
        loss = F.cross_entropy(lin(x.double()), y, label_smoothing=eps)
        loss.backward()
        el = abs(ours["loss"].item() - loss.item()) / loss.item()
        ew, eb = rel(ours["grad.weight"], lin.weight.grad), rel(ours["grad.bias"], lin.bias.grad)
        check(el < 1e-6 and ew < 1e-5 and eb < 1e-5, f"label smoothing {eps}: loss {el:.3g}, grads {ew:.3g} {eb:.3g}")
        print(f"cross-entropy with label smoothing {eps}: loss {ours['loss'].item():.6f} (torch {loss.item():.6f}), "
              f"gradients agree (worst relative {max(ew, eb):.2g})")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        label_smoothing(tmp)
    report("test_loss_torch")


if __name__ == "__main__":
    main()
