#!/usr/bin/env bash
# test_cli.sh SDC EXAMPLE - the sdc command and the example program, end to end on the reference model:
# good runs write PNGs with A1111 parameters; bad input gets a clear message, a non-zero exit and no file.
set -u
sdc=$1
example=$2
ref=${SDC_REFERENCE_DIR:-$SDC_SOURCE_DIR/../shared/reference}
if [ ! -d "$ref" ]; then echo "FAIL: reference bundle not found at $ref"; echo "0 passed, 1 failed"; exit 1; fi
model=$ref/tiny-sd1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok()  { echo "  PASS $1"; pass=$((pass + 1)); }
bad() { echo "  FAIL $1"; fail=$((fail + 1)); }

# the example program, built against the public header only
if "$example" "$model" "$tmp/ex.png" >/dev/null 2>&1 && head -c 8 "$tmp/ex.png" | grep -q PNG; then
  ok "example txt2img writes a PNG"
else bad "example txt2img writes a PNG"; fi

# a batch of two: out-1.png, out-2.png, with the parameters text
if "$sdc" generate -m "$model" -p "a red cube" -n "blurry" -W 64 -H 64 --steps 3 -b 2 -s 5 -o "$tmp/out.png" 2>"$tmp/err" &&
   [ -f "$tmp/out-1.png" ] && [ -f "$tmp/out-2.png" ] && [ ! -f "$tmp/out.png" ]; then
  ok "batch of 2 writes out-1.png and out-2.png"
else bad "batch of 2 writes out-1.png and out-2.png: $(cat "$tmp/err")"; fi
if grep -aq "Negative prompt: blurry" "$tmp/out-2.png" && grep -aq "Steps: 3, Sampler: Euler, CFG scale: 7.5, Seed: 6, Size: 64x64" "$tmp/out-2.png"; then
  ok "PNG carries the A1111 parameters text (seed + 1 for the second image)"
else bad "PNG carries the A1111 parameters text"; fi
if cmp -s "$tmp/out-1.png" "$tmp/out-2.png"; then bad "batch images differ"; else ok "batch images differ"; fi

# img2img from the reference gradient
if "$sdc" generate -m "$model" -p "a painting" -i "$ref/tiny-sd1-golden/inputs/gradient64.png" --strength 0.5 \
     --steps 4 -o "$tmp/i2i.png" 2>"$tmp/err" && [ -f "$tmp/i2i.png" ]; then ok "img2img writes a PNG"
else bad "img2img writes a PNG: $(cat "$tmp/err")"; fi

# bad input: non-zero exit, a message naming the problem, no output file
expect_fail() { # name pattern args...
  local name=$1 pattern=$2; shift 2
  rm -f "$tmp/x.png"
  if "$sdc" generate "$@" -o "$tmp/x.png" >"$tmp/out" 2>"$tmp/err"; then bad "$name: exit 0"; return; fi
  if [ -e "$tmp/x.png" ] || ls "$tmp" | grep -q "x.png."; then bad "$name: left an output file"; return; fi
  if grep -qi -- "$pattern" "$tmp/err"; then ok "$name: $(grep -i -m1 -- "$pattern" "$tmp/err")"
  else bad "$name: message lacks '$pattern': $(cat "$tmp/err")"; fi
}
mkdir -p "$tmp/novae" "$tmp/badarch"
for d in model_index.json scheduler text_encoder tokenizer unet; do ln -s "$model/$d" "$tmp/novae/$d"; done
for d in model_index.json scheduler text_encoder tokenizer vae; do ln -s "$model/$d" "$tmp/badarch/$d"; done
mkdir -p "$tmp/badarch/unet"
ln -s "$model/unet/diffusion_pytorch_model.safetensors" "$tmp/badarch/unet/"
sed 's/"CrossAttnDownBlock2D"/"SimpleCrossAttnDownBlock2D"/' "$model/unet/config.json" > "$tmp/badarch/unet/config.json"
printf 'not a png' > "$tmp/bad.png"

expect_fail "missing model" "no such file\|not found\|cannot" -m "$tmp/nothing" -p x -W 64 -H 64
expect_fail "missing model part" "vae" -m "$tmp/novae" -p x -W 64 -H 64
expect_fail "unsupported architecture" "unsupported\|SimpleCrossAttnDownBlock2D" -m "$tmp/badarch" -p x -W 64 -H 64
expect_fail "bad init image" "init image\|png" -m "$model" -p x -i "$tmp/bad.png"
expect_fail "steps < 1" "steps" -m "$model" -p x --steps 0
expect_fail "strength outside (0, 1]" "strength" -m "$model" -p x -i "$ref/tiny-sd1-golden/inputs/gradient64.png" --strength 1.5
expect_fail "unknown sampler" "sampling method" -m "$model" -p x --sampling-method foo
expect_fail "size not a multiple of 8" "multiples\? of 8" -m "$model" -p x -W 65 -H 64
expect_fail "karras with ddim" "karras" -m "$model" -p x -W 64 -H 64 --sampling-method ddim --scheduler karras
if "$sdc" generate -m "$model" -p x -W 64 -H 64 --steps 1 --device auto -o "$tmp/auto.png" 2>"$tmp/err" &&
   [ -f "$tmp/auto.png" ]; then ok "--device auto runs ($(grep -m1 -i "device\|cpu" "$tmp/err" || echo on CUDA))"
else bad "--device auto runs: $(cat "$tmp/err")"; fi
expect_fail "unknown device" "unknown device" -m "$model" -p x --device tpu
expect_fail "unknown load policy" "load policy" -m "$model" -p x --load-policy lazy
expect_fail "budget below every plan" "no policy fits the budget" -m "$model" -p x -W 64 -H 64 --mem-budget 1M

# the dry-run plan reads no weights and lists every policy; the report names the policy and phases
if "$sdc" generate -m "$model" -p x -W 64 -H 64 --plan >"$tmp/plan" 2>"$tmp/err" &&
   grep -q "^all .*PEAK" "$tmp/plan" && grep -q "^sequential .*PEAK" "$tmp/plan" && grep -q "^phased .*PEAK" "$tmp/plan"; then
  ok "--plan prints every policy's phases"
else bad "--plan prints every policy's phases: $(cat "$tmp/plan" "$tmp/err")"; fi
if "$sdc" generate -m "$model" -p x -W 64 -H 64 --steps 2 --load-policy sequential --report-json "$tmp/r.json" \
     -o "$tmp/r.png" 2>"$tmp/err" && grep -q '"policy":[[:space:]]*"sequential"' "$tmp/r.json" && grep -q '"denoise"' "$tmp/r.json"; then
  ok "--report-json writes the per-phase report"
else bad "--report-json writes the per-phase report: $(cat "$tmp/err")"; fi

rm -f "$tmp/x.png"
if "$sdc" generate -m "$model" -p x -W 64 -H 64 --steps 1 -o "$tmp/nodir/x.png" 2>"$tmp/err"; then bad "unwritable output: exit 0"
elif grep -qi "cannot write" "$tmp/err" && [ ! -e "$tmp/nodir" ]; then ok "unwritable output: $(head -1 "$tmp/err")"
else bad "unwritable output: $(cat "$tmp/err")"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
