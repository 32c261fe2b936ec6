"""hpsweep ingest + fit on the released Step Law sweep (1,911 real dense runs, 17 (N, D) cells)
reproduces the Step Law procedure as computed independently here with numpy: every run within
0.25% of its cell's best smooth loss is selected, ln(lr) is regressed on [1, ln N, ln D] and
ln(batch in tokens) on [1, ln D] by ordinary least squares, and the target prediction is the
fitted power law evaluated at (N, D). What the user relies on: re-ingesting the same CSV adds
nothing, the point estimates hpsweep reports are exactly that regression (not something
merely close to it), its bootstrap intervals bracket the estimates and are about as wide as
an independent bootstrap's, and `hpsweep predict --law steplaw` evaluates the published law.

Run with /usr/bin/python3 (needs numpy and h5py):
    HPSWEEP=build/release/hpsweep SOURCE_DIR=. /usr/bin/python3 tests/scripts/test_steplaw_reference.py
"""
import collections
import csv
import json
import math
import os
import re
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.environ.get("SOURCE_DIR", os.path.dirname(os.path.dirname(_HERE)))
os.environ.setdefault("HPSWEEP", os.path.join(_ROOT, "build", "release", "hpsweep"))

sys.path.insert(0, _HERE)
from e2e import STEPLAW_CSV, SOURCE_DIR, expect, hpsweep, tempdir  # noqa: E402

try:
    import numpy as np  # Debian python3-numpy
except ImportError:  # pragma: no cover
    sys.exit("this test needs numpy: apt-get install python3-numpy, and run it with /usr/bin/python3")

CSV = STEPLAW_CSV
SEQ_LEN = 2048          # README: bs is in sequences of 2,048 tokens
EPS = 0.0025            # within:0.25%
DIVERGED_RATIO = 1.5    # hpsweep ingest default --diverged-ratio
TARGET_N, TARGET_D = 7e9, 1.4e12
RESAMPLES = 1000
expect(os.path.isfile(CSV), f"Step Law data not found at {CSV}")


def cli(*args, **kw):
    """Run the CLI; if the binary is momentarily missing or busy (someone relinking), retry."""
    for attempt in range(30):
        try:
            return hpsweep(*args, **kw)
        except OSError as e:  # FileNotFoundError, ETXTBSY: the command never started
            if attempt == 29:
                raise AssertionError(f"cannot start {os.environ['HPSWEEP']}: {e}")
            time.sleep(2)


def rel(a, b):
    return abs(a - b) / abs(b)


def sig4(x):
    return float(f"{x:.4g}")


# ---------------------------------------------------------------- 1. ingest, twice
d = tempdir()
h5 = os.path.join(d, "sl.h5")
MAP = "lr=lr,batch=bs,loss=smooth loss,final_loss=loss,params=N,tokens=D,steps=ti"
SUMMARY = re.compile(r"(\d+) rows read; (\d+) imported .*?(\d+) already in")

first = cli("ingest", CSV, "--into", h5, "--map", MAP)
m = SUMMARY.search(first.stdout)
expect(m is not None, f"no ingest summary line:\n{first.stdout}\n{first.stderr}")
expect((int(m[1]), int(m[2]), int(m[3])) == (1911, 1911, 0), f"first ingest: {first.stdout}")

second = cli("ingest", CSV, "--into", h5, "--map", MAP)
m = SUMMARY.search(second.stdout)
expect(m is not None, f"no ingest summary line:\n{second.stdout}\n{second.stderr}")
expect((int(m[1]), int(m[2]), int(m[3])) == (1911, 0, 1911), f"second ingest is not idempotent: {second.stdout}")

# ---------------------------------------------------------------- 2. hpsweep fit --json
helptext = cli("fit", "--help").stdout
for opt in ("--select", "--resamples", "--json", "--target-params", "--target-tokens", "--no-store"):
    expect(opt in helptext, f"fit --help does not list {opt}:\n{helptext}")
fit = cli("fit", h5, "--select", "within:0.25%", "--resamples", RESAMPLES, "--json",
          "--target-params", "7e9", "--target-tokens", "1.4e12", "--no-store")
try:
    out = json.loads(fit.stdout)
except ValueError as e:
    raise AssertionError(f"fit --json is not JSON ({e}):\n{fit.stdout[:2000]}")
