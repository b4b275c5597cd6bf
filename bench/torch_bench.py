#!/usr/bin/python3
"""torch_bench.py — the PyTorch side of bench/run: times training steps (forward, backward,
SGD update) or inference steps of the same model on random data, in a given memory format.

  /usr/bin/python3 bench/torch_bench.py --model resnet20 --input 3x32x32 --batch 128 --mode train --format channels_last
--precision bf16 runs the forward pass and the loss under torch.autocast("cpu", dtype=torch.bfloat16), PyTorch's
mixed precision (float32 weights; its convolutions in bf16). Prints one line: "<img/s> <peak RSS MB>".
"""
import argparse
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import torch  # noqa: E402
import torch_models  # noqa: E402


def build(name, c, h, w, classes):
    try:
        return torch_models.build(name, c, h, w, classes)
    except (KeyError, ValueError):
        import torchvision
        return getattr(torchvision.models, name)(num_classes=classes)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--input", default="3x32x32")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--mode", choices=["train", "eval"], default="train")
    ap.add_argument("--format", choices=["default", "channels_last"], default="default")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", choices=["f32", "bf16"], default="f32")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    c, h, w = (int(v) for v in a.input.split("x"))
    model = build(a.model, c, h, w, a.classes)
    x = torch.randn(a.batch, c, h, w)
    y = torch.randint(0, a.classes, (a.batch,))
    if a.format == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train(a.mode == "train")
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16")
    for i in range(a.warmup + a.steps):
        if i == a.warmup:
            t0 = time.perf_counter()
        if a.mode == "train":
            opt.zero_grad(set_to_none=True)
            with autocast:
                out = model(x)
                if isinstance(out, tuple):  # torchvision GoogLeNet's auxiliary outputs in training
                    out = out[0] + 0.3 * (out[1] + out[2]) if len(out) == 3 and out[1] is not None else out[0]
                loss = loss_fn(out, y)
            loss.backward()
            opt.step()
        else:
            with torch.no_grad(), autocast:
                model(x)
    dt = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{a.steps * a.batch / dt:.1f} {rss_mb:.0f}")


if __name__ == "__main__":
    main()
