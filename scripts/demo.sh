#!/usr/bin/env bash
# The main job: builds sdc and generates an image end to end from the demo model in data/demo-model
# (a tiny SD 1.x-architecture model trained by tools/train_demo/train.py on drawn shapes: it knows six
# colours, circles/squares/triangles, five positions, backgrounds and 32x32 pixels; tests/test_demo.c
# measures how often it draws what the caption says), in about a second.
#   bash scripts/demo.sh                                      "a red circle on a blue background"
#   PROMPT="a yellow triangle on the left, black background" bash scripts/demo.sh
#   ARCH=sd15 SIZE=512 bash scripts/demo.sh   a random-weight model of SD 1.5 shapes made with `sdc mkmodel`
#                                             instead (colourful noise; 2 GB of fp16 weights, minutes on a CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"

if [ -n "${ARCH:-}" ]; then
  size=${SIZE:-256}
  model=out/models/$ARCH
  mkdir -p out/models
  [ -f "$model/model_index.json" ] || ./build/sdc mkmodel --arch "$ARCH" --seed 1 -o "$model"
  ./build/sdc generate -m "$model" -p "a photo of an astronaut riding a horse on mars" -n "blurry" \
    -W "$size" -H "$size" --steps "${STEPS:-20}" --cfg-scale 7.5 -s 42 -o out/demo.png -v
  echo "demo: wrote out/demo.png (random weights, so expect colourful noise, not an astronaut)"
  exit 0
fi
mkdir -p out
prompt=${PROMPT:-a red circle on a blue background}
./build/sdc generate -m data/demo-model -p "$prompt" -W 32 -H 32 --steps "${STEPS:-20}" --cfg-scale 5 \
  --sampling-method euler -s "${SEED:-1}" -t 1 -o out/demo.png -v
echo "demo: wrote out/demo.png (32x32): \"$prompt\""
