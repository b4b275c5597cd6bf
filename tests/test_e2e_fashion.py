"""test_e2e_fashion.py — end to end on the real data: one epoch of the default network on the
first 10,000 Fashion-MNIST training images reaches at least 80% top-1 on the 10,000 test images
(the issue's bar), and `cnn eval` of the checkpoint agrees with the training's own validation; on a CPU with
bf16 instructions, the same run in mixed precision (--precision bf16) clears the same bar."""
import csv
import json
import os
import re
import tempfile

from cnntest import FASHION as DATA, check, cnn, cpu_has_bf16, report


def main():
    if not os.path.exists(os.path.join(DATA, "train-images-idx3-ubyte.gz")):
        print(f"FAIL: {DATA} is missing (Debian package dataset-fashion-mnist)")
        raise SystemExit(1)
    with tempfile.TemporaryDirectory() as tmp:
        run = os.path.join(tmp, "run")
        rc, out, err = cnn("train", "--limit", "10000", "--epochs", "1", "--out", run)
        print(out.strip().splitlines()[-1] if out.strip() else err)
        check(rc == 0, f"train: exit {rc}: {err}")
        rows = list(csv.DictReader(open(os.path.join(run, "metrics.csv"))))
        top1 = float(rows[-1]["val_top1"])
        check(top1 >= 0.80, f"test top-1 after 1 epoch on 10,000 images: {top1:.4f} (want >= 0.80)")
        check(re.search(r"10000 images of 1x28x28", out), "trained on 10,000 images")
        rc, out, err = cnn("eval", "--checkpoint", os.path.join(run, "best.safetensors"), "--json")
        check(rc == 0, f"eval: {err}")
        r = json.loads(out)
        check(r["images"] == 10000 and abs(r["top1"] - top1) < 1e-6, f"eval top-1 {r['top1']} vs training's {top1}")
        names = [c["name"] for c in r["classes"]]
        check(names[0] == "T-shirt/top" and names[9] == "Ankle boot", f"class names {names}")
        print(f"test top-1 {top1:.4f}, top-5 {r['top5']:.4f}")
        if cpu_has_bf16():
            run16 = os.path.join(tmp, "run-bf16")
            rc, out, err = cnn("train", "--limit", "10000", "--epochs", "1", "--out", run16, "--precision", "bf16")
            check(rc == 0, f"train --precision bf16: exit {rc}: {err}")
            top1_16 = float(list(csv.DictReader(open(os.path.join(run16, "metrics.csv"))))[-1]["val_top1"])
            check(top1_16 >= 0.80, f"bf16: test top-1 after 1 epoch on 10,000 images: {top1_16:.4f} (want >= 0.80)")
            print(f"bf16: test top-1 {top1_16:.4f} (f32 {top1:.4f})")
    report("test_e2e_fashion")


if __name__ == "__main__":
    main()
