"""A sweep with [resources] on a real Slurm (slurm/local-cluster.sh, one node): slurm/sweep.sbatch
with two worker ranks of 4 fake GPUs each (HPSWEEP_ARGS="--gpus-per-node 4") packs 1-, 2- and
4-GPU command trials side by side; USR1 to the batch script mid-way drains it (trials in flight
are LOST, none of their processes is left), `scontrol requeue` resumes it, and at the end every
trial is DONE exactly once, no trial finished before the signal ran again, and no GPU of a worker
was ever held by two trials at once.
Skipped (exit 77, with the reason) when this machine cannot run Slurm: not root or no slurm-wlm."""
import collections
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from e2e import HPSWEEP, SOURCE_DIR, STATES, expect, read_trials, tempdir, write  # noqa: E402

from slurm_e2e import CLUSTER, STARTED_HERE, sh, wait_state  # noqa: E402  (skips or starts Slurm)


d = tempdir()
os.chmod(d, 0o755)
uses = os.path.join(d, "uses.txt")
trial = write(os.path.join(d, "trial.sh"), f"""#!/bin/sh
start=$(date +%s.%N)
case "$HPSWEEP_LR" in 0.001) s=2 ;; 0.002) s=4 ;; 0.003) s=3 ;; *) s=5 ;; esac
sleep "$s"
echo "$HPSWEEP_TRIAL_ID $CUDA_VISIBLE_DEVICES $start $(date +%s.%N)" >> "{uses}"
echo '{{"loss": 2.5}}'
""")
job = write(os.path.join(d, "gpus.ini"), f"""[sweep]
name = slurm-gpus
[scales]
params = 1e7, 1e8, 1e9
tokens = 1e9
[grid]
lr = 1e-3, 2e-3, 3e-3, 4e-3
batch = 8, 16
[backend]
kind = command
[command]
argv = /bin/sh {trial}
[resources]
gpus = 1 if params < 5e7, 2 if params < 5e8, 4 otherwise
""")
GPUS = {1e7: 1, 1e8: 2, 1e9: 4}
out = os.path.join(d, "gpus.h5")


def done_ids():
    if not os.path.exists(out):
        return {}
    try:
        trials, _, _, _ = read_trials(out)
    except OSError:  # being rewritten by the master: try again
        return {}
    return {int(t["id"]): (float(t["start_time"]), t["devices"].decode()) for t in trials if STATES[t["state"]] == "DONE"}


def trial_processes():
    """Processes a trial started (its shell and its sleep): they carry the trial's folder."""
    marker = f"HPSWEEP_TRIAL_DIR={out}.trials/".encode()
    n = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if any(v.startswith(marker) for v in open(f"/proc/{pid}/environ", "rb").read().split(b"\0")):
                n += 1
        except OSError:
            pass
    return n


try:
    env = dict(os.environ, JOB=job, OUT=out, HPSWEEP=HPSWEEP, GRACE="1", AUTO_REQUEUE="0",
               HPSWEEP_ARGS="--gpus-per-node 4")
    sbatch = os.path.join(SOURCE_DIR, "slurm", "sweep.sbatch")
    jid = subprocess.run(
        ["sbatch", "--parsable", "-n", "3", "-O", f"--output={d}/gpus-%j.out", f"--chdir={d}", sbatch],
        capture_output=True, text=True, env=env, check=True).stdout.strip().split(";")[0]
    wait_state(jid, {"RUNNING"}, 60)
    deadline = time.time() + 90
    while len(done_ids()) < 6 and time.time() < deadline:
        time.sleep(0.3)
    expect(len(done_ids()) >= 6, f"fewer than 6 trials finished in 90 s\n{open(f'{d}/gpus-{jid}.out').read()}")
    sh("scancel", "--signal=USR1", "--batch", jid)
    wait_state(jid, {"COMPLETED", "FAILED"}, 40)
    log = open(f"{d}/gpus-{jid}.out").read()
    expect("srun exited with status 4" in log, log)
    expect("8 GPUs on 2 worker nodes" in log, log)
    time.sleep(1)
    expect(trial_processes() == 0, "trial processes outlived the drained job")
    trials, grid, _, launches = read_trials(out)
    expect(launches[-1]["ended"] == b"interrupted", str(launches))
    lost = [t for t in trials if STATES[t["state"]] == "LOST"]
    finished_at_signal = done_ids()
    expect(len(finished_at_signal) < len(grid), "the sweep finished before the signal")
    expect(lost, "no trial was in flight at the signal (make the trials longer)")
    print(f"drain: {len(finished_at_signal)} DONE, {len(lost)} LOST at USR1")

    sh("scontrol", "requeue", jid)
    time.sleep(1)
    sh("scontrol", "update", f"jobid={jid}", "StartTime=now")
    wait_state(jid, {"COMPLETED"}, 180)
    trials, grid, _, launches = read_trials(out)
    expect([int(l["slurm_restart_count"]) for l in launches] == [0, 1], str(launches))
    states = collections.defaultdict(list)
    for t in trials:
        states[int(t["id"])].append(STATES[t["state"]])
    expect(set(states) == {int(i) for i in grid["id"]}, "not every grid id was recorded")
    for tid, s in states.items():
        expect(s.count("DONE") == 1 and s[-1] == "DONE", f"trial {tid:016x}: {s}")
    after = done_ids()
    for tid, rec in finished_at_signal.items():
        expect(after[tid] == rec, f"{tid:016x} finished before the signal but ran again")
    rows = {t["id_hex"].decode(): t for t in trials if STATES[t["state"]] == "DONE"}
    by_device = collections.defaultdict(list)
    for line in open(uses):
        tid, devices, start, end = line.split()
        if tid not in rows:  # a LOST attempt that still wrote its line as it was stopped
            continue
        row = rows[tid]
        expect(len(devices.split(",")) == GPUS[row["params"]], f"trial {tid} got {devices}")
        for dev in devices.split(","):
            by_device[(int(row["rank"]), row["launch"], dev)].append((float(start), float(end)))
    for key, spans in by_device.items():
        spans.sort()
        for (s0, e0), (s1, e1) in zip(spans, spans[1:]):
            expect(s1 >= e0, f"device {key} shared: [{s0:.2f}, {e0:.2f}] and [{s1:.2f}, {e1:.2f}]")
    print(f"requeued: all {len(grid)} trials DONE once, none of the {len(finished_at_signal)} finished before "
          "USR1 ran again, no GPU shared")
finally:
    if STARTED_HERE:
        subprocess.run(["bash", CLUSTER, "stop"])
print("ok")
