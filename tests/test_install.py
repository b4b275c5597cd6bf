"""test_install.py — the installed library as a user sees it: `cmake --install` into a temporary
prefix; libcnn.so exports only cnn_* symbols; a program using the training entry points
(cnn_train_defaults, cnn_train, with `recompute` on and stored in the run) and examples/classify.c build
against the installed copy with pkg-config alone (-std=c11 -pedantic -Werror) and run; the example's
predictions are those of `cnn predict --json`."""
import json
import os
import shutil
import subprocess
import tempfile

from cnntest import BUILD, SOURCE, check, cnn, report, train_header, write_color_folder

TRAIN_PROGRAM = r"""
#include <stdio.h>
#include <cnn.h>
int main(int argc, char **argv) {
    if (argc != 3) return 2;
    cnn_train_config c;
    cnn_train_defaults(&c);
    c.dataset = "folder";
    c.data_dir = argv[1];
    c.out_dir = argv[2];
    c.image_size = 32;
    c.epochs = 1;
    c.batch_size = 8;
    c.lr = 0.02f;
    c.recompute = 1; /* activations recomputed in the backward pass: stored with the run */
    cnn_train_result r;
    if (cnn_train(&c, &r) != CNN_OK) {
        fprintf(stderr, "cnn_train: %s\n", cnn_last_error());
        return 1;
    }
    printf("trained %d epoch(s) into %s: val top-1 %.3f\n", r.epochs, r.run_dir, r.val_top1);
    c.epochs = 0;
    if (cnn_train(&c, &r) != CNN_ERR_ARG) return 1; /* a bad configuration is an error value */
    printf("epochs 0: %s\n", cnn_last_error());
    return 0;
}
"""


def run(cmd, env=None, **kw):
    e = dict(os.environ, **(env or {}))
    return subprocess.run(cmd, capture_output=True, text=True, env=e, **kw)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "prefix")
        r = run(["cmake", "--install", BUILD, "--prefix", prefix])
        check(r.returncode == 0, f"cmake --install: {r.stderr}")
        pc_dir = [d for d, _, files in os.walk(prefix) if "cnn.pc" in files]
        check(len(pc_dir) == 1 and os.path.exists(os.path.join(prefix, "include", "cnn.h")),
              f"installed files: {[os.path.join(d, f) for d, _, fs in os.walk(prefix) for f in fs]}")
        libdir = os.path.dirname(pc_dir[0])
        lib = os.path.join(libdir, "libcnn.so")
        syms = run(["nm", "-D", "--defined-only", lib]).stdout.split()
        exported = [s for s in syms[2::3]]
        check(exported and all(s.startswith("cnn_") for s in exported),
              f"libcnn.so exports more than cnn_*: {[s for s in exported if not s.startswith('cnn_')][:10]}")

        # a user's build: pkg-config from the installed tree, nothing from the source tree
        env = {"PKG_CONFIG_PATH": pc_dir[0]}
        flags = run(["pkg-config", "--cflags", "--libs", "cnn"], env=env).stdout.split()
        check(any(f.startswith("-L") for f in flags), f"pkg-config: {flags}")
        user = os.path.join(tmp, "user")
        os.makedirs(user)
        shutil.copy(os.path.join(SOURCE, "examples", "classify.c"), user)
        open(os.path.join(user, "train.c"), "w").write(TRAIN_PROGRAM)
        for prog in ("classify", "train"):
            r = run(["cc", "-std=c11", "-pedantic", "-Wall", "-Wextra", "-Werror", f"{prog}.c", *flags, "-o", prog],
                    cwd=user)
            check(r.returncode == 0, f"building {prog}.c against the installed library: {r.stderr}")
        run_env = {"LD_LIBRARY_PATH": libdir, "OMP_NUM_THREADS": "2"}
        ldd = run(["ldd", os.path.join(user, "classify")], env=run_env).stdout
        loaded = [l.split("=>")[1].split()[0] for l in ldd.splitlines() if "libcnn.so" in l and "=>" in l]
        check(len(loaded) == 1 and os.path.realpath(loaded[0]).startswith(os.path.realpath(prefix)),
              f"classify does not load the installed libcnn.so: {ldd}")

        data = os.path.join(tmp, "data")
        images = write_color_folder(data, "train", 8, 0)
        write_color_folder(data, "val", 2, 1)
        r = run([os.path.join(user, "train"), data, os.path.join(tmp, "run")], env=run_env)
        check(r.returncode == 0 and "trained 1 epoch" in r.stdout and "epochs" in r.stdout,
              f"training through the API: {r.stdout[-500:]} {r.stderr[-500:]}")
        ckpt = os.path.join(tmp, "run", "best.safetensors")
        stored = train_header(os.path.join(tmp, "run", "last.safetensors"))["config"]
        check(stored.get("recompute") is True, f"the API's recompute is not in the run's configuration: {stored}")
        picks = images[::7]
        r = run([os.path.join(user, "classify"), ckpt, *picks], env=run_env)
        check(r.returncode == 0, f"examples/classify: {r.stderr}")
        rc, out, err = cnn("predict", "--checkpoint", ckpt, "--json", *picks)
        if not check(rc == 0, f"cnn predict on the API's checkpoint: {err[-500:]}"):
            report("test_install")
        want = json.loads(out)
        blocks = r.stdout.split("gray image")[0].strip().split("\n")
        got, cur = [], None
        for line in blocks:
            if not line.startswith("  "):
                cur = {"file": line, "top": []}
                got.append(cur)
            else:
                p, i, name = line.split()
                cur["top"].append((float(p), int(i), name))
        check(len(got) == len(want), f"classify printed {len(got)} images, cnn predict {len(want)}")
        for g, w in zip(got, want):
            same = g["file"] == w["file"] and [t[1] for t in g["top"]] == [t["index"] for t in w["top"]]
            same = same and all(abs(a[0] - b["probability"]) < 2e-6 and a[2] == b["class"] for a, b in zip(g["top"], w["top"]))
            check(same, f"{g['file']}: example {g['top']} vs cnn predict {w['top']}")
        check("gray image" in r.stdout, f"cnn_classify_rgb output missing: {r.stdout}")
        print(f"installed into {prefix}: libcnn.so exports {len(exported)} cnn_* symbols; train.c and "
              f"examples/classify.c built with pkg-config; {len(got)} predictions equal cnn predict's")
    report("test_install")


if __name__ == "__main__":
    main()
