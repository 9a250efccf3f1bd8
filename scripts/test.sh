#!/usr/bin/env bash
# The test command: installs dependencies, builds with warnings as errors, runs the test suite, then
# builds again with AddressSanitizer + UndefinedBehaviorSanitizer (undefined behaviour fatal) and runs the suite
# under them, then runs every fuzz target for 20 s (scripts/fuzz.sh).
# The reference bundle is read from ../shared/reference (override: SDC_REFERENCE_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
# Style: every C/CUDA source as .clang-format says (a reformat is `clang-format -i` on the listed files).
git ls-files '*.c' '*.h' '*.cu' '*.cuh' | xargs clang-format --dry-run --Werror
jobs=$(nproc)

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSDC_WERROR=ON
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j1

cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSDC_WERROR=ON -DSDC_SANITIZE=ON
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j1

# Fuzz smoke: every libFuzzer target for 20 s (clang; undefined behaviour is fatal). scripts/fuzz.sh runs them long.
if command -v clang >/dev/null 2>&1; then
  bash scripts/fuzz.sh "${SDC_FUZZ_SMOKE_SECONDS:-20}"
else
  echo "test.sh: clang not found: fuzz smoke skipped" >&2; exit 1
fi

# The CUDA backend must compile wherever nvcc is (CI has no GPU: the GPU tests run on a GPU machine
# through scripts/cuda_check.sh).
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DSDC_WERROR=ON -DSDC_CUDA=ON \
    -DCMAKE_CUDA_COMPILER="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)"
  cmake --build build-cuda -j"$jobs"
  echo "test.sh: CUDA build compiled (its tests need a GPU: bash scripts/cuda_check.sh)"
fi
