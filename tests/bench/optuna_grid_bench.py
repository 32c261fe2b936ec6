#!/usr/bin/python3
"""Peer baseline for tests/bench/scheduler_bench.sh: Optuna's GridSampler on a trivial objective.

Runs a full grid of about --points trials (lr x batch x wd, like an hpsweep grid) with in-memory
storage and one process, and prints one machine-readable line:

    optuna=3.1.0 trials=1000 seconds=81.0 trials_per_s=12.3

Exits 3 (and prints "skipped: ...") when optuna cannot be imported. Use Debian's interpreter,
/usr/bin/python3, which is where python3-optuna installs.
"""
import argparse
import math
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=1000,
                    help="approximate grid size (default 1000 = 25 lr x 8 batch x 5 wd, one (N, D) cell of "
                    "the hpsweep benchmark grid). GridSampler's cost per trial grows with the number of "
                    "finished trials, so 2000 points take minutes")
    args = ap.parse_args()

    try:
        import optuna
    except Exception as e:  # ImportError, or a broken dependency chain
        print(f"skipped: cannot import optuna with {sys.executable}: {e}")
        return 3

    # Grid: batch (8) x wd (5) x lr (points / 40, at least 1), geometric lr like hpsweep's log: ranges.
    batches = [16, 32, 64, 128, 256, 512, 1024, 2048]
    wds = [0.0, 0.01, 0.1, 0.3, 1.0]
    n_lr = max(1, round(args.points / (len(batches) * len(wds))))
    lrs = [1e-4 * (1e-1 / 1e-4) ** (i / max(1, n_lr - 1)) for i in range(n_lr)]
    space = {"lr": lrs, "batch": batches, "wd": wds}
    total = len(lrs) * len(batches) * len(wds)

    def objective(trial):
        lr = trial.suggest_float("lr", min(lrs), max(lrs), log=True)
        batch = trial.suggest_int("batch", min(batches), max(batches))
        wd = trial.suggest_float("wd", min(wds), max(wds))
        # Constant-ish: a cheap closed form so the sampler/storage cost is what is measured.
        return (math.log10(lr) + 2.5) ** 2 + 0.01 * math.log2(batch) + 0.1 * wd

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.GridSampler(space, seed=0)
    study = optuna.create_study(sampler=sampler, direction="minimize")  # in-memory storage
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=total)
    dt = time.perf_counter() - t0
    done = len(study.trials)
    if done != total:
        print(f"error: optuna ran {done} trials, expected {total}", file=sys.stderr)
        return 1
    print(f"optuna={optuna.__version__} trials={done} seconds={dt:.3f} trials_per_s={done / dt:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
