#!/usr/bin/env bash
# Scheduler benchmark for hpsweep: prints a markdown report (machine, trivial-trial throughput,
# overhead on uneven trials, Optuna GridSampler as a peer) for the README.
#
#   tests/bench/scheduler_bench.sh [HPSWEEP_BINARY]      (default build/release/hpsweep of this checkout)
#
# The report goes to stdout, progress to stderr. Temporary job and sweep files live in a mktemp
# directory that is removed at exit. Exits non-zero if any run fails. This is a benchmark, not a
# test: numbers depend on the machine and on whatever else it is doing.
#
# Knobs (environment):
#   BENCH_RANKS_TRIVIAL  ranks for the throughput runs        (default "1 2 4 8")
#   BENCH_RANKS_UNEVEN   ranks for the uneven-trial runs      (default "2 4 8")
#   BENCH_UNEVEN_SLEEP_S summed trial sleep of the uneven job (default 30)
#   BENCH_OPTUNA_POINTS  Optuna grid sizes                    (default "240 1000")
#   BENCH_TIMEOUT_S      limit per hpsweep run                (default 900)
set -euo pipefail

HPSWEEP=${1:-$(dirname "${BASH_SOURCE[0]}")/../../build/release/hpsweep}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=/usr/bin/python3  # Debian's interpreter: python3-h5py and python3-optuna live there, not in pyenv
RANKS_TRIVIAL=${BENCH_RANKS_TRIVIAL:-"1 2 4 8"}
RANKS_UNEVEN=${BENCH_RANKS_UNEVEN:-"2 4 8"}
UNEVEN_SLEEP_S=${BENCH_UNEVEN_SLEEP_S:-30}
OPTUNA_POINTS=${BENCH_OPTUNA_POINTS:-"240 1000"}
TIMEOUT_S=${BENCH_TIMEOUT_S:-900}

log() { echo "bench: $*" >&2; }
die() { echo "bench: error: $*" >&2; exit 1; }

[[ -x $HPSWEEP ]] || die "hpsweep binary '$HPSWEEP' is not executable (pass its path as \$1)"
HPSWEEP=$(cd "$(dirname "$HPSWEEP")" && pwd)/$(basename "$HPSWEEP")
[[ -x $PY ]] || die "$PY not found"
"$PY" -c 'import h5py, numpy' 2>/dev/null || die "$PY cannot import h5py (apt-get install python3-h5py)"
command -v mpirun >/dev/null || die "mpirun not found"

