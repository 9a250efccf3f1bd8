#!/usr/bin/env bash
# fuzz.sh [SECONDS] - builds the libFuzzer targets (clang, ASan + UBSan, undefined behaviour fatal) and runs
# each for SECONDS (default 600) on a corpus seeded from fuzz/corpus and the reference bundle
# (../shared/reference, override SDC_REFERENCE_DIR; seeds are copied at run time, never committed).
# Prints per target: executions, coverage (cov:) and whether it found a crash; exits 1 on any finding.
# Crash inputs are left in build-fuzz/findings/<target>/. SDC_FUZZ_TARGETS="fuzz_png fuzz_cli" runs a subset.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
ref=${SDC_REFERENCE_DIR:-../shared/reference}
b=build-fuzz
cmake -S . -B $b -DSDC_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 1
cmake --build $b -j"$(nproc)" >/dev/null || { cmake --build $b -j1; exit 1; }

sep=$'\n=====\n'
st_header() { # the JSON header of a .safetensors file
  local n; n=$(od -An -tu8 -N8 "$1" | tr -d ' ')
  tail -c +9 "$1" | head -c "$n"
}
seed() { # target name < content
  mkdir -p "$b/corpus/$1"; cat >"$b/corpus/$1/$2"
}
rm -rf "$b/corpus"
mkdir -p "$b/corpus"
cp -r fuzz/corpus/safetensors "$b/corpus/fuzz_safetensors"
cp -r fuzz/corpus/safetensors "$b/corpus/fuzz_st_file"
cp -r fuzz/corpus/config "$b/corpus/fuzz_config"
cp -r fuzz/corpus/tokenizer "$b/corpus/fuzz_tokenizer"
mkdir -p "$b/corpus/fuzz_png"
find "$ref" -name '*.png' -size -64k 2>/dev/null | head -20 | while read -r f; do cp "$f" "$b/corpus/fuzz_png/"; done
m=$ref/tiny-sd1
if [ -d "$m" ]; then
  for c in text_encoder unet vae; do cp "$m/$c/config.json" "$b/corpus/fuzz_config/$c.json"; done
  { printf '\0'; cat "$m/unet/config.json"; } | seed fuzz_model_config unet
  { printf '\1'; cat "$m/vae/config.json"; } | seed fuzz_model_config vae
  { printf '\2'; cat "$m/text_encoder/config.json"; } | seed fuzz_model_config clip
  for k in 3 7 11 15 19 23 27 31; do   # every sampler, discrete and karras
    { printf "\\$(printf %o "$k")"; cat "$m/scheduler/scheduler_config.json"; } | seed fuzz_model_config "sched$k"
  done
  [ -d "$ref/tiny-sdxl" ] && { printf '\0'; cat "$ref/tiny-sdxl/unet/config.json"; } | seed fuzz_model_config sdxl_unet
  { cat "$m/model_index.json"; printf '%s' "$sep"; cat "$m/text_encoder/config.json"; printf '%s' "$sep"
    cat "$m/unet/config.json"; printf '%s' "$sep"; cat "$m/vae/config.json"; printf '%s' "$sep"
    cat "$m/scheduler/scheduler_config.json"; printf '%s' "$sep"; st_header "$m/vae/diffusion_pytorch_model.safetensors"
  } | seed fuzz_model_folder tiny-sd1
  st_header "$m/vae/diffusion_pytorch_model.safetensors" | seed fuzz_st_file vae_header_only
  # small tokenizer files (the reference ones are megabytes): a few tokens and merges
  { printf '{"<|startoftext|>": 0, "<|endoftext|>": 1, "a</w>": 2, "a": 3, "p": 4, "h": 5, "o": 6, "t": 7, '
    printf '"ph": 8, "ot": 9, "o</w>": 10, "ot</w>": 11, "pho": 12, "photo</w>": 13, "!": 14, "!</w>": 15}'
    printf '%s' "$sep"; printf '#version: 0.2\np h\no t\nph o\npho t\n'; } | seed fuzz_tokenizer_files small
fi
u=$ref/tiny-flux-schnell/tokenizer_2/tokenizer.json
if [ -f "$u" ]; then   # fuzz_unigram: byte 0 even = a prompt, odd = a tokenizer.json (a small one: 40 pieces)
  printf '\200a photo of an astronaut, \303\234n\303\257code 123!' | seed fuzz_unigram prompt
  printf '\000 </s>x<pad>\t\342\200\213 \360\237\230\200\357\274\234' | seed fuzz_unigram specials
  { printf '\001'; python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["model"]["vocab"]=d["model"]["vocab"][:40]; print(json.dumps(d))' "$u"; } |
    seed fuzz_unigram small_json
fi
mkdir -p "$b/corpus/fuzz_gguf"   # fuzz_gguf: whole GGUF files (the reference ones are small), headers of larger ones
for f in "$ref"/*.gguf tests/data/gguf/*.gguf; do
  [ -f "$f" ] && head -c 200000 "$f" >"$b/corpus/fuzz_gguf/$(basename "$f")"
done
for f in "$ref"/tiny-sd1.safetensors "$ref"/tiny-sdxl.safetensors; do
  [ -f "$f" ] && st_header "$f" | seed fuzz_single_file "$(basename "$f" .safetensors)"
done
printf -- '-m\0model\0-p\0a cat\0-W\0'"512"'\0-H\0512\0--steps\0020\0-s\0042\0-b\0002\0--sampling-method\0dpm++2m\0--scheduler\0karras' |
  seed fuzz_cli basic
printf -- '-m\0m\0-p\0x\0-i\0in.png\0--strength\0000.5\0--load-policy\0phased\0--mem-budget\0006G\0--report-json\0r.json\0-o\0o.png' |
  seed fuzz_cli img2img

targets=${SDC_FUZZ_TARGETS:-"fuzz_png fuzz_config fuzz_model_config fuzz_model_folder fuzz_safetensors fuzz_gguf fuzz_st_file
  fuzz_single_file fuzz_tokenizer fuzz_tokenizer_files fuzz_unigram fuzz_cli"}
found=0
for t in $targets; do
  mkdir -p "$b/corpus/$t" "$b/findings/$t"
  log=$b/findings/$t.log
  # -close_fd_mask=3: the targets' own messages are silenced; libFuzzer and the sanitizers still report.
  (cd "$b/findings/$t" && ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "../../fuzz/$t" -max_total_time="$secs" -max_len=262144 -rss_limit_mb=4096 -timeout=20 -close_fd_mask=3 \
      -print_final_stats=1 "../../corpus/$t") >"$log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  if [ "$rc" -ne 0 ]; then found=1; echo "fuzz.sh: $t: FINDING (exit $rc) after ${runs:-?} runs, ${cov:-cov: ?}; see $log"
  else echo "fuzz.sh: $t: ${runs:-?} runs in ${secs}s, ${cov:-cov: ?}, no finding"; fi
done
exit $found
