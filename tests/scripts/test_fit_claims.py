"""The README's claims about `hpsweep fit` that no other test covers, one claim per ctest test
(the first argument names it), each on a small surrogate sweep or a constructed CSV or run
directory, checked against an independent numpy computation or the surrogate's ground truth:

  tau          weight decay swept: the timescale law tau = B/(lr wd D) = c (D/N)^m is the OLS of the
               selected runs, covers the surrogate's true exponent, and the predicted weight decay is
               B/(lr D tau(D/N)); weight decay not swept: no tau law, no weight decay predicted
  compute      the compute form: lr and B as powers of C = 6ND, or of M*D with --flops-per-token M
  batch_n      --batch-n-term adds N to the batch law, in the fit and in the prediction
  bowl3d       --select bowl with weight decay swept over 3+ values fits ln(wd) too: the cell optima
               are interpolated weight decays near the surrogate's true optimum; with 2 values, not
  warnings     far target, cells below 2e15 FLOPs, fewer than 5 cells, and point intervals narrower
               than half of what resampling whole cells gives (--select within:0.25% explicitly)
  unfinished   an ingested run directory that did not reach its target step is stored with
               finished = 0 and left out of the fit

Run with /usr/bin/python3 (needs numpy):
    HPSWEEP=build/release/hpsweep /usr/bin/python3 tests/scripts/test_fit_claims.py tau
"""
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from e2e import expect, hpsweep, tempdir, write  # noqa: E402

try:
    import numpy as np  # Debian python3-numpy
except ImportError:  # pragma: no cover
    sys.exit("this test needs numpy: apt-get install python3-numpy, and run it with /usr/bin/python3")

D = tempdir()
WITHIN = "within:0.25%"
EPS = 0.0025
# The surrogate's defaults (src/backends/backend.cpp): the ground truth of every sweep below.
TRUE_LR = (1.79, -0.713, 0.307)      # lr* = c N^a D^b
TRUE_BATCH = (0.58, 0.571)           # B* = c D^b tokens
TRUE_TAU = (1.0, -0.53)              # tau* = c (D/N)^m


def surrogate_sweep(name, params="2e7, 5e7, 1.2e8", tpp="10, 40", wd="0.025, 0.05, 0.1, 0.2, 0.4",
                    lr="log:2.5e-4:4e-2:9", batch="16, 32, 64, 128, 256", extra=""):
    job = write(os.path.join(D, name + ".ini"), f"""[sweep]
name = {name}
seed = 7
[scales]
params = {params}
tokens_per_param = {tpp}
seq_len = 2048
[grid]
lr = {lr}
batch = {batch}
wd = {wd}
[backend]
kind = surrogate
[surrogate]
noise = 0.0002
sleep_per_pflop = 0
curve_points = 16
{extra}
""")
    out = os.path.join(D, name + ".h5")
    hpsweep("run", job, "--out", out, "--workers", "2", "--progress", "none")
    return out


def fit_json(path, *args):
    return json.loads(hpsweep("fit", path, "--json", "--no-store", "--resamples", "200", *args).stdout)


def coef(law, name):
    return law["coefficients"][name]["estimate"]


def rel(a, b):
    return abs(a - b) / abs(b)


def selected_runs(path):
    """The Step Law selection, computed here: per (N, D) cell with 3 or more finished DONE runs
    with a finite smoothed loss, every run within EPS of the cell's best."""
    cells = {}
    for line in hpsweep("export", path).stdout.splitlines():
        r = json.loads(line)
        if r["state"] == "DONE" and r["finished"] and r["smooth_loss"] is not None:
            cells.setdefault((r["params"], r["tokens"]), []).append(r)
    out = []
    for runs in cells.values():
        if len(runs) < 3:
            continue
        best = min(r["smooth_loss"] for r in runs)
        out += [r for r in runs if abs(r["smooth_loss"] / best - 1) < EPS]
    expect(len(out) > 10, f"only {len(out)} selected runs: the sweep is too small to test anything")
    return out


