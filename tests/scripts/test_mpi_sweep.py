"""mpiexec -n 4 hpsweep run: every grid id recorded exactly once, readable by h5py and h5dump,
and a rerun of the same command runs nothing again."""
import collections
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from e2e import SOURCE_DIR, STATES, expect, hpsweep, read_trials, tempdir, write  # noqa: E402

d = tempdir()
job = write(os.path.join(d, "job.ini"), """
[sweep]
name = mpi-e2e
seed = 5
[scales]
params = 1e7, 3e7, 1e8
tokens_per_param = 20, 60
[grid]
lr = log:2.5e-4:3.2e-2:8
batch = 32, 64, 128, 256
wd = 0, 0.1
[backend]
kind = surrogate
[surrogate]
sleep_per_pflop = 1e-5
[target]
params = 7e9
tokens = 1.4e12
""")
out = os.path.join(d, "s.h5")
run = hpsweep("run", job, "--out", out, "--progress", "lines", ranks=4)
expect("ran 384 trials" in run.stdout, run.stdout)

trials, grid, attrs, launches = read_trials(out)
expect(len(grid) == 384, f"grid has {len(grid)} rows")
ids = collections.Counter(int(i) for i in trials["id"])
expect(set(ids) == set(int(i) for i in grid["id"]), "trial ids differ from grid ids")
expect(all(c == 1 for c in ids.values()), "some id recorded twice")
states = collections.Counter(STATES[int(s)] for s in trials["state"])
expect(set(states) <= {"DONE", "DIVERGED"} and states["DONE"] > 300, f"states {states}")
expect(sorted(set(int(r) for r in trials["rank"])) == [1, 2, 3], "work did not reach all three workers")
expect(attrs["schema_version"] == 4 and "mpi-e2e" in attrs["job_text"], "attributes missing")
expect(len(launches) == 1 and launches[0]["ranks"] == 4 and launches[0]["ended"] == b"completed", str(launches))
# Curves: each DONE row points at its own slice of /curves.
import h5py  # noqa: E402
with h5py.File(out, "r") as f:
    steps, loss = f["curves/step"][:], f["curves/loss"][:]
    for row in trials[:20]:
        o, n = int(row["curve_offset"]), int(row["curve_length"])
        expect(n > 0 and steps[o + n - 1] <= row["steps"], "curve slice broken")

dump = subprocess.run(["h5dump", "-H", out], capture_output=True, text=True)
expect(dump.returncode == 0 and 'DATASET "trials"' in dump.stdout, dump.stderr)
dump = subprocess.run(["h5dump", "-d", "/trials", "-s", "0", "-c", "1", out], capture_output=True, text=True)
expect(dump.returncode == 0 and ("DONE" in dump.stdout or "DIVERGED" in dump.stdout), dump.stdout[:2000])

again = hpsweep("run", job, "--out", out, ranks=4)
expect("0 to run" in again.stdout, again.stdout)
trials2, *_ = read_trials(out)
expect(len(trials2) == len(trials), "a rerun added rows")
status = hpsweep("status", out)
expect("384 of 384 trials finished" in status.stdout, status.stdout)
print("ok: 384 trials over 3 MPI workers, each id once; h5py and h5dump read the file; rerun ran nothing")
