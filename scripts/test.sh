#!/usr/bin/env bash
# The test command: installs dependencies, builds with warnings as errors, runs the test suite, then
# builds again with AddressSanitizer + UndefinedBehaviorSanitizer and runs the suite under them.
# The reference bundle is read from ../shared/reference (override: SDC_REFERENCE_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
jobs=$(nproc)

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSDC_WERROR=ON
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j1

cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSDC_WERROR=ON -DSDC_SANITIZE=ON
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j1
