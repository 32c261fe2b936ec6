#!/usr/bin/env bash
# Fuzzes hpsweep's parsers with libFuzzer + ASan + UBSan (tests/fuzz/fuzz_targets.hpp).
#
#   tests/fuzz/run_fuzz.sh [TARGET] [LIBFUZZER_OPTION...]      # default: log -max_total_time=180
#   tests/fuzz/run_fuzz.sh log-T -runs=1000000                 # one million TensorBoard inputs
#   tests/fuzz/run_fuzz.sh all -runs=1000000                   # every target below in turn
#   tests/fuzz/run_fuzz.sh 180                                 # old form: log for 180 s
#
# Targets:
#   log       every run-log layout, byte 0 of each input picks it (libFuzzer mutates it too)
#   log-T     TensorBoard event files: TFRecord framing, CRC32Cs, Event protobufs (+ config.yaml)
#   log-W     W&B offline run-*.wandb: LevelDB-log blocks, Record protobufs
#   log-w     W&B wandb-history.jsonl (+ config.yaml)
#   log-L     Lightning metrics.csv + hparams.yaml
#   log-F     MLflow metrics/<key> + meta.yaml + params/
#   log-H     Hugging Face trainer_state.json (+ config)
#   log-C     torchtitan stdout (ANSI codes) + config.toml
#   log-M     Megatron text logs + config.json or the run directory's name
#   log-J     JSON lines metrics.jsonl + config.json
#   log-K     the TOML reader (config.toml beside a fixed valid torchtitan log)
#   csv       the CSV results ingest (byte 0: options)
#   job       the job file (INI) parser and job validation
#   command   the command backend's result line / metrics.json
#   all       each of the 13 single-parser targets above (not `log`), one after the other
# The log-X targets prepend X to every input, so every execution goes to that parser.
#
# Builds tests/fuzz/fuzz_main.cpp against the whole library with clang, ASan, UBSan and libFuzzer
# (tests/fuzz/CMakeLists.txt, in a CMake build of its own under $WORK), seeds the corpus from
# examples/, jobs/, data/, tests/fuzz/seeds/FAMILY and tests/fuzz/regressions/FAMILY, runs, and copies every crash/leak/timeout/oom input into
# tests/fuzz/regressions/FAMILY/ (byte 0 restored for log-X), where the unit test
# FuzzCorpus.* replays it. Appends "date target executions seconds status" to
# $WORK/summary.tsv. Exits non-zero when the fuzzer found something.
# Environment: CXX_FUZZ and CC_FUZZ (default clang++-14, clang-14), FUZZ_WORK (default
# /tmp/hpsweep-fuzz-$UID: the build, corpora, artifacts, logs), FUZZ_JOBS (parallel fuzzing
# processes, default 1).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=${FUZZ_WORK:-/tmp/hpsweep-fuzz-$(id -u)}
CXX=${CXX_FUZZ:-clang++-14}
JOBS=${FUZZ_JOBS:-1}

TARGET=${1:-log}
[ $# -gt 0 ] && shift
if [[ "$TARGET" =~ ^[0-9]+$ ]]; then  # the old form: SECONDS
  set -- "-max_total_time=$TARGET" "$@"
  TARGET=log
fi
[ $# -eq 0 ] && set -- -max_total_time=180

if [ "$TARGET" = all ]; then
  status=0
  for t in log-T log-W log-w log-L log-F log-H log-C log-M log-J log-K csv job command; do
    "$0" "$t" "$@" || status=1
  done
  echo "== summary ($WORK/summary.tsv)"
  tail -n 13 "$WORK/summary.tsv"
  exit $status
fi

case "$TARGET" in
  log) FAMILY=log BYTE0= ;;
  log-[TWwLFHCMJK]) FAMILY=log BYTE0=${TARGET#log-} ;;
  csv | job | command) FAMILY=$TARGET BYTE0= ;;
  *)
    echo "unknown target '$TARGET' (see the top of $0)" >&2
    exit 2
    ;;
esac