def ols(columns, y):
    X = np.column_stack([np.ones(len(y)), *columns])
    beta, *_ = np.linalg.lstsq(X, np.log(y), rcond=None)
    return math.exp(beta[0]), *beta[1:]


def check_law(law, names, reference, what):
    for name, ref in zip(names, reference):
        got = coef(law, name)
        expect(rel(got, ref) < 1e-9, f"{what}: {name} = {got!r}, the OLS of the selected runs gives {ref!r}")


def runs_array(runs, key):
    return np.array([r[key] for r in runs], dtype=float)


def tau():
    swept = surrogate_sweep("tau")
    runs = selected_runs(swept)
    N, Dt, lr, B, wd = (runs_array(runs, k) for k in ("params", "tokens", "lr", "batch_tokens", "wd"))
    target = ["--target-params", "7e9", "--target-tokens", "1.4e12"]
    fit = fit_json(swept, "--select", WITHIN, *target)
    law = fit["laws"].get("tau")
    expect(law is not None, f"weight decay was swept but there is no tau law: {sorted(fit['laws'])}")
    check_law(law, ["tau_coef", "tau_exp"], ols([np.log(Dt / N)], B / (lr * wd * Dt)), "tau law")
    m = law["coefficients"]["tau_exp"]
    expect(m["lo"] <= TRUE_TAU[1] <= m["hi"] and m["hi"] < 0,
           f"tau_exp {m['estimate']:.3f} [{m['lo']:.3f}, {m['hi']:.3f}] misses the true {TRUE_TAU[1]}")

    # The prediction: lambda = B / (lr D tau(D/N)) at the target, from the three fitted laws.
    p, (Nt, Dtt) = fit["prediction"], (7e9, 1.4e12)
    expect("wd" in p, f"no weight decay in the prediction: {sorted(p)}")
    tau_t = coef(law, "tau_coef") * (Dtt / Nt) ** coef(law, "tau_exp")
    expected = p["batch_tokens"]["estimate"] / (p["lr"]["estimate"] * Dtt * tau_t)
    expect(rel(p["wd"]["estimate"], expected) < 1e-9, f"predicted wd {p['wd']['estimate']!r}, B/(lr D tau) = {expected!r}")
    expect(p["wd"]["lo"] < p["wd"]["estimate"] < p["wd"]["hi"], f"wd interval {p['wd']}")
    text = hpsweep("fit", swept, "--no-store", "--resamples", "50", "--select", WITHIN, *target).stdout
    expect("weight decay" in text.split("prediction for")[1], f"the text prediction has no weight decay:\n{text}")

    # One weight decay: no timescale law and no weight decay predicted, and the text says why.
    fixed = surrogate_sweep("tau_fixed", wd="0.1", extra="wd_curvature = 0")
    fit = fit_json(fixed, "--select", WITHIN, *target)
    expect("tau" not in fit["laws"] and "wd" not in fit["prediction"], f"tau law from one wd: {sorted(fit['laws'])}")
    text = hpsweep("fit", fixed, "--no-store", "--resamples", "50", "--select", WITHIN).stdout
    expect("weight decay was not swept" in text, f"no note on the missing tau law:\n{text}")
    print(f"ok: tau_exp {m['estimate']:.3f} [{m['lo']:.3f}, {m['hi']:.3f}] (true {TRUE_TAU[1]}), "
          f"predicted wd {p['wd']['estimate']:.4g} = B/(lr D tau)")


