#!/usr/bin/env bash
# bench/stream_flux_cuda.sh - issue 12's streaming table on a GPU machine: a FLUX.1-schnell-shaped random
# model (bf16 transformer, 23.8 GB; made on the GPU by bench/diffusers_flux.py, which needs the diffusers wheel
# in .whl/), 1024x1024, 20 steps (dev's default count; dev's transformer is schnell's plus its small guidance
# embedder), one image: `all`, then `stream` with the host tier (--host-cache 40 GiB, page-locked) under device
# budgets of 24, 12, 8 and 4 GiB (SDC_FLUX_BUDGETS), with blocks uploaded ahead (the default) and with
# --no-stream-prefetch (SDC_FLUX_LOOKAHEAD_ONLY=1: the default only). Two repeats each: the first loads (and fills the tier), the second is the
# steady state. Usage, after building with -DSDC_CUDA=ON into $BUILD (default build-gpu):
#   bash bench/stream_flux_cuda.sh            (the model goes to $SDC_FLUX_MODEL, default /tmp/flux)
set -uo pipefail
cd "$(dirname "$0")/.."
B=${BUILD:-build-gpu}
fx=${SDC_FLUX_MODEL:-/tmp/flux}
steps=${SDC_FLUX_STEPS:-20}
if [ ! -f "$fx/model_index.json" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
  "$B/sdc" mkmodel --arch tiny-flux-schnell -o /tmp/tiny-flux-schnell > /dev/null || exit 1
  python3 bench/diffusers_flux.py make "$fx" --from /tmp/tiny-flux-schnell || exit 1
fi
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
bench() { "$B/sdc_bench" -m "$fx" --device cuda --sizes 1024 --steps "$steps" --batches 1 --cfg 1 "$@"; }
bench --policies all --repeat 2 --prefetch-mem -1
for g in ${SDC_FLUX_BUDGETS:-24 12 8 4}; do
  if [ "${SDC_FLUX_LOOKAHEAD_ONLY:-0}" = 0 ]; then
    echo "== stream, budget $g GiB, host tier 40 GiB, --no-stream-prefetch"
    bench --policies stream --budget $((g * 1024)) --host-cache 40960 --repeat 2 --no-stream-prefetch | sed 1d
  fi
  echo "== stream, budget $g GiB, host tier 40 GiB (uploads ahead: the default)"
  bench --policies stream --budget $((g * 1024)) --host-cache 40960 --repeat 2 | sed 1d
done
