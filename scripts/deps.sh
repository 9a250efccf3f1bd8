#!/usr/bin/env bash
# Installs the Debian packages sdc builds with (only what is missing). Used by the other scripts.
set -euo pipefail
# libopenblas-openmp-dev: the OpenMP build of OpenBLAS, which sdc links by its path (CMakeLists.txt); the
# default libopenblas.so.0 stays the pthread build, which the RPATH keeps sdc away from. libdnnl-dev:
# oneDNN, the CPU's bf16 matrix products (--precision bf16; optional to the build, CI installs it)
pkgs=(build-essential cmake pkg-config clang clang-format libclang-rt-dev libopenblas-dev libopenblas-openmp-dev libdnnl-dev
      libcjson-dev libutf8proc-dev libpng-dev zlib1g-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] || [ "${SDC_FORCE_APT:-0}" = 1 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update
  $sudo apt-get install -y --no-install-recommends "${pkgs[@]}"
fi
