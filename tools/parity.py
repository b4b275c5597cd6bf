"""parity.py — PyTorch reference results for cnn.c's parity tests (tests/test_parity_torch.py).

For one model it writes, into a directory:
  weights.safetensors  the model's state_dict (fixed torch seed; batch-norm affine parameters and running
                       statistics, and biases initialized to zero, randomized so that they are exercised,
                       not left at 1/0)
  batch.safetensors    "input" (batch×c×h×w float32) and "labels" (int64), with the run's settings as
                       metadata (model, bn, dropout, dropout_aux, stochastic_depth, classes, steps, lr,
                       momentum, weight_decay; a regnet's regulator and regulated_stages) that
                       tests/progs/parity_run.c reads
  ref.safetensors      what PyTorch computes, in this order:
      logits             training-mode forward of the loaded weights (the main output)
      loss               the training loss: cross-entropy of those logits, plus 0.3 × that of each
                         auxiliary head (GoogLeNet) (float64 scalar)
      main_loss          the cross-entropy of the main logits alone
      grad.<param>       every parameter's gradient after backward
      stats.<buffer>     batch-norm running statistics after that forward (num_batches_tracked too)
      sgd_losses         the losses of `steps` SGD steps (torch.optim.SGD, lr, momentum, weight decay), each a
                         training-mode forward + backward + step on the same batch (float64 vector)
      final.<key>        the state_dict after those steps
      eval_logits        evaluation-mode forward at the end
      eval_loss          its cross-entropy (evaluation has no auxiliary heads)

Command line:
    /usr/bin/python3 tools/parity.py --model resnet20 --input 3x32x32 --batch 8 --out /tmp/p
From Python:
    import parity; ref = parity.generate("/tmp/p", "convnet", 1, 28, 28, bn=True)
"""
import argparse
import os
import sys

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
import torch_models  # noqa: E402


def perturb_zero_biases(model, gen):
    """Random values in biases initialized to zero (torchvision's EfficientNet zeroes its squeeze-excitation
    and classifier biases, VGG its conv biases): a bias left out of the forward would not show otherwise, and
    an updated zero parameter would compare as its gradient, not as a parameter."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias") and not p.any():
                p.copy_((torch.rand(p.shape, generator=gen) - 0.5) * 0.2)


def perturb_batchnorm(model, gen):
    """Random gamma, beta and running statistics in every BatchNorm2d: the defaults (1, 0, 0, 1) would let
    a scale/shift or a running-average bug hide."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=gen) - 0.5)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
                m.num_batches_tracked.fill_(7)


def scale_residual_branches(model, factor):
    """Multiply by `factor` the gamma of each residual branch's last batch norm (bn3 of a bottleneck, bn2 of a
    basic or highway block), a softer form of torchvision's zero_init_residual. A deep residual network with
    batch norm in training amplifies float32 rounding block after block: at batch 2, PyTorch's own float32
    misses its float64 result by 4.7e-4 (logits) and 2e-3 (gradients) on resnet152, so no float32 twin can meet
    the parity tolerances there. With branches scaled by 0.1 the same comparison is at 1e-6 (resnet101) while
    every branch still contributes and every gradient is exercised."""
    with torch.no_grad():
        for m in model.modules():
            if not hasattr(m, "downsample") or isinstance(m, torch_models.PreActBlock) or not getattr(m, "residual", True):
                continue
            last = getattr(m, "bn3", None) or getattr(m, "bn2")
            last.weight.mul_(factor)


