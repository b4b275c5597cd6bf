"""test_bench_run.py — bench/run, the side-by-side benchmark against PyTorch: its table is what its raw
measurements say (each contender's median img/s over the rounds, the median and range of the rounds'
ratios to PyTorch's best, the peak RSS, the median of the rounds' shares of the f32 ceiling measured before
cnn.c's run in each, the median ceiling), computed here again with Python's statistics module; rounds
alternate the contenders' order; a model this build lacks is reported, not fatal; bad flags are refused
with the flag named. Timings themselves are not judged (benchmarks are not timed tests)."""
import os
import statistics
import subprocess
import tempfile

from cnntest import BUILD, SOURCE, check, report

RUN = os.path.join(SOURCE, "bench", "run")
WORKLOADS = "convnet-train convnet 1x28x28 16 train\nresnet20-eval resnet20 3x32x32 8 eval\n"


def bench_run(*args):
    env = dict(os.environ, CNN=os.path.join(BUILD, "cnn"))
    return subprocess.run([RUN, *args], capture_output=True, text=True, env=env, timeout=600)


def table_rows(stdout):
    """workload -> the row's fields after the name"""
    lines = stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("workload"))
    return {f[0]: f[1:] for f in (line.split() for line in lines[head + 1:])}


def check_against_raw(rows, raw, rounds):
    for name in ("convnet-train", "resnet20-eval"):
        mine = [r for r in raw if r[0] == name]
        check(len(mine) == 3 * rounds, f"{name}: {len(mine)} raw measurements, expected {3 * rounds}")
        # the order: cnn first in odd rounds, last in even ones
        order = [r[2] for r in mine]
        check(order[:3] == ["cnn", "default", "channels_last"] and order[3:6] == ["channels_last", "default", "cnn"],
              f"{name}: contenders' order over the rounds {order}")
        by = {c: [float(r[3]) for r in mine if r[2] == c] for c in ("cnn", "default", "channels_last")}
        ratios = [by["cnn"][i] / max(by["default"][i], by["channels_last"][i]) for i in range(rounds)]
        f = rows[name]
        got = [float(f[0]), float(f[1]), float(f[2]), float(f[3].rstrip("x"))]
        want = [statistics.median(by["cnn"]), statistics.median(by["default"]),
                statistics.median(by["channels_last"]), statistics.median(ratios)]
        for what, g, w, tol in zip(("cnn.c img/s", "torch img/s", "torch-cl img/s", "ratio"), got, want,
                                   (0.051, 0.051, 0.051, 0.0051)):
            check(abs(g - w) <= tol + 1e-9, f"{name}: {what} {g}, the raw measurements' median {w:.4f}")
        lo, hi = (float(v) for v in f[4].rstrip("x").split("-"))
        check(abs(lo - min(ratios)) <= 0.0051 and abs(hi - max(ratios)) <= 0.0051,
              f"{name}: ratio range {f[4]}, rounds' ratios {ratios}")
        cnn_rss = max(int(r[5]) for r in mine if r[2] == "cnn")
        torch_rss = max(int(r[5]) for r in mine if r[2] != "cnn")
        check(f[6] == f"{cnn_rss}MB" and f[7] == f"{torch_rss}MB", f"{name}: RSS {f[6]} {f[7]}, raw {cnn_rss} {torch_rss}")
        check(all(float(r[3]) > 0 for r in mine), f"{name}: every measurement has a speed")
        cnn = [r for r in mine if r[2] == "cnn"]
        check(all(float(r[6]) > 0 for r in cnn) and all(float(r[6]) == 0 for r in mine if r[2] != "cnn"),
              f"{name}: a ceiling measured with each of cnn.c's runs only: {[r[6] for r in mine]}")
        if all(float(r[6]) > 0 for r in cnn):
            share = statistics.median(100 * float(r[4]) / float(r[6]) for r in cnn)
            check(abs(float(f[5].rstrip("%")) - share) <= 0.51,
                  f"{name}: % of the ceiling {f[5]}, the rounds' median {share:.2f}")
            ceiling = statistics.median(float(r[6]) for r in cnn)
            check(abs(float(f[8]) - ceiling) <= 0.051, f"{name}: ceiling {f[8]}, the rounds' median {ceiling}")


def main():
    with tempfile.TemporaryDirectory() as d:
        wl = os.path.join(d, "workloads")
        with open(wl, "w") as fh:
            fh.write("# a comment line\n" + WORKLOADS + "missing-train nosuchmodel 1x28x28 8 train\n")
        raw_path = os.path.join(d, "raw")
        r = bench_run("--workloads", wl, "--steps", "1", "--rounds", "3", "--raw", raw_path)
        check(r.returncode == 0, f"bench/run exit {r.returncode}: {r.stderr[-800:]}")
        if r.returncode == 0:
            print(r.stdout)
            rows = table_rows(r.stdout)
            check(rows.get("missing-train", [])[:3] == ["(model", "nosuchmodel", "not"],
                  f"unknown model reported: {rows.get('missing-train')}")
            with open(raw_path) as fh:
                raw = [line.split() for line in fh]
            check_against_raw(rows, raw, 3)

        for args, words in ((["--rounds", "0"], "--rounds 0"), (["--steps", "x"], "--steps x"),
                            (["--threads"], "--threads needs a value"), (["--precision", "f16"], "--precision f16"),
                            (["--workloads", os.path.join(d, "none")], "--workloads"),
                            (["--raw", os.path.join(d, "no", "dir")], "--raw"), (["--fast"], "unknown option --fast")):
            r = bench_run(*args)
            check(r.returncode == 2 and words in r.stderr and r.stdout == "",
                  f"bench/run {' '.join(args)}: exit {r.returncode}, stderr {r.stderr!r}")
    report("test_bench_run")


if __name__ == "__main__":
    main()
