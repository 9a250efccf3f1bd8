#!/usr/bin/env bash
# The GPU check, run on the machine with the NVIDIA GPU from the repository root: builds sdc with the CUDA
# backend (Release, warnings as errors), runs test_cuda_ops (every CUDA op against the CPU reference),
# test_cuda_quant (block-quantized weights: dequantization, linear, speed), test_cuda_models (the reference bundle on the GPU),
# test_demo on the GPU (the demo model's captions-to-pictures verdicts, SDC_TEST_DEVICE=cuda) and the CPU test suite, and
# ends with a summary.
# Everything goes to $OUT/cuda_check.log (OUT defaults to ./out-cuda). Exit status 0 only when all passed.
#
# Needs: CUDA 13 (nvcc, cuBLAS), OpenBLAS, libpng; cJSON, utf8proc and OpenBLAS's OpenMP build from
# .devdeps/ when the machine lacks them (scripts/devdeps.sh packs them); the reference bundle in
# $SDC_REFERENCE_DIR, else ./.ref, else
# ../shared/reference.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/out-cuda}
mkdir -p "$OUT"
LOG=$OUT/cuda_check.log

if [ -d "$ROOT/.devdeps" ]; then
  export PKG_CONFIG_PATH=$ROOT/.devdeps/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
  export LD_LIBRARY_PATH=$ROOT/.devdeps/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
BLAS_ARGS=()   # OpenBLAS's OpenMP build from .devdeps/ (scripts/devdeps.sh) where the system has none
if [ ! -e /usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so ] && [ -d "$ROOT/.devdeps/openblas-openmp" ]; then
  BLAS_ARGS=(-DSDC_OPENBLAS_DIR="$ROOT/.devdeps/openblas-openmp/lib"
             -DSDC_OPENBLAS_INCLUDE_DIR="$ROOT/.devdeps/openblas-openmp/include")
fi
export LD_LIBRARY_PATH=/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PATH=/usr/local/cuda/bin:$PATH
if [ -z "${SDC_REFERENCE_DIR:-}" ] && [ -d "$ROOT/.ref" ]; then export SDC_REFERENCE_DIR=$ROOT/.ref; fi
CMAKE=cmake
[ -x /opt/torch/.venv/bin/cmake ] && CMAKE=/opt/torch/.venv/bin/cmake
JOBS=$(nproc)
[ "$JOBS" -gt 16 ] && JOBS=16
BUILD=$ROOT/build-gpu

declare -a STEPS=() RESULTS=() TIMES=() COUNTS=()
# step NAME TIMEOUT_S COMMAND...: runs it, records status, time and the test's "N passed, N failed" line.
step() {
  local name=$1 limit=$2
  shift 2
  echo
  echo "===== $name: $* ====="
  local t0=$SECONDS tmp
  tmp=$(mktemp)
  timeout "$limit" "$@" 2>&1 | tee "$tmp"
  local rc=${PIPESTATUS[0]}
  local counts
  counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$tmp" | tail -1)
  [ "$name" = ctest-cpu ] && counts=$(grep -E 'tests passed' "$tmp" | tail -1)
  rm -f "$tmp"
  STEPS+=("$name")
  TIMES+=("$((SECONDS - t0))")
  COUNTS+=("${counts:--}")
  if [ "$rc" -eq 0 ]; then RESULTS+=("ok"); elif [ "$rc" -eq 124 ]; then RESULTS+=("TIMEOUT"); else RESULTS+=("FAIL($rc)"); fi
  return "$rc"
}

