"""[resources] under a real mpiexec with fake GPUs (--gpus-per-node 8): 1-, 2- and 8-GPU trials of
uneven lengths run side by side on two worker ranks. Each trial records its CUDA_VISIBLE_DEVICES,
start and end; no device of a worker is ever held by two trials at once, the GPU-seconds reach
>= 90% of the ideal packing, the .h5 names the devices each attempt used and holds every trial
once. Then a drained stop with trials in flight: they are LOST, none of their processes is left,
and a resume finishes every trial exactly once. `hpsweep replay --what-if --gpus-per-node 8`
simulates the same packing.

Run by hand:  HPSWEEP=build/release/hpsweep /usr/bin/python3 tests/scripts/test_gpu_packing.py
"""
import collections
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import HPSWEEP, MPIEXEC, MPIEXEC_FLAGS, STATES, expect, hpsweep, read_trials, tempdir, write  # noqa: E402

d = tempdir()
uses = os.path.join(d, "uses.txt")
# Seconds by model size and learning rate: an uneven workload.
trial = write(os.path.join(d, "trial.sh"), f"""#!/bin/sh
start=$(date +%s.%N)
case "$HPSWEEP_PARAMS" in
  1e+09) base=2 ;;
  1e+08) base=2 ;;
  *) base=0 ;;
esac
case "$HPSWEEP_LR" in
  0.001) extra=0.2 ;; 0.002) extra=0.9 ;; 0.003) extra=0.5 ;; 0.004) extra=0.7 ;; 0.005) extra=0.3 ;; *) extra=0.6 ;;
esac
[ -n "$TRIAL_SECONDS" ] && base=$TRIAL_SECONDS
touch "$HPSWEEP_TRIAL_DIR/started"
sleep "$base" && sleep "$extra"
end=$(date +%s.%N)
echo "$HPSWEEP_TRIAL_ID $CUDA_VISIBLE_DEVICES $start $end" >> "{uses}"
echo '{{"loss": 2.5}}'
""")
job = write(os.path.join(d, "gpus.ini"), f"""[sweep]
name = gpus
[scales]
params = 1e7, 1e8, 1e9
tokens = 1e9
[grid]
lr = 1e-3, 2e-3, 3e-3, 4e-3, 5e-3, 6e-3
batch = 8, 16
[backend]
kind = command
[command]
argv = /bin/sh {trial}
[resources]
gpus = 1 if params < 5e7, 2 if params < 5e8, 8 otherwise
""")
GPUS = {1e7: 1, 1e8: 2, 1e9: 8}
out = os.path.join(d, "gpus.h5")

# --- 1. packing: 36 trials on 2 workers x 8 fake GPUs -------------------------------------------
p = hpsweep("run", job, "--out", out, "--gpus-per-node", "8", "--progress", "none", ranks=3)
expect("16 GPUs on 2 worker nodes" in p.stdout, p.stdout)
trials, grid, _, _ = read_trials(out)
expect(len(grid) == 36 and len(trials) == 36, f"{len(trials)} rows for {len(grid)} trials")
expect(len({t["id"] for t in trials}) == 36, "a trial was recorded twice")
expect(all(STATES[t["state"]] == "DONE" for t in trials), [t["error"] for t in trials])
rows = {t["id_hex"].decode(): t for t in trials}

recorded = []
for line in open(uses):
    tid, devices, start, end = line.split()
    row = rows[tid]
    expect(row["devices"].decode() == devices, f"trial {tid}: .h5 says {row['devices']!r}, it saw {devices!r}")
    expect(len(devices.split(",")) == GPUS[row["params"]], f"trial {tid} ({row['params']:g}) got {devices}")
    recorded.append((int(row["rank"]), devices.split(","), float(start), float(end), GPUS[row["params"]]))
expect(len(recorded) == 36, f"{len(recorded)} trials recorded their devices")

# No device of a worker held by two trials at once.
by_device = collections.defaultdict(list)
for rank, devices, start, end, _ in recorded:
    for dev in devices:
        by_device[(rank, dev)].append((start, end))
for key, spans in by_device.items():
    spans.sort()
    for (s0, e0), (s1, e1) in zip(spans, spans[1:]):
        expect(s1 >= e0, f"device {key} shared: [{s0:.3f}, {e0:.3f}] and [{s1:.3f}, {e1:.3f}]")
