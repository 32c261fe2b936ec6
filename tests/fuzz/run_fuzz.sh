#!/usr/bin/env bash
# Fuzzes the run-directory parsers (src/ingest/log_ingest*.cpp: jsonl, megatron, tensorboard,
# lightning, mlflow, hf-trainer, torchtitan and the config readers) with libFuzzer + ASan + UBSan.
#
#   tests/fuzz/run_fuzz.sh [SECONDS]      # default 180
#
# Builds tests/fuzz/fuzz_log_parsers.cpp directly against the few sources the parsers need (no
# CMake, no MPI/HDF5), seeds the corpus from examples/ingest, tests/fuzz/seeds and
# tests/fuzz/regressions, runs for SECONDS, and copies every crash/leak/timeout/oom input into
# tests/fuzz/regressions/, where the unit test LogIngest.FuzzRegressionsParseWithoutCrashing
# replays it. Exits non-zero when the fuzzer found something.
# Environment: CXX_FUZZ (default clang++-14), FUZZ_WORK (default /tmp/hpsweep-fuzz-$UID: binary,
# working corpus, artifacts and fuzz.log), FUZZ_JOBS (parallel fuzzing processes, default 1),
# FUZZ_SELECTORS (e.g. "TW": seed only inputs for those parsers, by parse_fuzz_input's byte 0, so
# the run spends its executions on them).
set -euo pipefail

DURATION=${1:-180}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=${FUZZ_WORK:-/tmp/hpsweep-fuzz-$(id -u)}
CXX=${CXX_FUZZ:-clang++-14}
JOBS=${FUZZ_JOBS:-1}

SOURCES=(
  src/ingest/log_ingest.cpp
  src/ingest/log_ingest_common.cpp
  src/ingest/log_ingest_jsonl.cpp
  src/ingest/log_ingest_megatron.cpp
  src/ingest/log_ingest_config.cpp
  src/ingest/log_ingest_toml.cpp
  src/ingest/log_ingest_tensorboard.cpp
  src/ingest/log_ingest_lightning.cpp
  src/ingest/log_ingest_mlflow.cpp
  src/ingest/log_ingest_hf_trainer.cpp
  src/ingest/log_ingest_torchtitan.cpp
  src/ingest/log_ingest_wandb.cpp
  src/ingest/csv_ingest.cpp
  src/trials/smoothing.cpp
  src/util/text.cpp
  src/util/error.cpp
  src/trials/trial.cpp
)

mkdir -p "$WORK/corpus" "$WORK/artifacts" "$HERE/regressions"
rm -f "$WORK"/artifacts/*
echo "== building $WORK/fuzz_log_parsers with $CXX"
FLAGS=(-std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I"$ROOT/include" -I"$ROOT/src")
OBJS=()
mkdir -p "$WORK/obj"
for src in "${SOURCES[@]}"; do
  obj="$WORK/obj/$(echo "$src" | tr / _).o"
  if ! "$CXX" "${FLAGS[@]}" -c "$ROOT/$src" -o "$obj" 2>"$obj.err"; then
    # clang 14 lacks some C++20 (e.g. lambdas capturing structured bindings, used in
    # csv_ingest.cpp). A helper source it cannot compile is built by g++ without instrumentation:
    # the parsers under test are always built by clang with the sanitizers.
    if [[ "$src" == src/ingest/log_ingest* ]]; then cat "$obj.err" >&2; exit 2; fi
    echo "   $src: not compilable by $CXX ($(grep -m1 'error:' "$obj.err" | sed 's/.*error: //')); using g++ -O1 uninstrumented"
    g++ -std=c++20 -g -O1 -I"$ROOT/include" -I"$ROOT/src" -c "$ROOT/$src" -o "$obj"
  fi
  OBJS+=("$obj")
done
# yaml-cpp (Debian's shared library) is not instrumented: the fuzzer still drives
# every config through them, and a crash inside them still stops it.
"$CXX" "${FLAGS[@]}" "$HERE/fuzz_log_parsers.cpp" "${OBJS[@]}" -lyaml-cpp -lz -o "$WORK/fuzz_log_parsers"

echo "== seeding $WORK/corpus"
SEEDS="$WORK/seeds"
rm -rf "$SEEDS"
mkdir -p "$SEEDS"
n=0
while IFS= read -r -d '' metrics; do
  d=$(dirname "$metrics")
  { printf 'J'; cat "$metrics"; printf '\0'; cat "$d/config.json" 2>/dev/null || true; printf '\0'; } >"$SEEDS/example-$n"
  n=$((n + 1))
done < <(find "$ROOT/examples/ingest" -name metrics.jsonl -print0)
while IFS= read -r -d '' log; do
  d=$(dirname "$log")
  { printf 'M'; cat "$log"; printf '\0'; cat "$d/config.json" 2>/dev/null || true; printf '\0%s' "$(basename "$d")"; } \
    >"$SEEDS/example-$n"
  n=$((n + 1))
done < <(find "$ROOT/examples/ingest" -name '*.log' -print0)
EX="$ROOT/examples/ingest"
seed() {  # selector, first part, config file, config name
  { printf '%s' "$1"; cat "$2"; printf '\0'; cat "$3"; printf '\0%s' "$4"; } >"$SEEDS/example-$n"
  n=$((n + 1))
}
for d in "$EX"/tensorboard/*/; do
  for ev in "$d"events.out.tfevents.*; do seed T "$ev" "$d/config.yaml" config.yaml; done
