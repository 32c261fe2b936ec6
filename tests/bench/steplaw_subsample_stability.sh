#!/usr/bin/env bash
# How stable the released Step Law dense table's own answer is: keep each of its 1,911 runs with
# probability F (seeded), ingest what is kept, run the default fit, and compare η and B at
# N = 7e9, D = 1.4e12 with the whole table's fit. Prints, per F, the median and max |error| and
# how many draws land within 10% (η) and 15% (B) of the whole table (markdown). A design that
# keeps a fraction of the runs cannot be expected to agree with the whole table more closely than
# a random draw of a larger fraction does.
#
#   tests/bench/steplaw_subsample_stability.sh [HPSWEEP_BINARY]   (default build/release/hpsweep)
#
# Knobs (environment): DRAWS (40), FRACTIONS ("0.95 0.9 0.8 0.5").
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HPSWEEP=$(realpath "${1:-$ROOT/build/release/hpsweep}")
DRAWS=${DRAWS:-40}
FRACTIONS=${FRACTIONS:-0.95 0.9 0.8 0.5}
CSV="$ROOT/data/steplaw/dense_lr_bs_loss.csv"
MAP="lr=lr,batch=bs,loss=smooth loss,final_loss=loss,params=N,tokens=D"
TMP=$(mktemp -d -t hpsweep-steplaw-subsample.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# η and B (tokens) at the target of the default fit of a CSV: "lr B".
fit_target() {  # csv
  rm -f "$TMP/s.h5" "$TMP/s.h5.journal"
  "$HPSWEEP" ingest "$1" --into "$TMP/s.h5" --map "$MAP" >/dev/null
  "$HPSWEEP" fit "$TMP/s.h5" --target-params 7e9 --target-tokens 1.4e12 --resamples 0 |
    awk '$1 == "lr" && $3 == "prediction" { lr = $2 } $1 == "batch" && $2 == "tokens" { b = $3 } END { print lr, b }'
}

read -r full_lr full_b < <(fit_target "$CSV")
echo "whole table: lr $full_lr, B $full_b tokens at N = 7e9, D = 1.4e12"
echo
for f in $FRACTIONS; do
  for draw in $(seq 1 "$DRAWS"); do
    python3 - "$CSV" "$TMP/kept.csv" "$f" "$draw" <<'PY'
import csv, random, sys
src, dst, fraction, draw = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
rows = list(csv.DictReader(open(src, newline="")))
rng = random.Random(draw * 7919 + round(fraction * 1000))
with open(dst, "w", newline="") as out:
    w = csv.DictWriter(out, fieldnames=list(rows[0].keys()))
    w.writeheader()
    w.writerows(r for r in rows if rng.random() < fraction)
PY
    echo "$f $(fit_target "$TMP/kept.csv")"
  done
done | python3 -c '
import statistics, sys
full_lr, full_b = float(sys.argv[1]), float(sys.argv[2])
by = {}
for line in sys.stdin:
    f, lr, b = line.split()
    by.setdefault(f, []).append((abs(float(lr) / full_lr - 1), abs(float(b) / full_b - 1)))
print("| runs kept | draws | η: median abs error | η: max | η within 10% | B: median abs error | B: max | B within 15% |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
for f, v in by.items():
    n = len(v)
    el, eb = [x[0] for x in v], [x[1] for x in v]
    print(f"| {100 * float(f):.0f}% | {n} | {100 * statistics.median(el):.1f}% | {100 * max(el):.1f}% | "
          f"{sum(e <= 0.10 for e in el)}/{n} | {100 * statistics.median(eb):.1f}% | {100 * max(eb):.1f}% | "
          f"{sum(e <= 0.15 for e in eb)}/{n} |")
' "$full_lr" "$full_b"
echo
echo "$DRAWS draws per fraction, $(date -u '+%Y-%m-%d %H:%M UTC'), $("$HPSWEEP" version | head -1)"
