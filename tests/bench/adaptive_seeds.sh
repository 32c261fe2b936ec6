#!/usr/bin/env bash
# How far the adaptive plan lands from the surrogate's truth over many noise seeds:
# jobs/adaptive-surrogate.ini (the adaptive tests' job) with [sweep] seed = 1234 (the job's) and
# 1..N-1, `hpsweep plan --budgets B` each. Prints, per strategy, the signed, mean and max |error| of
# the η and B estimates at the target against the truth, and how many of the seeds' 95% prediction
# intervals hold the truth (markdown).
#
#   tests/bench/adaptive_seeds.sh [HPSWEEP_BINARY]     (default build/release/hpsweep of this checkout)
#
# Knobs (environment): SEEDS (25), BUDGET (0.2).
set -euo pipefail
HPSWEEP=${1:-$(dirname "${BASH_SOURCE[0]}")/../../build/release/hpsweep}
JOB=$(dirname "${BASH_SOURCE[0]}")/../../jobs/adaptive-surrogate.ini
SEEDS=${SEEDS:-25}
BUDGET=${BUDGET:-0.2}
TMP=$(mktemp -d -t hpsweep-adaptive-seeds.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
for i in $(seq 0 $((SEEDS - 1))); do
  seed=$([[ $i -eq 0 ]] && echo 1234 || echo "$i")
  sed -e "s/^seed = .*/seed = $seed/" -e "s/^budget = .*/budget = $BUDGET/" "$JOB" > "$TMP/job.ini"
  echo "seed $seed"
  "$HPSWEEP" plan "$TMP/job.ini" --budgets "$BUDGET"
done | python3 -c '
import re, sys
truth = {}
rows = {}  # strategy -> [(seed, lr error, B error)]
seed = None
for line in sys.stdin:
    if line.startswith("seed "):
        seed = line.split()[1]
    m = re.match(r"surrogate.s truth at the target: lr (\S+), B (\S+) tokens", line)
    if m:
        truth = (float(m[1]), float(m[2].rstrip(",")))
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) >= 11 and cells[0] in ("adaptive", "uniform random", "full grid"):
        lr, b = [float(v) for v in re.findall(r"[-+0-9.e]+", cells[5])], [float(v) for v in re.findall(r"[-+0-9.e]+", cells[8])]
        rows.setdefault(cells[0], []).append((seed, 100 * (lr[0] / truth[0] - 1), 100 * (b[0] / truth[1] - 1),
                                              lr[1] <= truth[0] <= lr[2], b[1] <= truth[1] <= b[2]))
print("| strategy | seeds | η: mean signed | η: mean abs | η: max abs | η: truth in 95% interval | B: mean signed | B: mean abs | B: max abs | B: truth in 95% interval |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for name, r in rows.items():
    n = len(r)
    lr, b = [x[1] for x in r], [x[2] for x in r]
    cover_lr, cover_b = sum(x[3] for x in r), sum(x[4] for x in r)
    print(f"| {name} | {n} | {sum(lr)/n:+.1f}% | {sum(map(abs, lr))/n:.1f}% | {max(map(abs, lr)):.1f}% | {cover_lr}/{n} | "
          f"{sum(b)/n:+.1f}% | {sum(map(abs, b))/n:.1f}% | {max(map(abs, b)):.1f}% | {cover_b}/{n} |")
'
echo
echo "budget $BUDGET, $SEEDS seeds (1234 and 1..$((SEEDS - 1))), $(date -u '+%Y-%m-%d %H:%M UTC')"
