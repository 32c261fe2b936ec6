"""The command backend runs the user's training program once per trial, without a shell: a sweep
of real child processes (examples/train_stub.py) in which one learning rate fails, one hangs past
the timeout and one prints garbage. States and messages are recorded; per-trial stdout/stderr are
kept; a rerun runs nothing again; shell syntax in the template is never interpreted."""
import collections
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from e2e import SOURCE_DIR, expect, hpsweep, read_trials, tempdir, write  # noqa: E402

d = tempdir()
stub = os.path.join(SOURCE_DIR, "examples", "train_stub.py")
canary = os.path.join(d, "pwned")
job = write(os.path.join(d, "cmd.ini"), f"""
[sweep]
name = command-e2e
seed = 3
[scales]
params = 1e6
tokens = 2e6
seq_len = 128
[grid]
lr = 0.001, 0.01, 0.03, 0.0666, 0.0777, 0.0888
batch = 8, 32
wd = 0.01
[backend]
kind = command
[command]
argv = /usr/bin/python3 {stub} --lr {{lr}} --batch {{batch}} --wd {{wd}} --params {{params}} --tokens {{tokens}} --seq-len {{seq_len}} --seed {{seed}} --out {{trial_dir}} --fail-lr 0.0666 --hang-lr 0.0777 --garbage-lr 0.0888
timeout = 2
""")
out = os.path.join(d, "s.h5")
run = hpsweep("run", job, "--out", out, "--workers", "2", "--progress", "none")
rows = [json.loads(l) for l in hpsweep("export", out).stdout.splitlines()]
expect(len(rows) == 12, f"{len(rows)} rows")
by_lr = collections.defaultdict(list)
for r in rows:
    by_lr[r["lr"]].append(r)
for bad_lr in (0.0666, 0.0777, 0.0888):  # the loops below must not pass by checking nothing
    expect(len(by_lr[bad_lr]) == 2, f"{len(by_lr[bad_lr])} rows with lr {bad_lr}, expected one per batch size")
for r in by_lr[0.0666]:
    expect(r["state"] == "FAILED" and "exit status 3" in r["error"] and "CUDA out of memory" in r["error"], r)
for r in by_lr[0.0777]:
    expect(r["state"] == "TIMEOUT" and "timed out after 2 s" in r["error"], r)
    expect(r["wall_time"] < 8, f"the hung program was not stopped: {r['wall_time']} s")
for r in by_lr[0.0888]:
    expect(r["state"] == "FAILED" and 'no JSON line with a "loss"' in r["error"], r)
done = [r for r in rows if r["state"] == "DONE"]
expect(len(done) == 6, f"{len(done)} DONE")
losses = {(r["lr"], r["batch"]): r["final_loss"] for r in done}
expect(losses[(0.03, 32)] < losses[(0.001, 32)], f"training did not respond to lr: {losses}")
for r in rows:
    tdir = out + ".trials/" + r["id"]
    expect(os.path.isfile(tdir + "/stdout.txt") and os.path.isfile(tdir + "/stderr.txt"), f"no output files in {tdir}")
with open(out + ".trials/" + done[0]["id"] + "/stderr.txt") as f:
    expect("trained" in f.read(), "stderr of the program was not captured")
with open(out + ".trials/" + done[0]["id"] + "/stdout.txt") as f:
    expect('"loss"' in f.read(), "stdout of the program was not captured")
trials, *_ = read_trials(out)
curve_rows = [t for t in trials if t["curve_length"] > 0]
expect(len(curve_rows) == 6, "loss curves of the DONE trials were not stored")

again = hpsweep("run", job, "--out", out, "--workers", "2", "--progress", "none")
expect("0 to run" in again.stdout, again.stdout)

# No shell: ';' and '$(...)' in the template reach the program as plain arguments.
evil = write(os.path.join(d, "evil.ini"), open(job).read().replace("name = command-e2e", "name = evil").replace(
    "--out {trial_dir}", f"--out {{trial_dir}}; touch {canary} $(touch {canary})"))
hpsweep("run", evil, "--out", os.path.join(d, "evil.h5"), "--progress", "none")
expect(not os.path.exists(canary), "the command template was interpreted by a shell")
rows = [json.loads(l) for l in hpsweep("export", os.path.join(d, "evil.h5")).stdout.splitlines()]
expect(len(rows) == 12, f"{len(rows)} rows in evil.h5")
expect(all(r["state"] in ("FAILED", "TIMEOUT") for r in rows), "argparse should have refused the extra arguments")

# A bad placeholder is an input error before anything runs.
bad = write(os.path.join(d, "bad.ini"), open(job).read().replace("{wd}", "{weight_decay}"))
p = hpsweep("run", bad, "--out", os.path.join(d, "bad.h5"), check=False)
expect(p.returncode == 2 and "unknown placeholder {weight_decay}" in p.stderr, p.stderr)
# A program that kills itself is FAILED with its signal named, not LOST: a resume does not run it
# forever. Bad result values are FAILED with the trial id; NaN is DIVERGED.
script = write(os.path.join(d, "selfkill.sh"), """case "$1" in
0.001) echo dying >&2; kill -SEGV $$ ;;
0.002) kill -KILL $$ ;;
0.003) echo '{"loss": -1.5}' ;;
0.004) echo '{"loss": NaN}' ;;
*) echo '{"loss": 2.5, "diverged": "yes"}' ;;
esac
""")
selfkill = write(os.path.join(d, "selfkill.ini"), f"""
[sweep]
name = selfkill
[scales]
params = 1e6
tokens = 2e6
seq_len = 128
[grid]
lr = 0.001, 0.002, 0.003, 0.004, 0.005
batch = 8
[backend]
kind = command
[command]
argv = /bin/sh {script} {{lr}}
""")
sk = os.path.join(d, "selfkill.h5")
first = hpsweep("run", selfkill, "--out", sk, "--workers", "2", "--progress", "none")
rows = {r["lr"]: r for r in (json.loads(l) for l in hpsweep("export", sk).stdout.splitlines())}
expect(rows[0.001]["state"] == "FAILED" and "killed by SIGSEGV" in rows[0.001]["error"], rows[0.001])
expect(rows[0.002]["state"] == "FAILED" and "killed by SIGKILL" in rows[0.002]["error"], rows[0.002])
expect(rows[0.003]["state"] == "FAILED" and rows[0.003]["id"] in rows[0.003]["error"]
       and '"loss" must be a positive number' in rows[0.003]["error"], rows[0.003])
expect(rows[0.004]["state"] == "DIVERGED", rows[0.004])
expect(rows[0.005]["state"] == "FAILED" and '"diverged" must be true or false' in rows[0.005]["error"], rows[0.005])
again = hpsweep("run", selfkill, "--out", sk, "--workers", "2", "--progress", "none")
expect("0 to run" in again.stdout, "a trial that killed itself runs again on resume:\n" + again.stdout)

print("ok: 6 DONE, 2 FAILED (exit 3), 2 TIMEOUT, 2 FAILED (garbage); outputs kept; rerun ran nothing; no shell; self-kill FAILED")
