#!/usr/bin/env bash
# How much a 20% subset of the released Step Law dense table can agree with the full table's default
# fit at the target, whoever picks the subset. Runs `hpsweep plan jobs/adaptive-steplaw.ini` with
#   - the job as it is (the planner's defaults),
#   - every combination of the planner's own knobs (coarse_lr, coarse_batch 3..5; round_trials 17,
#     34, 51, 68): reasonable adaptive designs that differ only in the order they look at the table,
#   - uniform random subsets of the same compute, [adaptive] seed 1..SEEDS,
# and prints, per family, the spread of the error of η and B at the target against the full table's
# fit, how often it is within 10% (η) and 15% (B), how often the subset's 95% prediction interval
# holds the full table's estimate, and the median width of that interval in ln against the full
# table's (markdown).
#
#   tests/bench/adaptive_steplaw_spread.sh [HPSWEEP_BINARY]   (from anywhere; default build/release/hpsweep)
#
# Knobs (environment): SEEDS (40), BUDGET (0.2).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HPSWEEP=$(realpath "${1:-$ROOT/build/release/hpsweep}")
SEEDS=${SEEDS:-40}
BUDGET=${BUDGET:-0.2}
TMP=$(mktemp -d -t hpsweep-steplaw-spread.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
cd "$ROOT"  # the job's [lookup] file is relative to the repository root

# One plan: prints "FAMILY|<the plan table's row for STRATEGY>".
plan_row() {  # family strategy extra-[adaptive]-lines...
  local family=$1 strategy=$2
  shift 2
  { sed '/^budget = /d' jobs/adaptive-steplaw.ini; echo "budget = $BUDGET"; printf '%s\n' "$@"; } > "$TMP/job.ini"
  "$HPSWEEP" plan "$TMP/job.ini" --budgets "$BUDGET" | grep -E "^\| ($strategy|full grid) \|" | sed "s/^/$family/"
}

{
  plan_row "planner defaults" adaptive
  for cl in 3 4 5; do
    for cb in 3 4 5; do
      for rt in 17 34 51 68; do
        plan_row "planner knobs" adaptive "coarse_lr = $cl" "coarse_batch = $cb" "round_trials = $rt"
      done
    done
  done
  for s in $(seq 1 "$SEEDS"); do plan_row "uniform random" "uniform random" "seed = $s"; done
} | python3 -c '
import math, re, statistics, sys
value = lambda s: [float(v) for v in re.findall(r"[-+0-9.e]+", s)]  # "6.6e-4 [3.3e-4, 1.3e-3]"
full, rows = None, {}
for line in sys.stdin:
    family, row = line.split("|", 1)
    cells = [c.strip() for c in row.strip().strip("|").split("|")]
    lr, b = value(cells[5]), value(cells[8])
    if cells[0] == "full grid":
        full = (lr[0], b[0])
        full_width = (math.log(lr[2] / lr[1]), math.log(b[2] / b[1]))
        continue
    rows.setdefault(family, []).append((lr, b, cells[2]))
print(f"full table: lr {full[0]:.3g}, B {full[1]:.3g} tokens at the target\n")
print("| designs | plans | compute | η: median abs error | η: within 10% | η: full estimate inside the 95% interval "
      "| η: interval width / the full table (ln) | B: median abs error | B: within 15% | B: full estimate inside "
      "| B: width / the full table | both within |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for family, r in rows.items():
    n = len(r)
    el = [abs(x[0][0] / full[0] - 1) for x in r]
    eb = [abs(x[1][0] / full[1] - 1) for x in r]
    inside_l = sum(x[0][1] <= full[0] <= x[0][2] for x in r)
    inside_b = sum(x[1][1] <= full[1] <= x[1][2] for x in r)
    both = sum(a <= 0.10 and c <= 0.15 for a, c in zip(el, eb))
    # Width of the interval in ln over the full table width: the ratio of their standard errors.
    ratio_l = statistics.median(math.log(x[0][2] / x[0][1]) / full_width[0] for x in r)
    ratio_b = statistics.median(math.log(x[1][2] / x[1][1]) / full_width[1] for x in r)
    compute = sorted({x[2] for x in r})
    span = compute[0] if len(compute) == 1 else compute[0] + "-" + compute[-1]
    print(f"| {family} | {n} | {span} | {100 * statistics.median(el):.1f}% | {sum(e <= 0.10 for e in el)}/{n} | "
          f"{inside_l}/{n} | {ratio_l:.2f} | {100 * statistics.median(eb):.1f}% | {sum(e <= 0.15 for e in eb)}/{n} | "
          f"{inside_b}/{n} | {ratio_b:.2f} | {both}/{n} |")
'
echo
echo "budget $BUDGET, $SEEDS random seeds, $(date -u '+%Y-%m-%d %H:%M UTC'), $("$HPSWEEP" version | head -1)"
