#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (unit, MPI, crash/resume).
#   tests/run.sh              release build (build/release)
#   tests/run.sh --sanitize   debug build with AddressSanitizer + UBSan (build/debug-sanitize)
set -euo pipefail
cd "$(dirname "$0")/.."
source cmake/deps.sh

preset=release
[ "${1:-}" = "--sanitize" ] && preset=debug-sanitize

hpsweep_ensure_packages "${HPSWEEP_BUILD_PACKAGES[@]}" "${HPSWEEP_RUNTIME_PACKAGES[@]}" "${HPSWEEP_TEST_PACKAGES[@]}"
if [ "$(id -u)" = 0 ]; then
  hpsweep_ensure_packages "${HPSWEEP_SLURM_PACKAGES[@]}" ||
    echo "note: could not install ${HPSWEEP_SLURM_PACKAGES[*]}: the Slurm tests will be skipped"
else
  echo "note: not root: the Slurm tests will be skipped (they start slurmctld, slurmd and munged)"
fi

cmake --preset "$preset" -DHPSWEEP_BUILD_TESTS=ON >/dev/null
cmake --build --preset "$preset"
echo "== running the test suite (ctest, preset $preset)"
ctest --preset "$preset" --timeout 900 --no-tests=error
