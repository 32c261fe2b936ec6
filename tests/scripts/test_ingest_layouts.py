"""A folder with runs of every layout (TensorBoard, Lightning CSVLogger, MLflow file store, HF
Trainer checkpoints, torchtitan stdout, W&B offline .wandb and legacy history, JSON lines,
Megatron), written byte by byte by
tests/scripts/ingest_fixtures.py, plus damaged, truncated and unfinished runs, ingests in one
`--layout auto` command on 3 MPI ranks: every good run becomes one trial with its whole curve, its
smoothed final loss and its hyperparameters; every bad run is reported by path with a reason and
leaves no row; ingesting again adds nothing."""
import math
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
from e2e import expect, hpsweep, read_trials, tempdir  # noqa: E402
import ingest_fixtures  # noqa: E402
import h5py  # noqa: E402

d = tempdir()
runs = os.path.join(d, "runs")
written = ingest_fixtures.write_all(runs, bad=True)
good, bad = written["good"], written["bad"]
out = os.path.join(d, "s.h5")
p = hpsweep("ingest", runs, "--into", out, "--layout", "auto", ranks=3)
m = re.search(r"(\d+) run directories; (\d+) imported \((\d+) unfinished, (\d+) DIVERGED\), (\d+) already in .*, (\d+) bad",
              p.stdout)
expect(m, p.stdout + p.stderr)
dirs, imported, unfinished, diverged, already, nbad = map(int, m.groups())
expect((dirs, imported, unfinished, already, nbad) == (len(good) + len(bad), len(good), 1, 0, len(bad)),
       p.stdout + p.stderr)

# Every bad run by path (and line or byte offset) with its reason.
reported = [line[len("bad run "):] for line in p.stderr.splitlines() if line.startswith("bad run ")]
expect(len(reported) == len(bad), p.stderr)
for run_dir, reason in bad.items():
    hits = [r for r in reported if r.startswith(run_dir + "/") or r.startswith(run_dir + ":")]
    expect(len(hits) == 1 and reason in hits[0] and re.match(r".*:\d+: \S", hits[0]),
           f"{run_dir}: expected '{reason}' in {hits or reported}")
damaged = next(r for r in reported if "tb_damaged_crc" in r)
expect(re.search(r"/events\.out\.tfevents\.[^:]+:\d+: damaged record: the CRC of its \d+ data bytes", damaged), damaged)

# Every good run once, with its curve, hyperparameters and smoothed loss.
trials, *_ = read_trials(out)
expect(len(trials) == len(good), f"{len(trials)} rows for {len(good)} good runs")
by_source = {t["source"].decode()[len("ingest:"):]: t for t in trials}
expected_lr = {"tensorboard": 1e-3, "lightning": 2e-3, "mlflow": 3e-3, "hf-trainer": 4e-3, "torchtitan": 5e-3,
               "jsonl": 6e-3, "megatron": 7e-3, "wandb": 8e-3, "wandb-legacy": 1e-2, "torchtitan-unfinished": 9e-3}
with h5py.File(out, "r") as f:
    steps, losses = f["curves/step"][:], f["curves/loss"][:]
for layout, (run_dir, final_loss, finished) in good.items():
    expect(run_dir in by_source, f"{layout}: no trial from {run_dir}; sources {sorted(by_source)}")
    t = by_source[run_dir]
    tol = 1e-6 if layout == "tensorboard" else 1e-9  # TensorBoard's simple_value is a float32
    expect(abs(t["final_loss"] - final_loss) <= tol * abs(final_loss), f"{layout}: final loss {t['final_loss']} != {final_loss}")
    expect(math.isfinite(t["smooth_loss"]) and abs(t["smooth_loss"] - final_loss) < 0.05,
           f"{layout}: smoothed loss {t['smooth_loss']}")
    expect(abs(t["lr"] - expected_lr[layout]) < 1e-15, f"{layout}: lr {t['lr']}")
    expect(t["params"] > 0 and t["tokens"] > 0 and t["batch"] > 0 and t["seq_len"] > 0, f"{layout}: {t}")
    expect(bool(t["finished"]) == finished, f"{layout}: finished {t['finished']}")
    o, n = int(t["curve_offset"]), int(t["curve_length"])
    expect(n == (20 if finished else 9), f"{layout}: curve of {n} points")
    expect(list(steps[o:o + n]) == list(range(10, 10 * n + 1, 10)), f"{layout}: steps {steps[o:o + n]}")
    expect(abs(losses[o + n - 1] - final_loss) <= tol * final_loss, f"{layout}: curve end {losses[o + n - 1]}")
expect(by_source[good["torchtitan"][0]]["params"] == 6139880, "torchtitan params from its log")
expect(by_source[good["lightning"][0]]["batch"] == 32 and by_source[good["lightning"][0]]["seq_len"] == 512,
       "lightning hparams.yaml")

# Again, from 2 local worker threads: nothing new.
again = hpsweep("ingest", runs, "--into", out, "--workers", "2")
expect(re.search(rf"0 imported .* {len(good)} already in", again.stdout), again.stdout)
trials2, *_ = read_trials(out)
expect(len(trials2) == len(good), "re-ingest added rows")

# --map and a single layout named explicitly.
mapped = os.path.join(d, "mapped.h5")
p = hpsweep("ingest", os.path.join(runs, "lightning"), "--into", mapped, "--layout", "lightning",
            "--map", "lr=weight_decay,loss=val_loss")
expect(re.search(r"1 imported", p.stdout), p.stdout + p.stderr)
t, *_ = read_trials(mapped)
expect(abs(t[0]["lr"] - 0.1) < 1e-15 and int(t[0]["curve_length"]) == 4, f"--map ignored: {t[0]}")
bad_map = hpsweep("ingest", runs, "--into", mapped, "--map", "learning=lr", check=False)
expect(bad_map.returncode != 0 and "unknown field 'learning'" in bad_map.stderr, bad_map.stderr)
print(f"ok: {len(good)} runs of {len(good) - 2} layouts imported in one --layout auto command on 3 MPI ranks, "
      f"{len(bad)} bad runs reported by path, re-ingest added nothing")
