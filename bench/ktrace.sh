#!/usr/bin/env bash
# ktrace.sh - runs a CUDA program under bench/kernel_trace.c (GPU time per kernel name, CUPTI), on the GPU machine.
#   bash bench/ktrace.sh COMMAND [ARGS...]        e.g. bash bench/ktrace.sh build-gpu/sdc_bench -m /tmp/sdxl ...
# Builds /tmp/libktrace.so once (CUPTI's headers and library from the CUDA toolkit; the activity record type is the
# newest its header declares), runs the command with CUDA_INJECTION64_PATH set, and prints the command's output,
# then the trace (demangled with cu++filt where present). KTRACE_SKIP, KTRACE_GAPS, KTRACE_TOP pass through.
set -uo pipefail
cuda=${CUDA_HOME:-/usr/local/cuda}
lib=/tmp/libktrace.so
if [ ! -f "$lib" ]; then
  hdr=$(find "$cuda"/ -name cupti_activity.h 2>/dev/null | head -1)
  so=$(find "$cuda"/ -name 'libcupti.so' 2>/dev/null | head -1)
  [ -n "$hdr" ] && [ -n "$so" ] || { echo "ktrace.sh: no CUPTI under $cuda" >&2; exit 1; }
  rec=$(grep -o 'CUpti_ActivityKernel[0-9]*' "$hdr" | sort -V | tail -1)
  cc -O2 -shared -fPIC -o "$lib" "$(dirname "$0")/kernel_trace.c" -I"$cuda/include" -I"$(dirname "$hdr")" \
    -L"$(dirname "$so")" -lcupti -Wl,-rpath,"$(dirname "$so")" -DKTRACE_RECORD="$rec" || exit 1
fi
filt=cat
command -v cu++filt >/dev/null 2>&1 && filt=cu++filt
[ -x "$cuda/bin/cu++filt" ] && filt="$cuda/bin/cu++filt"
err=$(mktemp)
CUDA_INJECTION64_PATH=$lib "$@" 2>"$err"
rc=$?
grep -v '^\[ktrace\]' "$err" >&2
grep '^\[ktrace\]' "$err" | $filt | cut -c1-220
rm -f "$err"
exit $rc
