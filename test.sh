#!/usr/bin/env bash
# The whole test suite: install what is missing, build with AddressSanitizer and
# UndefinedBehaviorSanitizer and warnings as errors, check formatting, then run every test
# (unit, integration against a real PostgreSQL + PostGIS, end-to-end HTTP) with ctest.
set -euo pipefail
root=$(cd "$(dirname "$0")" && pwd)
build="$root/build-test"
export MAHALI_CMAKE_ARGS="-DMAHALI_WERROR=ON ${MAHALI_CMAKE_ARGS:-}"
"$root/scripts/bootstrap.sh" "$build" Debug --test

echo "== formatting (clang-format)"
(cd "$root" && git ls-files '*.c' '*.h' | xargs -r clang-format --dry-run --Werror)

echo "== node packages for the end-to-end tests"
if [[ -f "$root/tests/package-lock.json" ]]; then
    npm ci --prefix "$root/tests" --no-audit --no-fund --loglevel=error
else
    npm install --prefix "$root/tests" --no-audit --no-fund --loglevel=error
fi

echo "== tests"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir "$build" --output-on-failure -j2 --timeout 900 "$@"
