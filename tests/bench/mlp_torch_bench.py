#!/usr/bin/python3
"""PyTorch CPU baseline for the mlp backend (tests/bench/mlp_bench.sh runs it).

Trains the same network on the same online task as src/backends/mlp/, with the same batch:
pre-norm residual MLP (input projection, `depth` blocks x + W2 gelu_tanh(W1 rmsnorm(x)), FFN
width 4w, final RMSNorm, output projection, no biases), fresh samples from a random tanh teacher
every step, sampled labels, cross-entropy, AdamW (betas 0.9/0.95, eps 1e-8, wd 0.1 on matrices,
none on gains), warmup + cosine schedule, and the soft-target loss that hpsweep logs.
Prints one JSON line per width: {"width", "threads", "steps", "seconds", "steps_per_s"}.

Debian's python3-torch: run with /usr/bin/python3. `--threads 0` keeps torch's default.
"""
import argparse
import ctypes
import json
import math
import os
import time

import torch
import torch.nn.functional as F


def blas_in_use():
    """The BLAS libraries mapped into this process (after a matmul) and, for OpenBLAS, its kernels."""
    libs = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) >= 6 and "blas" in os.path.basename(fields[5]):
                libs.add(os.path.realpath(fields[5]))
    desc = []
    for path in sorted(libs):
        try:
            get = ctypes.CDLL(path).openblas_get_corename
            get.restype = ctypes.c_char_p
            desc.append(f"{path} (OpenBLAS, {get().decode()} kernels)")
        except (OSError, AttributeError):
            desc.append(path)
    return (", ".join(desc) or "none mapped") + "; sgemm_ resolves to " + sgemm_provider()


def sgemm_provider():
    """Which library's sgemm_ libtorch_cpu gets (dlsym through its handle, then dladdr)."""

    class DlInfo(ctypes.Structure):
        _fields_ = [("fname", ctypes.c_char_p), ("fbase", ctypes.c_void_p), ("sname", ctypes.c_char_p),
                    ("saddr", ctypes.c_void_p)]

    with open("/proc/self/maps") as maps:
        torch_cpu = next((l.split()[5] for l in maps if l.split()[-1].endswith("libtorch_cpu.so")
                          or "libtorch_cpu.so." in l.split()[-1]), None)
    if not torch_cpu:
        return "unknown (libtorch_cpu not mapped)"
    addr = ctypes.cast(ctypes.CDLL(torch_cpu).sgemm_, ctypes.c_void_p).value
    info = DlInfo()
    libdl = ctypes.CDLL(None)
    if not libdl.dladdr(ctypes.c_void_p(addr), ctypes.byref(info)):
        return "unknown"
    return os.path.realpath(info.fname.decode())


def rms_norm(x, g):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * g


class Net(torch.nn.Module):
    def __init__(self, d_in, width, ffn, depth, classes):
        super().__init__()
        self.inp = torch.nn.Linear(d_in, width, bias=False)
        self.w1 = torch.nn.ModuleList([torch.nn.Linear(width, ffn, bias=False) for _ in range(depth)])
        self.w2 = torch.nn.ModuleList([torch.nn.Linear(ffn, width, bias=False) for _ in range(depth)])
        self.g = torch.nn.ParameterList([torch.nn.Parameter(torch.ones(width)) for _ in range(depth)])
        self.gf = torch.nn.Parameter(torch.ones(width))
        self.out = torch.nn.Linear(width, classes, bias=False)

    def forward(self, x):
        h = self.inp(x)
        for w1, w2, g in zip(self.w1, self.w2, self.g):
            h = h + w2(F.gelu(w1(rms_norm(h, g)), approximate="tanh"))
        return self.out(rms_norm(h, self.gf))


def bench(width, depth, batch, d_in, classes, teacher_width, min_seconds, max_steps):
    torch.manual_seed(0)
    net = Net(d_in, width, 4 * width, depth, classes)
    gains = [net.gf] + list(net.g)
    matrices = [p for p in net.parameters() if all(p is not g for g in gains)]
    opt = torch.optim.AdamW([{"params": matrices, "weight_decay": 0.1}, {"params": gains, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    spec = torch.arange(1, d_in + 1, dtype=torch.float32).pow(-1.0)
    spec *= d_in / spec.sum()
    sqrt_spec = spec.sqrt()
    t1 = torch.randn(teacher_width, d_in) / math.sqrt(d_in)
    t2 = torch.randn(classes, teacher_width) / (math.sqrt(teacher_width) * 0.25)

    def step(i, total):
        warm = max(1, round(0.05 * total))
        f = i / warm if i <= warm else 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (i - warm) / max(1, total - warm)))
        for group in opt.param_groups:
            group["lr"] = 1e-3 * f
        with torch.no_grad():
            x = torch.randn(batch, d_in) * sqrt_spec
            q = torch.softmax(torch.tanh(x @ t1.T) @ t2.T, dim=1)
            y = torch.multinomial(q, 1).squeeze(1)
        logits = net(x)
        loss = F.cross_entropy(logits, y)
        with torch.no_grad():
            soft = -(q * torch.log_softmax(logits, dim=1)).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(soft)

    for i in range(2):  # warm-up: allocator, first-touch
        step(i + 1, 1000)
    steps, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while True:
        step(steps + 1, 1000)
        steps += 1
        elapsed = time.perf_counter() - start
        if (elapsed >= min_seconds and steps >= 3) or steps >= max_steps:
            break
    return steps, elapsed, time.process_time() - cpu_start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--widths", default="64,128,256,512,1024")
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--d-in", type=int, default=64)
    ap.add_argument("--classes", type=int, default=64)
    ap.add_argument("--teacher-width", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1, help="0: torch's default")
    ap.add_argument("--min-seconds", type=float, default=3.0)
    ap.add_argument("--max-steps", type=int, default=2000)
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.ones(64, 64) @ torch.ones(64, 64)  # loads the BLAS
    blas = blas_in_use()
    for w in [int(v) for v in a.widths.split(",")]:
        steps, seconds, cpu = bench(w, a.depth, a.batch, a.d_in, a.classes, a.teacher_width, a.min_seconds,
                                    a.max_steps)
        # steps_per_s: per CPU second of the process (other jobs on the machine do not count);
        # wall_steps_per_s: per wall-clock second.
        print(json.dumps({"width": w, "threads": torch.get_num_threads(), "steps": steps, "seconds": seconds,
                          "cpu_seconds": cpu, "steps_per_s": steps / cpu, "wall_steps_per_s": steps / seconds,
                          "torch": torch.__version__, "blas": blas}), flush=True)


if __name__ == "__main__":
    main()