class Replay:
    """Replays cnn.c's decisions of one kind in training passes. decisions[p][k] is for the k-th call of training
    pass p (tests/progs/parity_run --masks writes them in that order). A kind is replayed either by a forward hook
    on every module of module_type, which replaces the module's output by what the decision gives, or, for
    kinds that models also call as functions (torchvision's GoogLeNet calls F.relu), by replacing
    torch.nn.functional.<function> (which the modules call too) for the duration of the pass. flips: where a
    decision differs from PyTorch's own, (pass, "<kind> <k>", elements, their distance from the kink relative to
    the tensor's max |x|)."""

    module_type = None
    function = None

    def __init__(self, model, decisions):
        self.decisions, self.pass_, self.k, self.flips = decisions, None, 0, []
        if self.module_type:
            for m in model.modules():
                if isinstance(m, self.module_type):
                    m.register_forward_hook(self.hook)
        if self.function:
            self.original = getattr(F, self.function)

    def start(self, pass_):
        self.pass_, self.k = pass_, 0
        if self.function:
            setattr(F, self.function, self.call)

    def stop(self):
        """puts back the function replaced"""
        if self.function:
            setattr(F, self.function, self.original)

    def check(self):
        """ends the pass, which must have used every decision"""
        if self.k != len(self.decisions[self.pass_]):
            raise ValueError(f"{type(self).__name__}, training pass {self.pass_}: {self.k} calls, "
                             f"{len(self.decisions[self.pass_])} decisions")
        self.pass_ = None

    def next_decision(self):
        if self.k >= len(self.decisions[self.pass_]):
            raise ValueError(f"{type(self).__name__}, training pass {self.pass_}: more calls than the {self.k} decisions")
        d = self.decisions[self.pass_][self.k]
        self.k += 1
        return d

    def hook(self, module, inputs, output):
        if self.pass_ is None:
            return None
        return self.apply(module, inputs[0], self.next_decision())

    def flip(self, count, distance):
        self.flips.append((self.pass_, f"{self.kind} {self.k - 1}", count, distance))


class ReluDecisions(Replay):
    """ReLU decisions: relu(x) becomes x * mask, whose gradient is mask * dy, as a ReLU with that mask; the
    distance of a flip is the largest |x| it flips."""

    kind, function = "relu", "relu"

    def call(self, x, inplace=False):
        if self.pass_ is None:
            return self.original(x, inplace)
        mask = self.next_decision()
        if mask.numel() != x.numel():
            raise ValueError(f"pass {self.pass_} ReLU {self.k - 1}: mask {list(mask.shape)}, input {list(x.shape)}")
        mask = mask.reshape(x.shape).to(torch.bool)  # cnn.c's linear outputs are batch×c×1×1
        differ = (x > 0) != mask
        if differ.any():
            self.flip(int(differ.sum()), x.detach()[differ].abs().max().item() / x.detach().abs().max().item())
        return x * mask.to(x.dtype)


