#!/usr/bin/env bash
# Benchmark of the mlp backend (kind = mlp); not a test.
#
# 1. Builds tests/bench/mlp_bench.cpp against the backend sources with g++ -O3 -march=$MARCH and
#    runs it: training steps/s of the default network (depth 4, FFN 4w, batch 256, d_in = classes
#    = 64, teacher 256) at each width, and Eigen's own GEMM timed on exactly the products of one
#    step, which gives "% of GEMM peak" = (step FLOPs / step time) / (same FLOPs / GEMM-only time).
# 2. Trains the same network in PyTorch CPU (tests/bench/mlp_torch_bench.py, Debian
#    python3-torch) with the same batch, with 1 thread and with torch's default thread count.
#    TORCH_BLAS_DIR=<dir with libblas.so.3> adds a third run with that BLAS (e.g. OpenBLAS
#    extracted from the libopenblas0-pthread .deb) without touching the system alternatives.
# 3. Prints a markdown table.
#
#   tests/bench/mlp_bench.sh                                  # MARCH=x86-64-v2
#   MARCH=x86-64-v3 WIDTHS=64,128,256 tests/bench/mlp_bench.sh
# Environment: MARCH, WIDTHS, BATCH, DEPTH, MIN_SECONDS (per point), PY (/usr/bin/python3),
# TORCH=0 to skip PyTorch, TORCH_FROM=<an earlier OUT> to reuse its PyTorch results (they do not
# depend on MARCH), TORCH_BLAS_DIR, OUT (folder for the build and the raw JSON lines).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MARCH=${MARCH:-x86-64-v2}
WIDTHS=${WIDTHS:-64,128,256,512,1024}
BATCH=${BATCH:-256}
DEPTH=${DEPTH:-4}
MIN_SECONDS=${MIN_SECONDS:-3}
PY=${PY:-/usr/bin/python3}
TORCH=${TORCH:-1}
OUT=${OUT:-$(mktemp -d /tmp/mlp_bench.XXXXXX)}
mkdir -p "$OUT"

echo "building the driver (-O3 -march=$MARCH) in $OUT ..." >&2
g++ -std=c++20 -O3 -march="$MARCH" -DNDEBUG -I"$ROOT/include" -I"$ROOT/src" -isystem /usr/include/eigen3 \
  "$ROOT/tests/bench/mlp_bench.cpp" "$ROOT"/src/backends/mlp/*.cpp "$ROOT/src/parametrization/rules.cpp" \
  "$ROOT/src/trials/smoothing.cpp" "$ROOT"/src/util/*.cpp "$ROOT/src/trials/trial.cpp" -o "$OUT/mlp_bench"

echo "hpsweep mlp ..." >&2
"$OUT/mlp_bench" --widths "$WIDTHS" --batch "$BATCH" --depth "$DEPTH" --min-seconds "$MIN_SECONDS" | tee "$OUT/hpsweep.jsonl" >&2

: > "$OUT/torch_1.jsonl"
: > "$OUT/torch_default.jsonl"
: > "$OUT/torch_blas.jsonl"
if [ -n "${TORCH_FROM:-}" ]; then
  cp "$TORCH_FROM"/torch_1.jsonl "$TORCH_FROM"/torch_default.jsonl "$TORCH_FROM"/torch_blas.jsonl "$OUT"/
elif [ "$TORCH" = 1 ]; then
  if ! "$PY" -c "import torch" 2>/dev/null; then
    echo "PyTorch missing: apt-get install -y python3-torch (then run with /usr/bin/python3); skipping" >&2
  else
    targs=(--widths "$WIDTHS" --batch "$BATCH" --depth "$DEPTH" --min-seconds "$MIN_SECONDS")
    echo "PyTorch, 1 thread ..." >&2
    "$PY" "$ROOT/tests/bench/mlp_torch_bench.py" "${targs[@]}" --threads 1 | tee "$OUT/torch_1.jsonl" >&2
    echo "PyTorch, default threads ..." >&2
    "$PY" "$ROOT/tests/bench/mlp_torch_bench.py" "${targs[@]}" --threads 0 | tee "$OUT/torch_default.jsonl" >&2
    if [ -n "${TORCH_BLAS_DIR:-}" ]; then
      echo "PyTorch, 1 thread, BLAS from $TORCH_BLAS_DIR ..." >&2
      LD_LIBRARY_PATH="$TORCH_BLAS_DIR" OPENBLAS_NUM_THREADS=1 \
        "$PY" "$ROOT/tests/bench/mlp_torch_bench.py" "${targs[@]}" --threads 1 | tee "$OUT/torch_blas.jsonl" >&2
    fi
  fi
fi

"$PY" - "$OUT" "$MARCH" <<'EOF'
import json, sys, os
out, march = sys.argv[1], sys.argv[2]
def load(name):
    path = os.path.join(out, name)
    rows = [json.loads(l) for l in open(path) if l.strip()] if os.path.exists(path) else []
    return {r["width"]: r for r in rows if "width" in r}, [r for r in rows if "width" not in r]
hp, extra = load("hpsweep.jsonl")
t1, _ = load("torch_1.jsonl")
td, _ = load("torch_default.jsonl")
tb, _ = load("torch_blas.jsonl")
peak = extra[0]["square_gemm_1024_gflops"] if extra else float("nan")
def f(v, d=1):
    return "-" if v is None else f"{v:.{d}f}"
def sig(v):  # 3 significant digits
    return "-" if v is None else f"{v:.3g}"
threads = next(iter(td.values()))["threads"] if td else None
head = ["width", "hpsweep steps/s", "PyTorch steps/s (1 thread)", "speed-up",
        f"PyTorch steps/s (default: {threads} thread{'s' if threads != 1 else ''})" if threads else "PyTorch steps/s (default threads)", "speed-up"]
if tb:
    head += ["PyTorch+BLAS steps/s (1 thread)", "speed-up"]
head += ["hpsweep GFLOP/s", "Eigen GEMM GFLOP/s (same shapes)", "% of GEMM peak"]
print(f"\nmlp backend, depth {next(iter(hp.values()))['depth']}, batch {next(iter(hp.values()))['batch']}, "
      f"g++ -O3 -march={march}; Eigen GEMM 1024^3: {peak:.1f} GFLOP/s\n")
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for w, r in sorted(hp.items()):
    row = [str(w), sig(r["steps_per_s"])]
    for t in (t1, td) + ((tb,) if tb else ()):
        s = t.get(w, {}).get("steps_per_s")
        row += [sig(s), (f(r["steps_per_s"] / s) + "x") if s else "-"]
    row += [f(r["gflops"]), f(r["gemm_gflops"]), f(r["pct_of_gemm"]) + "%"]
    print("| " + " | ".join(row) + " |")
EOF
