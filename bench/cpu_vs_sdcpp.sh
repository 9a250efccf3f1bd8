#!/usr/bin/env bash
# Issue 14: sdc against stable-diffusion.cpp (sd.cpp) side by side on this machine's CPU. Both engines read one
# SD 1.5-shaped fp16 single file (sdc mkmodel --arch sd15 --single-file --seed 1) and generate one image with
# euler, CFG 7.5, seed 42, a fixed prompt and THREADS threads, at 256x256 x 4 steps and 512x512 x 2 steps:
#   sdc    --load-policy all | phased | stream, and --precision bf16 with phased (sdc-bf16-phased)
#   sd.cpp default (weights in RAM) | --params-backend disk --diffusion-fa
# The runs alternate between the engines (one of each configuration per round, REPS rounds), and each starts only
# once the 1-minute load average (/proc/loadavg) is below LOAD_MAX (polled every 5 s). Per run: wall time of the
# process (start to exit, weight loads and PNG write included), s/step and VAE decode time from each engine's own
# log with the weight loads done inside those phases taken out (sdc, -v report: denoise phase wall less its load s,
# per step, and decode phase wall less its load s; sd.cpp: "sampling completed, taking" / "decode_first_stage
# completed, taking" less the "loading tensors completed, taking" lines logged inside them), load time (all of
# those loads: sdc's load s summed over phases, stream block reads included; sd.cpp's loading lines summed; both
# engines read from the page cache: the script reads the file once first), and the peak RSS
# sampled externally from /proc/PID/status VmRSS every 20 ms (sdc resets VmHWM between jobs, so not VmHWM).
# The table gives medians over the rounds (peak RSS: the largest). sd.cpp is built from a source tree you point to
# (nothing is fetched); without one its rows are skipped.
#   bash bench/cpu_vs_sdcpp.sh [RESULTS_FILE]   (prints; with RESULTS_FILE also writes the lines there)
# Environment: MODEL (default /tmp/cpu16-sd15.safetensors, made with mkmodel if absent), SDCPP_BIN (an sd-cli
# binary) or SDCPP_DIR (an sd.cpp checkout with its ggml submodule; built into $SDCPP_DIR/build with
# -DSD_WEBP=OFF -DSD_WEBM=OFF -DSD_SERVER_BUILD_FRONTEND=OFF if build/bin/sd-cli is absent), SDCPP_COMMIT (shown
# when the tree is not a git checkout), CONFIGS (default "sdc-all sdcpp-default sdc-phased sdcpp-disk-fa sdc-stream
# sdc-bf16-phased"; sdc-bf16-POLICY for others), THREADS=2, REPS=3, REPS_512 (default REPS), SIZES="256 512", LOAD_MAX=1.2,
# WORK=/tmp/cpu-vs-sdcpp (logs and images), JOBS=2 (build).
set -euo pipefail
cd "$(dirname "$0")/.."
results=${1:-}
model=${MODEL:-/tmp/cpu16-sd15.safetensors}
threads=${THREADS:-2}
reps=${REPS:-3}
reps512=${REPS_512:-$reps}
sizes=${SIZES:-256 512}
load_max=${LOAD_MAX:-1.2}
work=${WORK:-/tmp/cpu-vs-sdcpp}
jobs=${JOBS:-2}
prompt="a photo of an astronaut riding a horse on mars"
mkdir -p "$work"
if [ -n "$results" ]; then : >"$results"; fi
say() { echo "$*"; [ -z "$results" ] || echo "$*" >>"$results"; }

[ -x build/sdc ] || { echo "build/sdc is missing: cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build" >&2; exit 1; }
[ -f "$model" ] || ./build/sdc mkmodel --arch sd15 --single-file --seed 1 -o "$model"

