#!/usr/bin/env bash
# Lints every shell script of the repository with shellcheck (warnings and errors; the
# "info" notes are style). Exit 77 (ctest: skipped) when shellcheck is not installed.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
command -v shellcheck >/dev/null || { echo "SKIPPED: shellcheck is not installed (apt-get install shellcheck)"; exit 77; }
cd "$root"
mapfile -t files < <(git ls-files 2>/dev/null | grep -E '^(scripts/[^.]+|scripts/.*\.sh|\.ci/run|bench/.*\.sh|tests/.*\.sh)$' || true)
[ ${#files[@]} -gt 0 ] || mapfile -t files < <(ls scripts/run scripts/test scripts/lib.sh .ci/run bench/*.sh)
echo "shellcheck -S warning on ${#files[@]} files: ${files[*]}"
shellcheck -x -S warning "${files[@]}"
echo "no warnings"
