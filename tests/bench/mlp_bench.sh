#!/usr/bin/env bash
# Benchmark of the mlp backend (kind = mlp) against PyTorch on OpenBLAS; not a test.
#
# 1. Builds tests/bench/mlp_bench.cpp against the libhpsweep of the default build
#    (`cmake --preset release`, build/release, what examples/quickstart.sh builds; configured and
#    built here if missing) and runs it: the single-core FP32 peak (FMA probe), a 1024^3 SGEMM
#    through the trainer's GEMM and through Eigen, and per width the training steps/s of the
#    default network (depth 4, FFN 4w, batch 256, d_in = classes = 64, teacher 256), its step
#    split into data / forward+backward / AdamW update, and the step's GEMMs alone.
#    MARCH=x86-64-v3 (or native) builds build/bench-MARCH with -DHPSWEEP_MARCH instead.
# 2. Trains the same network in PyTorch CPU (tests/bench/mlp_torch_bench.py, Debian
#    python3-torch, installed with apt-get when missing and root), one thread, on OpenBLAS from
#    libopenblas0-pthread (TORCH_BLAS_DIR, put first on LD_LIBRARY_PATH so libblas.so.3 is
#    OpenBLAS's), and on the reference BLAS (REF_BLAS_DIR; a footnote). Each run reports the BLAS
#    libraries mapped (/proc/self/maps), the one torch's sgemm_ resolves to, and OpenBLAS's kernels.
# 3. Prints the machine and a markdown table. Rates are per CPU second of the measuring process
#    (one thread each), so other jobs on a shared machine do not count; wall-clock rates too.
#
#   tests/bench/mlp_bench.sh
#   MARCH=native WIDTHS=64,128 TORCH=0 tests/bench/mlp_bench.sh
# Environment: MARCH, BUILD (a configured build tree), WIDTHS, BATCH, DEPTH, MIN_SECONDS (per
# point), PY (/usr/bin/python3), TORCH=0 to skip PyTorch, TORCH_BLAS_DIR, REF_BLAS_DIR, REF_WIDTHS,
# GEMM_PEERS=1 (the GEMM shapes on OpenBLAS and BLIS, tests/bench/gemm_shapes_bench.cpp), OUT
# (folder for the driver and the raw JSON lines).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MARCH=${MARCH:-}
WIDTHS=${WIDTHS:-64,128,256,512,1024}
BATCH=${BATCH:-256}
DEPTH=${DEPTH:-4}
MIN_SECONDS=${MIN_SECONDS:-3}
PY=${PY:-/usr/bin/python3}
TORCH=${TORCH:-1}
TORCH_BLAS_DIR=${TORCH_BLAS_DIR:-/usr/lib/x86_64-linux-gnu/openblas-pthread}
REF_BLAS_DIR=${REF_BLAS_DIR:-/usr/lib/x86_64-linux-gnu/blas}
REF_WIDTHS=${REF_WIDTHS:-64,128,256}  # the reference BLAS takes ~12 s a step at width 1024
OUT=${OUT:-$(mktemp -d /tmp/mlp_bench.XXXXXX)}
mkdir -p "$OUT"

if [ -n "$MARCH" ]; then
  BUILD=${BUILD:-$ROOT/build/bench-$MARCH}
  [ -f "$BUILD/CMakeCache.txt" ] ||
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DHPSWEEP_MARCH="$MARCH" -DHPSWEEP_BUILD_TESTS=OFF >/dev/null
else
  BUILD=${BUILD:-$ROOT/build/release}
  [ -f "$BUILD/CMakeCache.txt" ] || (cd "$ROOT" && cmake --preset release >/dev/null)
fi
echo "building libhpsweep in $BUILD ..." >&2
cmake --build "$BUILD" --target hpsweep_lib -j 2 >/dev/null
echo "building the driver in $OUT ..." >&2
# shellcheck disable=SC2046 # pkg-config prints several words on purpose
g++ -std=c++20 -O3 -DNDEBUG ${MARCH:+-march=$MARCH} -I"$ROOT/include" -I"$BUILD/generated" \
  -isystem /usr/include/eigen3 $(pkg-config --cflags openblas) "$ROOT/tests/bench/mlp_bench.cpp" \
  -L"$BUILD" -Wl,-rpath,"$BUILD" -lhpsweep $(pkg-config --libs openblas) -o "$OUT/mlp_bench"

