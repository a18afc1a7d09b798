#!/usr/bin/env bash
# Build wick with AddressSanitizer and UndefinedBehaviorSanitizer and run the
# whole test suite (unit, fuzz-corpus replay, interop with real gRPC peers).
# Usage: scripts/test.sh [ctest arguments...], e.g. scripts/test.sh -R unit_buf
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=${WICK_TEST_BUILD_DIR:-$here/build-asan}

"$here/scripts/setup.sh"
cmake -S "$here" -B "$build" -DWICK_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$build" -j"$(nproc)"

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$build"
ctest --output-on-failure --timeout 900 -j"$(nproc)" "$@"
