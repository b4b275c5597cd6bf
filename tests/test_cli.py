"""test_cli.py — the cnn command line: help, misuse (exit 2 with a message naming the flag),
failures on bad files and directories (exit 1, message naming the path, nothing lost), and a
tiny end-to-end train → checkpoint → eval on a CIFAR-10 set written by the test."""
import csv
import json
import os
import re
import tempfile

from cnntest import check, cnn, cpu_has_bf16, report, same_run, train_header, write_cifar10


def usage_errors():
    rc, out, err = cnn()
    check(rc == 2 and "usage" in err, f"bare cnn: exit {rc}, stderr {err!r}")
    for args in (["--help"], ["train", "--help"], ["eval", "--help"], ["summary", "--help"], ["bench", "--help"],
                 ["grid", "--help"], ["sanity", "--help"], ["plot", "--help"]):
        rc, out, err = cnn(*args)
        check(rc == 0 and "usage" in out, f"cnn {' '.join(args)}: exit {rc}")
    rc, out, _ = cnn("train", "--help")
    for flag in ("--lr", "--batch-size", "--optimizer", "--weight-decay", "--seed", "--val", "--limit", "--resume",
                 "--schedule", "plateau", "--plateau-patience", "--early-stop", "--monitor", "--min-delta",
                 "--restore-best", "--clip-norm", "--label-smoothing", "--no-decay-bn-bias", "--warmup", "--pct-start"):
        check(flag in out, f"train --help documents {flag}")
    bad = [
        (["train", "--lr", "abc"], "--lr"),
        (["train", "--lr", "-1"], "--lr"),
        (["train", "--lr", "nan"], "--lr"),
        (["train", "--epochs", "0"], "--epochs"),
        (["train", "--batch-size", "12x"], "--batch-size"),
        (["train", "--optimizer", "rmsprop"], "sgd"),
        (["train", "--dataset", "imagenet"], "--dataset"),
        (["train", "--bogus"], "--bogus"),
        (["train", "--lr"], "--lr"),
        (["train", "--bn=yes"], "--bn"),
        (["train", "-x"], "-x"),
        (["train", "extra"], "extra"),
        (["train", "--schedule", "multistep"], "--milestones"),
        (["train", "--milestones", "5,3", "--schedule", "multistep"], "--milestones"),
        (["train", "--schedule", "plateau", "--milestones", "3"], "--milestones"),
        (["train", "--warmup", "1"], "--warmup"),
        (["train", "--schedule", "cosine", "--warmup", "5", "--epochs", "2"], "--warmup"),
        (["train", "--schedule", "multistep", "--milestones", "5", "--epochs", "3"], "--milestones"),
        (["train", "--schedule", "step", "--gamma", "0"], "--gamma"),
        (["train", "--schedule", "step", "--min-lr", "0.01"], "--min-lr"),
        (["train", "--schedule", "plateau", "--plateau-factor", "1.5"], "--plateau-factor"),
        (["train", "--monitor", "val_acc"], "--monitor"),
        (["train", "--early-stop", "-1"], "--early-stop"),
        (["train", "--optimizer", "adam", "--momentum", "0.5"], "--momentum"),
        (["train", "--label-smoothing", "1"], "--label-smoothing"),
        (["train", "--clip-norm", "-1"], "--clip-norm"),
        (["grid", "--lr", "0.1,abc"], "--lr"),
        (["grid", "--batch-size", "0"], "--batch-size"),
        (["grid", "--resume", "runs/x"], "--resume"),
        (["plot"], "run directory"),
        (["sanity", "--sample", "0"], "--sample"),
        (["sanity", "--range-steps", "5"], "--range-steps"),
        (["sanity", "--epochs", "3"], "--epochs"),
        (["summary", "--input", "3x32"], None),
        (["summary", "--input", "3xx32"], "--input"),
        (["summary", "--model", "nosuchnet"], "nosuchnet"),
        (["eval"], "--checkpoint"),
        (["frobnicate"], "frobnicate"),
    ]
    for args, needle in bad:
        rc, out, err = cnn(*args)
        if needle is None:
            check(rc == 0, f"cnn {' '.join(args)} should be accepted (HxW keeps C): exit {rc} {err}")
            continue
        check(rc == 2, f"cnn {' '.join(args)}: exit {rc}, expected 2")
        check(needle in err, f"cnn {' '.join(args)}: message {err.strip()!r} should name {needle}")