TMP=$(mktemp -d -t hpsweep-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# Run a private copy: the build tree may be rebuilt while the benchmark runs (a half-linked binary
# fails to exec), and every row should measure the same build. Retry while a link is in progress.
HPSWEEP_SRC=$HPSWEEP HPSWEEP_MTIME=""
for attempt in $(seq 1 12); do
  HPSWEEP_MTIME=$(date -u -r "$HPSWEEP_SRC" '+%Y-%m-%d %H:%M:%S UTC')
  if cp "$HPSWEEP_SRC" "$TMP/hpsweep" 2>/dev/null && "$TMP/hpsweep" version >/dev/null 2>&1; then break; fi
  ((attempt < 12)) || die "cannot copy a working '$HPSWEEP_SRC'"
  log "'$HPSWEEP_SRC' is not runnable right now (being rebuilt?); retrying in 5 s"
  sleep 5
done
HPSWEEP=$TMP/hpsweep

MPIRUN=(mpirun --oversubscribe)
[[ $(id -u) -eq 0 ]] && MPIRUN+=(--allow-run-as-root)

now() { date +%s.%N; }
fmt() { awk -v v="$1" -v f="$2" 'BEGIN { printf f, v }'; }

# run_hpsweep RANKS JOB OUT LOG: runs one sweep into a fresh OUT; sets WALL_S, RAN, RATE.
run_hpsweep() {
  local ranks=$1 job=$2 out=$3 logf=$4 rc=0 t0 t1
  rm -f "$out" "$out.journal"  # a leftover journal alone would make hpsweep resume from it
  local cmd=("$HPSWEEP" run "$job" --out "$out" --progress none)
  ((ranks > 1)) && cmd=("${MPIRUN[@]}" -n "$ranks" "${cmd[@]}")
  log "running: ${cmd[*]}"
  t0=$(now)
  timeout "$TIMEOUT_S" "${cmd[@]}" >"$logf" 2>&1 || rc=$?
  t1=$(now)
  WALL_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  if ((rc != 0)); then
    tail -n 30 "$logf" >&2
    local why="exit $rc"
    ((rc == 124)) && why="timed out after ${TIMEOUT_S}s"
    die "run with $ranks ranks failed ($why): ${cmd[*]}"
  fi
  # "ran 200000 trials in 3.7s (5.457e+04 trials/s); 24680 diverged, 0 failed"
  local line
  line=$(grep -E '^ran [0-9]+ trials in ' "$logf" | tail -n 1) || true
  if [[ ! $line =~ ^ran\ ([0-9]+)\ trials\ in\ [^\ ]+\ \(([^\ ]+)\ trials/s\)\;\ ([0-9]+)\ diverged,\ ([0-9]+)\ failed ]]; then
    tail -n 30 "$logf" >&2
    die "no 'ran N trials ... trials/s' summary in the output of: ${cmd[*]}"
  fi
  RAN=${BASH_REMATCH[1]}
  RATE=$(fmt "${BASH_REMATCH[2]}" "%.0f")  # hpsweep prints 54570, 5.457e+04 or 1.41e5
  local failed=${BASH_REMATCH[4]}
  ((failed == 0)) || die "$failed trials failed in: ${cmd[*]} (log: see above)"
  grep -q 'warning' "$logf" && { grep 'warning' "$logf" >&2; die "hpsweep warned in: ${cmd[*]}"; }
  return 0
}

grid_size() {  # validate JOB -> trials in the grid
  "$HPSWEEP" validate "$1" | sed -nE 's/.* = ([0-9]+) trials$/\1/p'
}

# ---------------------------------------------------------------- machine
log "temporary directory $TMP"
CPU=$(sed -nE 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
[[ -n $CPU ]] || CPU=$(lscpu 2>/dev/null | sed -nE 's/^Model name:[[:space:]]*//p' | head -n 1)
MEM_G=$(free -g | awk '/^Mem:/ { print $2 }')
MPI_VERSION=$(mpirun --version 2>&1 | head -n 1)
HPSWEEP_VERSION=$("$HPSWEEP" version 2>&1 | head -n 1)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
DATE=$(date -u '+%Y-%m-%d %H:%M UTC')

# ---------------------------------------------------------------- 1. trivial-trial throughput
cat >"$TMP/trivial.ini" <<'EOF'
# Closed-form surrogate, no stored curves: every trial costs microseconds, so this measures the
# scheduler, the MPI round trips and the store (journal + HDF5), not the trials.
[sweep]
name = bench_trivial
seed = 1
repeats = 1

[scales]
params = log:1e6:1e9:20
tokens = log:1e8:1e11:10
seq_len = 2048

[grid]
lr = log:1e-4:1e-1:25
batch = 16, 32, 64, 128, 256, 512, 1024, 2048
wd = 0, 0.01, 0.1, 0.3, 1

[backend]
kind = surrogate

[surrogate]
curve_points = 0
EOF
TRIVIAL_N=$(grid_size "$TMP/trivial.ini")
[[ $TRIVIAL_N =~ ^[0-9]+$ ]] || die "cannot read the grid size of the trivial job"

launch_span() {  # FILE.h5 -> end - start of the last launch, seconds
  "$PY" - "$1" <<'EOF'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    l = f["launches"][-1]
    print(f"{l['end_time'] - l['start_time']:.3f}")
EOF
}

TRIVIAL_ROWS=()
HPSWEEP_1PROC_RATE=""
BEST_MPI_RATE=0 BEST_MPI_RANKS=""
for r in $RANKS_TRIVIAL; do
  out="$TMP/trivial-r$r.h5"
  run_hpsweep "$r" "$TMP/trivial.ini" "$out" "$TMP/trivial-r$r.log"
  ((RAN == TRIVIAL_N)) || die "trivial job with $r ranks ran $RAN of $TRIVIAL_N trials"
  span=$(launch_span "$out")
  workers=$((r > 1 ? r - 1 : 1))
  what=$([[ $r -eq 1 ]] && echo "1 (no MPI)" || echo "$r")
  TRIVIAL_ROWS+=("| $what | $workers | $RAN | $RATE | $(fmt "$span" "%.2f") | $(fmt "$WALL_S" "%.2f") | $(awk -v n="$RAN" -v s="$WALL_S" 'BEGIN { printf "%.0f", n / s }') |")
  if ((r == 1)); then HPSWEEP_1PROC_RATE=$RATE
  elif ((RATE > BEST_MPI_RATE)); then BEST_MPI_RATE=$RATE BEST_MPI_RANKS=$r; fi
  log "  $r ranks: $RATE trials/s (hpsweep), launch ${span}s, command ${WALL_S}s"
  rm -f "$out" "$out.journal"  # ~100 MB each
done

# ---------------------------------------------------------------- 2. uneven trials
write_uneven() {  # FILE SLEEP_PER_PFLOP
  cat >"$1" <<EOF
# Trials sleep sleep_per_pflop seconds per 1e15 FLOPs of 6ND: from a few ms (N=2e7, D=4e8) to
# 100x longer (N=2e8, D=4e9). The sleeps use no CPU, so oversubscribed ranks are fine.
[sweep]
name = bench_uneven
seed = 1

[scales]
params = log:2e7:2e8:5
tokens = log:4e8:4e9:5
seq_len = 2048

[grid]
lr = log:1e-4:1e-2:6
batch = 32, 64, 128, 256
wd = 0.1

[backend]
kind = surrogate

[surrogate]
curve_points = 0
sleep_per_pflop = $2
EOF
}
write_uneven "$TMP/uneven.ini" 1
FLOPS=$("$HPSWEEP" validate "$TMP/uneven.ini" | sed -nE 's/.*total proxy compute ([0-9.e+-]+) FLOPs.*/\1/p')
[[ -n $FLOPS ]] || die "cannot read the total compute of the uneven job"
SLEEP_PER_PFLOP=$(awk -v s="$UNEVEN_SLEEP_S" -v f="$FLOPS" 'BEGIN { printf "%.4g", s / (f / 1e15) }')
write_uneven "$TMP/uneven.ini" "$SLEEP_PER_PFLOP"
UNEVEN_N=$(grid_size "$TMP/uneven.ini")
[[ $UNEVEN_N =~ ^[0-9]+$ ]] || die "cannot read the grid size of the uneven job"

analyze_uneven() {  # FILE.h5 RANKS -> one markdown row (without the command wall time)
  "$PY" - "$1" "$2" <<'EOF'
import sys
import h5py
import numpy as np

path, ranks = sys.argv[1], int(sys.argv[2])
workers = ranks - 1
with h5py.File(path, "r") as f:
    t = f["trials"][...]
    launch = f["launches"][-1]
t = t[t["launch"] == launch["index"]]
used = sorted(set(int(r) for r in t["rank"]))
if len(used) != workers:
    sys.exit(f"expected trials on {workers} worker ranks, found ranks {used}")
wall, start = t["wall_time"], t["start_time"]
busy = wall.sum()
ideal = busy / workers
span = (start + wall).max() - start.min()  # first trial start to last trial end
lspan = launch["end_time"] - launch["start_time"]  # store open to store close
per_rank = np.array([wall[t["rank"] == r].sum() for r in used])
print(f"| {ranks} | {workers} | {len(t)} | {busy:.2f} | {wall.max():.3f} | {ideal:.2f} | {span:.2f} | "
      f"{100 * (span / ideal - 1):.1f}% | {lspan:.2f} | {100 * (lspan / ideal - 1):.1f}% | "
      f"{per_rank.min():.2f}-{per_rank.max():.2f} |", end="")
EOF
}

UNEVEN_ROWS=()
for r in $RANKS_UNEVEN; do
  ((r >= 2)) || die "uneven runs need at least 2 ranks (rank 0 is the master), got $r"
  out="$TMP/uneven-r$r.h5"
  run_hpsweep "$r" "$TMP/uneven.ini" "$out" "$TMP/uneven-r$r.log"
  ((RAN == UNEVEN_N)) || die "uneven job with $r ranks ran $RAN of $UNEVEN_N trials"
  row=$(analyze_uneven "$out" "$r") || die "cannot analyse $out"
  UNEVEN_ROWS+=("$row $(fmt "$WALL_S" "%.2f") |")
  log "  $r ranks: $row ${WALL_S}s"
  rm -f "$out" "$out.journal"
done

# ---------------------------------------------------------------- 3. peer: Optuna GridSampler
OPTUNA_ROWS=() OPTUNA_NOTE=""
if ! "$PY" -c 'import optuna' 2>/dev/null; then
  log "optuna is not importable by $PY; trying apt-get install -y python3-optuna"
  if [[ $(id -u) -eq 0 ]]; then
    apt-get install -y -q python3-optuna >"$TMP/apt.log" 2>&1 || true
  elif command -v sudo >/dev/null; then
    # shellcheck disable=SC2024  # the log is ours, not root's
    sudo -n apt-get install -y -q python3-optuna >"$TMP/apt.log" 2>&1 || true
  fi
fi
if "$PY" -c 'import optuna' 2>/dev/null; then
  for p in $OPTUNA_POINTS; do
    log "running: $PY $HERE/optuna_grid_bench.py --points $p"
    rc=0
    res=$("$PY" "$HERE/optuna_grid_bench.py" --points "$p" 2>"$TMP/optuna.err") || rc=$?
    if ((rc == 3)); then OPTUNA_NOTE=$res; break; fi
    ((rc == 0)) || { cat "$TMP/optuna.err" >&2; die "optuna benchmark failed (exit $rc)"; }
    # optuna=3.1.0 trials=1000 seconds=12.3 trials_per_s=81.3
    ver=$(sed -nE 's/.*optuna=([^ ]+).*/\1/p' <<<"$res")
    n=$(sed -nE 's/.*trials=([0-9]+).*/\1/p' <<<"$res")
    s=$(sed -nE 's/.*seconds=([0-9.]+).*/\1/p' <<<"$res")
    tps=$(sed -nE 's/.*trials_per_s=([0-9.]+).*/\1/p' <<<"$res")
    OPTUNA_ROWS+=("| Optuna $ver GridSampler, in-memory storage, 1 process | $n | $(fmt "$s" "%.2f") | $(fmt "$tps" "%.0f") |")
    log "  optuna $n trials: $tps trials/s"
  done
else
  OPTUNA_NOTE="skipped: optuna is not importable by $PY and 'apt-get install -y python3-optuna' did not work"
fi

# ---------------------------------------------------------------- report
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
cat <<EOF
### Scheduler benchmark

Produced by \`tests/bench/scheduler_bench.sh\` on $DATE.

| machine | |
|---|---|
| CPU | $CPU |
| cores (\`nproc\`) | $(nproc) |
| memory (\`free -g\` total) | ${MEM_G} GiB |
| MPI | $MPI_VERSION |
| hpsweep | $HPSWEEP_VERSION (\`$HPSWEEP_SRC\`, built $HPSWEEP_MTIME) |
| load average at start / end | $LOAD_START / $LOAD_END |

#### Trivial trials: throughput

$TRIVIAL_N grid points of the closed-form surrogate (\`curve_points = 0\`, microseconds per trial), one
fresh sweep file per run. Rank 0 is the master only, so workers = ranks - 1; "1 (no MPI)" is
\`hpsweep run JOB --out F\` with one worker thread. *hpsweep trials/s* is what hpsweep prints (measured
by the master from opening the store to finishing it, including every journal and HDF5 write);
*launch* is end - start of the run in \`/launches\`; *command* is the wall time of the whole command,
MPI start-up included. Ranks above $(nproc) are oversubscribed.

| ranks | workers | trials | hpsweep trials/s | launch s | command s | trials/s incl. start-up |
|---:|---:|---:|---:|---:|---:|---:|
EOF
for row in "${TRIVIAL_ROWS[@]}"; do echo "$row"; done
cat <<EOF

#### Uneven trials: scheduling overhead

$UNEVEN_N trials that sleep \`sleep_per_pflop = $SLEEP_PER_PFLOP\` s per 1e15 FLOPs of 6ND (about
${UNEVEN_SLEEP_S} s summed; the longest is ~100x the shortest). *ideal* = sum of trial wall times / workers;
*dispatch span* = last trial end - first trial start; *launch* = end - start in \`/launches\` (store open
to close); overhead = observed / ideal - 1, as Ray reports it. *busy per worker* is the range of
summed trial time over the worker ranks (load balance).

| ranks | workers | trials | sum of trials s | longest trial s | ideal s | dispatch span s | overhead | launch s | overhead (launch) | busy per worker s | command s |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
EOF
for row in "${UNEVEN_ROWS[@]}"; do echo "$row"; done
cat <<EOF

#### Peer: Optuna's GridSampler

Same kind of grid (lr x batch x wd; 1000 points = 25 x 8 x 5, one (N, D) cell of the grid above), a
trivial objective, Optuna's default in-memory storage, one process (\`tests/bench/optuna_grid_bench.py\`).
hpsweep rows repeat the throughput table.

| tool | trials | seconds | trials/s |
|---|---:|---:|---:|
EOF
for row in "${OPTUNA_ROWS[@]}"; do echo "$row"; done
[[ -n $HPSWEEP_1PROC_RATE ]] && echo "| hpsweep, 1 process, 1 worker thread | $TRIVIAL_N | | $HPSWEEP_1PROC_RATE |"
[[ -n $BEST_MPI_RANKS ]] && echo "| hpsweep, best MPI run ($BEST_MPI_RANKS ranks) | $TRIVIAL_N | | $BEST_MPI_RATE |"
[[ -n $OPTUNA_NOTE ]] && { echo; echo "$OPTUNA_NOTE"; }
exit 0
