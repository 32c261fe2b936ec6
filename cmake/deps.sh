# Sourced by examples/quickstart.sh and tests/run.sh: installs the Debian packages hpsweep needs,
# or, when not root, prints the exact apt-get line to run.
# Usage: hpsweep_ensure_packages pkg...

hpsweep_missing_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  echo "${missing[@]}"
}

hpsweep_ensure_packages() {
  local missing
  missing=$(hpsweep_missing_packages "$@")
  [ -z "$missing" ] && return 0
  local line="apt-get update && apt-get install -y --no-install-recommends $missing"
  if [ "$(id -u)" != 0 ]; then
    echo "hpsweep needs these Debian packages: $missing" >&2
    echo "install them as root with:" >&2
    echo "  sudo sh -c '$line'" >&2
    return 1
  fi
  echo "installing: $missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null || {
    echo "apt-get failed; run by hand: $line" >&2
    return 1
  }
}

# Build tools and libraries (every one found by CMake's find_package), plus hdf5-tools for h5dump.
HPSWEEP_BUILD_PACKAGES=(cmake g++ make libopenmpi-dev openmpi-bin libhdf5-dev hdf5-tools libeigen3-dev
  libboost-program-options-dev libtbb-dev zlib1g-dev libyaml-cpp-dev libopenblas-dev pkg-config libsimdjson-dev)
# At run time: gnuplot renders the figures of `hpsweep report` (without it the report still
# writes every script and data file and says the figures were not rendered).
HPSWEEP_RUNTIME_PACKAGES=(gnuplot-nox)
# Tests: GoogleTest, h5py to read the HDF5 file back the way users do, and headless Chromium to
# render a report's index.html (the report test skips that part without it); clang-format checks
# that the sources follow .clang-format; Lmod loads the modulefile of an installed prefix.
HPSWEEP_TEST_PACKAGES=(libgtest-dev python3-h5py python3-numpy chromium clang-format lmod)

# A real single-node Slurm for the Slurm tests (installed best-effort; the tests skip without it).
HPSWEEP_SLURM_PACKAGES=(slurm-wlm munge)

# mpirun flags for this machine: more ranks than cores, and root (containers, CI).
hpsweep_mpirun_flags() {
  local flags="--oversubscribe"
  [ "$(id -u)" = 0 ] && flags="$flags --allow-run-as-root"
  echo "$flags"
}
