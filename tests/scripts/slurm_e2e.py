"""What the Slurm end-to-end tests share: skip (exit 77, with the reason) when this machine cannot
run Slurm, start slurm/local-cluster.sh unless a cluster already answers, and wait on job states.
Importing it does the skip check and the start; `STARTED_HERE` says whether to stop it at the end."""
import os
import shutil
import subprocess
import sys
import time

from e2e import SOURCE_DIR

if os.geteuid() != 0:
    print("SKIPPED: the Slurm tests need root (they start slurmctld, slurmd and munged)")
    sys.exit(77)
for tool in ("slurmctld", "slurmd", "munged", "sbatch"):
    if not shutil.which(tool):
        print(f"SKIPPED: {tool} not found (apt-get install slurm-wlm munge; tests/run.sh does this as root)")
        sys.exit(77)

CLUSTER = os.path.join(SOURCE_DIR, "slurm", "local-cluster.sh")
STARTED_HERE = subprocess.run(["sinfo", "-h"], capture_output=True).returncode != 0
if STARTED_HERE:
    subprocess.run(["bash", CLUSTER, "start"], check=True)


def sh(*cmd, check=True):
    p = subprocess.run(list(map(str, cmd)), capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))}: exit {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p.stdout


def job_state(jid):
    for tok in sh("scontrol", "show", "job", jid, check=False).split():
        if tok.startswith("JobState="):
            return tok.split("=", 1)[1]
    return "GONE"


def wait_state(jid, states, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = job_state(jid)
        if s in states:
            return s
        time.sleep(0.5)
    raise AssertionError(f"job {jid} did not reach {states} in {timeout} s (state {job_state(jid)})")