# Every kind of misuse on every subcommand: each must exit 2 with a message naming the culprit and the
# usage line. (name, args, text the message must contain)
MISUSES = [
    # every option type, on the command that has it
    ("train", ["--epochs", "1.5"], "--epochs"),                 # int: not an integer
    ("train", ["--epochs", ""], "--epochs"),                    # int: empty
    ("train", ["--epochs", "2147483648"], "--epochs"),          # int: beyond int
    ("train", ["--epochs", "+3"], "--epochs"),                  # int: sign
    ("train", ["--batch-size", "0"], "--batch-size"),           # int: below the range
    ("train", ["--seed", "99999999999999999999"], "--seed"),    # int64: overflow
    ("train", ["--limit", "-1"], "--limit"),                    # int64: below the range
    ("train", ["--lr", "inf"], "--lr"),                         # float: not finite
    ("train", ["--lr", "1e309"], "--lr"),                       # float: overflow
    ("train", ["--momentum", "1.5"], "--momentum"),             # float: above the range
    ("train", ["--lr", " 0.1"], "--lr"),                        # float: blank
    ("train", ["--model", ""], "--model"),                      # string: empty
    ("train", ["--model", "nosuchnet"], "nosuchnet"),           # string: unknown model, before any data is read
    ("train", ["--schedule", "linear"], "--schedule"),          # choice
    ("train", ["--bn=1"], "--bn"),                              # flag with a value
    ("train", ["--no-lr"], "--no-lr"),                          # --no- of a non-flag
    ("train", ["--nesterov", "--optimizer", "adam"], "--nesterov"),
    ("train", ["--milestones", "a,b", "--schedule", "multistep"], "--milestones"),
    ("summary", ["--input", "3x32x32x3"], "--input"),           # shape: four dimensions
    ("summary", ["--input", "0x32x32"], "--input"),             # shape: zero
    ("summary", ["--input", "3x32x"], "--input"),               # shape: trailing x
    ("summary", ["--classes", "1"], "--classes"),
    ("summary", ["--layers=no"], "--layers"),
    ("bench", ["--mode", "infer"], "--mode"),
    ("bench", ["--steps", "0"], "--steps"),
    ("bench", ["--input", "3x"], "--input"),
    ("bench", ["--model", "nosuchnet"], "nosuchnet"),
    ("eval", ["--checkpoint"], "--checkpoint"),                 # missing value
    ("eval", ["--split", "validation", "--checkpoint", "x"], "--split"),
    ("eval", ["--batch-size", "-4", "--checkpoint", "x"], "--batch-size"),
    ("eval", ["--json=yes", "--checkpoint", "x"], "--json"),
    ("eval", ["--workers", "-1", "--checkpoint", "x"], "--workers"),
    ("eval", ["--dataset", "imagenet", "--checkpoint", "x"], "--dataset"),
    ("train", ["--dataset", "folder"], "--data"),               # a folder needs its directory
    ("train", ["--image-size", "32"], "--image-size"),          # folder options on an in-memory set
    ("train", ["--workers", "300"], "--workers"),
    ("bench", ["--workers", "0"], "--workers"),
    ("bench", ["--image-size", "0"], "--image-size"),
    ("predict", ["--top", "0", "--checkpoint", "x", "a.jpg"], "--top"),
    ("predict", ["--checkpoint", "x"], "no image files"),
    ("predict", ["a.jpg"], "--checkpoint"),
    ("models", ["--all"], "--all"),
    ("models", ["extra"], "extra"),
]
# and on every command: an unknown option, a short option, a stray positional argument, a missing value
for _cmd, _opt in (("train", "--lr"), ("eval", "--data"), ("summary", "--model"), ("bench", "--batch-size")):
    MISUSES += [(_cmd, ["--bogus"], "--bogus"), (_cmd, ["-b"], "-b"), (_cmd, ["stray"], "stray"), (_cmd, [_opt], _opt)]