sdcpp=${SDCPP_BIN:-}
if [ -z "$sdcpp" ] && [ -n "${SDCPP_DIR:-}" ]; then
  if [ ! -f "$SDCPP_DIR/CMakeLists.txt" ] || [ ! -f "$SDCPP_DIR/ggml/CMakeLists.txt" ]; then
    echo "SDCPP_DIR=$SDCPP_DIR is not an sd.cpp tree with its ggml submodule: sd.cpp rows skipped" >&2
  else
    sdcpp=$SDCPP_DIR/build/bin/sd-cli
    if [ ! -x "$sdcpp" ]; then
      echo "building sd.cpp in $SDCPP_DIR/build (CPU, Release, -j$jobs)" >&2
      t0=$(date +%s)
      cmake -S "$SDCPP_DIR" -B "$SDCPP_DIR/build" -DCMAKE_BUILD_TYPE=Release -DSD_WEBP=OFF -DSD_WEBM=OFF \
        -DSD_SERVER_BUILD_FRONTEND=OFF >"$work/sdcpp-build.log" 2>&1 &&
        cmake --build "$SDCPP_DIR/build" --target sd-cli -j"$jobs" >>"$work/sdcpp-build.log" 2>&1 ||
        { echo "sd.cpp build failed (see $work/sdcpp-build.log): sd.cpp rows skipped" >&2; sdcpp=; }
      echo "sd.cpp build: $(($(date +%s) - t0)) s" >&2
    fi
  fi
fi
if [ -n "$sdcpp" ] && [ ! -x "$sdcpp" ]; then echo "SDCPP_BIN=$sdcpp is not executable: sd.cpp rows skipped" >&2; sdcpp=; fi
[ -n "$sdcpp" ] || echo "no sd.cpp (set SDCPP_BIN or SDCPP_DIR): only sdc's rows are measured" >&2

sdc_ver=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || sdc_ver="$sdc_ver (dirty)"
sdcpp_ver=none
if [ -n "$sdcpp" ]; then
  sdcpp_ver=$("$sdcpp" --version 2>/dev/null | head -1 || true)
  if [ -n "${SDCPP_DIR:-}" ] && git -C "$SDCPP_DIR" rev-parse HEAD >/dev/null 2>&1; then
    sdcpp_ver="$sdcpp_ver, commit $(git -C "$SDCPP_DIR" rev-parse --short=12 HEAD)"
  elif [ -n "${SDCPP_COMMIT:-}" ]; then
    sdcpp_ver="$sdcpp_ver, commit $SDCPP_COMMIT"
  fi
fi

peak_rss() { # LOG command...: runs it (output to LOG), then prints its peak RSS (MiB) sampled every 20 ms
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  local pid=$! peak=0 r
  while kill -0 "$pid" 2>/dev/null; do
    r=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [ "${r:-0}" -gt "$peak" ] && peak=$r
    sleep 0.02
  done
  wait "$pid" || { echo "failed (rc $?): $* (log $log)" >&2; echo fail; return; }
  echo $((peak / 1024))
}
wait_load() { # until the 1-minute load average is below load_max
  local t0=$SECONDS
  until awk -v m="$load_max" '{exit !($1 < m)}' /proc/loadavg; do sleep 5; done
  waited=$((waited + SECONDS - t0))
}

read -r -a configs <<<"${CONFIGS:-sdc-all sdcpp-default sdc-phased sdcpp-disk-fa sdc-stream sdc-bf16-phased}"
cmd_for() { # CONFIG SIZE STEPS OUTPNG: sets cmd to the command line
  local c=$1 sz=$2 st=$3 png=$4
  local common=(-m "$model" -p "$prompt" -W "$sz" -H "$sz" --steps "$st" --cfg-scale 7.5 --sampling-method euler
    -s 42 -t "$threads" -o "$png")
  case $c in
    sdc-bf16-*) cmd=(./build/sdc generate "${common[@]}" --precision bf16 --load-policy "${c#sdc-bf16-}" -v) ;;
    sdc-*) cmd=(./build/sdc generate "${common[@]}" --load-policy "${c#sdc-}" -v) ;;
    sdcpp-default) cmd=("$sdcpp" "${common[@]}") ;;
    sdcpp-disk-fa) cmd=("$sdcpp" "${common[@]}" --params-backend disk --diffusion-fa) ;;
  esac
}
parse() { # CONFIG LOG STEPS: "s/step decode load" from the engine's own log (weight loads taken out of the first two)
  case $1 in
    sdc-*) awk -v st="$3" '$2 != "report:" || $4 !~ /^[0-9]+$/ {next}
      $3 == "denoise" {d = $5 - $6}
      $3 == "decode" {v = $5 - $6}
      $6 ~ /^[0-9.]+$/ {l += $6}
      END {printf "%.3f %.3f %.3f\n", d / st, v, l}' "$2" ;;
    sdcpp-*) awk -v st="$3" 'function t(s) {sub(/.*taking /, "", s); return s + 0}
      /generating image: / {ph = "d"}
      /decoding [0-9]+ latents/ {ph = "v"}
      /loading tensors completed, taking/ {x = t($0); l += x; if (ph == "d") dl += x; if (ph == "v") vl += x}
      /sampling completed, taking/ {d = t($0); ph = ""}
      /decode_first_stage completed, taking/ {v = t($0); ph = ""}
      END {printf "%.3f %.3f %.3f\n", (d - dl) / st, v - vl, l}' "$2" ;;
  esac
}

