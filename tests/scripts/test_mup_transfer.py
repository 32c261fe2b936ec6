"""The muP transfer job end to end, on real ranks and the real proxy trainer: a learning-rate sweep
over widths under SP and muP (jobs/mup-transfer.ini, shrunk to widths 32-256 and 200 steps) runs
under mpirun; every trial carries its variant and the per-group hyperparameters it applied
(read back with h5py); `hpsweep fit --transfer` separates SP (kappa clearly negative) from muP
(kappa near 0, its interval covering 0, disjoint from SP's); `coordcheck` on the sweep file stores its slopes; `replay`
re-fits both stored results bit for bit; a scaling-law fit on the mixed sweep is refused with a
clear message; `hpsweep report` draws the transfer section. Exit status 77 (skipped) when gnuplot is
missing, after every other check has passed."""
import json
import os
import shutil
import sys
import xml.etree.ElementTree as ET

import h5py

sys.path.insert(0, os.path.dirname(__file__))
from e2e import SOURCE_DIR, expect, hpsweep, tempdir, write  # noqa: E402

d = tempdir()
text = open(os.path.join(SOURCE_DIR, "jobs", "mup-transfer.ini")).read()
for old, new in [("params = 65536, 262144, 1048576, 4194304", "params = 16384, 65536, 262144, 1048576"),
                 ("tokens = 9600", "tokens = 6400"),
                 ("lr = log:3e-4:3e-1:13", "lr = log:5.6e-4:1e-1:10")]:
    expect(old in text, f"jobs/mup-transfer.ini no longer contains '{old}'")
    text = text.replace(old, new)
job = write(os.path.join(d, "job.ini"), text)
out = os.path.join(d, "t.h5")
hpsweep("run", job, "--out", out, "--progress", "none", ranks=3)

# Every trial: its variant, and the Adam lr each parameter group actually got.
with h5py.File(out, "r") as f:
    trials = f["trials"][:]
    variants = {v.decode() for v in trials["variant"]}
    expect(variants == {"sp", "mup"}, f"variants in /trials: {variants}")
    checked = 0
    for t in trials:
        if t["state"] != 2:
            continue
        details = json.loads(t["details"].decode())
        groups = {g["name"]: g for g in details["groups"]}
        m = details["width"] / 64  # base_width in the job
        want = t["lr"] / m if t["variant"].decode() == "mup" else t["lr"]
        got = groups["hidden.w1"]["lr"]
        expect(abs(got / want - 1) < 1e-12, f"hidden lr {got}, want {want} ({details['parametrization']}, width {details['width']})")
        expect(groups["input"]["lr"] == t["lr"], f"input lr {groups['input']['lr']} vs {t['lr']}")
        checked += 1
    expect(checked > 100, f"only {checked} finished trials")

# Scaling laws on a mix of parametrizations make no sense: refused, with the way out named.
mixed = hpsweep("fit", out, check=False)
expect(mixed.returncode == 2 and "--variant" in mixed.stderr, f"{mixed.returncode}: {mixed.stderr}")

fit = hpsweep("fit", out, "--transfer", "--json", "--resamples", "400")
r = json.loads(fit.stdout)
kappa = {g["parametrization"]: g["lr_law"]["kappa"] for g in r["groups"]}
sp, mup = kappa["sp"], kappa["mup"]
expect(sp["estimate"] < -0.6, f"SP kappa {sp}")
expect(abs(mup["estimate"]) < 0.2, f"muP kappa {mup}")
# The intervals are Student-t with widths - 2 = 2 degrees of freedom, scaled by the scatter of
# the widths' optima about the power law. They separate the two parametrizations; muP's covers 0.
# SP's need not cover -1: with the global lr on the input and output layers too, this trainer's SP
# optimum falls a little faster than 1/width (README, "Measuring transfer across widths").
expect(sp["hi"] < mup["lo"], f"SP and muP kappa intervals overlap: {sp} {mup}")
expect(-1.4 <= sp["estimate"] <= -0.8, f"SP kappa {sp} far from Adam's -1")
expect(mup["lo"] <= 0.0 <= mup["hi"], f"muP kappa interval misses 0: {mup}")
expect(mup["hi"] - mup["lo"] < 1.0, f"muP kappa interval uninformative: {mup}")
mup_group = next(g for g in r["groups"] if g["parametrization"] == "mup")
expect(mup_group["to_target"] is not None and r["target_width"] == 4096, f"no per-group table at the target: {r['target_width']}")

cc = hpsweep("coordcheck", out, "--widths", "32,64,128", "--steps", "5", "--seeds", "1")
expect("stored as /fits/coordcheck" in cc.stdout, cc.stdout)
with h5py.File(out, "r") as f:
    expect("transfer" in f["fits"] and "coordcheck" in f["fits"], f"fits stored: {list(f['fits'])}")

rep = hpsweep("replay", out, "--refit")
expect("transfer: identical, bit for bit" in rep.stdout and "coordcheck: identical, bit for bit" in rep.stdout, rep.stdout)
# The report shows the transfer: optimum vs width with the fitted kappa, the curves, the coord check.
report = os.path.join(d, "report")
hpsweep("report", out, "--out", report, "--resamples", "100")
html = open(os.path.join(report, "index.html"), encoding="utf-8").read()
expect("Transfer across widths" in html and "κ = " in html, "the report has no transfer section")
for name in ["transfer_lr_vs_width", "transfer_curves_1_mup", "transfer_curves_2_sp", "coordcheck_1_mup", "coordcheck_2_sp"]:
    base = os.path.join(report, "figures", name)
    expect(os.path.isfile(base + ".gp") and os.path.isfile(base + ".dat"), f"{name}: no script or data")
    if shutil.which("gnuplot"):
        root = ET.parse(base + ".svg").getroot()
        expect(root.tag.endswith("svg"), f"{name}.svg is not SVG")
        expect(f"figures/{name}.svg" in html, f"index.html does not show {name}")

if not shutil.which("gnuplot"):
    print("SKIP: gnuplot is not installed (apt-get install gnuplot-nox): the transfer figures were not checked; "
          "every other check passed")
    sys.exit(77)
print(f"ok: kappa SP {sp['estimate']:.3f} [{sp['lo']:.3f}, {sp['hi']:.3f}], "
      f"muP {mup['estimate']:.3f} [{mup['lo']:.3f}, {mup['hi']:.3f}]; {checked} trials' group lrs checked")