MISUSES += [("predict", ["--bogus"], "--bogus"), ("predict", ["-b"], "-b"), ("predict", ["--top"], "--top")]  # images are positional


def every_misuse():
    for cmd in ("train", "eval", "predict", "summary", "models", "bench"):
        for flag in ("--help", "-h"):
            rc, out, err = cnn(cmd, flag)
            check(rc == 0 and out.startswith(f"usage: cnn {cmd}") and not err, f"cnn {cmd} {flag}: exit {rc} {err!r}")
        # --help wins over any misuse around it
        rc, out, err = cnn(cmd, "--bogus", "--help", "--lr", "nan")
        check(rc == 0 and "usage" in out, f"cnn {cmd} --bogus --help: exit {rc}")
    for args in (["help"], ["--version"], ["version"]):
        rc, out, err = cnn(*args)
        check(rc == 0 and out, f"cnn {' '.join(args)}: exit {rc}")
    for cmd, args, needle in MISUSES:
        rc, out, err = cnn(cmd, *args)
        check(rc == 2, f"cnn {cmd} {' '.join(args)}: exit {rc}, expected 2 ({err.strip()!r})")
        check(needle in err, f"cnn {cmd} {' '.join(args)}: message {err.strip()!r} should name {needle}")
        check(f"usage: cnn {cmd}" in err, f"cnn {cmd} {' '.join(args)}: no usage line in {err.strip()!r}")


def summary_counts():
    import torch_models
    rc, out, err = cnn("summary", "--model", "resnet20", "--input", "3x32x32", "--classes", "10")
    check(rc == 0, f"summary resnet20: {err}")
    torch_count = sum(p.numel() for p in torch_models.build("resnet20", 3, 32, 32, 10).parameters())
    check(torch_count == 272474, f"PyTorch's resnet20 has {torch_count} parameters")
    check(f"parameters: {torch_count} " in out, f"summary reports PyTorch's count {torch_count}: {out[-200:]}")
    for name, shape in (("convnet", "1x28x28"), ("convnet", "3x32x32"), ("plain8", "3x32x32"), ("residual50", "3x32x32")):
        rc, out, err = cnn("summary", "--model", name, "--input", shape, "--no-layers")
        c, h, w = map(int, shape.split("x"))
        count = sum(p.numel() for p in torch_models.build(name, c, h, w, 10).parameters())
        check(rc == 0 and f"parameters: {count} " in out, f"summary {name} {shape}: want {count}: {out} {err}")


def bad_files(tmp):
    rc, out, err = cnn("train", "--data", os.path.join(tmp, "nowhere"), "--epochs", "1")
    check(rc == 1 and "nowhere" in err, f"missing data directory: exit {rc}, {err!r}")
    rc, out, err = cnn("eval", "--checkpoint", os.path.join(tmp, "none.safetensors"))
    check(rc == 1 and "none.safetensors" in err, f"missing checkpoint: exit {rc}, {err!r}")
    junk = os.path.join(tmp, "junk.safetensors")
    with open(junk, "wb") as f:
        f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
    rc, out, err = cnn("eval", "--checkpoint", junk)
    check(rc == 1 and "junk.safetensors" in err, f"corrupt checkpoint: exit {rc}, {err!r}")


