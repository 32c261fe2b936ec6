"""The README's commands that no other test runs, one behaviour per ctest test (the first argument
names it), through the real CLI:

  transfer     `hpsweep transfer` prints the per-group table the README's rules give (muP hidden init
               sigma/sqrt(m), LR eta/m, output multiplier 1/m, eps/m; wd rules linear and sqrt; SP keeps
               everything; u-muP unit init and LR x m^-1/2; identity at the base shape), and --json the
               same numbers; a bad parametrization or width exits 2
  validate     `hpsweep validate` accepts a job, prints the grid size `run` then records, writes nothing,
               and refuses a bad job with file:line and exit status 2
  coordcheck   `hpsweep coordcheck SWEEP --name NAME` stores the check as /fits/NAME (replay re-fits it
               bit for bit), a second name keeps the first, --no-store and a job file store nothing
  curves       `hpsweep export --curves` adds each trial's stored loss curve (the surrogate's
               curve_points, ending at the trial's steps and final loss); --csv --curves is refused
  exit1        internal or I/O errors exit with status 1: a fit with too few cells, a report folder
               that cannot be created

Run with /usr/bin/python3:
    HPSWEEP=build/release/hpsweep /usr/bin/python3 tests/scripts/test_cli_commands.py transfer
"""
import json
import math
import os
import re
import sys

import h5py

sys.path.insert(0, os.path.dirname(__file__))
from e2e import expect, hpsweep, tempdir, write  # noqa: E402

D = tempdir()


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


def surrogate_job(name, params="2e7, 5e7", tokens="tokens_per_param = 10, 40", lr="1e-3, 3e-3, 1e-2",
                  batch="32, 64", extra=""):
    return write(os.path.join(D, name + ".ini"), f"""[sweep]
name = {name}
seed = 5
[scales]
params = {params}
{tokens}
seq_len = 2048
[grid]
lr = {lr}
batch = {batch}
wd = 0.1
[backend]
kind = surrogate
[surrogate]
sleep_per_pflop = 0
curve_points = 12
{extra}
""")


def transfer():
    def groups(*args):
        out = json.loads(hpsweep("transfer", *args, "--json").stdout)
        return out, {g["group"]: g for g in out["groups"]}

    base = ["--base-width", "256", "--base-depth", "4", "--lr", "3e-3", "--wd", "0.1", "--init-std", "0.02",
            "--eps", "1e-8"]
    m = 16  # 4096 / 256
    out, g = groups("--param", "mup", *base, "--width", "4096", "--wd-rule", "linear")
    expect(out["width_ratio"] == m, f"width ratio {out['width_ratio']}")
    hidden = g["hidden matrices"]
    for key, want in (("init_std", 0.02 / math.sqrt(m)), ("adam_lr", 3e-3 / m), ("adam_eps", 1e-8 / m),
                      ("weight_decay", 0.1 * m)):
        expect(rel(hidden[key], want) < 1e-12, f"muP hidden {key} = {hidden[key]}, want {want}")
    expect(rel(g["output/unembedding"]["forward_multiplier"], 1 / m) < 1e-12, f"muP output: {g['output/unembedding']}")
    expect(rel(g["input/embedding"]["adam_lr"], 3e-3) < 1e-12, "muP keeps the input layer's Adam LR")
    _, g = groups("--param", "mup", *base, "--width", "4096", "--wd-rule", "sqrt")
    expect(rel(g["hidden matrices"]["weight_decay"], 0.1 * math.sqrt(m)) < 1e-12, "--wd-rule sqrt: lambda x sqrt(m)")
    _, g = groups("--param", "mup", *base, "--width", "4096")
    expect(rel(g["hidden matrices"]["weight_decay"], 0.1) < 1e-12, "--wd-rule none keeps lambda")
    _, g = groups("--param", "umup", *base, "--width", "4096")
    expect(g["hidden matrices"]["init_std"] == 1, f"u-muP unit init: {g['hidden matrices']}")
    expect(rel(g["hidden matrices"]["adam_lr"] / g["hidden matrices"]["base"]["adam_lr"], m ** -0.5) < 1e-12,
           f"u-muP hidden LR x m^-1/2: {g['hidden matrices']}")

    # SP at another width, and every parametrization at the base shape: nothing changes.
    fields = ("init_std", "forward_multiplier", "adam_lr", "weight_decay", "adam_eps")
    for args in (["--param", "sp", *base, "--width", "4096", "--depth", "32"],
                 ["--param", "sp", *base, "--width", "256", "--depth", "4"],
                 ["--param", "mup", *base, "--width", "256", "--depth", "4", "--depth-alpha", "1", "--wd-rule", "linear"],
                 ["--param", "umup", *base, "--width", "256", "--depth", "4", "--wd-rule", "linear"]):
        _, g = groups(*args)
        expect(len(g) >= 6, f"{args}: only the groups {sorted(g)}")
        for name, grp in g.items():
            for f in fields:
                expect(grp[f] == grp["base"][f], f"{args}: {name} {f} {grp['base'][f]} -> {grp[f]}")

    # Text and JSON agree: the hidden matrices' row shows the JSON numbers.
    text = hpsweep("transfer", "--param", "mup", *base, "--width", "4096", "--wd-rule", "linear").stdout
    row = next(l for l in text.splitlines() if l.strip().startswith("hidden matrices"))
    expect(re.search(r"0\.02 -> 0\.005 .*0\.003 -> 1\.875e-4 .*0\.1 -> 1\.6 ", row), f"text row: {row}")
    expect("weight decay rule linear" in text, f"the rule is not named:\n{text}")
    _, g = groups("--param", "mup", *base, "--width", "4096", "--head-dim", "64")
    expect("attention logits" in g, f"--head-dim adds the attention logits row: {sorted(g)}")
    for bad in (["--param", "xyz", "--width", "512"], ["--param", "mup", "--width", "0"]):
        p = hpsweep("transfer", *bad, check=False)
        expect(p.returncode == 2 and "error" in p.stderr and p.stdout == "", f"{bad}: {p.returncode} {p.stderr}")
    print("ok: transfer tables follow the muP, u-muP, SP and weight-decay rules; text and JSON agree")


