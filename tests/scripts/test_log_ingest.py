"""A directory of 2,000 mixed-format run logs (JSON-lines metrics and Megatron text logs) plus bad
runs ingests with 4 MPI ranks: every good run imported once with its whole curve, every bad run
reported with path:line and a reason, unfinished runs flagged; ingesting again adds nothing."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from e2e import SOURCE_DIR, expect, hpsweep, read_trials, tempdir  # noqa: E402

d = tempdir()
runs = os.path.join(d, "runs")
subprocess.run([sys.executable, os.path.join(SOURCE_DIR, "tests", "bench", "make_run_dirs.py"), runs, "2000",
                "--bad", "40", "--points", "100"], check=True, capture_output=True)
out = os.path.join(d, "s.h5")
p = hpsweep("ingest", runs, "--into", out, ranks=4)
m = re.search(r"(\d+) run directories; (\d+) imported \((\d+) unfinished, (\d+) DIVERGED\), (\d+) already in .*, (\d+) bad",
              p.stdout)
expect(m, p.stdout + p.stderr)
dirs, imported, unfinished, diverged, already, bad = map(int, m.groups())
expect(dirs == 2040 and imported == 2000 and already == 0 and bad == 40, p.stdout)
expect(0 < unfinished < 200, f"unfinished {unfinished}")
reported = [l for l in p.stderr.splitlines() if l.startswith("bad run ")]
expect(len(reported) == 10 and "... and 30 more bad runs" in p.stderr, p.stderr[:3000])
for line in reported:
    expect(re.match(r"bad run .*/bad_\w+_\d+/metrics\.jsonl:\d+: \S", line), f"no path:line: reason in '{line}'")
expect("workers" in p.stdout and "runs/s" in p.stdout, p.stdout)
# Unfinished runs are named by path with the step they reached (the first 10, then a count).
named = [l for l in p.stdout.splitlines() if l.startswith("unfinished run ")]
expect(len(named) == min(10, unfinished), p.stdout[:3000])
for line in named:
    expect(re.match(r"unfinished run \S*/\S+: reached step \d+ of \d+ \(stored as unfinished", line), f"'{line}'")
if unfinished > 10:
    expect(f"... and {unfinished - 10} more unfinished runs" in p.stdout, p.stdout[:3000])

trials, *_ = read_trials(out)
expect(len(trials) == 2000, f"{len(trials)} rows")
expect(all(t["curve_length"] > 10 for t in trials), "curves were not stored whole")
expect(sum(1 for t in trials if t["finished"] == 0) == unfinished, "finished flags do not match the summary")
sources = {t["source"].decode().split("/")[-1][:5] for t in trials}
expect({"jsonl", "step2"} <= sources, f"both layouts should be present: {sources}")

again = hpsweep("ingest", runs, "--into", out, "--workers", "2")
expect(re.search(r"0 imported .* 2000 already in", again.stdout), again.stdout)
print(f"ok: 2040 run directories on 3 MPI workers: 2000 imported ({unfinished} unfinished), 40 bad reported; "
      "re-ingest added nothing")