def train_eval_cifar(tmp):
    data = os.path.join(tmp, "cifar")
    write_cifar10(data)
    run = os.path.join(tmp, "r20")
    rc, out, err = cnn("train", "--model", "resnet20", "--dataset", "cifar10", "--data", data, "--epochs", "2",
                       "--batch-size", "16", "--lr", "0.05", "--optimizer", "sgd", "--momentum", "0.9",
                       "--weight-decay", "1e-4", "--schedule", "constant", "--out", run)
    check(rc == 0, f"train resnet20 on tiny CIFAR-10: exit {rc}\n{out}\n{err}")
    for f in ("metrics.csv", "last.safetensors", "best.safetensors"):
        check(os.path.exists(os.path.join(run, f)), f"run directory has {f}")
    rows = list(csv.DictReader(open(os.path.join(run, "metrics.csv"))))
    check(len(rows) == 2, f"metrics.csv has a row per epoch: {rows}")
    check(set(rows[0]) >= {"epoch", "lr", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "seconds"},
          f"metrics.csv columns {list(rows[0])}")
    rc, out, err = cnn("eval", "--checkpoint", os.path.join(run, "last.safetensors"), "--dataset", "cifar10",
                       "--data", data, "--json")
    check(rc == 0, f"eval: {err}")
    if rc == 0:
        r = json.loads(out)
        check(r["images"] == 16 and len(r["classes"]) == 10 and r["classes"][0]["name"] == "airplane",
              f"eval JSON: {out[:200]}")
        check(abs(r["top1"] - float(rows[-1]["val_top1"])) < 1e-6 and abs(r["loss"] - float(rows[-1]["val_loss"])) < 1e-4,
              f"eval of last checkpoint {r['top1']}/{r['loss']} equals the last epoch's validation {rows[-1]}")
    # the run directory is never reused: a second train into it refuses and keeps the files
    before = open(os.path.join(run, "last.safetensors"), "rb").read()
    rc, out, err = cnn("train", "--model", "resnet20", "--dataset", "cifar10", "--data", data, "--epochs", "1",
                       "--batch-size", "16", "--out", run)
    check(rc == 2 and run in err, f"train into an existing run: exit {rc}, {err!r}")
    check(open(os.path.join(run, "last.safetensors"), "rb").read() == before, "existing checkpoint untouched")


def precision_bf16():
    """On a CPU without bf16 instructions (read from /proc/cpuinfo, not from cnn.c), --precision bf16 is refused
    with the reason; on one with them, it runs (the arithmetic itself: test_bf16), a run stores it, and a resumed
    run keeps it and refuses another precision."""
    if not cpu_has_bf16():
        for command in ("train", "bench"):
            rc, _, err = cnn(command, "--precision", "bf16")
            check(rc == 2 and "--precision bf16" in err and "has no bf16 arithmetic" in err,
                  f"{command} --precision bf16: exit {rc}, expected 2 and 'has no bf16 arithmetic': {err!r}")
        return
    rc, out, err = cnn("bench", "--model", "convnet", "--batch-size", "4", "--steps", "1", "--warmup", "0",
                       "--precision", "bf16")
    check(rc == 0 and "training in bf16" in out, f"bench --precision bf16: exit {rc}, {out!r} {err!r}")
    with tempfile.TemporaryDirectory() as tmp:
        run = os.path.join(tmp, "run")
        rc, out, err = cnn("train", "--precision", "bf16", "--limit", "256", "--epochs", "1", "--out", run, "--quiet")
        check(rc == 0, f"train --precision bf16: exit {rc}, {err!r}")
        rc, _, err = cnn("train", "--resume", run, "--epochs", "2", "--precision", "f32", "--quiet")
        check(rc == 2 and "--precision f32" in err and "bf16" in err, f"resume in f32 of a bf16 run: exit {rc}, {err!r}")
        rc, _, err = cnn("train", "--resume", run, "--epochs", "2", "--precision", "bf16", "--quiet")
        check(rc == 0, f"resume of a bf16 run in bf16: exit {rc}, {err!r}")


def recompute_same_run(tmp):
    """--recompute (batch norm outputs written again in the backward pass, not kept) trains the same run: resnet20
    on tiny CIFAR-10 ends with the bits (weights, optimizer state, history, metrics.csv) of a run keeping them (the
    gradients themselves: test_recompute); a resumed run may turn it on; inference has nothing to recompute."""
    data = os.path.join(tmp, "cifar-rc")
    write_cifar10(data)
    done = 0
    for flag in ([], ["--recompute"]):
        run = os.path.join(tmp, "rc" + "".join(flag))
        rc, out, err = cnn("train", "--model", "resnet20", "--dataset", "cifar10", "--data", data, "--epochs", "1",
                           "--batch-size", "8", "--schedule", "constant", "--out", run, "--quiet", *flag)
        check(rc == 0, f"train {flag}: exit {rc}, {err!r}")
        if rc == 0:
            done += 1
            stored = train_header(os.path.join(run, "last.safetensors"))["config"]
            check(stored.get("recompute", False) == bool(flag), f"run {flag} stores recompute {stored.get('recompute')}")
    if done == 2:
        same_run(os.path.join(tmp, "rc"), os.path.join(tmp, "rc--recompute"), "--recompute against keeping")
    rc, _, err = cnn("train", "--resume", os.path.join(tmp, "rc"), "--epochs", "2", "--recompute", "--quiet")
    check(rc == 0, f"resume with --recompute: exit {rc}, {err!r}")
    rc, _, err = cnn("bench", "--mode", "eval", "--recompute", "--steps", "1")
    check(rc == 2 and "--recompute" in err and "--mode train" in err, f"bench --mode eval --recompute: exit {rc}, {err!r}")


