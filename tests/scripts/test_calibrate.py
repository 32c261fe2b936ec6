"""`hpsweep calibrate jobs/example.ini`: the coverage study a user runs on their own design.
It simulates replicate sweeps of exactly the job's grid from ground truths with known laws
(symmetric, 2:1 asymmetric and cubic learning-rate penalties), fits each with the default
selection and reports bias, RMSE and coverage of the 95% intervals. What the user relies on:
the default fit's prediction interval for ln lr* at the target covers the truth at about the
nominal rate with little bias, the old symmetric bowl is shown to be biased on a lopsided
landscape, the study is deterministic and it takes seconds. Also: calibrate reads a sweep file.

Run with /usr/bin/python3:
    HPSWEEP=build/release/hpsweep SOURCE_DIR=. /usr/bin/python3 tests/scripts/test_calibrate.py
"""
import json
import os
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
from e2e import SOURCE_DIR, expect, hpsweep, tempdir, write  # noqa: E402

JOB = os.path.join(SOURCE_DIR, "jobs", "example.ini")


def quantity(report, truth, noise, name):
    for c in report["conditions"]:
        if c["truth"] == truth and abs(c["noise"] - noise) < 1e-12:
            for q in c["quantities"]:
                if q["name"] == name:
                    return q
    raise AssertionError(f"no {name} for {truth} at noise {noise}")


t0 = time.time()
out = hpsweep("calibrate", JOB, "--replicates", 60, "--noise", "0.15%,0.5%", "--json").stdout
seconds = time.time() - t0
report = json.loads(out)
expect(report["selection"].startswith("asym"), f"the default selection is {report['selection']}")
expect(report["design"]["cells"] == 12 and report["design"]["points"] == 4 * 3 * 15 * 8,
       f"the design is not the job's grid: {report['design']}")
expect(len(report["conditions"]) == 6, f"{len(report['conditions'])} conditions, expected 3 truths x 2 noises")
PRED = "ln lr* at target (prediction)"
for truth in ("symmetric", "asymmetric", "cubic"):
    for noise in (0.0015, 0.005):
        q = quantity(report, truth, noise, PRED)
        expect(0.85 <= q["coverage"] <= 1.0, f"{truth} {noise}: coverage {q['coverage']} of {PRED}")
        for name in ("lr_n_exp", "lr_d_exp", "batch_d_exp"):
            c = quantity(report, truth, noise, name)["coverage"]
            expect(0.85 <= c <= 1.0, f"{truth} {noise}: coverage {c} of {name}")
    for noise in (0.0015, 0.005):
        q = quantity(report, truth, noise, PRED)
        expect(abs(q["bias"]) <= 0.03, f"{truth}: bias {q['bias']} of {PRED} at noise {noise}")
    q = quantity(report, truth, 0.0015, PRED)
    expect(q["rmse"] <= 0.08, f"{truth}: RMSE {q['rmse']} of {PRED} at 0.15%")
expect(seconds < 60, f"calibrate took {seconds:.1f} s")

# Deterministic: the same study twice gives the same figures.
again = json.loads(hpsweep("calibrate", JOB, "--replicates", 60, "--noise", "0.15%,0.5%", "--json").stdout)
expect(again == report, "two identical studies differ")

# The symmetric bowl of earlier versions, on the surrogate's own lopsided landscape.
bowl = json.loads(hpsweep("calibrate", JOB, "--select", "bowl", "--truth", "asymmetric", "--noise", "0.15%",
                          "--replicates", 40, "--json").stdout)
q = quantity(bowl, "asymmetric", 0.0015, "ln lr* at target (confidence of the law)")
expect(q["bias"] < -0.1 and q["coverage"] < 0.6, f"the old bowl looks unbiased: {q}")

# Text output names what it measures; a sweep file works as the design.
text = hpsweep("calibrate", JOB, "--replicates", 10, "--truth", "cubic", "--noise", "0.3%").stdout
expect("coverage" in text and "truth cubic, noise 0.3%" in text and PRED in text, text)
d = tempdir()
small = write(os.path.join(d, "small.ini"), """[sweep]
name = small
[scales]
params = 2e7, 5e7, 1.2e8
tokens_per_param = 10, 40
[grid]
lr = log:5e-4:2e-2:9
batch = 8, 16, 32, 64, 128, 256
wd = 0.1
[backend]
kind = surrogate
[surrogate]
curve_points = 0
[target]
params = 1e9
tokens = 2e10
""")
h5 = os.path.join(d, "small.h5")
hpsweep("run", small, "--out", h5, "--progress", "none")
from_sweep = json.loads(hpsweep("calibrate", h5, "--replicates", 10, "--truth", "symmetric", "--noise", "0.1%",
                                "--json").stdout)
expect(from_sweep["design"]["cells"] == 6 and from_sweep["design"]["target_params"] == 1e9, str(from_sweep["design"]))
bad = hpsweep("calibrate", JOB, "--truth", "flat", check=False)
expect(bad.returncode != 0 and "unknown ground truth" in bad.stderr, bad.stderr)
print(f"ok: calibrate on jobs/example.ini in {seconds:.1f} s; asym coverage of {PRED} "
      + ", ".join(f"{t} {quantity(report, t, 0.0015, PRED)['coverage']:.2f}" for t in ("symmetric", "asymmetric", "cubic")))
