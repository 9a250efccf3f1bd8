#!/usr/bin/env bash
# Packs the two build dependencies the GPU machine's image lacks (cJSON and utf8proc: headers, shared
# libraries, pkg-config files) and OpenBLAS's OpenMP build into .devdeps/, which the device tool carries. On that machine:
#   export PKG_CONFIG_PATH=$PWD/.devdeps/lib/pkgconfig LD_LIBRARY_PATH=$PWD/.devdeps/lib
set -euo pipefail
cd "$(dirname "$0")/.."
d=.devdeps
rm -rf "$d" && mkdir -p "$d/include/cjson" "$d/lib/pkgconfig"
cp /usr/include/cjson/cJSON.h "$d/include/cjson/"
cp /usr/include/utf8proc.h "$d/include/"
cp -P /usr/lib/x86_64-linux-gnu/libcjson.so* /usr/lib/x86_64-linux-gnu/libutf8proc.so* "$d/lib/"
for pc in libcjson libutf8proc; do
  lib=${pc#lib}
  cat > "$d/lib/pkgconfig/$pc.pc" <<PC
prefix=\${pcfiledir}/../..
Name: $pc
Description: carried for the GPU machine
Version: 0
Libs: -L\${prefix}/lib -l$lib
Cflags: -I\${prefix}/include
PC
done
# OpenBLAS's OpenMP build, which sdc links (CMakeLists.txt: SDC_OPENBLAS_DIR), in case the image has only
# the pthread build; scripts/cuda_check.sh points the build at it where the system has none
b=/usr/lib/x86_64-linux-gnu/openblas-openmp
mkdir -p "$d/openblas-openmp/lib" "$d/openblas-openmp/include"
cp -L "$b/libopenblas.so.0" "$d/openblas-openmp/lib/"
ln -s libopenblas.so.0 "$d/openblas-openmp/lib/libopenblas.so"
cp /usr/include/x86_64-linux-gnu/openblas-openmp/*.h "$d/openblas-openmp/include/"
grep -qx '/.devdeps/' .git/info/exclude 2>/dev/null || echo '/.devdeps/' >> .git/info/exclude
du -sh "$d"
