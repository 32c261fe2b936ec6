"""A sweep file written by the first release (schema 1: no trial variant or backend details) still
works: this version reads it, resumes it without rerunning anything, rewrites it in the current
layout with every stored result unchanged, extends it with new grid points, and fits it.
The fixture tests/fixtures/v1-sweep.h5 was written by hpsweep 0.1.0 from tests/fixtures/v1-sweep.ini."""
import json
import os
import shutil
import sys

import h5py

sys.path.insert(0, os.path.dirname(__file__))
from e2e import SOURCE_DIR, expect, hpsweep, tempdir, write  # noqa: E402

d = tempdir()
fixtures = os.path.join(SOURCE_DIR, "tests", "fixtures")
job = os.path.join(fixtures, "v1-sweep.ini")
out = os.path.join(d, "s.h5")
shutil.copy(os.path.join(fixtures, "v1-sweep.h5"), out)

with h5py.File(out, "r") as f:
    expect(f.attrs["schema_version"] == 1 and "variant" not in f["trials"].dtype.names, "the fixture is not a schema-1 file")


def trials():
    rows = [json.loads(line) for line in hpsweep("export", out).stdout.splitlines()]
    return {r["id"]: (r["final_loss"], r["smooth_loss"], r["state"], r["variant"], r["details"]) for r in rows}


before = trials()
expect(len(before) == 72, f"{len(before)} trials read from the schema-1 file")
status = hpsweep("status", out)
expect("72 of 72 trials finished" in status.stdout, status.stdout)

# Resume: nothing runs, the file is rewritten in the current layout, every result is unchanged.
again = hpsweep("run", job, "--out", out, "--progress", "none")
expect("layout of schema 4" in again.stdout + again.stderr, again.stdout + again.stderr)
with h5py.File(out, "r") as f:
    expect(f.attrs["schema_version"] == 4 and "variant" in f["trials"].dtype.names, "the file was not upgraded")
    expect(len(f["trials"]) == 72, f"{len(f['trials'])} rows after a resume that had nothing to run")
expect(trials() == before, "a stored result changed when the schema-1 file was rewritten")

# Extend: 24 new points run, the 72 old ones stay as they were.
bigger = write(os.path.join(d, "bigger.ini"), open(job).read().replace("batch = 16, 64, 256", "batch = 16, 64, 256, 1024"))
hpsweep("run", bigger, "--out", out, "--progress", "none", "--extend")
after = trials()
expect(len(after) == 96, f"{len(after)} trials after extending")
expect(all(after[k] == v for k, v in before.items()), "extending changed a result of the schema-1 file")
fit = hpsweep("fit", out, "--resamples", "50", "--no-store")
expect("laws" in fit.stdout, fit.stdout)
print("ok: schema-1 file read, resumed with nothing rerun, upgraded with 72 results unchanged, extended to 96, fitted")