def validate():
    job = surrogate_job("valid", extra="wd_curvature = 0")
    before = set(os.listdir(D))
    v = hpsweep("validate", job, cwd=D)
    expect(set(os.listdir(D)) == before, "validate wrote files")
    m = re.search(r"= (\d+) trials", v.stdout)
    expect(m and "valid" in v.stdout, f"validate printed no grid size:\n{v.stdout}")
    expect(int(m[1]) == 2 * 2 * 3 * 2 * 1 * 1, f"validate counts {m[1]} trials, the grid has 24")
    out = os.path.join(D, "valid.h5")
    hpsweep("run", job, "--out", out, "--workers", "2", "--progress", "none")
    rows = hpsweep("export", out).stdout.splitlines()
    expect(len(rows) == int(m[1]), f"validate said {m[1]} trials, run recorded {len(rows)}")

    bad = write(os.path.join(D, "bad.ini"), open(job).read().replace("batch = 32, 64", "batch = 32, -64"))
    before = set(os.listdir(D))
    p = hpsweep("validate", bad, check=False, cwd=D)
    expect(p.returncode == 2, f"validate of a bad job exited {p.returncode}")
    line = open(bad).read().splitlines().index("batch = 32, -64") + 1
    expect(f"bad.ini:{line}" in p.stderr and "batch" in p.stderr, f"no file:line for the bad batch:\n{p.stderr}")
    expect(set(os.listdir(D)) == before, "validate of a bad job wrote files")
    p = hpsweep("validate", os.path.join(D, "missing.ini"), check=False)
    expect(p.returncode == 2 and "missing.ini" in p.stderr, f"missing job: {p.returncode} {p.stderr}")
    print(f"ok: validate counted {m[1]} trials, as run recorded; a bad job is refused at bad.ini:{line}")


