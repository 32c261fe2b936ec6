"""Preemption under mpirun with trials far longer than the grace period: SIGTERM to the master
ends the whole job within seconds with exit status 4 (what the sbatch requeue waits for), the
running trials are recorded LOST and their processes are gone, and a resume runs them again.
A second signal during the grace period does the same at once, under mpirun and with worker
threads (no MPI). SIGUSR1 (what Slurm sends before a time limit) does the same under a plain
mpirun, SIGINT with worker threads, and `--drain-before-limit` drains with no signal at all when the
Slurm allocation's end (read with squeue, here a stand-in on PATH) comes within that many seconds.

Run by hand:  HPSWEEP=build/release/hpsweep /usr/bin/python3 tests/scripts/test_mpi_drain.py
"""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import HPSWEEP, MPIEXEC, MPIEXEC_FLAGS, STATES, expect, hpsweep, read_trials, tempdir, write  # noqa: E402

d = tempdir()
trial = write(os.path.join(d, "trial.py"), """import json, os, sys, time
open(os.path.join(os.environ["HPSWEEP_TRIAL_DIR"], "started"), "w").close()
time.sleep(float(os.environ.get("TRIAL_SECONDS", "300")))
print(json.dumps({"loss": 2.0 + float(os.environ["HPSWEEP_LR"])}))
""")
job = write(os.path.join(d, "drain.ini"), f"""[sweep]
name = drain
[scales]
params = 1e6
tokens = 1e8
seq_len = 128
[grid]
lr = 1e-3, 2e-3, 3e-3, 4e-3, 5e-3, 6e-3
batch = 8
[backend]
kind = command
[command]
argv = {sys.executable} {trial}
""")


def rank0_pid(proc):
    """The master's pid: the rank with OMPI_COMM_WORLD_RANK=0 among mpirun's children."""
    for _ in range(200):
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
                cmd = open(f"/proc/{pid}/cmdline", "rb").read()
            except OSError:
                continue
            if b"OMPI_COMM_WORLD_RANK=0" in env and os.path.basename(HPSWEEP).encode() in cmd and \
                    f"HPSWEEP_DRAIN_TEST={d}".encode() in env:
                return int(pid)
        time.sleep(0.1)
    raise AssertionError("the master rank never started")


def started_trials(out):
    root = out + ".trials"
    if not os.path.isdir(root):
        return 0
    return sum(os.path.exists(os.path.join(root, t, "started")) for t in os.listdir(root))


def trial_processes():
    n = 0
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and trial.encode() in open(f"/proc/{pid}/cmdline", "rb").read():
                n += 1
        except OSError:
            pass
    return n


def fake_slurm(seconds_left):
    """SLURM_JOB_ID and an squeue on PATH that says the allocation ends `seconds_left` from now."""
    bin_dir = os.path.join(d, "fake-slurm-bin")
    os.makedirs(bin_dir, exist_ok=True)
    end = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() + seconds_left))
    write(os.path.join(bin_dir, "squeue"), f"#!/bin/sh\necho {end}\n")
    os.chmod(os.path.join(bin_dir, "squeue"), 0o755)
    return {"SLURM_JOB_ID": "4242", "PATH": bin_dir + os.pathsep + os.environ["PATH"]}


def drained_run(out, signals, mpi=True, sig=signal.SIGTERM, grace=None, extra_args=(), extra_env=None):
    env = dict(os.environ, HPSWEEP_DRAIN_TEST=d, TRIAL_SECONDS="300", **(extra_env() if extra_env else {}))
    grace = grace or ("0.5" if mpi else "120")
    run = [HPSWEEP, "run", job, "--out", out, "--grace", grace, "--progress", "none", *extra_args]
    if mpi:
        cmd = [MPIEXEC, *MPIEXEC_FLAGS, "-x", "HPSWEEP_DRAIN_TEST", "-x", "TRIAL_SECONDS", "-n", "4", *run]
    else:
        cmd = [*run, "--workers", "3"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    master = rank0_pid(proc) if mpi else proc.pid
    deadline = time.time() + 60
    while started_trials(out) < 3 and time.time() < deadline:
        time.sleep(0.1)
    expect(started_trials(out) == 3, "the three workers never started their trials")
    t0 = time.time()
    for _ in range(signals):
        os.kill(master, sig)
        time.sleep(0.05)
    try:
        output, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"the run did not exit within 60 s of {signal.Signals(sig).name} to the master (drain hangs)")
    took = time.time() - t0
    expect(proc.returncode == 4, f"the run exited {proc.returncode}, not 4 (interrupted):\n{output}")
    expect(took < 20, f"the job took {took:.1f} s to end after SIGTERM")
    time.sleep(0.5)
    expect(trial_processes() == 0, "trial processes outlived the job")
    trials, _, _, launches = read_trials(out)
    states = [STATES[s] for s in trials["state"]]
    # The 3 running trials and those queued behind them on the workers (prefetch) are LOST.
    expect(states.count("LOST") >= 3 and set(states) == {"LOST"}, f"expected only LOST trials, got {states}")
    expect(launches["ended"][-1].decode() == "interrupted", f"launch recorded {launches['ended'][-1]}")
    return took, output


# Under mpirun: one SIGTERM (grace 0.5 s), two, and one SIGUSR1. Without MPI (worker threads,
# grace 120 s): the second signal must end the wait at once; one SIGINT (grace 0.5 s); and, with no
# signal, the Slurm time limit 45 s after the start with --drain-before-limit 35: a drain after 10 s.
cases = (
    ("1 SIGTERM under mpirun", dict(signals=1, mpi=True)),
    ("2 SIGTERM under mpirun", dict(signals=2, mpi=True)),
    ("2 SIGTERM with worker threads", dict(signals=2, mpi=False)),
    ("1 SIGUSR1 under mpirun", dict(signals=1, mpi=True, sig=signal.SIGUSR1)),
    ("1 SIGINT with worker threads", dict(signals=1, mpi=False, sig=signal.SIGINT, grace="0.5")),
    ("--drain-before-limit, no signal", dict(signals=0, mpi=False, grace="0.5", extra_args=("--drain-before-limit", "35"),
                                             extra_env=lambda: fake_slurm(45))),
)
for n, (what, case) in enumerate(cases):
    out = os.path.join(d, f"s{n}.h5")
    took, output = drained_run(out, **case)
    if case["signals"] == 0:
        expect("Slurm time limit approaching" in output, f"{what}: the drain did not say why:\n{output}")
    else:
        expect("signal received" in output, f"{what}: the drain did not say why:\n{output}")
    print(f"{what}: exit 4 after {took:.1f} s, running trials LOST")
    # Resume with short trials: the lost ones and the rest run, nothing is lost or repeated.
    env = dict(os.environ, TRIAL_SECONDS="0")
    hpsweep("run", job, "--out", out, "--progress", "none", ranks=3, env=env)
    trials, _, _, _ = read_trials(out)
    done = {t["id"] for t in trials if STATES[t["state"]] == "DONE"}
    expect(len(done) == 6, f"{what}: after resume {len(done)} of 6 trials are DONE")
    expect(sum(STATES[t["state"]] == "DONE" for t in trials) == 6, f"{what}: a trial finished twice")
print("ok")
