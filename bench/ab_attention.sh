#!/usr/bin/env bash
# Needs the other attention kernel at .ab/cuda_attention.cu (e.g. git show main:src/backend/cuda/cuda_attention.cu > .ab/cuda_attention.cu)
# and .devdeps carried; run on the device from the repository root: bash bench/ab_attention.sh
# A/B of the attention kernel (main's vs this tree's), then test_demo on CUDA, on one card.
set -u
export PKG_CONFIG_PATH=$PWD/.devdeps/lib/pkgconfig LD_LIBRARY_PATH=$PWD/.devdeps/lib:/usr/local/cuda/lib64 PATH=/usr/local/cuda/bin:$PATH
CM=/opt/torch/.venv/bin/cmake
nvidia-smi --query-gpu=name --format=csv,noheader
rm -rf /tmp/old && mkdir /tmp/old && cp -r CMakeLists.txt sdc.pc.in src include bench tests data scripts examples /tmp/old/ && cp .ab/cuda_attention.cu /tmp/old/src/backend/cuda/
($CM -S /tmp/old -B /tmp/old/b -DCMAKE_BUILD_TYPE=Release -DSDC_CUDA=ON -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc >/dev/null && $CM --build /tmp/old/b -j8 --target bench_attention >/dev/null 2>&1) &
$CM -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DSDC_CUDA=ON -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc >/dev/null && $CM --build build-gpu -j12 --target bench_attention test_demo >/dev/null 2>&1 || echo BUILD FAILED
wait
for r in 1 2; do echo "== main's kernel, round $r"; /tmp/old/b/bench_attention 20; echo "== this tree's kernel, round $r"; build-gpu/bench_attention 20; done
SDC_TEST_DEVICE=cuda build-gpu/tests/test_demo > /tmp/demo.log 2>&1
grep -E "device|bound|passed|FAIL" /tmp/demo.log | tail -12
