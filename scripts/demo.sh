#!/usr/bin/env bash
# The main job: builds sdc, writes a random-weight model with `sdc mkmodel` (no real weights can be
# downloaded here), and generates an image from it end to end.
#   bash scripts/demo.sh                 tiny-sd1 model, 256x256, a few seconds
#   ARCH=sd15 SIZE=512 bash scripts/demo.sh   SD 1.5 shapes (2 GB of fp16 weights, minutes on a CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"

arch=${ARCH:-tiny-sd1}
size=${SIZE:-256}
model=out/models/$arch
mkdir -p out/models
[ -f "$model/model_index.json" ] || ./build/sdc mkmodel --arch "$arch" --seed 1 -o "$model"
./build/sdc generate -m "$model" -p "a photo of an astronaut riding a horse on mars" -n "blurry" \
  -W "$size" -H "$size" --steps "${STEPS:-20}" --cfg-scale 7.5 -s 42 -o out/demo.png -v
echo "demo: wrote out/demo.png (random weights, so expect colourful noise, not an astronaut)"