def compute():
    swept = surrogate_sweep("compute", wd="0.1", extra="wd_curvature = 0")
    runs = selected_runs(swept)
    N, Dt, lr, B = (runs_array(runs, k) for k in ("params", "tokens", "lr", "batch_tokens"))
    exponents = {}
    for flops, C, form in ((None, 6 * N * Dt, "C = 6ND"), (1.3e8, 1.3e8 * Dt, "C = 1.3e8 * D")):
        fit = fit_json(swept, "--select", WITHIN, *(["--flops-per-token", str(flops)] if flops else []))
        for key, y, names in (("lr_compute", lr, ["lr_c_coef", "lr_c_exp"]),
                              ("batch_compute", B, ["batch_c_coef", "batch_c_exp"])):
            law = fit["laws"].get(key)
            expect(law is not None, f"no {key} law: {sorted(fit['laws'])}")
            expect(law["formula"].endswith(form), f"{key} formula {law['formula']!r} does not end with {form!r}")
            check_law(law, names, ols([np.log(C)], y), f"{key} ({form})")
            exponents[form, key] = coef(law, names[1])
    # Batch grows with compute either way; M*D is not proportional to 6ND here (N varies), so the
    # exponents differ: --flops-per-token is not ignored.
    expect(all(exponents[f, "batch_compute"] > 0 for f in ("C = 6ND", "C = 1.3e8 * D")), f"{exponents}")
    expect(rel(exponents["C = 6ND", "lr_compute"], exponents["C = 1.3e8 * D", "lr_compute"]) > 0.05,
           f"--flops-per-token did not change the lr exponent: {exponents}")
    print("ok: compute-form laws are the OLS over C = 6ND and over C = M*D with --flops-per-token")


def batch_n():
    swept = surrogate_sweep("batch_n", wd="0.1", extra="wd_curvature = 0")
    runs = selected_runs(swept)
    N, Dt, B = (runs_array(runs, k) for k in ("params", "tokens", "batch_tokens"))
    target = ["--target-params", "7e9", "--target-tokens", "1.4e12"]
    plain = fit_json(swept, "--select", WITHIN, *target)
    expect(set(plain["laws"]["batch"]["coefficients"]) == {"batch_coef", "batch_d_exp"},
           f"batch law without --batch-n-term: {sorted(plain['laws']['batch']['coefficients'])}")
    check_law(plain["laws"]["batch"], ["batch_coef", "batch_d_exp"], ols([np.log(Dt)], B), "batch law")
    fit = fit_json(swept, "--select", WITHIN, "--batch-n-term", *target)
    law = fit["laws"]["batch"]
    expect("N^batch_n_exp" in law["formula"], f"--batch-n-term: formula {law['formula']!r}")
    check_law(law, ["batch_coef", "batch_d_exp", "batch_n_exp"], ols([np.log(Dt), np.log(N)], B),
              "batch law with N term")
    expected = coef(law, "batch_coef") * 1.4e12 ** coef(law, "batch_d_exp") * 7e9 ** coef(law, "batch_n_exp")
    got = fit["prediction"]["batch_tokens"]["estimate"]
    expect(rel(got, expected) < 1e-9, f"predicted batch {got!r}, the law with its N term gives {expected!r}")
    expect(rel(got, plain["prediction"]["batch_tokens"]["estimate"]) > 1e-3, "the N term changed nothing")
    print(f"ok: --batch-n-term: batch_n_exp {coef(law, 'batch_n_exp'):.3f}, prediction {got:.4g} tokens")


def bowl3d():
    def true_wd(n, d):
        lr = TRUE_LR[0] * n ** TRUE_LR[1] * d ** TRUE_LR[2]
        return TRUE_BATCH[0] * d ** TRUE_BATCH[1] / (lr * d * TRUE_TAU[0] * (d / n) ** TRUE_TAU[1])

    grid = [0.025, 0.05, 0.1, 0.2, 0.4]
    swept = surrogate_sweep("bowl3d", wd=", ".join(map(str, grid)))
    cells = fit_json(swept, "--select", "bowl")["cells"]
    interpolated = [c for c in cells if min(rel(c["wd"], g) for g in grid) > 1e-6]
    expect(len(interpolated) >= len(cells) - 1,
           f"bowl with 5 weight decays: only {len(interpolated)} of {len(cells)} cells have an interpolated wd: "
           f"{[c['wd'] for c in cells]}")
    for c in interpolated:
        truth = true_wd(c["params"], c["tokens"])
        expect(abs(math.log(c["wd"] / truth)) < math.log(1.4),
               f"cell N={c['params']:g} D={c['tokens']:g}: bowl wd {c['wd']:.4g}, true optimum {truth:.4g}")
    # Two weight decays are too few for a quadratic in ln(wd): the optimum's wd is a swept value.
    two = surrogate_sweep("bowl2d", wd="0.05, 0.2")
    cells2 = fit_json(two, "--select", "bowl")["cells"]
    expect(all(min(rel(c["wd"], g) for g in (0.05, 0.2)) < 1e-9 for c in cells2),
           f"bowl with 2 weight decays interpolated wd: {[c['wd'] for c in cells2]}")
    print(f"ok: 3-D bowl: {len(interpolated)}/{len(cells)} cells with an interpolated wd near the true optimum")


