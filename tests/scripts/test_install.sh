#!/usr/bin/env bash
# Installs hpsweep into a temporary prefix the way a site does, moves the prefix, loads it with
# Lmod, runs a sweep under mpirun from the moved prefix, builds and runs a find_package consumer,
# and unpacks the CPack archive elsewhere. Exits 77 (skipped) without Lmod.
# Env (set by ctest): BUILD_DIR, SOURCE_DIR, MPIEXEC, MPIEXEC_FLAGS.
set -euo pipefail
BUILD_DIR=${BUILD_DIR:?} SOURCE_DIR=${SOURCE_DIR:?}
MPIEXEC=${MPIEXEC:-mpiexec} MPIEXEC_FLAGS=${MPIEXEC_FLAGS:---oversubscribe}
LMOD_INIT=/usr/share/lmod/lmod/init/bash
[ -r "$LMOD_INIT" ] || { echo "Lmod is not installed (apt-get install lmod): skipped"; exit 77; }

tmp=$(mktemp -d /tmp/hpsweep-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$BUILD_DIR" --prefix "$tmp/first" >/dev/null
mv "$tmp/first" "$tmp/moved"
prefix="$tmp/moved"
for f in bin/hpsweep include/hpsweep/version.hpp include/hpsweep/reducer/fit.hpp lib/cmake/hpsweep/hpsweepConfig.cmake \
  lib/pkgconfig/hpsweep.pc modulefiles/hpsweep/0.1.0.lua modulefiles/hpsweep/0.1.0 share/hpsweep/jobs/example.ini \
  share/hpsweep/slurm/sweep.sbatch share/hpsweep/slurm/local-cluster.sh share/doc/hpsweep/README.md; do
  [ -e "$prefix/$f" ] || fail "the install has no $f"
done
ls "$prefix"/lib/libhpsweep.so* >/dev/null || fail "the install has no shared library"

# The moved binary runs without any environment: its RPATH is relative to itself.
env -u LD_LIBRARY_PATH "$prefix/bin/hpsweep" version | grep -q '^HDF5: ' || fail "moved binary does not run"

# Lmod: module use + module load puts the moved prefix on every path.
out=$(bash -c '
  set -e
  source '"$LMOD_INIT"'
  module use '"$prefix"'/modulefiles
  module load hpsweep
  command -v hpsweep
  hpsweep version
  echo "root=$HPSWEEP_ROOT"
  cd '"$tmp"'
  '"$MPIEXEC $MPIEXEC_FLAGS"' -n 3 hpsweep run "$HPSWEEP_SHARE/jobs/example.ini" --out sweep.h5 >run.log 2>&1 || { cat run.log; exit 1; }
  tail -1 run.log
  # The consumer is built with the flags of the build under test (a sanitizer build needs its runtime).
  cmake -S '"$SOURCE_DIR"'/tests/install/consumer -B consumer -DCMAKE_CXX_FLAGS="$CONSUMER_CXX_FLAGS" \
    -DCMAKE_EXE_LINKER_FLAGS="$CONSUMER_LINKER_FLAGS" >/dev/null
  cmake --build consumer >/dev/null
  ./consumer/fit_from_sweep sweep.h5 7e9 1.4e12
  echo "pkg-config: $(pkg-config --cflags --libs hpsweep)"
') || fail "Lmod session failed: $out"
echo "$out"
grep -qx "$prefix/bin/hpsweep" <<<"$out" || fail "module load did not put the moved bin/ first on PATH"
grep -q "^root=$prefix\$" <<<"$out" || fail "HPSWEEP_ROOT is not the moved prefix"
grep -Eq '^trials 1440 lr [0-9.e+-]+$' <<<"$out" || fail "the find_package consumer did not fit the sweep"
grep -q -- "-I$prefix/lib/pkgconfig/../../include" <<<"$out" || fail "pkg-config does not point into the moved prefix"

# The Tcl modulefile (Environment Modules syntax), read by Lmod from a copy of the prefix
# without the Lua one.
cp -a "$prefix" "$tmp/tclprefix" && rm "$tmp/tclprefix/modulefiles/hpsweep/0.1.0.lua"
tcl_out=$(bash -c 'source '"$LMOD_INIT"'; module use '"$tmp"'/tclprefix/modulefiles; module load hpsweep; command -v hpsweep') ||
  fail "the Tcl modulefile does not load"
[ "$tcl_out" = "$tmp/tclprefix/bin/hpsweep" ] || fail "the Tcl modulefile put '$tcl_out' on PATH"

# CPack: a relocatable archive, unpacked anywhere, runs.
(cd "$BUILD_DIR" && cpack -G TGZ -B "$tmp/pkg" >/dev/null) || fail "cpack failed"
archive=$(ls "$tmp"/pkg/hpsweep-*.tar.gz) || fail "cpack wrote no archive"
mkdir -p "$tmp/unpacked" && tar -xzf "$archive" -C "$tmp/unpacked"
env -u LD_LIBRARY_PATH "$tmp"/unpacked/hpsweep-*/bin/hpsweep version | grep -q '^kernels: ' || fail "the unpacked archive does not run"
echo "install, move, module load, mpirun, find_package, pkg-config, Tcl modulefile and archive: ok"
