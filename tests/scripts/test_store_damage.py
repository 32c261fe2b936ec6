"""Damaged, stale and full stores, through the real CLI: nothing finished is lost, nothing damaged is
served as if it were sound, and nothing crashes.

- a journal truncated or with a byte flipped in its middle: the .h5's finished results are kept
  (merged with the journal's readable records), the damaged journal is kept aside, and said so;
- a journal whose .h5 was deleted: recovered when it is the same job, refused for another job
  and for an ingest (never pooled with new results);
- a .h5 changed behind its intact journal: `export` refuses, `status` warns, `run` rebuilds it;
- a .h5 without journal with bytes flipped at random: every command either works with the true
  values or exits with a message naming the file; none dies of a signal;
- a full disk (a small tmpfs, or RLIMIT_FSIZE when mounting is not possible): a clear error,
  a non-zero exit without a crash, and no temporary file left behind."""
import glob
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from e2e import HPSWEEP, expect, hpsweep, tempdir, write  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402

JOB = """
[sweep]
name = damage
[scales]
params = 1e7, 2e7, 4e7
tokens_per_param = 10, 20
[grid]
lr = log:1e-4:3e-2:6
batch = 16, 64
wd = 0, 0.1
[backend]
kind = surrogate
"""
d = tempdir()
job = write(os.path.join(d, "job.ini"), JOB)
other_job = write(os.path.join(d, "other.ini"), JOB + "[surrogate]\nnoise = 0.05\n")
GRID = 3 * 2 * 6 * 2 * 2


def run(out, jobfile=job, check=True):
    return hpsweep("run", jobfile, "--out", out, "--progress", "none", "--workers", "2", check=check)


def export(out, check=True):
    return hpsweep("export", out, "--jsonl", check=check)


def records(out):
    return [json.loads(line) for line in export(out).stdout.splitlines()]


def key(rec):
    return (rec["id"], rec["attempt"], rec["state"], rec["final_loss"], rec["smooth_loss"])


def fresh(name):
    out = os.path.join(d, name, "s.h5")
    os.makedirs(os.path.dirname(out))
    run(out)
    return out


def no_signal(p, what):
    expect(p.returncode >= 0, f"{what} died of signal {-p.returncode}:\n{p.stderr}")


base = fresh("base")
truth = sorted(map(key, records(base)))
expect(len(truth) == GRID, f"{len(truth)} records in the first sweep")


def check_kept(out, p, what):
    text = p.stdout + p.stderr
    expect("damaged" in text, f"{what}: the damage was not announced:\n{text}")
    expect(glob.glob(out + ".journal.damaged-*"), f"{what}: the damaged journal was not kept aside")
    with h5py.File(out, "r") as f:
        launches = f["launches"][:]
        expect(len(f["trials"]) == GRID, f"{what}: {len(f['trials'])} rows in the .h5, expected {GRID}")
    expect(launches[0]["ended"] == b"completed", f"{what}: the finished launch was relabelled {launches[0]['ended']}")
    expect(launches[-1]["trials_recorded"] == 0, f"{what}: {launches[-1]['trials_recorded']} trials ran again")
    expect(sorted(map(key, records(out))) == truth, f"{what}: the records changed")


