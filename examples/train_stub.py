#!/usr/bin/env python3
"""A stand-in for a training script, driven by hpsweep's command backend (kind = command).

It really trains something small: AdamW on a noisy ill-conditioned quadratic, whose gradient
noise shrinks with the batch size, for min(tokens / (batch * seq_len), --max-steps) steps. The
final loss therefore depends on lr, batch and wd with an optimum, and too high a learning rate
diverges. It follows hpsweep's result protocol: the last stdout line is a JSON object with
"loss" and a "curve".

For tests it can misbehave on purpose at chosen learning rates: exit with an error
(--fail-lr), hang (--hang-lr) or print no result (--garbage-lr).
"""
import argparse
import json
import math
import os
import random
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, required=True)
p.add_argument("--batch", type=int, required=True)
p.add_argument("--wd", type=float, default=0.0)
p.add_argument("--params", type=float, default=1e6)
p.add_argument("--tokens", type=float, default=1e8)
p.add_argument("--seq-len", type=int, default=128)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--out", default=".")
p.add_argument("--max-steps", type=int, default=300)
p.add_argument("--fail-lr", type=float)
p.add_argument("--hang-lr", type=float)
p.add_argument("--garbage-lr", type=float)
a = p.parse_args()

close = lambda x, y: y is not None and abs(x - y) <= 1e-12 * max(abs(x), abs(y))
if close(a.lr, a.fail_lr):
    print("RuntimeError: CUDA out of memory (simulated)", file=sys.stderr)
    sys.exit(3)
if close(a.lr, a.hang_lr):
    time.sleep(3600)
if close(a.lr, a.garbage_lr):
    print("step 1 loss ???\nSegmentation fault (not really)")
    sys.exit(0)

rng = random.Random(a.seed * 1000003 + int(a.params) % 1000003)
dim = 16
curv = [10 ** (-2 * i / (dim - 1)) for i in range(dim)]  # condition number 100
target = [rng.gauss(0, 1) for _ in range(dim)]
w = [0.0] * dim
m = [0.0] * dim
v = [0.0] * dim
b1, b2, eps = 0.9, 0.95, 1e-8
steps = max(1, min(a.max_steps, int(a.tokens / (a.batch * a.seq_len))))
noise = 1.0 / math.sqrt(a.batch)
floor = 0.5  # irreducible loss

def loss_of(w):
    return floor + 0.5 * sum(c * (x - t) ** 2 for c, x, t in zip(curv, w, target))

curve_step, curve_loss = [], []
for step in range(1, steps + 1):
    lr = a.lr * min(1.0, step / max(1, steps // 10)) * 0.5 * (1 + math.cos(math.pi * step / steps))  # warmup+cosine
    for i in range(dim):
        g = curv[i] * (w[i] - target[i]) + noise * rng.gauss(0, 1)
        m[i] = b1 * m[i] + (1 - b1) * g
        v[i] = b2 * v[i] + (1 - b2) * g * g
        mh, vh = m[i] / (1 - b1 ** step), v[i] / (1 - b2 ** step)
        w[i] -= lr * (mh / (math.sqrt(vh) + eps) + a.wd * w[i])  # decoupled weight decay
    L = loss_of(w)
    if not math.isfinite(L) or L > 1e6:
        print(json.dumps({"loss": "inf", "diverged": True, "steps": step}))
        sys.exit(0)
    if step % max(1, steps // 50) == 0 or step == steps:
        curve_step.append(step)
        curve_loss.append(L)

os.makedirs(a.out, exist_ok=True)
print(f"trained {steps} steps", file=sys.stderr)
print(json.dumps({"loss": curve_loss[-1], "steps": steps, "curve": {"step": curve_step, "loss": curve_loss}}))