class MaxPoolDecisions(Replay):
    """Max-pool decisions, from cnn.c's input of each max pool: every window takes the element where cnn.c's
    input has its maximum (the first in scan order among equals, PyTorch's rule) and routes the gradient there;
    the distance of a flip is the largest gap between PyTorch's own maximum and the element taken."""

    kind, function = "maxpool", "max_pool2d"

    def call(self, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        if self.pass_ is None:
            return self.original(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
        theirs_x = self.next_decision()
        if theirs_x.shape != x.shape:
            raise ValueError(f"pass {self.pass_} max pool {self.k - 1}: cnn.c {list(theirs_x.shape)}, torch {list(x.shape)}")
        _, mine = self.original(x.detach(), kernel_size, stride, padding, dilation, ceil_mode, True)
        _, theirs = self.original(theirs_x.to(x.dtype), kernel_size, stride, padding, dilation, ceil_mode, True)
        flat = x.flatten(2)
        out = flat.gather(2, theirs.flatten(2)).reshape(theirs.shape)
        differ = mine != theirs
        if differ.any():
            gap = (flat.detach().gather(2, mine.flatten(2)).reshape(mine.shape) - out.detach())[differ]
            self.flip(int(differ.sum()), gap.abs().max().item() / x.detach().abs().max().item())
        return (out, theirs) if return_indices else out


class DropoutDecisions(Replay):
    """cnn.c's dropout masks (1: kept): x * mask / (1 - p), PyTorch's inverted dropout with that mask."""

    kind, module_type = "dropout", nn.Dropout

    def __init__(self, model, masks):
        super().__init__(model, masks)
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.inplace = False  # in place (EfficientNet's), PyTorch's own mask would reach the input the hook sees

    def apply(self, module, x, mask):
        return x * mask.reshape(x.shape).to(x.dtype) / (1 - module.p)


class DropPathDecisions(Replay):
    """cnn.c's stochastic depth, one decision per sample (1: kept): x * kept / (1 - p) with the module's own p (the
    linear rule of torch_models.drop_rates, or torchvision's EfficientNet's), so a cnn.c block scaling by another
    p shows in the comparison. Counts the samples dropped and kept."""

    kind, module_type = "drop_path", (torch_models.DropPath, torchvision.ops.StochasticDepth)

    def __init__(self, model, kept):
        super().__init__(model, kept)
        self.dropped, self.kept = 0, 0

    def apply(self, module, x, kept):
        self.kept += int(kept.sum())
        self.dropped += int(kept.numel() - kept.sum())
        return x * kept.to(x.dtype).reshape(-1, 1, 1, 1) / (1 - module.p)


REPLAYS = {"relu": ReluDecisions, "maxpool": MaxPoolDecisions, "dropout": DropoutDecisions,
           "drop_path": DropPathDecisions}
KINKS = ("relu", "maxpool")  # the decisions at kinks (the others are random draws)


def outputs_and_loss(out, y):
    """(main logits, training loss, main loss) of a model's output: GoogLeNet in training returns (logits,
    aux2, aux1), whose loss is torchvision's recipe, main + 0.3 × each auxiliary cross-entropy."""
    if isinstance(out, tuple):
        main = F.cross_entropy(out[0], y)
        return out[0], main + 0.3 * sum(F.cross_entropy(a, y) for a in out[1:]), main
    loss = F.cross_entropy(out, y)
    return out, loss, loss


def buffers_of(model):
    params = {k for k, _ in model.named_parameters()}
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k not in params}


def f32(t):
    return t.detach().to(torch.float32).clone() if t.is_floating_point() else t.detach().clone()


def generate(out, model_name, in_c, h, w, classes=10, batch=8, bn=False, dropout=0.0, steps=3, lr=0.1,
             momentum=0.9, weight_decay=5e-4, seed=0, perturb=True, dtype=torch.float32, replay=None,
             stochastic_depth=0.0, inputs_only=False, branch_gamma=1.0, dropout_aux=0.0, regulator=None,
             regulated_stages=None):
    """Write weights/batch/ref safetensors into `out` and return the reference dict. dtype=torch.float64
    computes the reference in double precision from the same float32 weights and batch (to tell, when
    cnn.c and PyTorch's float32 differ, which of the two is off). replay: {kind: a list per training pass of
    cnn.c's decisions} for kinds of REPLAYS, as load_decisions reads parity_run --masks; they are replayed in
    the training passes. ref["biases_before_batchnorm"] is torch_models.biases_before_batchnorm's set; with ReLU
    or max-pool decisions, where they differ from PyTorch's own is in ref["kink_flips"]; with drop-path
    decisions, ref["drop_path"] = (samples dropped, kept) over all blocks and passes (none of them saved). Dropout (dropout_aux: GoogLeNet's auxiliary heads') and stochastic depth draw at
    random in training, so a comparison with cnn.c must replay cnn.c's draws: inputs_only writes weights and
    batch and returns None. branch_gamma: see scale_residual_branches. regulator, regulated_stages: a regnet's
    (default: its own)."""
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    regnet = {}
    if regulator is not None:
        regnet["regulator"] = regulator
    if regulated_stages is not None:
        regnet["regulated_stages"] = tuple(regulated_stages)
    model = torch_models.build(model_name, in_c, h, w, classes, bn=bn, dropout=dropout,
                               stochastic_depth=stochastic_depth, dropout_aux=dropout_aux, **regnet)
    if perturb:
        perturb_batchnorm(model, gen)
        perturb_zero_biases(model, gen)
    if branch_gamma != 1.0:
        scale_residual_branches(model, branch_gamma)
    safetensors_io.save(os.path.join(out, "weights.safetensors"), {k: f32(v) for k, v in model.state_dict().items()})
    x = torch.randn(batch, in_c, h, w, generator=gen)
    y = torch.randint(0, classes, (batch,), generator=gen, dtype=torch.int64)
    meta = {"model": model_name, "bn": str(int(bn)), "dropout": repr(float(dropout)), "classes": str(classes),
            "steps": str(steps), "lr": repr(lr), "momentum": repr(momentum), "weight_decay": repr(weight_decay),
            "stochastic_depth": repr(float(stochastic_depth)), "dropout_aux": repr(float(dropout_aux))}
    if regulator is not None:
        meta["regulator"] = regulator
    if regulated_stages is not None:
        meta["regulated_stages"] = ",".join(str(s) for s in regulated_stages)
    safetensors_io.save(os.path.join(out, "batch.safetensors"), {"input": x, "labels": y}, meta)
    if inputs_only:
        return None

    model = model.to(dtype)
    x = x.to(dtype)
    ref = {}
    replays = [REPLAYS[kind](model, d) for kind, d in (replay or {}).items()]

    def train_forward(pass_):
        """(main logits, training loss, main loss)"""
        for r in replays:
            r.start(pass_)
        try:
            out = model(x)
        finally:  # whatever happens, torch.nn.functional gets its functions back
            for r in replays:
                r.stop()
        for r in replays:
            r.check()
        return outputs_and_loss(out, y)

    model.train()
    logits, loss, main_loss = train_forward(0)
    loss.backward()
    ref["logits"] = f32(logits)
    ref["loss"] = torch.tensor(loss.item(), dtype=torch.float64)
    ref["main_loss"] = torch.tensor(main_loss.item(), dtype=torch.float64)
    for k, p in model.named_parameters():
        ref["grad." + k] = f32(p.grad)
    for k, v in buffers_of(model).items():
        ref["stats." + k] = f32(v)

    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    losses = []
    for step in range(steps):
        opt.zero_grad()
        step_loss = train_forward(step + 1)[1]
        step_loss.backward()
        opt.step()
        losses.append(step_loss.item())
    ref["sgd_losses"] = torch.tensor(losses, dtype=torch.float64)
    for k, v in model.state_dict().items():
        ref["final." + k] = f32(v)
    model.eval()
    with torch.no_grad():
        eval_logits = model(x)
    ref["eval_logits"] = f32(eval_logits)
    ref["eval_loss"] = torch.tensor(F.cross_entropy(eval_logits, y).item(), dtype=torch.float64)
    safetensors_io.save(os.path.join(out, "ref.safetensors"), ref)
    ref["biases_before_batchnorm"] = set(torch_models.biases_before_batchnorm(model))
    for r in replays:
        if r.kind in KINKS:
            ref.setdefault("kink_flips", []).extend(r.flips)
        elif isinstance(r, DropPathDecisions):
            ref["drop_path"] = (r.dropped, r.kept)
    return ref


def load_decisions(path, passes, kinds=tuple(REPLAYS)):
    """parity_run's --masks file as {kind: a list per training pass (0..passes-1) of the decisions in call
    order}, for the given kinds (a model without such ops gets empty lists)."""
    tensors, _ = safetensors_io.load(path)
    found = {kind: [{} for _ in range(passes)] for kind in kinds}
    for name, t in tensors.items():
        kind, p, k = name.split(".")
        if kind in found:
            found[kind][int(p)][int(k)] = t
    return {kind: [[d[k] for k in sorted(d)] for d in per_pass] for kind, per_pass in found.items()}


def parse_shape(s):
    parts = [int(v) for v in s.lower().split("x")]
    if len(parts) != 3 or min(parts) <= 0:
        raise argparse.ArgumentTypeError(f"{s!r}: expected CxHxW, e.g. 3x32x32")
    return parts


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--input", type=parse_shape, default=[3, 32, 32], help="CxHxW (default 3x32x32)")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--bn", action="store_true", help="convnet: batch norm after each convolution")
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--stochastic-depth", type=float, default=0.0,
                    help="residual branches' drop probability, rising with depth to this (efficientnet_b0: torchvision's)")
    ap.add_argument("--dropout-aux", type=float, default=0.0, help="googlenet: dropout of the auxiliary heads")
    ap.add_argument("--regulator", choices=("convlstm", "convgru", "none"), help="regnets: the ConvRNN regulator")
    ap.add_argument("--regulated-stages", help="regnets: stages with the regulator, e.g. 1,2 (default all)")
    ap.add_argument("--branch-gamma", type=float, default=1.0, help="scale each residual branch's last BN by this")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-perturb", action="store_true", help="keep the batch-norm parameters and biases as initialized")
    ap.add_argument("--float64", action="store_true", help="compute the reference in double precision")
    ap.add_argument("--out", required=True, help="directory for weights/batch/ref.safetensors")
    a = ap.parse_args(argv)
    c, h, w = a.input
    ref = generate(a.out, a.model, c, h, w, a.classes, a.batch, a.bn, a.dropout, a.steps, a.lr, a.momentum,
                   a.weight_decay, a.seed, not a.no_perturb, torch.float64 if a.float64 else torch.float32,
                   stochastic_depth=a.stochastic_depth, dropout_aux=a.dropout_aux, branch_gamma=a.branch_gamma,
                   regulator=a.regulator,
                   regulated_stages=[int(v) for v in a.regulated_stages.split(",")] if a.regulated_stages else None)
    print(f"{a.model}: loss {ref['loss'].item():.6f}, SGD losses {[round(v, 6) for v in ref['sgd_losses'].tolist()]}, "
          f"wrote {a.out}/{{weights,batch,ref}}.safetensors")


if __name__ == "__main__":
    main()