def conv_kernels(*args, env=None):
    """(implementation, propagation, problem) of every convolution `cnn bench` runs, from oneDNN's verbose log."""
    rc, out, err = cnn("bench", *args, "--steps", "1", "--warmup", "0", env={"ONEDNN_VERBOSE": "1", **(env or {})})
    check(rc == 0, f"bench {' '.join(args)}: exit {rc}, {err[-300:]!r}")
    runs = []
    for line in out.splitlines():
        f = line.split(",")
        if len(f) > 4 and f[1] == "exec" and f[3] == "convolution":
            problem = dict((k, int(v)) for k, v in re.findall(r"([a-z]+)(\d+)", f[-2].replace("_", " ")))
            runs.append((f[4], f[5], problem))
    return runs


def winograd_rule():
    """3x3 stride-1 convolutions with 32 or more input and output channels on maps of 4x4 or more run oneDNN's
    Winograd kernels (forward, backward data, backward weights) where it has them (AVX-512, read from
    /proc/cpuinfo), every other convolution its direct ones; CNN_WINOGRAD=0 turns Winograd off. In evaluation
    on AVX-512 those convolutions run cnn.c's own Winograd instead where they have 96 input channels or at most
    1024 tiles of 4x4 (ResNet-20 at batch 8: all of them), so they leave oneDNN's log and the rest stays as
    without Winograd; in training on AVX-512 the 3x3 stride-1 convolutions of 16 -> 16 channels and the stride-2
    ones of 16 -> 32 and 32 -> 64 run cnn.c's own kernels (all three passes; CNN_CONV16=0 gives both back to
    oneDNN, CNN_CONV_S2=0 the stride-2 ones). The shapes and kernels are read from oneDNN's own log, not from
    cnn.c."""
    flags = open("/proc/cpuinfo").read().split()
    avx512 = all(f in flags for f in ("avx512f", "avx512bw", "avx512vl", "avx512dq"))
    seen = set()
    fits = lambda q: q["kh"] == 3 and q["sh"] == 1 and q["ic"] >= 32 and q["oc"] >= 32 and q["oh"] >= 4 and q["ow"] >= 4
    own16 = lambda q: q["kh"] == 3 and q["sh"] == 1 and q["ic"] == 16 and q["oc"] == 16 and q["ow"] % 16 == 0
    own_s2 = lambda q: q["kh"] == 3 and q["sh"] == 2 and q["ic"] % 16 == 0 and q["oc"] % 32 == 0 and q["iw"] % 16 == 0
    for mode in ("train", "eval"):
        runs = conv_kernels("--model", "resnet20", "--batch-size", "8", "--mode", mode)
        check(len(runs) >= (57 - 24 * avx512 if mode == "train" else 21 - 10 * avx512),
              f"resnet20 {mode}: {len(runs)} convolutions logged")
        if mode == "train":
            check(not any(own16(q) for _, _, q in runs) if avx512 else sum(own16(q) for _, _, q in runs) >= 18,
                  f"resnet20 train: oneDNN ran {sum(own16(q) for _, _, q in runs)} of the 16 -> 16 convolutions")
            check(not any(own_s2(q) for _, _, q in runs) if avx512 else sum(own_s2(q) for _, _, q in runs) >= 6,
                  f"resnet20 train: oneDNN ran {sum(own_s2(q) for _, _, q in runs)} of the stride-2 3x3 convolutions")
            if avx512:
                back = conv_kernels("--model", "resnet20", "--batch-size", "8", "--mode", mode, env={"CNN_CONV16": "0"})
                check(sum(own16(q) for _, _, q in back) >= 18 and sum(own_s2(q) for _, _, q in back) >= 6,
                      f"CNN_CONV16=0: oneDNN ran {sum(own16(q) for _, _, q in back)} of the 16 -> 16 convolutions, "
                      f"{sum(own_s2(q) for _, _, q in back)} of the stride-2 3x3 ones")
                back = conv_kernels("--model", "resnet20", "--batch-size", "8", "--mode", mode, env={"CNN_CONV_S2": "0"})
                check(sum(own16(q) for _, _, q in back) == 0 and sum(own_s2(q) for _, _, q in back) >= 6,
                      f"CNN_CONV_S2=0: oneDNN ran {sum(own16(q) for _, _, q in back)} of the 16 -> 16 convolutions, "
                      f"{sum(own_s2(q) for _, _, q in back)} of the stride-2 3x3 ones")
        if mode == "eval" and avx512:
            direct = conv_kernels("--model", "resnet20", "--batch-size", "8", "--mode", mode, env={"CNN_WINOGRAD": "0"})
            key = lambda r: sorted(r[2].items())
            check(sorted(map(key, runs)) == sorted(key(r) for r in direct if not fits(r[2])) and
                  sum(fits(r[2]) for r in direct) == 10,
                  f"resnet20 eval: oneDNN ran {len(runs)} convolutions, without Winograd {len(direct)}")
        for impl, prop, q in runs:
            check(("wino" in impl) == (fits(q) and avx512),
                  f"resnet20 {mode} {prop} ic{q['ic']} oc{q['oc']} {q['oh']}x{q['ow']} k{q['kh']} s{q['sh']}: {impl}")
            if "wino" in impl:
                seen.add(prop)
    if avx512:
        check(seen == {"forward_training", "backward_data", "backward_weights"}, f"Winograd ran for {sorted(seen)}")
    runs = conv_kernels("--model", "resnet20", "--batch-size", "8", env={"CNN_WINOGRAD": "0"})
    check(runs and not any("wino" in impl for impl, _, _ in runs), "CNN_WINOGRAD=0: no Winograd kernel ran")