main() {
echo "cuda_check: $(date -u +%FT%TZ) on $(hostname), $JOBS jobs, reference: ${SDC_REFERENCE_DIR:-../shared/reference}"
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv 2>&1 || echo "nvidia-smi failed"
nvcc --version | tail -2
"$CMAKE" --version | head -1

built=0
if step configure 120 "$CMAKE" -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSDC_CUDA=ON -DSDC_WERROR=ON \
     -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc "${BLAS_ARGS[@]}" &&
   step build 300 "$CMAKE" --build "$BUILD" -j"$JOBS"; then
  built=1
fi
if [ "$built" = 1 ]; then
  step test_cuda_ops 240 "$BUILD/tests/test_cuda_ops"
  [ "${SDC_SKIP_QUANT:-0}" = 1 ] || step test_cuda_quant 300 "$BUILD/tests/test_cuda_quant"
  [ "${SDC_SKIP_MODELS:-0}" = 1 ] || step test_cuda_models 180 "$BUILD/tests/test_cuda_models"
  # the demo model draws what it is told on the GPU too: the CPU run's verdict thresholds and policy identity
  step test_demo_cuda 180 env SDC_TEST_DEVICE=cuda "$BUILD/tests/test_demo"
  # block streaming and batch invariance on the GPU: the CPU tests' identities, run on CUDA
  step test_stream_cuda 240 env SDC_TEST_DEVICE=cuda "$BUILD/tests/test_stream"
  step test_batch_cuda 240 env SDC_TEST_DEVICE=cuda "$BUILD/tests/test_batch"
  # SDC_CUDA_FLUX=1: the Flux tests, which run on the GPU too in CUDA builds (transformer blocks in f32, f16,
  # bf16; whole pipelines in f32 and at Flux's default precision, across load policies)
  if [ "${SDC_CUDA_FLUX:-0}" = 1 ]; then
    step test_t5 120 "$BUILD/tests/test_t5"
    step test_flux 240 "$BUILD/tests/test_flux"
    step test_flux_pipeline 300 "$BUILD/tests/test_flux_pipeline"
  fi
  # fp16 against f32 at SD 1.5 size (UNet evaluation and a 4-step pipeline) on the sd15-shaped random model
  if [ "${SDC_SKIP_SD15:-0}" != 1 ]; then
    model=${SDC_BENCH_MODEL:-/tmp/sd15}
    [ -f "$model/model_index.json" ] || step mkmodel 180 "$BUILD/sdc" mkmodel --arch sd15 --seed 1 -o "$model"
    export SDC_SD15_MODEL=$model
    step test_cuda_sd15 240 "$BUILD/tests/test_cuda_sd15"
  fi
  [ "${SDC_SKIP_CPU:-0}" = 1 ] || step ctest-cpu 240 ctest --test-dir "$BUILD" -E cuda -j4 --output-on-failure --timeout 200
fi
# SDC_BENCH=1: the issue's benchmark on an sd15-shaped random model (fp16, euler, CFG 7.5, batch 1):
# every policy side by side, 512x512 (4 repeats: the first includes loading), 4-image batches, 1024x1024.
if [ "$built" = 1 ] && [ "${SDC_BENCH:-0}" = 1 ]; then
  model=${SDC_BENCH_MODEL:-/tmp/sd15}
  [ -f "$model/model_index.json" ] || step mkmodel 180 "$BUILD/sdc" mkmodel --arch sd15 --seed 1 -o "$model"
  step bench-512 300 "$BUILD/sdc_bench" -m "$model" --device cuda --sizes 512 --steps "${SDC_BENCH_STEPS:-20}" --batches 1 --repeat 4
  step bench-512-b4 300 "$BUILD/sdc_bench" -m "$model" --device cuda --sizes 512 --steps "${SDC_BENCH_STEPS:-20}" --batches 4 --repeat 1
  step bench-1024 300 "$BUILD/sdc_bench" -m "$model" --device cuda --sizes 1024 --steps "${SDC_BENCH_STEPS:-20}" --batches 1 --repeat 2
  step report-512 120 "$BUILD/sdc" generate -m "$model" --device cuda -p "a photo of an astronaut" -W 512 -H 512 \
    --steps "${SDC_BENCH_STEPS:-20}" --load-policy phased -v --report-json "$OUT/report-512-phased.json" -o "$OUT/sd15-512.png"
  step profile-512 120 "$BUILD/sdc" generate -m "$model" --device cuda -p "a photo of an astronaut" -W 512 -H 512 \
    --steps "${SDC_BENCH_STEPS:-20}" --load-policy all --profile -v -o /tmp/sd15-512-profile.png
  step auto-device 120 "$BUILD/sdc" generate -m "$model" --device auto -p "a photo" -W 512 -H 512 --steps 4 -v \
    -o /tmp/auto.png
fi

# SDC_BENCH_SDXL=1: the SDXL issue's benchmark on an sdxl-shaped random model (fp16, 1024x1024, 20 euler
# steps, CFG 7, one image): every policy (2 repeats: the first includes loading), phased with the tiled
# decode, then diffusers on the same folder and card, resident and with enable_model_cpu_offload (needs
# the diffusers wheel in .whl/, installed to /tmp/site). SDC_SDXL_STEPS picks among
# "bench tiled profile diffusers offload" (default all).
sdxl_step() { case " ${SDC_SDXL_STEPS:-bench tiled profile diffusers offload} " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
if [ "$built" = 1 ] && [ "${SDC_BENCH_SDXL:-0}" = 1 ]; then
  xl=${SDC_SDXL_MODEL:-/tmp/sdxl}
  [ -f "$xl/model_index.json" ] || step mkmodel-sdxl 400 "$BUILD/sdc" mkmodel --arch sdxl --seed 1 -o "$xl"
  sdxl_step bench && step bench-sdxl 500 "$BUILD/sdc_bench" -m "$xl" --device cuda --sizes 1024 --steps 20 --cfg 7 \
    --batches 1 --repeat 2 ${SDC_SDXL_POLICIES:+--policies $SDC_SDXL_POLICIES}
  sdxl_step tiled && step bench-sdxl-tiled 300 "$BUILD/sdc_bench" -m "$xl" --device cuda --sizes 1024 --steps 20 --cfg 7 \
    --batches 1 --repeat 2 --policies phased --vae-tiling
  sdxl_step profile && step profile-sdxl 200 "$BUILD/sdc" generate -m "$xl" --device cuda -p "a photo of an astronaut" \
    -W 1024 -H 1024 --steps 20 --cfg-scale 7 --load-policy all --profile -v -o /tmp/sdxl-1024-profile.png
  if [ -d "$ROOT/.whl" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$ROOT"/.whl/*.whl &&
      export PYTHONPATH=/tmp/site
    sdxl_step diffusers && step diffusers-sdxl 400 python3 "$ROOT/bench/diffusers_sdxl.py" "$xl" --size 1024 --steps 20 --cfg 7
    sdxl_step offload && step diffusers-sdxl-offload 400 python3 "$ROOT/bench/diffusers_sdxl.py" "$xl" --size 1024 \
      --steps 20 --cfg 7 --offload
  fi
fi

# SDC_BENCH_FLUX=1: the Flux issue's benchmark on a flux-schnell-shaped random model (bf16 transformer and
# T5 files, 4 steps, 512 and 1024, one image), made on the GPU by bench/diffusers_flux.py (needs the diffusers
# wheel in .whl/); every policy (2 repeats: the first includes loading), then diffusers on the same files.
# SDC_FLUX_STEPS picks among "bench report profile diffusers" (default all; the model is made when missing).
flux_step() { case " ${SDC_FLUX_STEPS:-bench report profile diffusers} " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
if [ "$built" = 1 ] && [ "${SDC_BENCH_FLUX:-0}" = 1 ] && [ -d "$ROOT/.whl" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$ROOT"/.whl/*.whl &&
    export PYTHONPATH=/tmp/site
  fx=${SDC_FLUX_MODEL:-/tmp/flux}
  if [ ! -f "$fx/model_index.json" ]; then
    step mkmodel-tiny-flux 60 "$BUILD/sdc" mkmodel --arch tiny-flux-schnell -o /tmp/tiny-flux-schnell
    step make-flux 400 python3 "$ROOT/bench/diffusers_flux.py" make "$fx" --from /tmp/tiny-flux-schnell
  fi
  flux_step bench && step bench-flux 500 "$BUILD/sdc_bench" -m "$fx" --device cuda --sizes "${SDC_FLUX_SIZES:-512,1024}" --steps 4 \
    --batches 1 --repeat 2 --cfg 1
  flux_step report && step report-flux 200 "$BUILD/sdc" generate -m "$fx" --device cuda -p "a photo of an astronaut" -W 512 -H 512 \
    --steps 4 --load-policy phased -v --report-json "$OUT/report-flux-512-phased.json" -o "$OUT/flux-512.png"
  flux_step profile && step profile-flux 200 "$BUILD/sdc" generate -m "$fx" --device cuda -p "a photo of an astronaut" -W 1024 -H 1024 \
    --steps 4 --load-policy all --profile -v -o /tmp/flux-1024-profile.png
  flux_step diffusers && step diffusers-flux 400 python3 "$ROOT/bench/diffusers_flux.py" run "$fx" --sizes "${SDC_FLUX_SIZES:-512,1024}"
fi

echo
echo "===== summary ====="
printf '%-18s %-10s %6s  %s\n' step result secs tests
fail=0
for i in "${!STEPS[@]}"; do
  printf '%-18s %-10s %6s  %s\n' "${STEPS[$i]}" "${RESULTS[$i]}" "${TIMES[$i]}" "${COUNTS[$i]}"
  [ "${RESULTS[$i]}" = ok ] || fail=1
done
[ "$built" = 1 ] || fail=1
echo "log: $LOG"
return $fail
}

main 2>&1 | tee "$LOG"
exit "${PIPESTATUS[0]}"
