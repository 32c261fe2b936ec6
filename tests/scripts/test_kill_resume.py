"""kill -9 at random moments, then the same command again: after the final resume every grid id is
DONE/DIVERGED/FAILED exactly once, and nothing that had finished before a kill was lost or rerun.

Most kills hit the master (rank 0), some a worker (mpiexec then tears the job down). Folds into
the HDF5 file run every 50 ms so that kills land inside HDF5 writes too.

Between cycles, bytes are damaged at random (HPSWEEP_KILL_DAMAGE=0 turns it off): every fourth
cycle a byte of the journal inside a record the .h5 already holds (so a copy survives somewhere),
every other fourth cycle 16 random bytes of the .h5 (the journal is intact). Nothing finished may
be lost, nothing may crash, and every damaged file is either recovered or refused with a message
naming it (then it is moved aside, as the message says, and the next run rebuilds it)."""
import collections
import glob
import json
import os
import random
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from e2e import HPSWEEP, MPIEXEC, MPIEXEC_FLAGS, STATES, expect, hpsweep, read_trials, tempdir, write  # noqa: E402

import h5py  # noqa: E402

KILLS = int(os.environ.get("HPSWEEP_KILLS", "24"))
DAMAGE = os.environ.get("HPSWEEP_KILL_DAMAGE", "1") == "1"
TERMINAL = {"DONE", "DIVERGED", "FAILED"}
rng = random.Random(int(os.environ.get("HPSWEEP_KILL_SEED", "20261125")))

d = tempdir()
job = write(os.path.join(d, "kill.ini"), """
[sweep]
name = kill-test
[scales]
params = 1e7, 2e7, 4e7, 8e7
tokens_per_param = 10, 20, 40
[grid]
lr = log:1e-4:3e-2:12
batch = 16, 32, 64, 128, 256
wd = 0, 0.1
[backend]
kind = surrogate
[surrogate]
fail_probability = 0.02
sleep_per_pflop = 2e-4
""")
out = os.path.join(d, "s.h5")
cmd = [MPIEXEC, *MPIEXEC_FLAGS, "-n", "3", HPSWEEP, "run", job, "--out", out, "--flush-interval", "0.05",
       "--progress", "none", "--grace", "5"]
log_path = os.path.join(d, "run.log")


def ranks_of_this_run():
    """pid -> MPI rank of the hpsweep processes writing `out`."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            if out.encode() not in argv or not argv[0].endswith(b"hpsweep"):
                continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
            found[int(pid)] = int(env.get(b"OMPI_COMM_WORLD_RANK", b"-1"))
        except (OSError, ValueError):
            continue
    return found


damage = collections.Counter()


def snapshot():
    """Every record the sweep holds now, read without modifying anything. A damaged .h5 that is
    refused with a clear message is moved aside, as the message says, and the journal read again."""
    p = hpsweep("export", out, "--jsonl", check=False)
    if p.returncode == 3 and out in p.stderr and os.path.exists(out):
        damage["refused"] += 1
        os.rename(out, out + f".refused-{damage['refused']}")
        p = hpsweep("export", out, "--jsonl", check=False)
    expect(p.returncode == 0, f"export failed (exit {p.returncode}):\n{p.stderr}")
    return [json.loads(line) for line in p.stdout.splitlines()]


RESULT, RESULT_BATCH = 6, 8


def journal_records(path):
    """(bytes, [(offset, type, results it holds)]) of the journal's complete records."""
    data = open(path, "rb").read()
    recs, pos = [], 8
    while pos + 9 <= len(data):
        (n,) = struct.unpack_from("<I", data, pos)
        if pos + 9 + n > len(data):
            break
        rtype = data[pos + 4]
        results = 1 if rtype == RESULT else struct.unpack_from("<I", data, pos + 5)[0] if rtype == RESULT_BATCH else 0
        recs.append((pos, rtype, results))
        pos += 9 + n
    return data, recs


def damage_between_cycles(cycle):
    """Damage that a copy elsewhere can repair: never both files, never a record only one holds."""
    if not DAMAGE or not os.path.exists(out) or not os.path.exists(out + ".journal"):
        return
    if cycle % 4 == 1:
        try:
            with h5py.File(out, "r") as f:
                folded, rows = int(f.attrs["journal_records"]), len(f["trials"])
        except Exception:  # noqa: BLE001 - a .h5 torn by the kill: no safe copy to damage against
            return
        data, recs = journal_records(out + ".journal")
        if folded < 3 or len(recs) < folded or sum(n for _, _, n in recs[:folded]) != rows:
            return
        i = rng.randrange(1, folded)  # past the header, inside a record the .h5 holds
        end = recs[i + 1][0] if i + 1 < len(recs) else len(data)
        at = rng.randrange(recs[i][0], end)
        data = bytearray(data)
        data[at] ^= 1 << rng.randrange(8)
        open(out + ".journal", "wb").write(bytes(data))
        damage["journal"] += 1
    elif cycle % 4 == 3:
        data = bytearray(open(out, "rb").read())
        for _ in range(16):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        open(out, "wb").write(bytes(data))
        damage["h5"] += 1