lr_c = out["laws"]["lr"]["coefficients"]
bs_c = out["laws"]["batch"]["coefficients"]
expect(set(lr_c) >= {"lr_coef", "lr_n_exp", "lr_d_exp"}, f"lr coefficients: {sorted(lr_c)}")
expect(set(bs_c) >= {"batch_coef", "batch_d_exp"}, f"batch coefficients: {sorted(bs_c)}")

# ---------------------------------------------------------------- 3. independent reference
with open(CSV, newline="") as f:
    rows = list(csv.DictReader(f))
expect(len(rows) == 1911, f"CSV has {len(rows)} rows")
cells = collections.defaultdict(list)
for r in rows:
    loss = float(r["smooth loss"])
    if math.isfinite(loss):
        cells[(float(r["N"]), float(r["D"]))].append((loss, float(r["lr"]), float(r["bs"]) * SEQ_LEN))
expect(len(cells) == 17, f"{len(cells)} (N, D) cells in the CSV")

sel = []                 # (N, D, lr, batch_tokens) of every selected run
ref_counts = {}
for (n, dd), runs in sorted(cells.items()):
    lmin = min(l for l, _, _ in runs)
    chosen = [(lr, b) for l, lr, b in runs if abs(l / lmin - 1) < EPS]
    # hpsweep marks runs with loss > 1.5x the cell minimum DIVERGED; none of those can be within 0.25%.
    expect(all(l <= DIVERGED_RATIO * lmin for l, _, _ in runs if abs(l / lmin - 1) < EPS),
           f"cell {n:g},{dd:g}: a selected run would be DIVERGED")
    ref_counts[(n, dd)] = len(chosen)
    sel += [(n, dd, lr, b) for lr, b in chosen]
S = np.array(sel, dtype=float)
lnN, lnD, lnlr, lnB = np.log(S[:, 0]), np.log(S[:, 1]), np.log(S[:, 2]), np.log(S[:, 3])
X_lr = np.column_stack([np.ones(len(S)), lnN, lnD])
X_bs = np.column_stack([np.ones(len(S)), lnD])


def ols(X, y):
    return np.linalg.lstsq(X, y, rcond=None)[0]


beta_lr = ols(X_lr, lnlr)
beta_bs = ols(X_bs, lnB)
ref = {"lr_coef": math.exp(beta_lr[0]), "lr_n_exp": beta_lr[1], "lr_d_exp": beta_lr[2],
       "batch_coef": math.exp(beta_bs[0]), "batch_d_exp": beta_bs[1]}

# Selected points: per cell and in total.
hp_counts = {(float(c["params"]), float(c["tokens"])): int(c["selected"]) for c in out["cells"]}
expect(hp_counts == ref_counts,
       "per-cell selected counts differ:\n" + "\n".join(
           f"  N={k[0]:g} D={k[1]:g}: hpsweep {hp_counts.get(k)} reference {ref_counts.get(k)}"
           for k in sorted(set(hp_counts) | set(ref_counts)) if hp_counts.get(k) != ref_counts.get(k)))
expect(sum(hp_counts.values()) == len(S), f"total selected: hpsweep {sum(hp_counts.values())}, reference {len(S)}")
for law in ("lr", "batch"):
    expect(out["laws"][law]["points"] == len(S), f"{law} law used {out['laws'][law]['points']} points, reference {len(S)}")

# Point estimates: exponents to 1e-9 absolute, multipliers to 1e-9 relative.
got = {**{k: lr_c[k]["estimate"] for k in ("lr_coef", "lr_n_exp", "lr_d_exp")},
       **{k: bs_c[k]["estimate"] for k in ("batch_coef", "batch_d_exp")}}
for k in ("lr_n_exp", "lr_d_exp", "batch_d_exp"):
    expect(abs(got[k] - ref[k]) < 1e-9, f"{k}: hpsweep {got[k]!r}, reference {ref[k]!r}, diff {got[k] - ref[k]:.3g}")
for k in ("lr_coef", "batch_coef"):
    expect(rel(got[k], ref[k]) < 1e-9, f"{k}: hpsweep {got[k]!r}, reference {ref[k]!r}, rel diff {rel(got[k], ref[k]):.3g}")

