#!/usr/bin/env bash
# The GGUF issue's CPU measurement: an SD 1.5-shaped fp16 single file (sdc mkmodel --single-file) and its
# Q8_0 / Q4_0 conversions (sdc convert), each generating 256x256 in STEPS euler steps with CFG 7.5 on the CPU
# under all and phased. Prints sdc_bench's rows (s/image, s/step, sdc's own peaks) and the peak RSS of each
# process sampled externally every 20 ms from /proc (sdc resets VmHWM between jobs).
#   bash bench/cpu_gguf.sh [OUTDIR]   (default /tmp/sd15-gguf; THREADS=2 STEPS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/sd15-gguf}
threads=${THREADS:-2}
steps=${STEPS:-2}
mkdir -p "$out"
[ -f "$out/sd15.safetensors" ] || ./build/sdc mkmodel --arch sd15 --single-file --seed 1 -o "$out/sd15.safetensors"
for t in q8_0 q4_0; do
  [ -f "$out/sd15-$t.gguf" ] || ./build/sdc convert -m "$out/sd15.safetensors" -o "$out/sd15-$t.gguf" --type "$t"
done
peak_rss() { # command...: runs it, prints its output, then its peak RSS (MiB) sampled every 20 ms
  "$@" &
  local pid=$! peak=0 r
  while kill -0 "$pid" 2>/dev/null; do
    r=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${r:-0}" -gt "$peak" ] && peak=$r
    sleep 0.02
  done
  wait "$pid"
  echo "peak RSS (sampled): $((peak / 1024)) MiB"
}
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $threads threads, $(date -u +%F)"
for m in sd15.safetensors sd15-q8_0.gguf sd15-q4_0.gguf; do
  ls -l "$out/$m" | awk '{printf "# %s: %.1f MiB\n", $NF, $5 / 1048576}'
  for pol in all phased; do
    peak_rss ./build/sdc_bench -m "$out/$m" --device cpu --sizes 256 --steps "$steps" --cfg 7.5 --batches 1 \
      --policies "$pol" --repeat 1 -t "$threads" 2>/dev/null | grep -E "^ *(size|256)|peak RSS"
  done
done
