#!/usr/bin/env bash
# Quick start: install what is missing, build, run the example sweep (jobs/example.ini) with
# 4 MPI ranks (1 master + 3 workers) on the surrogate backend, then fit the hyperparameter laws
# and predict the learning rate and batch size for the job's target scale.
# Rerunning resumes the same sweep (nothing is run twice); delete build/quickstart to start over.
set -euo pipefail
cd "$(dirname "$0")/.."
source cmake/deps.sh

hpsweep_ensure_packages "${HPSWEEP_BUILD_PACKAGES[@]}" "${HPSWEEP_RUNTIME_PACKAGES[@]}"
cmake --preset release -DHPSWEEP_BUILD_TESTS=OFF >/dev/null
cmake --build --preset release --target hpsweep

out=build/quickstart/example.h5
mkdir -p build/quickstart
echo
echo "== mpirun -n 4 hpsweep run jobs/example.ini --out $out"
mpirun $(hpsweep_mpirun_flags) -n 4 build/release/hpsweep run jobs/example.ini --out "$out"
echo
echo "== hpsweep fit $out   (laws with 95% intervals; prediction interval for the job's [target])"
echo "   the surrogate's truth: lr* = 1.79 N^-0.713 D^0.307, B* = 0.58 D^0.571 tokens"
build/release/hpsweep fit "$out"
echo
echo "== hpsweep report $out --out build/quickstart/report   (figures and index.html)"
build/release/hpsweep report "$out" --out build/quickstart/report
echo
echo "== what next"
echo "  build/release/hpsweep status $out          # states, best loss per (N, D) cell, launches"
echo "  build/release/hpsweep export $out --csv    # every trial, for pandas"
echo "  open build/quickstart/report/index.html   # loss maps, laws, loss law, sweep health"
echo "  h5dump -H $out                             # the HDF5 layout (docs/schema.md)"