# ---------------------------------------------------------------- 4. intervals
coefs = {**lr_c, **bs_c}
for k in ref:
    c = coefs[k]
    expect(c["lo"] < c["estimate"] < c["hi"], f"{k}: estimate {c['estimate']} outside [{c['lo']}, {c['hi']}]")
for k in ("lr_n_exp", "lr_d_exp", "batch_d_exp"):
    c = coefs[k]
    expect(c["lo"] <= c["mean"] <= c["hi"], f"{k}: bootstrap mean {c['mean']} outside [{c['lo']}, {c['hi']}]")

rng = np.random.default_rng(20250315)
boot = {"lr_n_exp": [], "lr_d_exp": [], "batch_d_exp": []}
for _ in range(RESAMPLES):
    i = rng.integers(0, len(S), len(S))
    b1, b2 = ols(X_lr[i], lnlr[i]), ols(X_bs[i], lnB[i])
    boot["lr_n_exp"].append(b1[1])
    boot["lr_d_exp"].append(b1[2])
    boot["batch_d_exp"].append(b2[1])
widths = {}
for k, v in boot.items():
    lo, hi = np.percentile(v, [2.5, 97.5])
    mine, theirs = hi - lo, coefs[k]["hi"] - coefs[k]["lo"]
    widths[k] = (theirs, mine)
    expect(mine / 1.5 <= theirs <= mine * 1.5,
           f"{k}: hpsweep 95% interval width {theirs:.4g}, independent bootstrap {mine:.4g} ([{lo:.4g}, {hi:.4g}])")

# ---------------------------------------------------------------- 5. prediction at the target
pred = out["prediction"]
ref_lr = math.exp(np.dot(beta_lr, [1.0, math.log(TARGET_N), math.log(TARGET_D)]))
ref_bt = math.exp(np.dot(beta_bs, [1.0, math.log(TARGET_D)]))
expect(rel(pred["lr"]["estimate"], ref_lr) < 1e-9, f"predicted lr: hpsweep {pred['lr']['estimate']!r}, reference {ref_lr!r}")
expect(rel(pred["batch_tokens"]["estimate"], ref_bt) < 1e-9,
       f"predicted batch: hpsweep {pred['batch_tokens']['estimate']!r} tokens, reference {ref_bt!r}")

# ---------------------------------------------------------------- 6. the published law
pub_lr = 1.79 * TARGET_N ** -0.713 * TARGET_D ** 0.307
pub_bt = 0.58 * TARGET_D ** 0.571
p = cli("predict", "--law", "steplaw", "--params", "7e9", "--tokens", "1.4e12").stdout
m_lr = re.search(r"^\s*lr\s+([0-9.eE+-]+)", p, re.M)
m_bt = re.search(r"^\s*batch\s+([0-9.eE+-]+)\s+tokens", p, re.M)
expect(m_lr is not None and m_bt is not None, f"cannot read predict output:\n{p}")
expect(sig4(float(m_lr[1])) == sig4(pub_lr) == 0.0009166, f"predict lr {m_lr[1]}, published law gives {pub_lr:.6g}")
expect(sig4(float(m_bt[1])) == sig4(pub_bt) == 4.999e6, f"predict batch {m_bt[1]} tokens, published law gives {pub_bt:.6g}")
# hp-laws.md's worked example (9.35e-4) uses the unrounded bootstrap means of the paper.
unrounded = 1.797 * TARGET_N ** -0.7129 * TARGET_D ** 0.3075
expect(abs(unrounded - 9.35e-4) < 0.005e-4, f"unrounded Step Law lr {unrounded:.4g}, hp-laws.md says 9.35e-4")

print(f"ok: ingest 1911 then 0 new; {len(S)} runs within 0.25% over {len(cells)} cells; reference OLS "
      f"lr = {ref['lr_coef']:.5g} N^{ref['lr_n_exp']:.6f} D^{ref['lr_d_exp']:.6f}, "
      f"B = {ref['batch_coef']:.5g} D^{ref['batch_d_exp']:.6f} tokens, matched by hpsweep to 1e-9; "
      "95% widths hpsweep/numpy " + ", ".join(f"{k} {t:.3f}/{w:.3f}" for k, (t, w) in widths.items())
      + f"; target lr {ref_lr:.4g}, batch {ref_bt:.4g} tokens; published law lr {pub_lr:.4g}")