expect(len({r[0] for r in recorded}) == 2, "not both workers ran trials")
peak = max(sum(1 for r in recorded if r[2] <= t < r[3]) for t in (r[2] for r in recorded))
expect(peak >= 6, f"at most {peak} trials ran at once")

# Utilisation: busy GPU-seconds over 16 GPUs x the makespan, against the ideal packing's makespan
# (no schedule beats the average load or the longest trial).
busy = sum(g * (e - s) for _, _, s, e, g in recorded)
makespan = max(r[3] for r in recorded) - min(r[2] for r in recorded)
ideal = max(busy / 16, max(e - s for _, _, s, e, _ in recorded))
ratio = ideal / makespan
print(f"packing: {busy:.1f} GPU-s, makespan {makespan:.2f} s, ideal {ideal:.2f} s, "
      f"utilisation {busy / (16 * makespan):.1%}, {ratio:.1%} of ideal; peak {peak} trials at once")
expect(ratio >= 0.9, f"the packing reached only {ratio:.1%} of the ideal makespan")

# --- 2. what-if: the same packing in simulation ---------------------------------------------------
p = hpsweep("replay", out, "--what-if", "--ranks", "2,3,5", "--gpus-per-node", "8")
expect("packed onto nodes of 8 GPUs" in p.stdout, p.stdout)
line = [ln for ln in p.stdout.splitlines() if ln.split()[:2] == ["3", "2"]]
expect(line, p.stdout)
print(p.stdout)

# --- 3. drain with concurrent trials in flight, then resume ---------------------------------------
out2 = os.path.join(d, "drain.h5")
os.remove(uses)
env = dict(os.environ, TRIAL_SECONDS="300", HPSWEEP_GPU_TEST=d)
cmd = [MPIEXEC, *MPIEXEC_FLAGS, "-x", "TRIAL_SECONDS", "-x", "HPSWEEP_GPU_TEST", "-n", "3", HPSWEEP, "run", job,
       "--out", out2, "--gpus-per-node", "8", "--grace", "0.5", "--progress", "none"]
proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def started(root):
    return sum(os.path.exists(os.path.join(root, t, "started")) for t in os.listdir(root)) if os.path.isdir(root) else 0


def trial_processes():
    """Processes a trial started (its shell and its sleep): they carry the trial's folder."""
    marker = f"HPSWEEP_TRIAL_DIR={out2}.trials/".encode()
    n = 0
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and any(v.startswith(marker) for v in open(f"/proc/{pid}/environ", "rb").read().split(b"\0")):
                n += 1
        except OSError:
            pass
    return n


deadline = time.time() + 60
while started(out2 + ".trials") < 2 and time.time() < deadline:
    time.sleep(0.1)
expect(started(out2 + ".trials") >= 2, "the 8-GPU trials never started")
expect(trial_processes() >= 4, "the running trials' processes are not visible")
time.sleep(0.5)
master = None
for pid in os.listdir("/proc"):
    try:
        envb = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
    except OSError:
        continue
    if b"OMPI_COMM_WORLD_RANK=0" in envb and f"HPSWEEP_GPU_TEST={d}".encode() in envb:
        master = int(pid)
expect(master, "no master rank found")
os.kill(master, signal.SIGTERM)
text, _ = proc.communicate(timeout=120)
expect(proc.returncode == 4, f"drained run exited {proc.returncode}\n{text}")
for _ in range(50):
    if trial_processes() == 0:
        break
    time.sleep(0.1)
expect(trial_processes() == 0, "trial processes outlived the drained run")
trials, _, _, _ = read_trials(out2)
lost = [t for t in trials if STATES[t["state"]] == "LOST"]
expect(len(lost) >= 2, f"{len(lost)} LOST rows after the drain\n{text}")

p = hpsweep("run", job, "--out", out2, "--gpus-per-node", "8", "--progress", "none", ranks=3)
trials, grid, _, _ = read_trials(out2)
final = {}
for t in trials:
    final.setdefault(t["id"], []).append(STATES[t["state"]])
expect(len(final) == 36, f"{len(final)} of 36 trials recorded")
for tid, states in final.items():
    expect(states.count("DONE") == 1 and states[-1] == "DONE", f"trial {tid:x}: {states}")
print(f"drain: {len(lost)} trials LOST in flight, all 36 DONE once after the resume")
print("ok")
