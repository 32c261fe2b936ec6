"""hpsweep on a real single-node Slurm started by this test (slurm/local-cluster.sh):
1. srun -n 4 --mpi=pmix hpsweep run completes a sweep, each id exactly once;
2. preemption: sbatch slurm/sweep.sbatch, USR1 to the batch script, the master drains within the
   grace period, scontrol requeue, the job resumes (restart count 1) and completes; no trial that
   finished before the signal ran again;
3. hard kill: scancel with SIGKILL mid-sweep, resubmit, completes with nothing lost.
Skipped (exit 77, with the reason) when this machine cannot run Slurm: not root or no slurm-wlm."""
import collections
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from e2e import HPSWEEP, SOURCE_DIR, expect, hpsweep, read_trials, tempdir, write  # noqa: E402

from slurm_e2e import CLUSTER, STARTED_HERE, sh, wait_state  # noqa: E402  (skips or starts Slurm)


def records(out):
    return [json.loads(l) for l in hpsweep("export", out).stdout.splitlines()]


def terminal_by_id(out):
    return {r["id"]: r for r in records(out) if r["state"] in ("DONE", "DIVERGED", "FAILED")}


def check_complete(out):
    trials, grid, attrs, launches = read_trials(out)
    ids = collections.Counter(format(int(t["id"]), "016x") for t in trials if int(t["state"]) in (2, 3, 4))
    expect(set(ids) == {format(int(i), "016x") for i in grid["id"]}, "not every grid id finished")
    expect(max(ids.values()) == 1, "an id finished twice")
    return launches


def wait_progress(out, at_least, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(out + ".journal") and len(terminal_by_id(out)) >= at_least:
            return
        time.sleep(0.3)
    raise AssertionError(f"fewer than {at_least} trials finished in {timeout} s")


d = tempdir()
os.chmod(d, 0o755)
JOB_TEXT = """
[sweep]
name = slurm-{name}
[scales]
params = 1e7, 3e7
tokens_per_param = 20, 60
[grid]
lr = log:2.5e-4:3.2e-2:8
batch = 32, 64, 128
[backend]
kind = surrogate
[surrogate]
sleep_per_pflop = {sleep}
"""
try:
    # 1. srun
    job = write(os.path.join(d, "srun.ini"), JOB_TEXT.format(name="srun", sleep=0))
    out = os.path.join(d, "srun.h5")
    p = subprocess.run(["srun", "-n", "4", "-O", "--mpi=pmix", HPSWEEP, "run", job, "--out", out, "--progress", "none"],
                       capture_output=True, text=True, cwd=d, timeout=120)
    expect(p.returncode == 0, p.stdout + p.stderr)
    launches = check_complete(out)
    expect(launches[0]["ranks"] == 4 and launches[0]["slurm_job_id"] != b"", str(launches))
    print("srun: ok")

    # 2. preemption via USR1 to the batch script, then requeue
    job = write(os.path.join(d, "pre.ini"), JOB_TEXT.format(name="preempt", sleep=6e-4))
    out = os.path.join(d, "pre.h5")
    env = dict(os.environ, JOB=job, OUT=out, HPSWEEP=HPSWEEP, GRACE="15", AUTO_REQUEUE="0")
    sbatch = os.path.join(SOURCE_DIR, "slurm", "sweep.sbatch")
    jid = subprocess.run(
        ["sbatch", "--parsable", "-n", "3", "-O", f"--output={d}/pre-%j.out", f"--chdir={d}", sbatch],
        capture_output=True, text=True, env=env, check=True).stdout.strip().split(";")[0]
    wait_state(jid, {"RUNNING"}, 60)
    wait_progress(out, 5)
    before = terminal_by_id(out)
    t_signal = time.time()
    sh("scancel", "--signal=USR1", "--batch", jid)
    wait_state(jid, {"COMPLETED", "FAILED"}, 15 + 20)
    expect(time.time() - t_signal < 15 + 10, "the job did not exit within the grace period")
    log = open(f"{d}/pre-{jid}.out").read()
    expect("srun exited with status 4" in log, log)
    _, grid, _, launches = read_trials(out)
    expect(launches[-1]["ended"] == b"interrupted", str(launches))
    finished_at_signal = terminal_by_id(out)
    expect(len(finished_at_signal) < len(grid), "the sweep finished before the signal: make it slower")
    sh("scontrol", "requeue", jid)
    time.sleep(1)
    sh("scontrol", "update", f"jobid={jid}", "StartTime=now")
    wait_state(jid, {"COMPLETED"}, 120)
    launches = check_complete(out)
    expect([int(l["slurm_restart_count"]) for l in launches] == [0, 1], str(launches))
    expect([l["slurm_job_id"] for l in launches] == [jid.encode()] * 2, str(launches))
    after = terminal_by_id(out)
    for tid, rec in finished_at_signal.items():
        expect(after[tid] == rec, f"{tid} finished before the signal but ran again")
    print(f"preemption: ok ({len(before)} finished before USR1, {len(finished_at_signal)} after the drain)")

    # 3. hard kill (SIGKILL to every step and the batch script), resubmit
    job = write(os.path.join(d, "kill.ini"), JOB_TEXT.format(name="kill", sleep=6e-4))
    out = os.path.join(d, "kill.h5")
    env = dict(os.environ, JOB=job, OUT=out, HPSWEEP=HPSWEEP, GRACE="15", AUTO_REQUEUE="0")
    submit = ["sbatch", "--parsable", "-n", "3", "-O", f"--output={d}/kill-%j.out", f"--chdir={d}", sbatch]
    jid = subprocess.run(submit, capture_output=True, text=True, env=env, check=True).stdout.strip().split(";")[0]
    wait_state(jid, {"RUNNING"}, 60)
    wait_progress(out, 5)
    # SIGKILL to the master (as a node failure would: no chance to drain), then end the job.
    masters = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            envs = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        if out.encode() in argv and argv[0].endswith(b"hpsweep") and b"SLURM_PROCID=0" in envs:
            masters.append(int(pid))
    expect(len(masters) == 1, f"master process not found: {masters}")
    os.kill(masters[0], 9)
    sh("scancel", jid, check=False)
    wait_state(jid, {"CANCELLED", "FAILED", "COMPLETED"}, 60)
    time.sleep(1)
    finished_at_kill = terminal_by_id(out)
    jid2 = subprocess.run(submit, capture_output=True, text=True, env=env, check=True).stdout.strip().split(";")[0]
    wait_state(jid2, {"COMPLETED"}, 120)
    launches = check_complete(out)
    expect(launches[0]["ended"] == b"killed" and launches[-1]["ended"] == b"completed", str(launches))
    after = terminal_by_id(out)
    for tid, rec in finished_at_kill.items():
        expect(after[tid] == rec, f"{tid} finished before the kill but changed or ran again")
    print(f"hard kill: ok ({len(finished_at_kill)} finished before SIGKILL, none lost or rerun)")
finally:
    if STARTED_HERE:
        subprocess.run(["bash", CLUSTER, "stop"])
print("ok: srun, preemption with requeue, hard kill with resubmission")
