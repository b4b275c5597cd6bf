"""test_crash.py — nothing is lost when training dies, on a small learnable set the test writes:
- crash recovery: `kill -9` mid-epoch after a `--checkpoint-every` save, then `--resume`, ends bit for
  bit where an uninterrupted run ends (weights, optimizer state, history, position, metrics.csv but
  its seconds);
- kill -9 during saves: runs saving after every step are killed at the moment a save's temporary file
  appears, or at a random time; every time last.safetensors still reads as a whole, `cnn eval` takes
  it, the position never goes back, and the resumed chain still ends as the uninterrupted run, with no
  temporary left behind;
- divergence: a learning rate that blows up after the first epochs stops with exit 3 and a message
  naming the step and the op; last.safetensors stays exactly the checkpoint of the epoch before
  (equal to a run stopped there), still evaluates, and resuming it diverges again at the same step."""
import os
import random
import re
import signal
import subprocess
import tempfile
import time

from cnntest import CNN, check, cnn, report, same_run, train_header, write_mnist_like
import safetensors_io

NO_PLOT = "--no-plot"  # curves.png is not what is tested here (and a resumed run takes it from the command line)
BASE = ["--limit", "128", "--batch-size", "16", "--threads", "2", "--dropout", "0.5", "--val", "32", "--quiet", NO_PLOT]
EPOCHS = ["--epochs", "2"]  # 8 steps per epoch
TEMP = ".last.safetensors.tmp."


def start(*args):
    return subprocess.Popen([CNN, "train", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS="2"))


def wait_for(p, cond, what, limit=300):
    deadline = time.time() + limit
    while p.poll() is None and time.time() < deadline:
        if cond():
            return True
        time.sleep(0.0002)
    if p.poll() is None:
        check(False, f"waited {limit} s for {what}")
    return False


def kill(p):
    p.send_signal(signal.SIGKILL)
    p.communicate(timeout=60)


def mid_epoch_kill(data, tmp, ref):
    """A checkpoint every 3 steps; SIGKILL as soon as one mid-epoch checkpoint is there."""
    run = f"{tmp}/mid"
    p = start("--data", data, "--out", run, *BASE, *EPOCHS, "--checkpoint-every", "3")
    last = f"{run}/last.safetensors"
    wait_for(p, lambda: os.path.exists(last) and train_header(last)["position"]["batch"] > 0, "a mid-epoch checkpoint")
    kill(p)
    pos = train_header(last)["position"]
    check(p.returncode == -signal.SIGKILL and pos["batch"] > 0,
          f"killed mid-epoch: exit {p.returncode}, last checkpoint at {pos}")
    rc, out, err = cnn("train", "--resume", run, NO_PLOT)
    check(rc == 0 and f"resuming {run} at epoch {pos['epoch'] + 1} of 2 (step {pos['step']})" in out,
          f"resume after kill -9: exit {rc}\n{out}\n{err}")
    if same_run(run, ref, "killed mid-epoch and resumed"):
        print(f"crash recovery: kill -9 after the checkpoint of step {pos['step']} (epoch {pos['epoch'] + 1}, batch "
              f"{pos['batch']}), --resume: bit-identical to the uninterrupted run")


def kills_during_saves(data, tmp, ref, rounds=8):
    """Saves after every step; kill -9 when a save's temporary appears (even rounds) or at a random time
    (odd rounds: 0-50 ms after a save has started, so that the run is surely still going on however fast
    the machine); each time the checkpoint must read and evaluate, and the chain resumes."""
    run = f"{tmp}/saves"
    last = f"{run}/last.safetensors"
    rnd = random.Random(int(os.environ.get("CNN_TEST_SEED", "0")) or None)
    in_save, step, kills, finished = 0, 0, 0, False
    for r in range(rounds):
        stale = set(os.listdir(run)) if r else set()  # temporaries of killed saves, until the resume removes them
        if r == 0:  # the first save must finish, or there is nothing to resume
            p = start("--data", data, "--out", run, *BASE, *EPOCHS, "--checkpoint-every", "2")
            wait_for(p, lambda: os.path.exists(last), "the first checkpoint")
        else:  # the interval may change on resume
            p = start("--resume", run, "--checkpoint-every", "1", NO_PLOT)
        wait_for(p, lambda: any(n.startswith(TEMP) and n not in stale for n in os.listdir(run)), "a save")
        if r % 2:
            time.sleep(rnd.uniform(0, 0.05))
        if p.poll() is not None:
            out, err = p.communicate()
            check(p.returncode == 0, f"round {r}: exit {p.returncode}\n{out}\n{err}")
            finished = True
            break
        kill(p)
        kills += 1
        in_save += any(n.startswith(f"{TEMP}{p.pid}") for n in os.listdir(run))
        try:
            state = train_header(last)
            safetensors_io.load(last)  # every tensor where the header says, nothing more nor less
        except Exception as e:  # noqa: BLE001 (any failure to read is the failure tested)
            check(False, f"round {r}: last.safetensors does not read after kill -9: {e}")
            return
        rc, out, err = cnn("eval", "--checkpoint", last, "--data", data)
        check(rc == 0 and "top1" in out, f"round {r}: cnn eval of last.safetensors after kill -9: exit {rc}\n{err}")
        now = state["position"]["step"]
        check(now >= step, f"round {r}: the checkpoint went back from step {step} to {now}")
        check(r == 0 or state["config"]["checkpoint_every"] in (1, 2), f"checkpoint_every {state['config']}")
        step = now
        if state["position"]["epoch"] >= 2 and state["position"]["batch"] == 0:
            finished = True  # killed after its final save (a fast machine): nothing is left to resume
            break
    check(kills >= 4 and in_save >= 1, f"{kills} kills, {in_save} during a save: too few to test anything")
    if not finished:
        rc, out, err = cnn("train", "--resume", run, NO_PLOT)
        check(rc == 0, f"final resume: exit {rc}\n{out}\n{err}")
    left = [n for n in os.listdir(run) if ".tmp." in n]
    check(not left, f"temporaries left after the resume: {left}")
    if same_run(run, ref, "killed during saves and resumed"):
        print(f"kill -9 during saves: {kills} kills ({in_save} with a save's temporary on disk), the checkpoint read "
              f"and evaluated every time; resumed: bit-identical to the uninterrupted run")