def warnings():
    def far(ws):
        return [w for w in ws if "the largest swept compute" in w]

    def small(ws):
        return [w for w in ws if "below 2e15 FLOPs" in w]

    def few(ws):
        return [w for w in ws if w.startswith("the laws rest on")]

    def narrow(ws):
        return [w for w in ws if "less than half of the interval from resampling whole cells" in w]

    # 4 cells, one of them at 6 * 5e6 * 5e7 = 1.5e15 FLOPs, and a target 6e5x beyond the largest.
    bad = surrogate_sweep("warn_bad", params="5e6, 2e7", wd="0.1", extra="wd_curvature = 0")
    ws = fit_json(bad, "--select", WITHIN, "--target-params", "7e9", "--target-tokens", "1.4e12")["warnings"]
    expect(len(far(ws)) == 1, f"no far-target warning: {ws}")
    expect(small(ws) and small(ws)[0].startswith("1 cells"), f"no warning for the 1 cell below 2e15 FLOPs: {ws}")
    expect(few(ws) and few(ws)[0].startswith("the laws rest on 4 cells"), f"no warning for 4 cells: {ws}")
    # 6 cells all above 2e15 FLOPs and a target 4x the largest swept compute: none of these three.
    good = surrogate_sweep("warn_good", wd="0.1", extra="wd_curvature = 0")
    ws = fit_json(good, "--select", WITHIN, "--target-params", "2.4e8", "--target-tokens", "1e10")["warnings"]
    expect(not far(ws) and not small(ws) and not few(ws), f"warnings on a sound sweep: {ws}")

    # Narrow intervals: runs of a cell agree closely with each other (tiny scatter around the cell's
    # optimum) while the cells scatter around the law, so resampling points cannot see the scatter
    # that resampling whole cells does. Without the per-cell offsets the warning must not appear.
    def csv_sweep(name, cell_scatter):
        rng = np.random.default_rng(5)
        rows = ["lr,bs,loss,N,D"]
        for n in (2e7, 5e7, 1.2e8, 3e8):
            for tpp in (10, 40):
                d = n * tpp
                lr0 = TRUE_LR[0] * n ** TRUE_LR[1] * d ** TRUE_LR[2] * math.exp(cell_scatter * rng.normal())
                b0 = TRUE_BATCH[0] * d ** TRUE_BATCH[1] / 2048 * math.exp(cell_scatter * rng.normal())
                for k in range(12):
                    lr = lr0 * math.exp(0.02 * rng.normal())
                    bs = max(1, round(b0 * math.exp(0.02 * rng.normal())))
                    rows.append(f"{lr:.9g},{bs},{3.0 * (1 + 0.0004 * k):.9g},{n:g},{d:g}")
        csv = write(os.path.join(D, name + ".csv"), "\n".join(rows) + "\n")
        out = os.path.join(D, name + ".h5")
        hpsweep("ingest", csv, "--into", out, "--map", "lr=lr,batch=bs,loss=loss,params=N,tokens=D")
        return out

    clustered = csv_sweep("narrow", cell_scatter=0.3)
    ws = fit_json(clustered, "--select", WITHIN)["warnings"]
    expect(narrow(ws), f"no narrow-interval warning although cells scatter 30% around the law: {ws}")
    fit = fit_json(clustered, "--select", WITHIN)
    for w in narrow(ws):
        name = w.split("the 95% interval of ")[1].split(" ")[0]
        width = float(w.split("(width ")[1].split(")")[0])
        cells_width = float(w.split("resampling whole cells (")[1].split(")")[0])
        c = fit["laws"]["lr"]["coefficients"][name]
        expect(rel(width, c["hi"] - c["lo"]) < 1e-3, f"{w}: the interval of {name} is {c}")
        expect(width < 0.5 * cells_width, w)
    by_cells = fit_json(clustered, "--select", WITHIN, "--resample", "cells")["warnings"]
    expect(not narrow(by_cells), f"--resample cells still warns about narrow intervals: {by_cells}")
    independent = csv_sweep("independent", cell_scatter=0.0)
    ws = fit_json(independent, "--select", WITHIN)["warnings"]
    expect(not narrow(ws), f"narrow-interval warning without any per-cell scatter: {ws}")
    print(f"ok: far target, small cells, few cells and narrow intervals warned exactly when they apply")


