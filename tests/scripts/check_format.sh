#!/usr/bin/env bash
# Fails when a tracked C++ file differs from what .clang-format makes of it (skipped without clang-format).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v clang-format >/dev/null || { echo "clang-format not installed: skipped"; exit 77; }
bad=0
for f in $(git ls-files '*.cpp' '*.hpp' 2>/dev/null || find src include tests -name '*.[ch]pp'); do
  if ! clang-format --dry-run --Werror "$f" 2>/dev/null; then echo "not formatted: $f (run clang-format -i $f)"; bad=1; fi
done
exit $bad