# The fuzz binaries link the library itself (tests/fuzz/CMakeLists.txt), instrumented: a build
# of its own under $WORK, configured once, rebuilt by CMake as sources change.
mkdir -p "$WORK/artifacts-$TARGET" "$HERE/regressions/$FAMILY"
rm -f "$WORK/artifacts-$TARGET"/*
BUILD="$WORK/build"
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  echo "== configuring $BUILD with $CXX (ASan + UBSan + libFuzzer)"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_C_COMPILER="${CC_FUZZ:-clang-14}" -DCMAKE_CXX_COMPILER="$CXX" \
    -DCMAKE_BUILD_TYPE=None "-DCMAKE_CXX_FLAGS=-g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all" \
    -DHPSWEEP_BUILD_TESTS=OFF -DHPSWEEP_FUZZ=ON -DBUILD_SHARED_LIBS=OFF >"$WORK/configure.log" ||
    { cat "$WORK/configure.log"; exit 1; }
fi
echo "== building hpsweep-fuzz-$TARGET (the whole library the first time: a few minutes)"
cmake --build "$BUILD" --target "hpsweep-fuzz-$TARGET" -j "$(nproc)" >"$WORK/build.log" || { tail -40 "$WORK/build.log"; exit 1; }
BIN="$BUILD/tests/fuzz/hpsweep-fuzz-$TARGET"

# ---- seeds: written in the target's input format ----
SEEDS="$WORK/seeds-$TARGET"
rm -rf "$SEEDS"
mkdir -p "$SEEDS"
add() {  # reads one seed input on stdin (also at the end of a pipe, so no counter)
  cat >"$(mktemp "$SEEDS/seed-XXXXXX")"
}
EX="$ROOT/examples/ingest"
if [ "$FAMILY" = log ]; then
  log_seed() {  # selector, first part, config file, config name
    { printf '%s' "$1"; cat "$2"; printf '\0'; cat "$3" 2>/dev/null || true; printf '\0%s' "$4"; } | add
  }
  while IFS= read -r -d '' m; do log_seed J "$m" "$(dirname "$m")/config.json" ""; done \
    < <(find "$EX" -name metrics.jsonl -print0)
  while IFS= read -r -d '' l; do log_seed M "$l" "$(dirname "$l")/config.json" "$(basename "$(dirname "$l")")"; done \
    < <(find "$EX/megatron" -name '*.log' -print0)
  for d in "$EX"/tensorboard/*/; do
    for ev in "$d"events.out.tfevents.*; do log_seed T "$ev" "$d/config.yaml" config.yaml; done
  done
  log_seed L "$EX/lightning/lightning_logs/version_0/metrics.csv" "$EX/lightning/lightning_logs/version_0/hparams.yaml" ""
  for run in "$EX"/mlflow/mlruns/*/*/; do
    params=$(for p in "$run"params/*; do printf '%s %s\n' "$(basename "$p")" "$(cat "$p")"; done)
    log_seed F "$run/metrics/loss" "$run/meta.yaml" "$params"
  done
  for st in "$EX"/hf-trainer/*/checkpoint-*/trainer_state.json; do
    log_seed H "$st" "$(dirname "$(dirname "$st")")/config.yaml" config.yaml
  done
  log_seed C "$EX/torchtitan/llama_debug/train.log" "$EX/torchtitan/llama_debug/config.toml" config.toml
  { printf 'K'; cat "$EX/torchtitan/llama_debug/config.toml"; } | add
  for w in "$EX"/wandb/*/*/run-*.wandb; do log_seed W "$w" /dev/null ""; done
  for h in "$EX"/wandb/*/*/wandb-history.jsonl; do log_seed w "$h" "$(dirname "$h")/config.yaml" ""; done
elif [ "$FAMILY" = csv ]; then
  { printf '\x0f'; awk -F, 'NR == 1 { print "lr,batch,loss,params,tokens,wd,seq_len,steps,final_loss"; next }
      NR <= 40 { print $5 "," $6 "," $9 "," $12 "," $11 ",0.1,2048," $7 "," $8 }' "$ROOT/data/steplaw/dense_lr_bs_loss.csv"; } | add
elif [ "$FAMILY" = job ]; then
  for j in "$ROOT"/jobs/*.ini; do add <"$j"; done
fi
for f in "$HERE/seeds/$FAMILY"/* "$HERE/regressions/$FAMILY"/*; do
  [ -f "$f" ] && add <"$f"
done
if [ -n "$BYTE0" ]; then  # keep this layout's seeds, without the byte the binary prepends
  for f in "$SEEDS"/*; do
    if [ "$(head -c1 "$f")" = "$BYTE0" ]; then tail -c +2 "$f" >"$f.t" && mv "$f.t" "$f"; else rm -f "$f"; fi
  done
fi
echo "   $(ls "$SEEDS" | wc -l) seed inputs"

CORPUS="$WORK/corpus-$TARGET"
mkdir -p "$CORPUS"
LOG="$WORK/fuzz-$TARGET.log"
echo "== fuzzing $TARGET: $* (log: $LOG)"
start=$(date +%s)
set +e
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
  "$BIN" "$CORPUS" "$SEEDS" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
  -dict="$HERE/log_parsers.dict" -artifact_prefix="$WORK/artifacts-$TARGET/" -print_final_stats=1 \
  $([ "$JOBS" -gt 1 ] && echo "-fork=$JOBS -ignore_crashes=1") "$@" >"$LOG" 2>&1
status=$?
set -e
seconds=$(($(date +%s) - start))
tail -n 8 "$LOG"

found=0
for f in "$WORK/artifacts-$TARGET"/crash-* "$WORK/artifacts-$TARGET"/leak-* "$WORK/artifacts-$TARGET"/timeout-* \
  "$WORK/artifacts-$TARGET"/oom-*; do
  [ -f "$f" ] || continue
  kept="$HERE/regressions/$FAMILY/$(basename "$f")"
  { printf '%s' "$BYTE0"; cat "$f"; } >"$kept"
  echo "== kept $(basename "$f") in tests/fuzz/regressions/$FAMILY/"
  found=$((found + 1))
done
runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$LOG" | grep -Eo '[0-9]+$' | tail -n1 || true)
# Interrupted before its final statistics: the last progress line's count.
[ -n "$runs" ] || runs=$(grep -Eo '^#[0-9]+' "$LOG" | tr -d '#' | tail -n1 || true)
printf '%s\t%s\t%s\t%s\tstatus=%s found=%s\t%s\n' "$(date -u '+%Y-%m-%d %H:%M')" "$TARGET" "${runs:-?}" "$seconds" \
  "$status" "$found" "$*" >>"$WORK/summary.tsv"
echo "== $TARGET: fuzzer exit status $status, ${runs:-?} executions in ${seconds}s, $found new regression input(s)"
[ "$status" -eq 0 ] && [ "$found" -eq 0 ]