def unfinished():
    runs = os.path.join(D, "runs")

    def run_dir(name, n, tpp, lr, batch, loss, last_step, target_step=1000):
        path = os.path.join(runs, name)
        os.makedirs(path)
        d = n * tpp
        write(os.path.join(path, "config.json"), json.dumps(
            {"lr": lr, "batch": batch, "params": n, "tokens": d, "train_steps": target_step, "seq_len": 2048}))
        lines = [json.dumps({"step": s, "loss": loss + 2.0 * (1 - s / last_step)}) for s in range(100, last_step + 1, 100)]
        write(os.path.join(path, "metrics.jsonl"), "\n".join(lines) + "\n")

    lrs = [1e-3, 2e-3, 4e-3, 8e-3]
    for n, tpp in ((2e7, 10), (2e7, 40), (5e7, 10), (5e7, 40)):
        for i, lr in enumerate(lrs):
            run_dir(f"n{n:g}_t{tpp}_lr{lr:g}", n, tpp, lr, 64, 3.0 + 0.05 * abs(i - 1), 1000)
        # Stopped at step 500 of 1000 with the lowest loss of its cell at lr 0.016: a fit that
        # took it would move the cell's optimum there.
        run_dir(f"n{n:g}_t{tpp}_unfinished", n, tpp, 1.6e-2, 64, 2.5, 500)
    h5 = os.path.join(D, "runs.h5")
    hpsweep("ingest", runs, "--into", h5, "--layout", "jsonl")
    rows = [json.loads(l) for l in hpsweep("export", h5).stdout.splitlines()]
    expect(len(rows) == 20, f"{len(rows)} runs ingested, expected 20")
    stopped = [r for r in rows if not r["finished"]]
    expect(len(stopped) == 4 and all(r["lr"] == 1.6e-2 for r in stopped),
           f"unfinished runs: {[(r['lr'], r['steps']) for r in stopped]}")
    fit = fit_json(h5, "--select", "argmin")
    expect(fit["trials_used"] == 16, f"the fit used {fit['trials_used']} runs, expected the 16 finished ones")
    expect(all(c["lr"] == 2e-3 for c in fit["cells"]), f"cell optima {[c['lr'] for c in fit['cells']]}: "
           "an unfinished run entered the fit")
    print("ok: 4 unfinished runs stored with finished = 0 and left out of the fit")


TESTS = {"tau": tau, "compute": compute, "batch_n": batch_n, "bowl3d": bowl3d, "warnings": warnings,
         "unfinished": unfinished}
if len(sys.argv) != 2 or sys.argv[1] not in TESTS:
    sys.exit(f"usage: {sys.argv[0]} {'|'.join(TESTS)}")
TESTS[sys.argv[1]]()
