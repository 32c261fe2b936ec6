"""Bad job files: a clear error naming file, line and key, exit status 2, nothing written.
Bad output files: refused with exit status 3 and left byte-for-byte untouched."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from e2e import expect, hpsweep, read_trials, tempdir, write  # noqa: E402

d = tempdir()
GOOD = """[sweep]
name = cli
[scales]
params = 1e7
tokens = 1e9
[grid]
lr = 1e-3, 3e-3
batch = 32
[backend]
kind = surrogate
"""
cases = {
    "unknown key": (GOOD.replace("batch = 32", "bacth = 32"), ["bad.ini:8", "unknown key 'bacth'", "did you mean 'batch'"]),
    "missing key": (GOOD.replace("lr = 1e-3, 3e-3\n", ""), ["missing required key 'lr' in section [grid]"]),
    "malformed number": (GOOD.replace("1e-3, 3e-3", "1e-3, 3e-3q"), ["bad.ini:7: [grid] lr: malformed number '3e-3q'"]),
    "malformed range": (GOOD.replace("1e-3, 3e-3", "log:1e-4:1e-1"), ["bad.ini:7", "malformed range"]),
    "non-positive lr": (GOOD.replace("1e-3, 3e-3", "0, 3e-3"), ["bad.ini:7: [grid] lr: values must be positive"]),
    "non-positive batch": (GOOD.replace("batch = 32", "batch = -32"), ["[grid] batch: values must be positive"]),
    "non-positive size": (GOOD.replace("params = 1e7", "params = 0"), ["[scales] params: values must be positive"]),
    "empty grid": (GOOD.replace("batch = 32", "batch ="), ["bad.ini:8: [grid] batch: empty list"]),
    "duplicate values": (GOOD.replace("1e-3, 3e-3", "1e-3, 0.001"), ["duplicate value"]),
}
for name, (text, needles) in cases.items():
    job = write(os.path.join(d, "bad.ini"), text)
    out = os.path.join(d, "never.h5")
    for ranks in (None, 4):
        p = hpsweep("run", job, "--out", out, ranks=ranks, check=False)
        expect(p.returncode == 2, f"{name} (ranks={ranks}): exit {p.returncode}\n{p.stderr}")
        for n in needles:
            expect(n in p.stderr, f"{name}: '{n}' not in:\n{p.stderr}")
        expect(not os.path.exists(out) and not os.path.exists(out + ".journal"), f"{name}: something was written")

# An existing file that is not a sweep is refused and left alone.
good = write(os.path.join(d, "good.ini"), GOOD)
notes = write(os.path.join(d, "notes.h5"), "important notes, not HDF5")
p = hpsweep("run", good, "--out", notes, check=False)
expect(p.returncode == 3 and "not a readable HDF5 file" in p.stderr, p.stderr)
expect(open(notes).read() == "important notes, not HDF5", "the file was modified")

# A sweep file from a different job is refused with what differs, and not modified.
out = os.path.join(d, "s.h5")
hpsweep("run", good, "--out", out)
finished, _, _, _ = read_trials(out)
expect(len(finished) == 2 and all(t["state"] == 2 for t in finished), f"the sweep did not finish: {finished}")
before, journal_before = open(out, "rb").read(), open(out + ".journal", "rb").read()
other = write(os.path.join(d, "other.ini"), GOOD.replace("[sweep]\n", "[sweep]\nseed = 99\n"))
p = hpsweep("run", other, "--out", out, ranks=4, check=False)
expect(p.returncode == 3 and "sweep.seed: stored 0, now 99" in p.stderr, p.stderr)
expect(open(out, "rb").read() == before, "the sweep file was modified")
bigger = write(os.path.join(d, "bigger.ini"), GOOD.replace("batch = 32", "batch = 32, 64"))
p = hpsweep("run", bigger, "--out", out, check=False)
expect(p.returncode == 3 and "--extend" in p.stderr, p.stderr)
expect(open(out, "rb").read() == before, "a refused --extend modified the sweep file")
expect(open(out + ".journal", "rb").read() == journal_before, "a refused --extend modified the journal")
p = hpsweep("run", bigger, "--out", out, "--extend")
expect("2 to run" in p.stdout, p.stdout)
extended, _, _, _ = read_trials(out)
expect(len(extended) == 4, f"{len(extended)} rows after --extend, expected 4")
changed = [(i, f) for i in range(2) for f in finished.dtype.names if str(finished[i][f]) != str(extended[i][f])]
expect(not changed, f"--extend changed the finished trials' rows: {changed}")
print(f"ok: {len(cases)} bad job files x 2 launch modes, 3 refused outputs")
