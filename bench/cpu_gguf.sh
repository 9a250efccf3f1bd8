#!/usr/bin/env bash
# The GGUF issue's CPU measurement: an SD 1.5-shaped fp16 single file (sdc mkmodel --single-file) and its
# Q8_0 / Q4_0 conversions (sdc convert), each generating 256x256 in STEPS euler steps with CFG 7.5 on the CPU
# under all and phased. Prints sdc_bench's rows (s/image, s/step, sdc's own peaks) and the peak RSS of each
# process sampled externally every 20 ms from /proc (sdc resets VmHWM between jobs), and the UNet's resident
# MiB as planned (sdc generate --plan: the weights of phased's denoise row).
# QCONVS=1 adds the Q8_0 / Q4_0 conversions with --quantize-convs (sd15-<type>-convs.gguf: conv kernels
# quantized as 2-D tensors, sdc-specific files). Files already in OUTDIR are reused (symlinks are followed).
#   bash bench/cpu_gguf.sh [OUTDIR]   (default /tmp/sd15-gguf; THREADS=2 STEPS=2 QCONVS=0)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/sd15-gguf}
threads=${THREADS:-2}
steps=${STEPS:-2}
qconvs=${QCONVS:-0}
mkdir -p "$out"
[ -f "$out/sd15.safetensors" ] || ./build/sdc mkmodel --arch sd15 --single-file --seed 1 -o "$out/sd15.safetensors"
models="sd15.safetensors"
for t in q8_0 q4_0; do
  [ -f "$out/sd15-$t.gguf" ] || ./build/sdc convert -m "$out/sd15.safetensors" -o "$out/sd15-$t.gguf" --type "$t"
  models="$models sd15-$t.gguf"
done
if [ "$qconvs" = 1 ]; then
  for t in q8_0 q4_0; do
    [ -f "$out/sd15-$t-convs.gguf" ] ||
      ./build/sdc convert -m "$out/sd15.safetensors" -o "$out/sd15-$t-convs.gguf" --type "$t" --quantize-convs
    models="$models sd15-$t-convs.gguf"
  done
fi
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
for m in $models; do
  ls -lL "$out/$m" | awk '{printf "# %s: %.1f MiB\n", $NF, $5 / 1048576}'
  ./build/sdc generate -m "$out/$m" -p plan -W 256 -H 256 --steps "$steps" --plan 2>/dev/null |
    awk '$1 == "phased" && $2 == "denoise" {print "# UNet resident (planned): " $3 " MiB"}'
  for pol in all phased; do
    peak_rss ./build/sdc_bench -m "$out/$m" --device cpu --sizes 256 --steps "$steps" --cfg 7.5 --batches 1 \
      --policies "$pol" --repeat 1 -t "$threads" 2>/dev/null | grep -E "^ *(size|256)|peak RSS"
  done
done
