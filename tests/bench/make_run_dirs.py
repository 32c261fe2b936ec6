#!/usr/bin/env python3
"""Generates run directories like the ones cluster sweeps leave behind, for the ingest test and
benchmark: half JSON-lines runs (metrics.jsonl + config.json), half Megatron-style text logs
(train.log, hyperparameters in the Step Law directory-name pattern), plus optional bad runs of
each kind (truncated, NaN mid-curve, non-monotone steps, missing fields).

    make_run_dirs.py OUT_DIR COUNT [--bad K] [--points P] [--seed S]
"""
import argparse
import json
import math
import os
import random

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("count", type=int)
p.add_argument("--bad", type=int, default=0)
p.add_argument("--points", type=int, default=200, help="logged points per run")
p.add_argument("--seed", type=int, default=1)
a = p.parse_args()
rng = random.Random(a.seed)
os.makedirs(a.out, exist_ok=True)


def curve(steps, lr, batch, unfinished=False):
    last = steps if not unfinished else steps // 2
    interval = max(1, steps // a.points)
    out = []
    for s in range(interval, last + 1, interval):
        loss = 2.0 + 8.0 / (1 + s * lr * batch / 50) ** 0.5 + 0.01 * rng.gauss(0, 1)
        out.append((s, loss))
    return out


for i in range(a.count):
    lr = 10 ** rng.uniform(-4, -2)
    batch = rng.choice([64, 128, 256, 512, 736])
    steps = rng.choice([2000, 4000, 8000])
    unfinished = rng.random() < 0.05
    if i % 2 == 0:
        d = os.path.join(a.out, f"jsonl_{i:06d}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump({"lr": lr, "batch": batch, "wd": 0.1, "params": 2.1e7 * (1 + i % 5), "tokens": steps * batch * 2048,
                       "seq_len": 2048, "train_steps": steps}, f)
        with open(os.path.join(d, "metrics.jsonl"), "w") as f:
            for s, l in curve(steps, lr, batch, unfinished):
                f.write(json.dumps({"step": s, "loss": l, "lr": lr}) + "\n")
    else:
        h = rng.choice([512, 768, 960, 1280])
        name = f"step2v2_0618_h{h}_ffnh{h * 4}_numh{h // 64}_numl{rng.choice([6, 8, 12])}_lr{lr:.3e}_bs{batch}_ti{steps}_mlr1.00e-05_{i:06d}"
        d = os.path.join(a.out, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "train.log"), "w") as f:
            f.write("> building GPT model ...\n")
            for s, l in curve(steps, lr, batch, unfinished):
                f.write(f" iteration {s:8d}/{steps:8d} | consumed samples: {s * batch:10d} | elapsed time per iteration (ms): "
                        f"{500 + rng.random() * 50:.1f} | learning rate: {lr:.3E} | global batch size: {batch:5d} | "
                        f"lm loss: {l:.6E} | loss scale: 1.0 | grad norm: {1 + rng.random():.3f} |\n")

kinds = ["truncated", "nan", "nonmonotone", "noloss"]
for k in range(a.bad):
    kind = kinds[k % len(kinds)]
    d = os.path.join(a.out, f"bad_{kind}_{k:04d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({"lr": 1e-3, "batch": 64, "wd": 0.1, "params": 1e7, "tokens": 1000 * 64 * 2048, "seq_len": 2048,
                   "train_steps": 1000}, f)
    lines = [json.dumps({"step": s, "loss": 3.0 - s / 1000}) for s in range(10, 1001, 10)]
    if kind == "truncated":
        text = "\n".join(lines[:50]) + "\n" + lines[50][:7]          # cut mid-line, mid-file
        text += "\n" + "\n".join(lines[51:]) + "\n"
    elif kind == "nan":
        lines[40] = json.dumps({"step": 410, "loss": float("nan")})
        text = "\n".join(lines) + "\n"
    elif kind == "nonmonotone":
        lines[30], lines[31] = lines[31], lines[30]
        text = "\n".join(lines) + "\n"
    else:
        lines[20] = json.dumps({"step": 210})
        text = "\n".join(lines) + "\n"
    with open(os.path.join(d, "metrics.jsonl"), "w") as f:
        f.write(text)
print(f"{a.count} runs (+{a.bad} bad) in {a.out}")