def coordcheck():
    job = write(os.path.join(D, "mlp.ini"), """[sweep]
name = tiny-mlp
seed = 1
[scales]
params = 16384
tokens = 320
seq_len = 1
[grid]
lr = 3e-3, 1e-2
batch = 32
wd = 0
[backend]
kind = mlp
[mlp]
depth = 2
base_width = 32
""")
    out = os.path.join(D, "mlp.h5")
    hpsweep("run", job, "--out", out, "--workers", "1", "--progress", "none")
    quick = ["--steps", "3", "--seeds", "1"]
    first = hpsweep("coordcheck", out, "--name", "mine", "--widths", "32,64,128", *quick)
    expect("stored as /fits/mine" in first.stdout, first.stdout)
    with h5py.File(out, "r") as f:
        expect(list(f["fits"]) == ["mine"], f"fits after --name mine: {list(f['fits'])}")
        options = f["fits/mine"].attrs["options"]
        stored = json.loads(f["fits/mine"].attrs["json"])
    options = options.decode() if isinstance(options, bytes) else options
    expect(options.startswith("coordcheck;widths=32,64,128;"), f"stored options {options}")
    sp, mup = stored["slopes"]["sp"], stored["slopes"]["mup"]
    expect(len(sp) == len(stored["layers"]) == 4, f"stored slopes: {stored['slopes']}")
    expect(f"{sp[-1]:+.3f}" in first.stdout and f"{mup[-1]:+.3f}" in first.stdout,
           f"the printed logits slopes are not the stored ones {sp[-1]}, {mup[-1]}:\n{first.stdout}")

    hpsweep("coordcheck", out, "--name", "other", "--widths", "32,64", *quick)
    hpsweep("coordcheck", out, "--name", "unstored", "--widths", "32,64", "--no-store", *quick)
    plain = hpsweep("coordcheck", job, "--widths", "32,64", *quick)
    expect("stored as" not in plain.stdout, f"a job file has nowhere to store:\n{plain.stdout}")
    with h5py.File(out, "r") as f:
        expect(sorted(f["fits"]) == ["mine", "other"], f"fits: {list(f['fits'])}")
        expect(json.loads(f["fits/mine"].attrs["json"]) == stored, "--name other changed /fits/mine")
    rep = hpsweep("replay", out, "--refit").stdout
    for name in ("mine", "other"):
        expect(f"{name}: identical, bit for bit" in rep, f"replay of /fits/{name}:\n{rep}")
    print("ok: coordcheck --name stores /fits/mine and /fits/other side by side; --no-store and a job store nothing")


def curves():
    job = surrogate_job("curves")
    out = os.path.join(D, "curves.h5")
    hpsweep("run", job, "--out", out, "--workers", "2", "--progress", "none")
    plain = [json.loads(l) for l in hpsweep("export", out).stdout.splitlines()]
    rows = [json.loads(l) for l in hpsweep("export", out, "--curves").stdout.splitlines()]
    expect(len(rows) == len(plain) == 24, f"{len(rows)} rows with --curves, {len(plain)} without")
    expect(all("curve_step" not in r for r in plain), "curves exported without --curves")
    done = [r for r in rows if r["state"] == "DONE"]
    expect(len(done) >= 12, f"only {len(done)} DONE trials")
    for r in done:
        steps, losses = r["curve_step"], r["curve_loss"]
        expect(len(steps) == len(losses) == 12, f"{r['id']}: curve of {len(steps)}/{len(losses)} points, expected 12")
        expect(all(a < b for a, b in zip(steps, steps[1:])) and steps[-1] == r["steps"],
               f"{r['id']}: curve steps {steps} do not rise to the trial's {r['steps']} steps")
        expect(rel(losses[-1], r["final_loss"]) < 1e-9, f"{r['id']}: curve ends at {losses[-1]}, final {r['final_loss']}")
    with h5py.File(out, "r") as f:
        expect(f["trials"].shape[0] == 24, "trials in the file")
    to_file = os.path.join(D, "curves.jsonl")
    hpsweep("export", out, "--curves", "-o", to_file)
    expect([json.loads(l) for l in open(to_file)] == rows, "export -o wrote something else than standard output")
    p = hpsweep("export", out, "--csv", "--curves", check=False)
    expect(p.returncode == 2 and "--curves" in p.stderr and p.stdout == "", f"--csv --curves: {p.returncode} {p.stderr}")
    print(f"ok: export --curves: {len(done)} DONE trials with 12-point curves ending at their final loss")


def exit1():
    one = surrogate_job("one", params="2e7", tokens="tokens = 2e8")
    out = os.path.join(D, "one.h5")
    hpsweep("run", one, "--out", out, "--workers", "1", "--progress", "none")
    p = hpsweep("fit", out, check=False)
    expect(p.returncode == 1 and "cannot fit" in p.stderr, f"fit on one cell: exit {p.returncode}\n{p.stderr}")
    blocker = write(os.path.join(D, "a-file"), "not a folder\n")
    p = hpsweep("report", out, "--out", os.path.join(blocker, "report"), check=False)
    expect(p.returncode == 1 and "cannot create the report folder" in p.stderr,
           f"report into a folder below a file: exit {p.returncode}\n{p.stderr}")
    p = hpsweep("fit", out, "--select", "nonsense", check=False)
    expect(p.returncode == 2, f"a bad option is status 2, not 1: {p.returncode}")
    print("ok: a fit that cannot be made and an unwritable report folder exit with status 1")


TESTS = {"transfer": transfer, "validate": validate, "coordcheck": coordcheck, "curves": curves, "exit1": exit1}
if len(sys.argv) != 2 or sys.argv[1] not in TESTS:
    sys.exit(f"usage: {sys.argv[0]} {'|'.join(TESTS)}")
TESTS[sys.argv[1]]()
