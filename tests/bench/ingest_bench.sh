#!/usr/bin/env bash
# Ingest benchmark: files/s and MB/s for 10,000 generated run directories (half JSON-lines, half
# Megatron text logs, 200 logged points each) with 1, 2 and 4 ranks. Rank 0 is the master (the
# only writer), so 1 rank means the single-process mode with one parser thread.
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