say "# sdc vs stable-diffusion.cpp on the CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $threads threads, $(date -u '+%F %H:%M UTC')"
say "# CPU flags: $(grep -o 'avx512[a-z_0-9]*\|amx[a-z_0-9]*' /proc/cpuinfo | sort -u | xargs || true)"
say "# sdc $sdc_ver; sd.cpp: $sdcpp_ver"
say "# model $model ($(($(stat -c %s "$model") / 1048576)) MiB, fp16); euler, CFG 7.5, seed 42, prompt \"$prompt\"; runs alternated, each started at 1-min load < $load_max"
cat "$model" >/dev/null # into the page cache once, so that no engine pays the first read
runs=$work/runs.tsv
: >"$runs"
say "# config          size steps rep   wall s  s/step  decode s  load s  peak RSS MiB  waited s"
for sz in $sizes; do
  case $sz in 256) st=4 n=$reps ;; 512) st=2 n=$reps512 ;; *) st=${STEPS:-2} n=$reps ;; esac
  for ((rep = 1; rep <= n; rep++)); do
    for c in "${configs[@]}"; do
      [[ $c == sdcpp-* && -z $sdcpp ]] && continue
      log=$work/$c-$sz-$rep.log
      waited=0
      wait_load
      cmd_for "$c" "$sz" "$st" "$work/$c-$sz.png"
      printf '%q ' "${cmd[@]}" >"$log.cmd"
      t0=$(date +%s.%N)
      peak=$(peak_rss "$log" "${cmd[@]}")
      wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.3f", b - a}')
      [ "$peak" = fail ] && { say "$(printf '  %-15s %4d %5d %3d   failed (%s)' "$c" "$sz" "$st" "$rep" "$log")"; continue; }
      read -r sps dec ld < <(parse "$c" "$log" "$st")
      printf '%s\t%s\t%s\t%s\t%.3f\t%s\t%s\t%s\t%s\n' "$c" "$sz" "$st" "$rep" "$wall" "$sps" "$dec" "$ld" "$peak" >>"$runs"
      say "$(printf '  %-15s %4d %5d %3d %8.2f %7.3f %9.3f %7.3f %13d %9d' "$c" "$sz" "$st" "$rep" "$wall" "$sps" "$dec" "$ld" "$peak" "$waited")"
    done
  done
done

say ""
say "# medians over the rounds (peak RSS: the largest); s/step and decode from each engine's own log"
say "# config          size steps runs   wall s  s/step  decode s  load s  peak RSS MiB"
for sz in $sizes; do
  for c in "${configs[@]}"; do
    awk -F'\t' -v c="$c" -v sz="$sz" '
      function med(a, n,   i, j, t) {
        for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
      }
      $1 == c && $2 == sz { n++; st = $3; w[n] = $5; s[n] = $6; d[n] = $7; l[n] = $8; if ($9 > p) p = $9 }
      END { if (n) printf "  %-15s %4d %5d %4d %8.2f %7.3f %9.3f %7.3f %13d\n", c, sz, st, n, med(w, n), med(s, n), med(d, n), med(l, n), p }' "$runs" |
      while IFS= read -r line; do say "$line"; done
  done
done
say "# logs and images: $work"