# OpenBLAS picks its kernels for the CPU unless OPENBLAS_CORETYPE forces them; a forced type in
# the environment (some CI images set Haswell) would hold both peers to it, so it is dropped
# here unless KEEP_CORETYPE=1. Both peers run under the same OpenBLAS environment either way.
[ "${KEEP_CORETYPE:-0}" = 1 ] || unset OPENBLAS_CORETYPE
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(lscpu | grep -o -w -E 'avx2|fma|avx512f|avx512bw|avx512vl|avx512_bf16' | sort -u | tr '\n' ' ')"
  echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "compiler: $(g++ --version | head -1); build: $BUILD ${MARCH:+(HPSWEEP_MARCH=$MARCH)}${MARCH:-(default flags)}"
  echo "OpenBLAS environment: $(env | grep '^OPENBLAS_' | sort | tr '\n' ' ')"
} | tee "$OUT/machine.txt" >&2

echo "hpsweep mlp ..." >&2
"$OUT/mlp_bench" --widths "$WIDTHS" --batch "$BATCH" --depth "$DEPTH" --min-seconds "$MIN_SECONDS" |
  tee "$OUT/hpsweep.jsonl" >&2
# For the record: the 1024^3 SGEMM on OpenBLAS's AVX2 kernels (what a CPU without AVX-512 gets).
OPENBLAS_CORETYPE=Haswell "$OUT/mlp_bench" --gemm-only | tee "$OUT/hpsweep_avx2_kernels.jsonl" >&2

