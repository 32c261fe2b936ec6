#!/usr/bin/env bash
# Ingest benchmark: files/s and MB/s for 10,000 generated run directories (half JSON-lines, half
# Megatron text logs, 200 logged points each) with 1, 2 and 4 ranks. Rank 0 is the master (the
# only writer), so 1 rank means the single-process mode with one parser thread.
#
# Then the parsers alone: MB/s of the TensorBoard, JSON-lines and W&B wandb-history.jsonl
# parsers on one large run in memory (tests/bench/log_parser_bench.cpp, built here with g++ -O2;
# files written by tests/scripts/ingest_fixtures.py). PARSER_ONLY=1 skips the directory table;
# JSON_CHOICE=1 adds the JSON parsers that were candidates (tests/bench/json_choice_bench.cpp).
#
#   tests/bench/ingest_bench.sh [HPSWEEP_BINARY]     (default build/release/hpsweep of this checkout)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HPSWEEP=$(realpath "${1:-$HERE/../../build/release/hpsweep}")
RUNS=${BENCH_RUNS:-10000}
TMP=$(mktemp -d -t hpsweep-ingestbench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
MPIRUN=(mpirun --oversubscribe)
[ "$(id -u)" = 0 ] && MPIRUN+=(--allow-run-as-root)

parser_bench() {
  local ROOT POINTS=${BENCH_POINTS:-100000}
  ROOT=$(cd "$HERE/../.." && pwd)
  local SRCS=(src/ingest/log_ingest.cpp src/ingest/log_ingest_common.cpp src/util/json_reader.cpp src/ingest/log_ingest_jsonl.cpp
    src/ingest/log_ingest_megatron.cpp src/ingest/log_ingest_config.cpp src/ingest/log_ingest_toml.cpp src/ingest/log_ingest_tensorboard.cpp
    src/ingest/log_ingest_lightning.cpp src/ingest/log_ingest_mlflow.cpp src/ingest/log_ingest_hf_trainer.cpp
    src/ingest/log_ingest_torchtitan.cpp src/ingest/log_ingest_wandb.cpp src/ingest/csv_ingest.cpp src/trials/smoothing.cpp src/util/text.cpp
    src/util/error.cpp src/trials/trial.cpp)
  g++ -std=c++20 -O2 -DNDEBUG -I"$ROOT/include" -I"$ROOT/src" "$HERE/log_parser_bench.cpp" "${SRCS[@]/#/$ROOT/}" \
    -lyaml-cpp -lsimdjson -lz -o "$TMP/log_parser_bench"
  /usr/bin/python3 - "$TMP/big" "$POINTS" <<'PY'
import json, os, sys
sys.path.insert(0, os.path.join(os.environ["BENCH_HERE"], "..", "scripts"))
import ingest_fixtures as fx
out, n = sys.argv[1], int(sys.argv[2])
pts = [(s, fx.loss_at(s)) for s in range(1, n + 1)]
fx.write_tensorboard(os.path.join(out, "tb"), pts, {"lr": 1e-3, "batch_size": 64, "params": 2e7, "max_steps": n})
fx.write_jsonl(os.path.join(out, "jsonl"), pts, {"lr": 1e-3, "batch": 64, "params": 2e7, "train_steps": n})
fx.write_wandb_legacy(os.path.join(out, "wandb"), pts, {"lr": 1e-3, "batch_size": 64, "params": 2e7, "max_steps": n})
PY
  echo "### Log parsers alone (\`tests/bench/log_parser_bench.cpp\`, $POINTS logged points, in memory)"
  echo
  "$TMP/log_parser_bench" tensorboard "$(ls "$TMP"/big/tb/events.out.tfevents.*)" "$TMP/big/tb/config.yaml" "${BENCH_SECONDS:-3}"
  "$TMP/log_parser_bench" jsonl "$TMP/big/jsonl/metrics.jsonl" "$TMP/big/jsonl/config.json" "${BENCH_SECONDS:-3}"
  "$TMP/log_parser_bench" wandb-history "$TMP/big/wandb/wandb-history.jsonl" "$TMP/big/wandb/config.yaml" \
    "${BENCH_SECONDS:-3}"
  if [ "${JSON_CHOICE:-0}" = 1 ]; then  # the candidates for the JSON parser, on the same files
    # shellcheck source=../../cmake/deps.sh
    source "$ROOT/cmake/deps.sh"
    hpsweep_ensure_packages nlohmann-json3-dev libsimdjson-dev
    g++ -std=c++20 -O2 -DNDEBUG "$HERE/json_choice_bench.cpp" -lsimdjson -o "$TMP/json_choice_bench"
    for f in "$TMP/big/jsonl/metrics.jsonl" "$TMP/big/wandb/wandb-history.jsonl"; do
      echo
      echo "JSON parsers on $(basename "$f"):"
      "$TMP/json_choice_bench" "$f" "${BENCH_SECONDS:-3}"
    done
  fi
  echo
}
export BENCH_HERE="$HERE"
parser_bench
[ "${PARSER_ONLY:-0}" = 1 ] && exit 0

/usr/bin/python3 "$HERE/make_run_dirs.py" "$TMP/runs" "$RUNS" --points 200 >/dev/null
MB=$(du -sm "$TMP/runs" | cut -f1)
sync
echo "### Ingest (\`tests/bench/ingest_bench.sh\`)"
echo
echo "$RUNS run directories ($MB MB on disk, page cache warm after the first run), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(date -u '+%Y-%m-%d %H:%M UTC'). Figures are what \`hpsweep ingest\` prints: from listing the directories to the last record folded into the HDF5 file."
echo
echo "| ranks | parsers | runs/s | MB/s | seconds |"
echo "|---:|---:|---:|---:|---:|"
cat "$TMP/runs"/*/train.log >/dev/null 2>&1 || true  # warm the page cache once for every row alike
for ranks in 1 2 4; do
  rm -f "$TMP/s.h5" "$TMP/s.h5.journal"
  if [ "$ranks" = 1 ]; then
    out=$("$HPSWEEP" ingest "$TMP/runs" --into "$TMP/s.h5" --workers 1 2>/dev/null)
  else
    out=$("${MPIRUN[@]}" -n "$ranks" "$HPSWEEP" ingest "$TMP/runs" --into "$TMP/s.h5" 2>/dev/null)
  fi
  line=$(echo "$out" | grep -E "^read ")
  secs=$(echo "$line" | sed -E 's/.* in ([0-9.]+) s .*/\1/')
  rps=$(echo "$line" | sed -E 's/.*: ([0-9.]+) runs\/s.*/\1/')
  mbs=$(echo "$line" | sed -E 's/.*, ([0-9.]+) MB\/s.*/\1/')
  parsers=$((ranks > 1 ? ranks - 1 : 1))
  echo "| $ranks | $parsers | $rps | $mbs | $secs |"
done
