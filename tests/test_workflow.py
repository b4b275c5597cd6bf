"""test_workflow.py — the training workflow end to end on a small learnable set the test writes:
determinism (same seed and threads: the same bits), exact resume (a run extended with --resume, and a
run stopped by SIGTERM after an epoch then resumed, end bit for bit where uninterrupted runs end:
weights, optimizer state, every metric), what a resumed run refuses, ReduceLROnPlateau and early
stopping in real runs (stop epoch, restored weights), curves.png and cnn plot (valid PNGs showing
the curves), cnn grid and cnn sanity."""
import csv
import json
import os
import signal
import struct
import subprocess
import tempfile
import time

from cnntest import CNN, check, cnn, csv_rows, load_run, report, same_run, write_mnist_like

BASE = ["--limit", "128", "--batch-size", "32", "--threads", "2", "--lr", "0.05"]


def train(data, out, *args):
    rc, stdout, stderr = cnn("train", "--data", data, "--out", out, *BASE, *args)
    check(rc == 0, f"train {out} {args}: exit {rc}\n{stdout}\n{stderr}")
    return stdout


def determinism(data, tmp):
    args = ["--epochs", "3", "--dropout", "0.5", "--val", "32"]
    train(data, f"{tmp}/d1", *args)
    train(data, f"{tmp}/d2", *args)
    if same_run(f"{tmp}/d1", f"{tmp}/d2", "two runs with the same seed and threads"):
        print("determinism: two 3-epoch runs (onecycle, dropout) are bit-identical")
    train(data, f"{tmp}/d3", *args, "--epochs", "1", "--seed", "2")
    t1, _ = load_run(f"{tmp}/d1")
    t3, _ = load_run(f"{tmp}/d3")
    check(t1["features.0.weight"] != t3["features.0.weight"], "another seed gives other weights (the comparison can fail)")


