#!/usr/bin/env bash
# Packs the two build dependencies the GPU machine's image lacks (cJSON and utf8proc: headers, shared
# libraries, pkg-config files) into .devdeps/, which the device tool carries. On that machine:
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
grep -qx '/.devdeps/' .git/info/exclude 2>/dev/null || echo '/.devdeps/' >> .git/info/exclude
du -sh "$d"
