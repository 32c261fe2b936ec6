#!/usr/bin/env bash
# Quick start: install what is missing, build, and run the example sweep (jobs/example.ini) with
# 4 MPI ranks (1 master + 3 workers) on the surrogate backend, then print its status.
# Rerunning resumes the same sweep (nothing is run twice); delete build/quickstart to start over.
set -euo pipefail
cd "$(dirname "$0")/.."
source cmake/deps.sh

hpsweep_ensure_packages "${HPSWEEP_BUILD_PACKAGES[@]}"
cmake --preset release -DHPSWEEP_BUILD_TESTS=OFF >/dev/null
cmake --build --preset release --target hpsweep

out=build/quickstart/example.h5
mkdir -p build/quickstart
echo
echo "== mpirun -n 4 hpsweep run jobs/example.ini --out $out"
mpirun $(hpsweep_mpirun_flags) -n 4 build/release/hpsweep run jobs/example.ini --out "$out"
echo
echo "== what next"
echo "  build/release/hpsweep status $out          # states, best loss per (N, D) cell, launches"
echo "  build/release/hpsweep export $out --csv    # every trial, for pandas"
echo "  h5dump -H $out                             # the HDF5 layout (docs/schema.md)"
