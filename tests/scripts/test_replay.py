"""hpsweep replay on a finished surrogate sweep run with mpirun: every stored fit re-fits bit for bit,
the timeline is printed, and the what-if simulation (the real master loop on simulated workers)
predicts the measured makespan of the real 4-rank run within 10%. Also: exporting a sweep as CSV
and ingesting that CSV back into it adds nothing."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
from e2e import SOURCE_DIR, expect, hpsweep, read_trials, tempdir, write  # noqa: E402

d = tempdir()
job = write(os.path.join(d, "job.ini"), """
[sweep]
name = replay-e2e
[scales]
params = 1e7, 3e7, 1e8
tokens_per_param = 20, 60
[grid]
lr = log:2.5e-4:3.2e-2:8
batch = 32, 64, 128, 256
[backend]
kind = surrogate
[surrogate]
sleep_per_pflop = 1.5e-4
[target]
params = 7e9
tokens = 1.4e12
""")
out = os.path.join(d, "s.h5")
hpsweep("run", job, "--out", out, "--progress", "none", ranks=4)
hpsweep("fit", out, "--resamples", "300")
hpsweep("fit", out, "--select", "bowl", "--resample", "cells", "--name", "bowl")

r = hpsweep("replay", out)
expect("latest: identical, bit for bit" in r.stdout and "bowl: identical, bit for bit" in r.stdout, r.stdout)
expect("timeline" in r.stdout and re.search(r"^\s+192\s+100%", r.stdout, re.M), r.stdout)

# What-if at the real allocation vs the measured run.
trials, grid, attrs, launches = read_trials(out)
measured = max(t["start_time"] + t["wall_time"] for t in trials) - min(t["start_time"] for t in trials)
w = hpsweep("replay", out, "--what-if", "--ranks", "4,8")
m = re.search(r"^\s+4\s+3\s+([\d.]+)s", w.stdout, re.M)
expect(m, w.stdout)
simulated = float(m.group(1))
expect(abs(simulated / measured - 1) < 0.10, f"simulated {simulated} s vs measured {measured:.2f} s")

# export -> ingest round trip adds nothing.
csv = os.path.join(d, "export.csv")
hpsweep("export", out, "--csv", "--out", csv)
ing_out = os.path.join(d, "ingested.h5")
m = "lr=lr,batch=batch,loss=smooth_loss,final_loss=final_loss,params=params,tokens=tokens,seq_len=seq_len,wd=wd"
first = hpsweep("ingest", csv, "--into", ing_out, "--map", m)
expect("192 imported" in first.stdout, first.stdout)
hpsweep("export", ing_out, "--csv", "--out", csv)
again = hpsweep("ingest", csv, "--into", ing_out, "--map", m)
expect("0 imported" in again.stdout and "192 already" in again.stdout, again.stdout)
print(f"ok: 2 fits identical on re-fit; what-if {simulated:.2f} s vs measured {measured:.2f} s; round trip adds nothing")