def profile_rows(*args, env=None):
    """{row: (forward ms, backward ms, GFLOP per step or None)} from `cnn bench --profile`."""
    rc, out, err = cnn("bench", *args, "--steps", "1", "--warmup", "0", "--profile", env=env)
    check(rc == 0, f"bench --profile {' '.join(args)}: exit {rc}, {err[-300:]!r}")
    rows = {}
    for line in out.splitlines():
        m = re.match(r"  (\S.*?)\s+(\d+\.\d+)\s+(\d+\.\d+)\s+(\S+)\s+(\S+)\s+\d+\.\d%$", line)
        if m:
            rows[m[1]] = (float(m[2]), float(m[3]), None if m[4] == "-" else float(m[4]))
    return rows


def bench_profile():
    """`cnn bench --profile` gives convolutions a row per kind (size, stride, Winograd) with their arithmetic, and
    batch norm and add the ReLU fused into them. Expected multiply-adds by hand for ResNet-20 (He et al., projection
    shortcuts) on 32x32 images: 3x3 stride 1 = 16*32*32*27 (stem) + 6*16*1024*144 + 5*32*256*288 + 5*64*64*576;
    3x3 stride 2 = 32*256*144 + 64*64*288; 1x1 stride 2 = 32*256*16 + 64*64*32; linear 64*10. Training adds the
    weight and input gradients, but the stem's input (the image) needs none. Winograd (AVX-512) takes the 32- and
    64-channel stride-1 ones; in training (AVX-512) cnn.c's own kernels the 16-channel ones after the stem
    ("conv2d 3x3 own") and the stride-2 3x3 ones ("conv2d 3x3 s2 own")."""
    b = 16
    s1, s2, p2, fc = 442368 + 6 * 16 * 1024 * 144 + 5 * 32 * 256 * 288 + 5 * 64 * 64 * 576, 32 * 256 * 144 + 64 * 64 * 288, \
        32 * 256 * 16 + 64 * 64 * 32, 64 * 10
    wino = 5 * 32 * 256 * 288 + 5 * 64 * 64 * 576
    flags = open("/proc/cpuinfo").read().split()
    avx512 = all(f in flags for f in ("avx512f", "avx512bw", "avx512vl", "avx512dq"))

    def expect(rows, want, what):
        for row, macs in want.items():
            got = rows.get(row, (0, 0, None))[2]
            check(got is not None and abs(got - 2 * b * macs / 1e9) <= 2e-4 * (2 * b * macs / 1e9),
                  f"{what}: {row} {got} GFLOP per step, expected {2 * b * macs / 1e9:.6g}")
        convs = sorted(r for r in rows if r.startswith("conv2d") or r == "linear")
        check(convs == sorted(want), f"{what}: rows {convs}, expected {sorted(want)}")

    args = ("--model", "resnet20", "--batch-size", str(b))
    rows = profile_rows(*args, "--mode", "eval", env={"CNN_WINOGRAD": "0"})
    expect(rows, {"conv2d 3x3": s1, "conv2d 3x3 s2": s2, "conv2d 1x1 s2": p2, "linear": fc}, "eval, direct")
    check(all(bwd == 0 for _, bwd, _ in rows.values()), "eval: a backward time")
    rows = profile_rows(*args, env={"CNN_WINOGRAD": "0"})
    own = 3 * 6 * 16 * 1024 * 144 if avx512 else 0
    expect(rows, {"conv2d 3x3": 3 * s1 - 442368 - own, "conv2d 3x3 s2 own" if avx512 else "conv2d 3x3 s2": 3 * s2,
                  "conv2d 1x1 s2": 3 * p2, "linear": 3 * fc, **({"conv2d 3x3 own": own} if avx512 else {})},
           "train, direct")
    check("batchnorm + relu" in rows and "add + relu" in rows and "batchnorm" in rows and "relu" not in rows,
          f"train: rows {sorted(rows)}")
    rows = profile_rows(*args, "--mode", "eval")
    expect(rows, {"conv2d 3x3": s1 - wino, "conv2d 3x3 winograd": wino, "conv2d 3x3 s2": s2, "conv2d 1x1 s2": p2,
                  "linear": fc} if avx512 else {"conv2d 3x3": s1, "conv2d 3x3 s2": s2, "conv2d 1x1 s2": p2, "linear": fc},
           "eval")


