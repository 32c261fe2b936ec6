"""While a sweep runs, `hpsweep status` reads it and shows progress. SIGTERM to the master drains the
trials in flight, records the launch as interrupted and exits with status 4; rerunning the same
command finishes the sweep with every id once."""
import collections
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from e2e import HPSWEEP, expect, hpsweep, read_trials, tempdir, write  # noqa: E402

d = tempdir()
job = write(os.path.join(d, "live.ini"), """
[sweep]
name = live
[scales]
params = 1e7, 2e7, 4e7
tokens_per_param = 20
[grid]
lr = log:1e-4:1e-2:8
batch = 32, 64, 128
[backend]
kind = surrogate
[surrogate]
sleep_per_pflop = 1e-3
""")
out = os.path.join(d, "s.h5")
cmd = [HPSWEEP, "run", job, "--out", out, "--workers", "2", "--progress", "lines"]
proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

# Status of a file another process is writing.
seen = []
deadline = time.time() + 20
while time.time() < deadline and len(seen) < 2:
    time.sleep(0.5)
    if not os.path.exists(out + ".journal"):
        continue
    s = json.loads(hpsweep("status", out, "--json").stdout)
    finished = s["states"]["DONE"] + s["states"]["DIVERGED"]
    if s["live"] and 0 < finished < s["grid_size"]:
        seen.append(finished)
expect(len(seen) == 2, f"status never showed a running sweep part-way: {seen}")
expect(json.loads(hpsweep("status", out, "--json").stdout)["states"]["RUNNING"] >= 1, "no RUNNING trials shown")

proc.send_signal(signal.SIGTERM)
stdout, stderr = proc.communicate(timeout=60)
expect(proc.returncode == 4, f"exit {proc.returncode}\n{stdout}\n{stderr}")
expect("interrupted; rerun the same command to resume" in stdout, stdout)
trials, grid, attrs, launches = read_trials(out)
expect(launches[-1]["ended"] == b"interrupted" and launches[-1]["end_time"] > 0, str(launches))
expect(len(trials) < len(grid), "the sweep finished before the signal: make it longer")
expect(all(s in (2, 3) for s in trials["state"]), "drained trials must all be finished, none LOST")

hpsweep(*cmd[1:])
trials, grid, attrs, launches = read_trials(out)
ids = collections.Counter(int(i) for i in trials["id"])
expect(set(ids) == set(int(i) for i in grid["id"]) and max(ids.values()) == 1, "ids not exactly once")
expect([l["ended"] for l in launches] == [b"interrupted", b"completed"], str(launches))
print(f"ok: status read a live sweep at {seen} finished; SIGTERM drained to {len(trials)} rows; resume completed")