done
seed L "$EX/lightning/lightning_logs/version_0/metrics.csv" "$EX/lightning/lightning_logs/version_0/hparams.yaml" ""
for run in "$EX"/mlflow/mlruns/*/*/; do
  params=$(for p in "$run"params/*; do printf '%s %s\n' "$(basename "$p")" "$(cat "$p")"; done)
  seed F "$run/metrics/loss" "$run/meta.yaml" "$params"
done
for st in "$EX"/hf-trainer/*/checkpoint-*/trainer_state.json; do
  seed H "$st" "$(dirname "$(dirname "$st")")/config.yaml" config.yaml
done
seed C "$EX/torchtitan/llama_debug/train.log" "$EX/torchtitan/llama_debug/config.toml" config.toml
for w in "$EX"/wandb/*/*/run-*.wandb; do seed W "$w" /dev/null ""; done
for h in "$EX"/wandb/*/*/wandb-history.jsonl; do seed w "$h" "$(dirname "$h")/config.yaml" ""; done
for f in "$HERE"/seeds/* "$HERE"/regressions/*; do
  [ -f "$f" ] && cp "$f" "$SEEDS/"
done
if [ -n "${FUZZ_SELECTORS:-}" ]; then
  for f in "$SEEDS"/*; do
    case "$FUZZ_SELECTORS" in *"$(head -c1 "$f")"*) ;; *) rm -f "$f" ;; esac
  done
fi
echo "   $(ls "$SEEDS" | wc -l) seed inputs"

echo "== fuzzing for ${DURATION}s (log: $WORK/fuzz.log)"
set +e
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
  "$WORK/fuzz_log_parsers" "$WORK/corpus" "$SEEDS" \
  -max_total_time="$DURATION" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
  -dict="$HERE/log_parsers.dict" -artifact_prefix="$WORK/artifacts/" -print_final_stats=1 \
  $([ "$JOBS" -gt 1 ] && echo "-fork=$JOBS -ignore_crashes=1") >"$WORK/fuzz.log" 2>&1
status=$?
set -e
tail -n 25 "$WORK/fuzz.log"

found=0
for f in "$WORK"/artifacts/crash-* "$WORK"/artifacts/leak-* "$WORK"/artifacts/timeout-* "$WORK"/artifacts/oom-*; do
  [ -f "$f" ] || continue
  cp "$f" "$HERE/regressions/"
  echo "== kept $(basename "$f") in tests/fuzz/regressions/"
  found=$((found + 1))
done
runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$WORK/fuzz.log" | grep -Eo '[0-9]+$' | tail -n1 || true)
echo "== fuzzer exit status $status, ${runs:-?} executions, $found new regression input(s)"
[ "$status" -eq 0 ] && [ "$found" -eq 0 ]