# GEMM_PEERS=1: the trainer's GEMM shapes on OpenBLAS and, when installed (libblis-dev), on BLIS:
# as it picks its kernels here, and with BLIS_ARCH_TYPE forcing its AVX-512 (skx) sub-configuration.
: >"$OUT/gemm_shapes.jsonl"
if [ "${GEMM_PEERS:-0}" = 1 ]; then
  echo "GEMM shapes: OpenBLAS$([ -e /usr/include/x86_64-linux-gnu/blis.h ] && echo ", BLIS") ..." >&2
  # shellcheck disable=SC2046 # pkg-config prints several words on purpose
  g++ -std=c++20 -O2 "$ROOT/tests/bench/gemm_shapes_bench.cpp" $(pkg-config --libs openblas) -o "$OUT/gemm_shapes_openblas"
  OPENBLAS_NUM_THREADS=1 "$OUT/gemm_shapes_openblas" OpenBLAS ${WIDTHS//,/ } | tee -a "$OUT/gemm_shapes.jsonl" >&2
  if [ -e /usr/include/x86_64-linux-gnu/blis.h ]; then
    g++ -std=c++20 -O2 "$ROOT/tests/bench/gemm_shapes_bench.cpp" -lblis -o "$OUT/gemm_shapes_blis"
    config=$(BLIS_ARCH_DEBUG=1 BLIS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$OUT/gemm_shapes_blis" x 64 2>&1 >/dev/null |
      sed -n "s/.*sub-configuration '\\(.*\\)'.*/\\1/p")
    BLIS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$OUT/gemm_shapes_blis" "BLIS ($config, its choice)" ${WIDTHS//,/ } |
      tee -a "$OUT/gemm_shapes.jsonl" >&2
    BLIS_ARCH_TYPE=skx BLIS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$OUT/gemm_shapes_blis" "BLIS (BLIS_ARCH_TYPE=skx)" \
      ${WIDTHS//,/ } | tee -a "$OUT/gemm_shapes.jsonl" >&2
  fi
fi

for f in torch_openblas torch_reference; do : >"$OUT/$f.jsonl"; done
if [ "$TORCH" = 1 ]; then
  if ! "$PY" -c "import torch" 2>/dev/null; then
    if [ "$(id -u)" = 0 ]; then
      apt-get install -y -qq python3-torch >/dev/null || (apt-get update -qq && apt-get install -y -qq python3-torch >/dev/null)
    else
      echo "PyTorch missing: sudo apt-get install -y python3-torch; skipping" >&2
    fi
  fi
  if "$PY" -c "import torch" 2>/dev/null; then
    targs=(--widths "$WIDTHS" --batch "$BATCH" --depth "$DEPTH" --min-seconds "$MIN_SECONDS" --threads 1)
    echo "PyTorch, 1 thread, OpenBLAS from $TORCH_BLAS_DIR ..." >&2
    LD_LIBRARY_PATH="$TORCH_BLAS_DIR" OPENBLAS_NUM_THREADS=1 \
      "$PY" "$ROOT/tests/bench/mlp_torch_bench.py" "${targs[@]}" | tee "$OUT/torch_openblas.jsonl" >&2
    if [ -d "$REF_BLAS_DIR" ]; then
      echo "PyTorch, 1 thread, reference BLAS from $REF_BLAS_DIR (footnote) ..." >&2
      LD_LIBRARY_PATH="$REF_BLAS_DIR" "$PY" "$ROOT/tests/bench/mlp_torch_bench.py" "${targs[@]}" \
        --widths "$REF_WIDTHS" |
        tee "$OUT/torch_reference.jsonl" >&2
    fi
  fi
fi
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt" >&2

"$PY" - "$OUT" <<'EOF'
import json, os, sys
out = sys.argv[1]
def load(name):
    path = os.path.join(out, name)
    rows = [json.loads(l) for l in open(path) if l.strip()] if os.path.exists(path) else []
    return {r["width"]: r for r in rows if "width" in r}, [r for r in rows if "width" not in r]
hp, head = load("hpsweep.jsonl")
_, avx2 = load("hpsweep_avx2_kernels.jsonl")
tb, _ = load("torch_openblas.jsonl")
tr, _ = load("torch_reference.jsonl")
h = head[0]
peak = h["peak_gflops"]
pct = lambda v: f"{100.0 * v / peak:.0f}%" if peak else "-"
sig = lambda v: "-" if v is None else f"{v:.3g}"
print()
print(open(os.path.join(out, "machine.txt")).read().rstrip())
print(f"\nsingle-core FP32 peak ({h['peak_isa']} probe): {peak:.1f} GFLOP/s")
print(f"GEMM library: {h['gemm_library']}")
print(f"elementwise kernels (activation, AdamW): {h.get('elementwise_isa', '-')}")
print(f"1024^3 SGEMM: trainer's GEMM {h['sgemm_1024_gflops']:.1f} GFLOP/s ({pct(h['sgemm_1024_gflops'])} of peak)"
      + (f"; on OpenBLAS's AVX2 (Haswell) kernels {avx2[0]['sgemm_1024_gflops']:.1f} ({pct(avx2[0]['sgemm_1024_gflops'])})" if avx2 else "")
      + f"; Eigen {h['eigen_gemm_1024_gflops']:.1f} ({pct(h['eigen_gemm_1024_gflops'])}, {h['eigen_simd']})")
for name, t in (("PyTorch + OpenBLAS", tb), ("PyTorch + reference BLAS", tr)):
    if t:
        r = next(iter(t.values()))
        print(f"{name}: torch {r['torch']}, BLAS loaded: {r['blas']}")
print("\nsteps/s and GFLOP/s per CPU second of the measuring process (one thread each; waiting for a core\n"
      "while other jobs run does not count); wall-clock steps/s in the last columns")
cols = ["width", "hpsweep steps/s", "GFLOP/s", "% of peak", "% of GEMM"]
if tb: cols += ["PyTorch+OpenBLAS steps/s", "hpsweep ×"]
cols += ["step ms: data / fwd+bwd / update"]
if tr: cols += ["PyTorch+ref. BLAS steps/s"]
cols += ["wall: hpsweep"] + (["wall: PyTorch+OpenBLAS"] if tb else [])
print("\n| " + " | ".join(cols) + " |")
print("|" + "---:|" * len(cols))
for w, r in sorted(hp.items()):
    row = [str(w), sig(r["steps_per_s"]), f"{r['gflops']:.1f}", pct(r["gflops"]), f"{r['pct_of_gemm']:.0f}%"]
    for t in [t for t in (tb,) if t]:
        s = t.get(w, {}).get("steps_per_s")
        row += [sig(s), f"{r['steps_per_s'] / s:.2f}×" if s else "-"]
    row += [f"{r['data_ms']:.2f} / {r['fwd_bwd_ms']:.2f} / {r['update_ms']:.2f}"]
    if tr:
        row += [sig(tr.get(w, {}).get("steps_per_s"))]
    row += [sig(r["wall_steps_per_s"])] + ([sig(tb.get(w, {}).get("wall_steps_per_s"))] if tb else [])
    print("| " + " | ".join(row) + " |")
shapes = [json.loads(l) for l in open(os.path.join(out, "gemm_shapes.jsonl")) if l.strip()]
if shapes:
    print("\nThe trainer's GEMM shapes, one thread, GFLOP/s (% of peak); block mix: the six products of a block")
    libs = list(dict.fromkeys(r["library"] for r in shapes))
    print("\n| width | product | op | m x n x k | " + " | ".join(libs) + " |")
    print("|---:|---|---|---|" + "---:|" * len(libs))
    for key in dict.fromkeys((r["width"], r["product"]) for r in shapes):
        rows = {r["library"]: r for r in shapes if (r["width"], r["product"]) == key}
        r0 = next(iter(rows.values()))
        mnk = f"{r0['m']} x {r0['n']} x {r0['k']}" if "m" in r0 else ""
        cells = [f"{rows[l]['gflops']:.0f} ({pct(rows[l]['gflops'])})" if l in rows else "-" for l in libs]
        print(f"| {key[0]} | {key[1]} | {r0.get('op', '')} | {mnk} | " + " | ".join(cells) + " |")
EOF