DIVERGE = ["--limit", "128", "--batch-size", "16", "--threads", "2", "--schedule", "constant", "--lr", "0.5", "--quiet",
           NO_PLOT]


def divergence(data, tmp):
    """SGD at a constant lr of 0.5 blows this convnet up after a few epochs (here in epoch 3). The same
    run stopped at the epoch before is the reference for the checkpoint kept."""
    run = f"{tmp}/div"
    rc, out, err = cnn("train", "--data", data, "--out", run, *DIVERGE, "--epochs", "6")
    m = re.search(r"epoch (\d+): the (loss|gradient norm) is (nan|-?inf) at step (\d+): training diverged: (.*)", err)
    if not check(rc == 3 and m, f"divergence: exit {rc} (expected 3)\n{out}\n{err}"):
        return
    epoch, step, where = int(m.group(1)), int(m.group(4)), m.group(5)
    named = re.search(r"(output of|backward of) ([\w.]+) \((\w+)\)|parameter ([\w.]+) is not finite", where)
    check(named, f"divergence: the message names no op nor parameter: {where}")
    check(epoch >= 2, f"divergence in epoch {epoch}: too early to test the kept checkpoint")
    check(f"{run}/last.safetensors stays as saved after epoch {epoch - 1}" in err, f"divergence: {err}")
    last = f"{run}/last.safetensors"
    state = train_header(last)
    check(state["position"]["epoch"] == epoch - 1 and state["position"]["batch"] == 0,
          f"divergence in epoch {epoch}: last.safetensors at {state['position']}")
    rc, out, err2 = cnn("eval", "--checkpoint", last, "--data", data)
    check(rc == 0, f"cnn eval of the kept checkpoint: exit {rc}\n{err2}")
    ref = f"{tmp}/div-ref"
    rc, out, _ = cnn("train", "--data", data, "--out", ref, *DIVERGE, "--epochs", str(epoch - 1))
    check(rc == 0, f"the run stopped at epoch {epoch - 1}: exit {rc}")
    # the history rows and tensors: the reference's configuration says fewer epochs, the rest is equal
    kept = same_run(run, ref, f"the checkpoint kept after divergence vs the run stopped at epoch {epoch - 1}")
    rc, out, err3 = cnn("train", "--resume", run, NO_PLOT)
    again = re.search(r"at step (\d+): training diverged: (.*?);", err3)
    check(rc == 3 and again and int(again.group(1)) == step and again.group(2) == where.split(";")[0],
          f"resuming the diverged run diverges again at step {step}: exit {rc}\n{err3}")
    if kept:
        print(f"divergence: exit 3 in epoch {epoch} at step {step} ({where.split(';')[0]}); last.safetensors is the "
              f"epoch-{epoch - 1} checkpoint bit for bit, evaluates, and diverges again at the same step on resume")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        data = f"{tmp}/data"
        write_mnist_like(data, train=256, test=64)
        ref = f"{tmp}/ref"
        rc, out, err = cnn("train", "--data", data, "--out", ref, *BASE, *EPOCHS)
        check(rc == 0, f"reference run: exit {rc}\n{out}\n{err}")
        mid_epoch_kill(data, tmp, ref)
        kills_during_saves(data, tmp, ref)
        divergence(data, tmp)
    report("test_crash")


if __name__ == "__main__":
    main()
