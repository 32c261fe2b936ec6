#!/usr/bin/env bash
# Mutation testing: plants each one-line bug of tests/mutants/mutants.txt in turn, rebuilds
# incrementally, runs the tests that cover it and records whether they caught it (killed), missed
# it (survived) or whether it did not build. Not part of ctest: it takes a while (README "Tests").
#
#   tests/mutants.sh [--list FILE] [--build DIR] [--only REGEX] [--timeout SECONDS] [--no-baseline]
#
# --build (default build/mutants): a build directory of its own, configured like the release preset
#   on first use, so the normal build is never touched. Only hpsweep and hpsweep_tests are built.
# --only: run the mutants whose id matches REGEX.
# --timeout: per test (ctest --timeout); a test that hangs under a mutant counts as killed.
# Before the mutants, each covering regex runs once on the unmutated tree (the baseline): a
# mutant is only killed by a test that passes without it. --no-baseline skips that.
#
# The mutant is planted in this worktree's source: while this runs, build no other build directory
# of the worktree (nor run the install test, whose cpack builds build/release).
# The source tree is restored after every mutant, and on any exit (error, Ctrl-C, kill): the
# original of the file being mutated is kept in DIR/mutant-backup/ and put back by a trap; a run
# killed with -9 is repaired by the next start, which restores what it finds there first.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
list="$root/tests/mutants/mutants.txt"
build="$root/build/mutants"
only=""
test_timeout=120
baseline=1
while [ $# -gt 0 ]; do
  case "$1" in
    --list) list="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --timeout) test_timeout="$2"; shift 2 ;;
    --no-baseline) baseline=0; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "mutants.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
mutate=(python3 "$root/tests/mutants/mutate.py")
backup="$build/mutant-backup"
logs="$build/mutant-logs"
jobs=2

# Put back whatever a previous run (or this one) left mutated. The restored file gets a new mtime
# so that the next build recompiles it (its object in the build may still be the mutant's).
restore_sources() {
  [ -d "$backup" ] || return 0
  while IFS= read -r -d '' saved; do
    rel="${saved#"$backup"/}"
    case "$rel" in
      *.o) rm -f "$saved" ;;
      *) cp "$saved" "$root/$rel" && rm -f "$saved" ;;
    esac
  done < <(find "$backup" -type f -print0)
}
trap restore_sources EXIT
trap 'exit 130' INT TERM
restore_sources

"${mutate[@]}" check "$list" "$root" || echo "mutants.sh: the stale mutants above are reported, not run" >&2

if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DHPSWEEP_BUILD_TESTS=ON >/dev/null
fi
build_targets() { cmake --build "$build" -j "$jobs" --target hpsweep hpsweep_tests; }
echo "building $build (hpsweep, hpsweep_tests)..."
build_targets >"$build/mutants-build.log" 2>&1 || { tail -30 "$build/mutants-build.log"; echo "mutants.sh: the unmutated tree does not build" >&2; exit 1; }
mkdir -p "$logs"

run_tests() {  # regex, log file -> ctest's status
  (cd "$build" && ctest -R "$1" --timeout "$test_timeout" --output-on-failure >>"$2" 2>&1)
}
count_tests() { (cd "$build" && ctest -N -R "$1" | sed -n 's/^Total Tests: //p'); }

mapfile -t rows < <("${mutate[@]}" list "$list")
if [ "$baseline" = 1 ]; then
  declare -A checked=()
  for row in "${rows[@]}"; do
    IFS=$'\t' read -r id file tests why <<<"$row"
    [[ -n "$only" && ! "$id" =~ $only ]] && continue
    [ -n "${checked[$tests]:-}" ] && continue
    checked[$tests]=1
    n=$(count_tests "$tests")
    [ "${n:-0}" -gt 0 ] || { echo "mutants.sh: '$tests' ($id) selects no test" >&2; exit 1; }
    : >"$logs/baseline.log"; run_tests "$tests" "$logs/baseline.log" ||
      { tail -30 "$logs/baseline.log"; echo "mutants.sh: '$tests' fails without any mutant" >&2; exit 1; }
    echo "baseline: $n tests of '$tests' pass"
  done
fi

started=$(date +%s)
results=()
killed=0 survived=0 failed_build=0 stale=0
for row in "${rows[@]}"; do
  IFS=$'\t' read -r id file tests why <<<"$row"
  [[ -n "$only" && ! "$id" =~ $only ]] && continue
  t0=$(date +%s)
  obj="$build/CMakeFiles/hpsweep_lib.dir/$file.o"
  mkdir -p "$backup/$(dirname "$file")"
  cp -p "$root/$file" "$backup/$file"
  [ -f "$obj" ] && cp -p "$obj" "$backup/$file.o"
  if ! "${mutate[@]}" apply "$list" "$id" "$root" 2>"$logs/$id.log"; then
    status=stale
  elif ! build_targets >"$logs/$id.log" 2>&1; then
    status=build-failed
  elif run_tests "$tests" "$logs/$id.log"; then
    status=survived
  else
    status=killed
  fi
  # Restore: the original source (with its mtime) and its object file, touched so that the
  # library relinks without recompiling the file.
  cp -p "$backup/$file" "$root/$file" && rm -f "$backup/$file"
  if [ -f "$backup/$file.o" ]; then
    cp -p "$backup/$file.o" "$obj" && touch "$obj" && rm -f "$backup/$file.o"
  fi
  case $status in
    killed) killed=$((killed + 1)) ;;
    survived) survived=$((survived + 1)) ;;
    build-failed) failed_build=$((failed_build + 1)) ;;
    stale) stale=$((stale + 1)) ;;
  esac
  secs=$(($(date +%s) - t0))
  printf '%-42s %-13s %4ss  %s\n' "$id" "$status" "$secs" "$file"
  results+=("$(printf '%-42s %-13s %5ss  %-38s %s' "$id" "$status" "$secs" "$file" "$why")")
done
build_targets >"$build/mutants-build.log" 2>&1 || echo "mutants.sh: rebuilding the restored tree failed" >&2

total=$((killed + survived))
echo
echo "mutant                                     status         time  file                                   bug"
printf '%s\n' "${results[@]}"
echo
printf 'mutants: %d run, %d killed, %d survived, %d did not build, %d stale; %.0f min\n' \
  "$total" "$killed" "$survived" "$failed_build" "$stale" "$(echo "($(date +%s) - $started) / 60" | bc -l)"
if [ "$total" -gt 0 ]; then
  printf 'kill rate: %d/%d = %.1f%%\n' "$killed" "$total" "$(echo "100 * $killed / $total" | bc -l)"
fi
echo "logs: $logs/ID.log"
[ "$survived" -eq 0 ]