def grouped_merge():
    """ResNeXt's grouped convolutions (32 groups of 4, 8, 16 and 32 channels) run with whole vector blocks of
    channels per group (groups merged where they have fewer: conv.c's grouped_expansion) and, on AVX-512, on
    oneDNN's blocked JIT kernels, not its GEMM one (12-46 GFLOP/s on them). Read from oneDNN's own log."""
    flags = open("/proc/cpuinfo").read().split()
    block = 16 if all(f in flags for f in ("avx512f", "avx512bw", "avx512vl", "avx512dq")) else 8
    for mode in ("train", "eval"):
        runs = [r for r in conv_kernels("--model", "resnext50_32x4d", "--input", "3x32x32", "--batch-size", "2",
                                        "--mode", mode) if "g" in r[2]]
        check(len(runs) >= (48 if mode == "train" else 16), f"resnext50 {mode}: {len(runs)} grouped convolutions logged")
        for impl, prop, q in runs:
            per = q["ic"] // q["g"]
            check(per % block == 0 and (block == 8 or "gemm" not in impl),
                  f"resnext50 {mode} {prop} g{q['g']} ic{q['ic']}: {per} channels per group, {impl}")


def main():
    usage_errors()
    precision_bf16()
    winograd_rule()
    bench_profile()
    grouped_merge()
    every_misuse()
    summary_counts()
    with tempfile.TemporaryDirectory() as tmp:
        bad_files(tmp)
        train_eval_cifar(tmp)
        recompute_same_run(tmp)
    report("test_cli")


if __name__ == "__main__":
    main()
