#!/usr/bin/env bash
# Reducer benchmark: wall time of `hpsweep fit` (default asym, and within/bowl with 1,000 bootstrap resamples) on ~3,700 trials
# (the size of the Step Law study), and on the released Step Law CSV; numpy doing only the
# Step Law OLS bootstrap (no loss law) on the same selected points, for scale.
#
#   tests/bench/fit_bench.sh [HPSWEEP_BINARY]     (default build/release/hpsweep of this checkout)
#
# Prints a markdown table. A benchmark, not a test: figures depend on the machine.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HPSWEEP=$(realpath "${1:-$HERE/../../build/release/hpsweep}")
CSV=${HPSWEEP_STEPLAW_CSV:-$(realpath "$HERE/../../data/steplaw/dense_lr_bs_loss.csv")}
PY=/usr/bin/python3
REPEATS=${BENCH_REPEATS:-5}
TMP=$(mktemp -d -t hpsweep-fitbench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

cat > "$TMP/job.ini" <<'JOB'
[sweep]
name = fit-bench
[scales]
params = 2e7, 5e7, 1.2e8, 3e8, 7e8
tokens_per_param = 10, 20, 40, 80
[grid]
lr = log:2.5e-4:4e-2:17
batch = log:8:1024:11
wd = 0.1
[backend]
kind = surrogate
[surrogate]
curve_points = 16
[target]
params = 7e9
tokens = 1.4e12
JOB
"$HPSWEEP" run "$TMP/job.ini" --out "$TMP/sweep.h5" --progress none >/dev/null
"$HPSWEEP" ingest "$CSV" --into "$TMP/steplaw.h5" --map "lr=lr,batch=bs,loss=smooth loss,params=N,tokens=D" >/dev/null

# median wall seconds of a command over $REPEATS runs
median_time() {
  local times=()
  for _ in $(seq "$REPEATS"); do
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >/dev/null
    t1=$(date +%s.%N)
    times+=("$(echo "$t1 - $t0" | bc -l)")
  done
  printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {printf "%.3f", a[int((NR+1)/2)]}'
}

trials_of() { "$HPSWEEP" status "$1" --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["records"])'; }

echo "### Reducer benchmark"
echo
echo "\`tests/bench/fit_bench.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'): $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), median of $REPEATS runs, wall time of the whole command (process start, reading the file, fitting, printing)."
echo
echo "| input | trials | command | seconds |"
echo "|---|---:|---|---:|"
for spec in "sweep.h5|surrogate sweep" "steplaw.h5|Step Law dense CSV"; do
  file=${spec%%|*} label=${spec#*|}
  n=$(trials_of "$TMP/$file")
  for sel in "asym" "within:0.25%" "bowl"; do
    t=$(median_time "$HPSWEEP" fit "$TMP/$file" --select "$sel" --resamples 1000 --no-store --target-params 7e9 --target-tokens 1.4e12)
    echo "| $label | $n | \`hpsweep fit --select $sel --resamples 1000\` | $t |"
  done
done

# numpy: only the Step Law OLS bootstrap (lr and B laws, 1,000 resamples) on the Step Law CSV.
cat > "$TMP/np_boot.py" <<'PYEOF'
import csv, sys, time
import numpy as np
t0 = time.perf_counter()
rows = list(csv.DictReader(open(sys.argv[1])))
cells = {}
for r in rows:
    cells.setdefault((float(r["N"]), float(r["D"])), []).append(r)
X, ylr, yb = [], [], []
for (n, d), rs in cells.items():
    lmin = min(float(r["smooth loss"]) for r in rs)
    for r in rs:
        if abs(float(r["smooth loss"]) / lmin - 1) < 0.0025:
            X.append([1, np.log(n), np.log(d)]); ylr.append(np.log(float(r["lr"]))); yb.append(np.log(float(r["bs"]) * 2048))
X, ylr, yb = np.array(X), np.array(ylr), np.array(yb)
rng = np.random.default_rng(0)
for _ in range(1000):
    i = rng.integers(0, len(X), len(X))
    np.linalg.lstsq(X[i], ylr[i], rcond=None); np.linalg.lstsq(X[i][:, [0, 2]], yb[i], rcond=None)
print(f"{time.perf_counter() - t0:.3f}")
PYEOF
t=$(median_time "$PY" "$TMP/np_boot.py" "$CSV")
echo "| Step Law dense CSV | 1911 | numpy: Step Law OLS bootstrap only (1,000 resamples, no loss law) | $t |"