def launch_started():
    """The master prints this line right after it has opened the store and recorded the launch."""
    with open(log_path, errors="replace") as f:
        return "trials in the grid" in f.read()


finished = {}  # id -> the terminal record first seen
kills = 0
kills_after_launch = 0
completed_early = False
while kills < KILLS:
    log = open(log_path, "w")
    damage_between_cycles(kills)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    victim_is_master = rng.random() < 0.8
    # Half the kills at any moment (start-up and recovery included), half once the launch has
    # been recorded, so that they land while trials are dispatched, stored and folded.
    after_launch = kills % 2 == 1
    if after_launch:
        deadline = time.time() + 60
        while not launch_started() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.05, 1.2))
    else:
        time.sleep(rng.uniform(0.1, 2.0))
    pids = ranks_of_this_run()
    deadline = time.time() + 30
    while not pids and proc.poll() is None and time.time() < deadline:  # mpiexec still starting the ranks
        time.sleep(0.01)
        pids = ranks_of_this_run()
    target = [p for p, r in pids.items() if (r == 0) == victim_is_master]
    if proc.poll() is not None:
        output = open(log_path, errors="replace").read()
        expect(proc.returncode >= 0 and "Segmentation" not in output, f"run crashed:\n{output}")
        if proc.returncode == 3 and out in output and os.path.exists(out):
            damage["refused"] += 1  # a damaged .h5 refused with its name: moved aside as the message says
            os.rename(out, out + f".refused-{damage['refused']}")
            continue
        expect(proc.returncode == 0, f"run failed on its own:\n{output}")
        completed_early = True
        break
    if not target:  # still starting up: kill whatever rank exists
        target = list(pids)
    if os.environ.get("HPSWEEP_KILL_VERBOSE"):
        print(f"kill {kills}: after_launch={after_launch} master={victim_is_master} ranks={sorted(pids.values())} "
              f"finished so far {len(finished)}", flush=True)
    if target:
        os.kill(rng.choice(target), signal.SIGKILL)
        kills += 1
        kills_after_launch += after_launch
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    for pid in ranks_of_this_run():  # no orphan may keep writing
        os.kill(pid, signal.SIGKILL)
    log.close()

    if not os.path.exists(out + ".journal"):
        continue  # killed before the sweep file was created
    for rec in snapshot():
        if rec["state"] not in TERMINAL:
            continue
        prev = finished.setdefault(rec["id"], rec)
        expect(prev == rec, f"finished trial {rec['id']} changed after kill {kills}:\n{prev}\n{rec}")

print(f"{kills} kills; {len(finished)} trials had finished before the last kill; damage: {dict(damage)}")
expect(kills >= 20 or completed_early, "fewer than 20 kills")
expect(not DAMAGE or damage["journal"] + damage["h5"] >= 5, f"too few cycles damaged a file: {dict(damage)}")
kept = len(glob.glob(out + ".journal.damaged-*"))
expect(kept == damage["journal"], f"{damage['journal']} journals damaged, {kept} detected and kept aside")
expect(not completed_early, "the sweep finished before the kills were done: make it longer")

final = hpsweep(*cmd[cmd.index(HPSWEEP) + 1:], ranks=3)
records = snapshot()
by_id = collections.defaultdict(list)
for rec in records:
    by_id[rec["id"]].append(rec)
trials, grid, attrs, launches = read_trials(out)
grid_ids = {format(int(i), "016x") for i in grid["id"]}
expect(set(by_id) == grid_ids, "recorded ids differ from the grid")
for tid, recs in by_id.items():
    terminal = [r for r in recs if r["state"] in TERMINAL]
    expect(len(terminal) == 1, f"{tid}: {len(terminal)} terminal records: {recs}")
    others = {r["state"] for r in recs} - TERMINAL
    expect(others <= {"LOST"}, f"{tid}: unexpected states {others}")
    expect([r["attempt"] for r in recs] == list(range(1, len(recs) + 1)), f"{tid}: attempts {recs}")
for tid, rec in finished.items():
    expect(by_id[tid][-1] == rec, f"{tid} finished before a kill but its record changed or was rerun")
# The HDF5 file the user reads holds exactly what the journal holds.
expect(len(trials) == len(records), f"HDF5 has {len(trials)} rows, journal {len(records)}")
h5_terminal = collections.Counter(format(int(r["id"]), "016x") for r in trials if STATES[int(r["state"])] in TERMINAL)
expect(set(h5_terminal) == grid_ids and max(h5_terminal.values()) == 1, "HDF5 terminal rows are not one per id")
ended = collections.Counter(l["ended"].decode() for l in launches)
expect(ended["completed"] >= 1 and ended["killed"] >= kills_after_launch, f"launch table: {ended}")
killed_with_work = [l for l in launches if l["ended"] == b"killed" and l["trials_recorded"] > 0]
expect(len(killed_with_work) >= 5, "too few kills landed while trials were being recorded")
lost = sum(1 for r in records if r["state"] == "LOST")
print(f"ok: {len(grid_ids)} ids each finished once after {kills} kills; {lost} LOST attempts rerun; "
      f"{len(launches)} launches ({dict(ended)})")