# 1. A damaged journal never discards results the .h5 holds.
for what, damage in [("truncated journal", lambda b: b[:len(b) // 3]),
                     ("flipped journal byte", lambda b: b[:len(b) // 3] + bytes([b[len(b) // 3] ^ 0x5A]) + b[len(b) // 3 + 1:])]:
    out = os.path.join(d, what.replace(" ", "-"), "s.h5")
    shutil.copytree(os.path.dirname(base), os.path.dirname(out))
    data = open(out + ".journal", "rb").read()
    open(out + ".journal", "wb").write(damage(data))
    status = hpsweep("status", out)
    expect(f"{GRID} of {GRID} trials finished" in status.stdout, f"{what}: status lost results:\n{status.stdout}")
    check_kept(out, run(out), what)
print("ok: a truncated or flipped journal loses none of the .h5's results, is kept aside and announced")

# 2. A stale journal is never pooled silently.
out = os.path.join(d, "stale", "s.h5")
shutil.copytree(os.path.dirname(base), os.path.dirname(out))
os.remove(out)
p = run(out, other_job, check=False)
expect(p.returncode == 3 and out + ".journal" in p.stderr and "does not exist" in p.stderr,
       f"a stale journal of another job was not refused naming both files:\n{p.stderr}")
csv = write(os.path.join(d, "r.csv"), "lr,bs,loss,N,D\n0.001,64,3.2,1e7,1e9\n")
p = hpsweep("ingest", csv, "--into", out, "--map", "lr=lr,batch=bs,loss=loss,params=N,tokens=D", check=False)
expect(p.returncode == 3 and out + ".journal" in p.stderr, f"ingest pooled a stale journal:\n{p.stdout}{p.stderr}")
expect(not os.path.exists(out), "the refused commands created the .h5")
p = run(out)
expect(f"recovered {GRID} results" in p.stdout + p.stderr, f"the recovery was not announced:\n{p.stdout}{p.stderr}")
expect(sorted(map(key, records(out))) == truth, "the recovered sweep differs")
print("ok: a stale journal is refused for another job and for an ingest, recovered and announced for the same job")

# 4. A .h5 changed behind its intact journal is not served; run rebuilds it from the journal.
out = os.path.join(d, "changed", "s.h5")
shutil.copytree(os.path.dirname(base), os.path.dirname(out))
with h5py.File(out, "r+") as f:
    t = f["trials"][:]
    # A finished row with a finite loss (rows are in the order trials ended, and a DIVERGED one's
    # infinite loss would not change when scaled).
    row = next(i for i in range(7, len(t)) if np.isfinite(t["smooth_loss"][i]))
    t["smooth_loss"][row] *= 1.01
    f["trials"][:] = t
p = export(out, check=False)
expect(p.returncode == 3 and "disagree" in p.stderr and "smooth_loss" in p.stderr, f"export served a changed .h5:\n{p.stderr}")
p = hpsweep("status", out)
expect("warning:" in p.stdout and "disagree" in p.stdout, f"status did not say the files disagree:\n{p.stdout}")
p = run(out)
expect(glob.glob(out + ".damaged-*"), "the changed .h5 was not kept aside")
expect(sorted(map(key, records(out))) == truth, "the rebuilt .h5 differs from the journal")
print("ok: a .h5 that disagrees with its journal is refused by export, flagged by status, rebuilt by run")

# 4b. Without a journal, a flipped stored loss is caught by the chunk checksums.
out = os.path.join(d, "flip-value", "s.h5")
shutil.copytree(os.path.dirname(base), os.path.dirname(out))
os.remove(out + ".journal")
with h5py.File(out, "r") as f:
    # The rows are stored compressed: flip a byte inside the stored chunk that holds row 5.
    chunk = f["trials"].id.get_chunk_info_by_coord((5,))
expect(chunk.size > 16, f"no stored chunk for row 5: {chunk}")
data = bytearray(open(out, "rb").read())
data[chunk.byte_offset + chunk.size // 2] ^= 0x01
open(out, "wb").write(data)
p = export(out, check=False)
expect(p.returncode == 3 and "damaged" in p.stderr and out in p.stderr, f"a flipped loss was served:\n{p.stderr}")
print("ok: a flipped stored loss is refused (Fletcher32)")

# 6. Sizes are validated before anything is allocated.
for field, what in [("curve_length", "a huge curve_length"), ("extent", "a huge /curves extent")]:
    out = os.path.join(d, "size-" + field, "s.h5")
    shutil.copytree(os.path.dirname(base), os.path.dirname(out))
    os.remove(out + ".journal")
    with h5py.File(out, "r+") as f:
        if field == "curve_length":
            t = f["trials"][:]
            t["curve_length"][3] = 1 << 60
            f["trials"][:] = t
        else:
            f["curves/step"].resize((1 << 40,))
    p = hpsweep("status", out, check=False)
    expect(p.returncode == 3 and out in p.stderr, f"{what}: {p.returncode}\n{p.stderr}")
print("ok: implausible sizes are refused before allocating")

# 6b. Random damage to a .h5 without journal: correct values or a clear refusal, never a crash.
rng = random.Random(int(os.environ.get("HPSWEEP_DAMAGE_SEED", "16")))
pristine = open(base, "rb").read()
crashes, refused, served = 0, 0, 0
for i in range(int(os.environ.get("HPSWEEP_DAMAGE_ROUNDS", "12"))):
    out = os.path.join(d, f"random-{i}", "s.h5")
    os.makedirs(os.path.dirname(out))
    data = bytearray(pristine)
    for _ in range(64):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    open(out, "wb").write(data)
    for cmd in (["status", out], ["export", out, "--jsonl"], ["fit", out, "--resamples", "20", "--no-store"]):
        p = subprocess.run([HPSWEEP, *cmd], capture_output=True, text=True, timeout=300)
        no_signal(p, " ".join(cmd))
        if p.returncode != 0:
            refused += 1
            expect(out in p.stderr or "s.h5" in p.stderr, f"{' '.join(cmd)}: the error does not name the file:\n{p.stderr}")
        elif cmd[0] == "export":
            served += 1
            got = sorted(key(json.loads(line)) for line in p.stdout.splitlines())
            expect(got == truth, f"round {i}: export served damaged values without a word")
    p = run(out, check=False)
    no_signal(p, "run")
print(f"ok: 64 random flipped bytes x {i + 1} files: {refused} clear refusals, {served} exports with the true values, no crash")

# 7. A full disk: a clear error, no crash, no temporary file.
full = os.path.join(d, "full")
os.makedirs(full)
mounted = os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", full],
                                               capture_output=True).returncode == 0
try:
    out = os.path.join(full, "s.h5")

    def limit():
        if not mounted:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (120 * 1024, resource.RLIM_INFINITY))

    for attempt in range(2):
        p = subprocess.run([HPSWEEP, "run", job, "--out", out, "--progress", "none", "--workers", "2"],
                           capture_output=True, text=True, preexec_fn=limit, timeout=300)
        no_signal(p, f"run on a full disk (attempt {attempt + 1})")
        expect(p.returncode != 0, "a run on a full disk claimed success")
        expect(any(s in p.stderr for s in ("disk is full", "No space left", "file size limit", "File too large")),
               f"the error does not say the disk is full:\n{p.stderr}")
        left = glob.glob(os.path.join(full, "*.tmp-*"))
        expect(not left, f"temporary files left behind: {left}")
    print(f"ok: a full disk ({'tmpfs' if mounted else 'RLIMIT_FSIZE'}) is reported, exits {p.returncode}, "
          "leaves no temporary file")
finally:
    if mounted:
        subprocess.run(["umount", full])

# 4c. `replay --refit` compares against what the .h5 holds: a stored coefficient changed by 1% in
# the .h5 is not hidden by the journal's intact copy.
out = os.path.join(d, "refit", "s.h5")
shutil.copytree(os.path.dirname(base), os.path.dirname(out))
hpsweep("fit", out, "--resamples", "20")
p = hpsweep("replay", out, "--refit", check=False)
expect(p.returncode == 0 and "identical" in p.stdout, f"an untouched stored fit does not replay:\n{p.stdout}{p.stderr}")
with h5py.File(out, "r+") as f:
    c = f["fits/latest/coefficients"][:]
    c["estimate"][0] *= 1.01
    f["fits/latest/coefficients"][:] = c
p = hpsweep("replay", out, "--refit", check=False)
expect(p.returncode != 0 and "disagree" in p.stderr and "coefficient" in p.stderr,
       f"replay --refit did not see the changed coefficient:\n{p.stdout}{p.stderr}")
print("ok: replay --refit sees a stored coefficient changed in the .h5 behind its journal")