def interrupted(data, tmp):
    """SIGTERM during the first epochs of a 3-epoch run: it saves after the epoch and exits 130;
    --resume then ends where the uninterrupted run d1 (same settings) ended."""
    run = f"{tmp}/c"
    env = dict(os.environ, OMP_NUM_THREADS="2")
    p = subprocess.Popen([CNN, "train", "--data", data, "--out", run, *BASE, "--epochs", "3", "--dropout", "0.5",
                          "--val", "32"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 300
    while not os.path.exists(f"{run}/metrics.csv") and p.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=600)
    done = len(csv_rows(run))
    check(p.returncode == 130 and done in (1, 2) and "--resume" in out,
          f"SIGTERM: exit {p.returncode} after {done} epochs\n{out}\n{err}")
    rc, out, err = cnn("train", "--resume", run)
    check(rc == 0 and f"resuming {run} at epoch {done + 1} of 3" in out, f"resume: exit {rc}\n{out}\n{err}")
    if same_run(run, f"{tmp}/d1", f"interrupted after epoch {done} and resumed"):
        print(f"resume: stopped by SIGTERM after epoch {done}, resumed: bit-identical to the uninterrupted run")


def extend_with_plateau(data, tmp):
    """ReduceLROnPlateau with an absolute threshold of 100 (no epoch improves on the first): patience 0
    divides the lr by 10 after epoch 2 (epoch 1 set the best). A 1-epoch run extended to 3 with
    --resume carries the plateau state across and ends as the 3-epoch run."""
    args = ["--schedule", "plateau", "--plateau-threshold", "100", "--plateau-abs", "--plateau-patience", "0",
            "--val", "32"]
    train(data, f"{tmp}/p3", *args, "--epochs", "3")
    lrs = [float(r["lr"]) for r in csv_rows(f"{tmp}/p3")]
    check([round(v, 9) for v in lrs] == [0.05, 0.05, 0.005], f"plateau lrs per epoch {lrs}")
    train(data, f"{tmp}/p1", *args, "--epochs", "1")
    rc, out, err = cnn("train", "--resume", f"{tmp}/p1", "--epochs", "3")
    check(rc == 0, f"resume --epochs 3: exit {rc}\n{out}\n{err}")
    if same_run(f"{tmp}/p1", f"{tmp}/p3", "1 epoch extended to 3 with --resume"):
        print(f"resume: 1 epoch + --resume --epochs 3 bit-identical to 3 epochs; plateau lrs {lrs}")


def refusals(data, tmp):
    run = f"{tmp}/p3"
    before = {f: open(os.path.join(run, f), "rb").read() for f in ("last.safetensors", "best.safetensors", "metrics.csv")}
    cases = [
        (["--resume", run, "--lr", "0.1"], "--lr 0.1"),
        (["--resume", run, "--epochs", "4", "--optimizer", "adam"], "--optimizer adam"),
        (["--resume", run, "--epochs", "4", "--batch-size", "64"], "--batch-size 64"),
        (["--resume", run, "--lr", "0.05", "--batch-size", "32"], "finished its 3 epochs"),  # same values are fine
        (["--resume", run, "--epochs", "2"], "finished its 3 epochs"),
        (["--resume", run, "--out", f"{tmp}/elsewhere"], "--out"),
        (["--resume", f"{tmp}/nowhere"], "no such directory"),
        (["--resume", data], "no last.safetensors"),
    ]
    for args, needle in cases:
        rc, out, err = cnn("train", *args)
        check(rc == 2 and needle in err, f"train {' '.join(args)}: exit {rc}, {err.strip()!r} should say {needle!r}")
    after = {f: open(os.path.join(run, f), "rb").read() for f in before}
    check(before == after, "refused resumes leave the run's files untouched")
    check(not os.path.exists(f"{tmp}/elsewhere"), "no directory created by a refused resume")


def early_stopping(data, tmp):
    """With --min-delta 100 no epoch improves on the first: patience 2 stops after epoch 3 and
    --restore-best goes back to epoch 1's weights, which equal a 1-epoch run's."""
    args = ["--schedule", "constant", "--monitor", "val_loss", "--min-delta", "100", "--val", "32"]
    out = train(data, f"{tmp}/es", *args, "--epochs", "6", "--early-stop", "2", "--restore-best")
    check(len(csv_rows(f"{tmp}/es")) == 3, f"early stopping after epoch 3: {len(csv_rows(f'{tmp}/es'))} epochs ran")
    check("early stopping" in out and "restored the weights of epoch 1" in out, f"messages: {out}")
    train(data, f"{tmp}/es1", *args, "--epochs", "1")
    best, _ = load_run(f"{tmp}/es", "best.safetensors")
    one, _ = load_run(f"{tmp}/es1")
    check(all(best[k] == one[k] for k in best), "best.safetensors holds epoch 1's weights")
    test_line = [line for line in out.splitlines() if line.startswith("test:")]
    rc, ev, err = cnn("eval", "--checkpoint", f"{tmp}/es/best.safetensors", "--data", data, "--json")
    check(rc == 0 and test_line and f"loss {json.loads(ev)['loss']:.4f}" in test_line[0],
          f"the final test used the restored weights: {test_line} vs eval {ev[:120]}")
    rc, out, err = cnn("train", "--resume", f"{tmp}/es", "--epochs", "8")
    check(rc == 2 and "stopped early" in err, f"resume of an early-stopped run: exit {rc}, {err!r}")
    print("early stopping: stopped after epoch 3 (patience 2), restored epoch 1's weights")


def png_info(path):
    with open(path, "rb") as f:
        head = f.read(33)
    ok = head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    width, height = struct.unpack(">II", head[16:24]) if ok else (0, 0)
    return ok, width, height


def colour_pixels(path, rgb, box):
    """Pixels within 40 of rgb in box (left, top, right, bottom)."""
    from PIL import Image
    img = Image.open(path).convert("RGB").crop(box)
    return sum(1 for p in img.getdata() if sum(abs(a - b) for a, b in zip(p, rgb)) < 40)


BLUE, ORANGE = (31, 119, 180), (255, 127, 14)
LOSS_PANEL, ACC_PANEL = (80, 70, 560, 410), (680, 70, 1160, 410)


def curves(tmp):
    png = f"{tmp}/d1/curves.png"
    ok, w, h = png_info(png)
    check(ok and (w, h) == (1200, 540), f"curves.png is a 1200x540 PNG: {ok} {w}x{h}")
    for name, box in (("loss", LOSS_PANEL), ("accuracy", ACC_PANEL)):
        n = colour_pixels(png, BLUE, box)
        check(n > 150, f"the {name} panel shows the run's curves: {n} blue pixels")
    rc, out, err = cnn("plot", f"{tmp}/d1", f"{tmp}/p3/metrics.csv", "--out", f"{tmp}/both.png")
    check(rc == 0 and "2 runs" in out, f"cnn plot: exit {rc} {err}")
    ok, w, h = png_info(f"{tmp}/both.png")
    check(ok and w == 1200, f"cnn plot wrote a PNG: {ok} {w}x{h}")
    for rgb, run in ((BLUE, "first"), (ORANGE, "second")):
        n = colour_pixels(f"{tmp}/both.png", rgb, LOSS_PANEL)
        check(n > 150, f"cnn plot shows the {run} run's curves: {n} pixels")
    rc, out, err = cnn("plot", f"{tmp}/nowhere")
    check(rc == 1 and "nowhere" in err, f"cnn plot of a missing run: exit {rc}, {err!r}")
    print(f"curves: {png} and cnn plot of two runs are {w}x{h} PNGs with both runs' colours in both panels")


def grid(data, tmp):
    root = f"{tmp}/grid"
    rc, out, err = cnn("grid", "--data", data, "--out", root, "--lr", "0.05,10000", "--batch-size", "16,32", "--limit",
                       "128", "--epochs", "1", "--val", "32", "--threads", "2", "--no-bn")
    check(rc == 0, f"grid: exit {rc}\n{out}\n{err}")
    with open(f"{root}/grid.csv") as f:
        rows = list(csv.reader(f))
    check(rows[0] == ["lr/batch_size", "16", "32"] and [r[0] for r in rows[1:]] == ["0.05", "10000"], f"grid.csv {rows}")
    for j, bs in enumerate(("16", "32")):
        best = max(float(r["val_top1"]) for r in csv_rows(f"{root}/lr0.05-bs{bs}"))
        check(abs(float(rows[1][j + 1]) - best) < 1e-6, f"cell lr 0.05 bs {bs}: {rows[1][j + 1]} vs the run's best {best}")
    check(rows[2][1:] == ["", ""] and out.count("diverged") >= 2, f"lr 10000 diverges and the grid goes on: {rows[2]}")
    check("lr \\ batch" in out and "best: lr 0.05" in out, f"printed matrix:\n{out}")
    print("grid: 2x2 cells, the matrix and grid.csv agree with each run's metrics.csv")


def sanity(data, tmp):
    args = ["--data", data, "--limit", "128", "--batch-size", "32", "--threads", "2", "--sample", "32",
            "--overfit-steps", "60", "--range-steps", "20"]
    rc, out, err = cnn("sanity", *args, "--plot", f"{tmp}/range.png")
    check(rc == 0 and out.count("PASS") == 3, f"sanity on learnable data: exit {rc}\n{out}\n{err}")
    check("ln(10) = 2.3026" in out and "suggested lr" in out, f"sanity output:\n{out}")
    ok, w, h = png_info(f"{tmp}/range.png")
    check(ok and w == 900, f"LR range plot is a PNG: {ok} {w}x{h}")
    # no signal: every image the same (noise), labels random; nothing to overfit and nothing to learn
    blank = f"{tmp}/blank"
    import random
    rnd = random.Random(1)
    from cnntest import write_idx
    same = bytes(rnd.randrange(256) for _ in range(784))
    for prefix, n in (("train", 128), ("t10k", 32)):
        write_idx(blank, prefix, [same] * n, [rnd.randrange(10) for _ in range(n)])
    rc, out, err = cnn("sanity", *args[:1], blank, *args[2:], "--overfit-steps", "15", "--range-steps", "12")
    check(rc == 4 and "FAIL" in out, f"sanity on data without signal fails with exit 4: exit {rc}\n{out}\n{err}")
    print("sanity:", " | ".join(line.strip() for line in out.splitlines() if "FAIL" in line or "PASS" in line))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        data = f"{tmp}/data"
        write_mnist_like(data, train=256, test=64)
        for part in (determinism, interrupted, extend_with_plateau, refusals, early_stopping, curves, grid, sanity):
            t0 = time.time()
            part(data, tmp) if part is not curves else part(tmp)
            print(f"  ({part.__name__}: {time.time() - t0:.1f}s)")
    report("test_workflow")


if __name__ == "__main__":
    main()
