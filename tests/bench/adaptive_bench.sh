#!/usr/bin/env bash
# Planning overhead of adaptive sweeps: a 10,000-point grid of trivial surrogate trials (20 cells of
# 25 lr x 20 batch sizes), [adaptive] budget = 1, run with 16 workers, for several round sizes, beside
# the same grid run whole. Prints a markdown table (median of REPEATS runs) for the README.
#
#   tests/bench/adaptive_bench.sh [HPSWEEP_BINARY]     (default build/release/hpsweep of this checkout)
#
# Knobs (environment): REPEATS (3), WORKERS (16), MODE (threads: --workers N; mpi: mpirun -n N+1).
set -euo pipefail
HPSWEEP=${1:-$(dirname "${BASH_SOURCE[0]}")/../../build/release/hpsweep}
REPEATS=${REPEATS:-3}
WORKERS=${WORKERS:-16}
MODE=${MODE:-threads}
TMP=$(mktemp -d -t hpsweep-adaptive-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
cp "$HPSWEEP" "$TMP/hpsweep"
HPSWEEP=$TMP/hpsweep

job() {  # job NAME ADAPTIVE_LINES
  cat > "$TMP/$1.ini" <<JOB
[sweep]
name = adaptive-bench
[scales]
params = 1e7, 3e7, 1e8, 3e8
tokens_per_param = 5, 10, 20, 40, 80
[grid]
lr = log:1e-5:1e-1:25
batch = log:4:4096:20
[backend]
kind = surrogate
[surrogate]
curve_points = 0
[target]
params = 7e9
tokens = 1.4e12
$2
JOB
}
job whole ""
job default $'[adaptive]\nbudget = 1'
job r200 $'[adaptive]\nbudget = 1\nround_trials = 200'
job r1000 $'[adaptive]\nbudget = 1\nround_trials = 1000'

run() {  # run NAME -> "trials rate planning rounds"
  rm -f "$TMP/s.h5" "$TMP/s.h5.journal"
  local out
  if [[ $MODE == mpi ]]; then
    local flags=(--oversubscribe); [[ $(id -u) -eq 0 ]] && flags+=(--allow-run-as-root)
    out=$(mpirun "${flags[@]}" -n $((WORKERS + 1)) "$HPSWEEP" run "$TMP/$1.ini" --out "$TMP/s.h5" --progress none)
  else
    out=$("$HPSWEEP" run "$TMP/$1.ini" --out "$TMP/s.h5" --workers "$WORKERS" --progress none)
  fi
  local trials rate planning rounds
  trials=$(sed -n 's/^ran \([0-9]*\) trials.*/\1/p' <<<"$out")
  rate=$(sed -n 's/^ran .*(\([0-9.]*\) trials\/s).*/\1/p' <<<"$out")
  planning=$(sed -n 's/.*, \([0-9.]*\)s planning.*/\1/p' <<<"$out")
  rounds=$(sed -n 's/.*adaptive plan: \([0-9]*\) rounds.*/\1/p' <<<"$out")
  echo "$trials $rate ${planning:--} ${rounds:--}"
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "| job | round size | trials run | rounds | planning s (median) | trials/s (median of $REPEATS) |"
echo "|---|---:|---:|---:|---:|---:|"
for name in whole default r200 r1000; do
  rates=() plans=() line=""
  for _ in $(seq "$REPEATS"); do
    line=$(run "$name")
    rates+=("$(cut -d' ' -f2 <<<"$line")")
    plans+=("$(cut -d' ' -f3 <<<"$line")")
  done
  size=$(case $name in whole) echo "-";; default) echo "40 (2 per cell)";; r200) echo 200;; r1000) echo 1000;; esac)
  plan_median=$([[ $name == whole ]] && echo "-" || printf '%s\n' "${plans[@]}" | median)
  echo "| ${name/whole/whole grid (no [adaptive])} | $size | $(cut -d' ' -f1 <<<"$line") | $(cut -d' ' -f4 <<<"$line") | $plan_median | $(printf '%s\n' "${rates[@]}" | median) |"
done
echo
echo "$MODE, $WORKERS workers, $(nproc) cores, $(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"
