#!/usr/bin/env bash
# bench/prefetch_cuda.sh - issue 12's host-memory measurements on a GPU machine, one process per row
# group (sdc_bench makes a fresh context per policy): SD 1.5-shaped random model (fp16), 512x512, 20 euler
# steps, CFG 7.5.
#   - `all`, nothing from host memory: its first image (loads included) and its steady state;
#   - `phased` without prefetch, with the cross-phase prefetcher (its default budget), and with the pinned
#     host tier (--host-cache 8 GiB): repeated images in one process;
#   - 4-image batches (phase-major) under `all` and `phased` with the tier;
#   - the machine's pinned host->device bandwidth (torch, 1 GiB copies) for comparison with the loads.
# Usage (after building with -DSDC_CUDA=ON into $BUILD, default build-gpu): bash bench/prefetch_cuda.sh
# The model goes to $SDC_BENCH_MODEL (default /tmp/sd15) unless there already.
set -uo pipefail
cd "$(dirname "$0")/.."
B=${BUILD:-build-gpu}
model=${SDC_BENCH_MODEL:-/tmp/sd15}
[ -f "$model/model_index.json" ] || "$B/sdc" mkmodel --arch sd15 --seed 1 -o "$model" > /dev/null || exit 1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
run() { # TITLE BATCH ARGS...
  local title=$1 batch=$2
  shift 2
  echo "== $title"
  "$B/sdc_bench" -m "$model" --device cuda --sizes 512 --steps 20 --batches "$batch" "$@" | sed 1d
}
echo " size policy     batch rep   s/image    s/step  peak MiB  plan MiB   drv MiB   RSS MiB  load te load te2  load un load dec un loads host MiB  total s"
run "all, nothing from host memory" 1 --policies all --repeat 4 --prefetch-mem -1
run "phased, no prefetch" 1 --policies phased --repeat 4 --prefetch-mem -1
run "phased, default (read-ahead only)" 1 --policies phased --repeat 4
run "phased, prefetch 4 GiB (page-locked images)" 1 --policies phased --repeat 4 --prefetch-mem 4096
run "phased, prefetch + host tier 8 GiB" 1 --policies phased --repeat 4 --host-cache 8192
run "4-image batch: all" 4 --policies all --repeat 1 --prefetch-mem -1
run "4-image batch: phased, prefetch + host tier 8 GiB" 4 --policies phased --repeat 2 --host-cache 8192
py=python3
python3 -c "import torch" 2> /dev/null || py=/opt/torch/.venv/bin/python
"$py" - << 'EOF'
import time, torch
x = torch.empty(1 << 30, dtype=torch.uint8).pin_memory()
y = torch.empty_like(x, device="cuda")
for _ in range(2):
    y.copy_(x, non_blocking=True)
torch.cuda.synchronize()
t = time.time()
for _ in range(5):
    y.copy_(x, non_blocking=True)
torch.cuda.synchronize()
print("pinned host->device: %.1f GB/s (torch, 5 x 1 GiB)" % (5 * (1 << 30) / (time.time() - t) / 1e9))
EOF
