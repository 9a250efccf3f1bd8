#!/usr/bin/env bash
# bench/flux_gguf_cuda.sh - issue 11's Flux GGUF table on a GPU machine: the FLUX.1-schnell-shaped random
# model of bench/diffusers_flux.py (bf16; made on the GPU, which needs the diffusers wheel in .whl/), its
# transformer converted by `sdc convert` to each type, 512^2 and 1024^2, 4 steps, one image, under `all` and
# `phased`, T5 in bf16; then the issue's low-memory case: a Q4_0 transformer with a Q8_0 T5 under `phased`
# against `all` at 512^2. Two repeats each: the first loads, the second is `all`'s steady state. s/step is
# the transformer's step time (the denoise phase's compute over the steps). Each GGUF is deleted after its
# rows (the disk holds the bf16 model, T5's Q8_0 and one transformer GGUF at a time).
# Usage, after building with -DSDC_CUDA=ON into $BUILD (default build-gpu):
#   bash bench/flux_gguf_cuda.sh              (types: $SDC_GGUF_TYPES, default "bf16 q8_0 q4_0 q4_k";
#                                              SDC_BENCH_DEVICE=cpu with a tiny model checks the script;
#                                              SDC_GGUF_SIZES (default 512,1024) and SDC_GGUF_POLICIES (default
#                                              all,phased) narrow the rows)
set -uo pipefail
cd "$(dirname "$0")/.."
B=${BUILD:-build-gpu}
fx=${SDC_FLUX_MODEL:-/tmp/flux}
g=${SDC_GGUF_DIR:-/tmp/flux-gguf}
sizes=${SDC_GGUF_SIZES:-512,1024}
policies=${SDC_GGUF_POLICIES:-all,phased}
if [ ! -f "$fx/model_index.json" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
  "$B/sdc" mkmodel --arch tiny-flux-schnell -o /tmp/tiny-flux-schnell > /dev/null || exit 1
  python3 bench/diffusers_flux.py make "$fx" --from /tmp/tiny-flux-schnell || exit 1
fi
mkdir -p "$g"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
bench() { "$B/sdc_bench" -m "$fx" --device "${SDC_BENCH_DEVICE:-cuda}" --steps 4 --batches 1 --cfg 1 --repeat 2 "$@"; }
convert() { # component type out
  local t0=$SECONDS
  "$B/sdc" convert -m "$fx/$1" -o "$3" --type "$2" 2>&1 | grep -E "wrote|error" || return 1
  echo "   ($1 -> $2: $((SECONDS - t0)) s, $(du -m "$3" | cut -f1) MiB)"
}
for t in ${SDC_GGUF_TYPES:-bf16 q8_0 q4_0 q4_k}; do
  echo "== transformer $t, T5 bf16"
  if [ "$t" = bf16 ]; then
    bench --sizes "$sizes" --policies "$policies"
  else
    convert transformer "$t" "$g/transformer-$t.gguf" || exit 1
    bench --diffusion-model "$g/transformer-$t.gguf" --sizes "$sizes" --policies "$policies"
    if [ "$t" = q4_0 ]; then
      convert text_encoder_2 q8_0 "$g/t5-q8_0.gguf" || exit 1
      echo "== transformer q4_0, T5 q8_0"
      bench --diffusion-model "$g/transformer-$t.gguf" --t5xxl "$g/t5-q8_0.gguf" --sizes 512 --policies all,phased
      rm -f "$g/t5-q8_0.gguf"
    fi
    rm -f "$g/transformer-$t.gguf"
  fi
done
