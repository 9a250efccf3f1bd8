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

# mkmodel: a tiny SDXL folder (--fp16) that generate opens; SDXL as a single file is refused clearly
if "$sdc" mkmodel -a tiny-sdxl --fp16 -s 3 -o "$tmp/xl" 2>"$tmp/err" &&
   "$sdc" generate -m "$tmp/xl" --fp16 -p "a red cube" -W 64 -H 64 --steps 2 -o "$tmp/xl.png" 2>>"$tmp/err" &&
   [ -f "$tmp/xl/text_encoder_2/model.fp16.safetensors" ] && [ -f "$tmp/xl.png" ]; then
  ok "mkmodel -a tiny-sdxl --fp16 writes a folder that generate runs"
else bad "mkmodel -a tiny-sdxl --fp16 writes a folder that generate runs: $(cat "$tmp/err")"; fi
if "$sdc" mkmodel -a tiny-sdxl --single-file -o "$tmp/xl.safetensors" 2>"$tmp/err"; then bad "mkmodel SDXL single file: exit 0"
elif [ -e "$tmp/xl.safetensors" ]; then bad "mkmodel SDXL single file: left a file"
elif grep -q "single-file output for SDXL" "$tmp/err"; then ok "mkmodel SDXL single file: $(head -1 "$tmp/err")"
else bad "mkmodel SDXL single file: unclear message: $(cat "$tmp/err")"; fi

# mkmodel: a tiny Flux folder with both tokenizers; Flux as a single file is refused clearly
if "$sdc" mkmodel -a tiny-flux-dev -s 3 -o "$tmp/flux" 2>"$tmp/err" &&
   [ -f "$tmp/flux/transformer/diffusion_pytorch_model.fp16.safetensors" ] &&
   [ -f "$tmp/flux/text_encoder_2/model.fp16.safetensors" ] && [ -f "$tmp/flux/tokenizer_2/tokenizer.json" ] &&
   [ -f "$tmp/flux/tokenizer/vocab.json" ] && grep -q FluxPipeline "$tmp/flux/model_index.json"; then
  ok "mkmodel -a tiny-flux-dev writes a FluxPipeline folder"
else bad "mkmodel -a tiny-flux-dev writes a FluxPipeline folder: $(cat "$tmp/err")"; fi
if "$sdc" mkmodel -a flux-schnell --single-file -o "$tmp/flux.safetensors" 2>"$tmp/err"; then bad "mkmodel Flux single file: exit 0"
elif [ -e "$tmp/flux.safetensors" ]; then bad "mkmodel Flux single file: left a file"
elif grep -q "single-file output for Flux" "$tmp/err"; then ok "mkmodel Flux single file: $(head -1 "$tmp/err")"
else bad "mkmodel Flux single file: unclear message: $(cat "$tmp/err")"; fi

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

# Flux from files (sd.cpp's flags): the same image as the folder; bad component files refused, no file
fs=$ref/tiny-flux-schnell
if "$sdc" generate -m "$fs" -p "a red cube" -W 64 -H 64 --steps 2 -o "$tmp/ff.png" 2>"$tmp/err" &&
   "$sdc" generate -m "$fs" --diffusion-model "$ref/tiny-flux-schnell-bfl.safetensors" --vae "$ref/tiny-flux-ae.safetensors" \
     --clip_l "$fs/text_encoder/model.safetensors" --t5xxl "$fs/text_encoder_2/model.safetensors" \
     -p "a red cube" -W 64 -H 64 --steps 2 -o "$tmp/ff2.png" 2>>"$tmp/err" && cmp -s "$tmp/ff.png" "$tmp/ff2.png"; then
  ok "flux: --diffusion-model BFL --vae ae --clip_l --t5xxl over -m FOLDER: the same PNG as the folder"
else bad "flux: component files over -m FOLDER: $(cat "$tmp/err")"; fi
if "$sdc" generate -m "$ref/tiny-flux-schnell-bfl.safetensors" --config "$fs" -p "a red cube" -W 64 -H 64 --steps 2 \
     -o "$tmp/ff3.png" 2>"$tmp/err" && [ -f "$tmp/ff3.png" ]; then ok "flux: -m BFL file --config FOLDER writes a PNG"
else bad "flux: -m BFL file --config FOLDER: $(cat "$tmp/err")"; fi
expect_fail "flux: a T5 file as --diffusion-model" "not a Flux transformer" -m "$fs" --diffusion-model "$fs/text_encoder_2/model.safetensors" -p x -W 64 -H 64 --steps 1
expect_fail "flux: a BFL file without --config" "config" -m "$ref/tiny-flux-schnell-bfl.safetensors" -p x -W 64 -H 64 --steps 1
expect_fail "flux: a --vae file for SD 1.x" "no separate vae" -m "$model" --vae "$ref/tiny-flux-ae.safetensors" -p x -W 64 -H 64 --steps 1

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
expect_fail "unknown precision" "precision .*bf16" -m "$model" -p x --precision f8
# --precision bf16 on the CPU: the log names the bf16 kernel, and the image differs from f32's
if "$sdc" generate -m "$model" -p x -W 64 -H 64 --steps 2 --precision bf16 -v -o "$tmp/b16.png" 2>"$tmp/err" &&
   grep -q "bf16 products: " "$tmp/err" && "$sdc" generate -m "$model" -p x -W 64 -H 64 --steps 2 -o "$tmp/f32.png" 2>>"$tmp/err" &&
   ! cmp -s "$tmp/b16.png" "$tmp/f32.png"; then
  ok "--precision bf16 runs ($(grep -m1 -o "bf16 products: .*" "$tmp/err"))"
else bad "--precision bf16 runs: $(cat "$tmp/err")"; fi
expect_fail "unknown load policy" "load policy" -m "$model" -p x --load-policy lazy
expect_fail "budget below every plan" "no policy fits the budget" -m "$model" -p x -W 64 -H 64 --mem-budget 1M

# the dry-run plan reads no weights and lists every policy; the report names the policy and phases
if "$sdc" generate -m "$model" -p x -W 64 -H 64 --plan >"$tmp/plan" 2>"$tmp/err" &&
   grep -q "^all .*PEAK" "$tmp/plan" && grep -q "^sequential .*PEAK" "$tmp/plan" && grep -q "^phased .*PEAK" "$tmp/plan" &&
   grep -q "^stream .*streamed: window" "$tmp/plan"; then
  ok "--plan prints every policy's phases"
else bad "--plan prints every policy's phases: $(cat "$tmp/plan" "$tmp/err")"; fi
if "$sdc" generate -m "$model" -p x -W 64 -H 64 --steps 2 --load-policy sequential --report-json "$tmp/r.json" \
     -o "$tmp/r.png" 2>"$tmp/err" && grep -q '"policy":[[:space:]]*"sequential"' "$tmp/r.json" && grep -q '"denoise"' "$tmp/r.json"; then
  ok "--report-json writes the per-phase report"
else bad "--report-json writes the per-phase report: $(cat "$tmp/err")"; fi
# stream with a window of one block: the same PNG bytes as all; the report counts the block loads
if "$sdc" generate -m "$model" -p x -W 64 -H 64 --steps 2 --load-policy all -o "$tmp/sa.png" 2>"$tmp/err" &&
   "$sdc" generate -m "$model" -p x -W 64 -H 64 --steps 2 --load-policy stream --stream-window 1 \
     --report-json "$tmp/s.json" -o "$tmp/ss.png" 2>>"$tmp/err" && cmp -s "$tmp/sa.png" "$tmp/ss.png" &&
   grep -q '"window":[[:space:]]*1' "$tmp/s.json" && grep -q '"block_loads"' "$tmp/s.json"; then
  ok "--load-policy stream --stream-window 1: PNG identical to all's"
else bad "--load-policy stream --stream-window 1: $(cat "$tmp/err")"; fi
expect_fail "bad stream window" "stream-window" -m "$model" -p x --load-policy stream --stream-window 0

rm -f "$tmp/x.png"
if "$sdc" generate -m "$model" -p x -W 64 -H 64 --steps 1 -o "$tmp/nodir/x.png" 2>"$tmp/err"; then bad "unwritable output: exit 0"
elif grep -qi "cannot write" "$tmp/err" && [ ! -e "$tmp/nodir" ]; then ok "unwritable output: $(head -1 "$tmp/err")"
else bad "unwritable output: $(cat "$tmp/err")"; fi

# issue 13 items 2, 5, 6, 7, 10: refused before any weight is read (exit 2, a usage error), output untouched
refused() { # name pattern args...
  local name=$1 pattern=$2; shift 2
  local t0=$SECONDS
  timeout 60 "$sdc" generate "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [ "$rc" -eq 2 ] && grep -qi -- "$pattern" "$tmp/err" && ! grep -q "denoise" "$tmp/err"; then
    ok "$name: exit 2 in $((SECONDS - t0)) s: $(head -1 "$tmp/err")"
  else bad "$name: exit $rc (want 2), message '$(head -3 "$tmp/err")' (want '$pattern')"; fi
}
refused "prompt not valid UTF-8" "not valid UTF-8" -m "$model" -p "$(printf 'a \xff cat')" -W 64 -H 64 --steps 1 -o "$tmp/u.png"
refused "negative prompt not valid UTF-8" "negative-prompt is not valid UTF-8" -m "$model" -p x -n "$(printf '\xc3(')" -W 64 -H 64 --steps 1 -o "$tmp/u.png"
[ ! -e "$tmp/u.png" ] && ok "no image for a refused prompt" || bad "an image was written for a refused prompt"
refused "seed + batch past INT64_MAX" "2^63" -m "$model" -p x -W 64 -H 64 --steps 1 -s 9223372036854775807 -b 2 -o "$tmp/s.png"
refused "-o empty" "empty path" -m "$model" -p x -W 64 -H 64 --steps 1 -o ""
mkdir -p "$tmp/adir"
refused "-o a folder" "folder" -m "$model" -p x -W 64 -H 64 --steps 1 -o "$tmp/adir"
echo keep >"$tmp/target.png"; ln -s "$tmp/target.png" "$tmp/link.png"
refused "-o a symlink" "symbolic link" -m "$model" -p x -W 64 -H 64 --steps 1 -o "$tmp/link.png"
[ -L "$tmp/link.png" ] && [ "$(cat "$tmp/target.png")" = keep ] && ok "the symlink and its target are untouched" ||
  bad "the symlink or its target changed"
refused "-o /dev/null" "character device" -m "$model" -p x -W 64 -H 64 --steps 1 -o /dev/null
[ -c /dev/null ] && ok "/dev/null is still a character device" || bad "/dev/null is no longer a character device"
refused "--report-json into a missing folder" "does not exist" -m "$model" -p x -W 64 -H 64 --steps 1 -o "$tmp/rp.png" --report-json "$tmp/nodir/r.json"
[ ! -e "$tmp/rp.png" ] && ok "no run when the report folder is missing" || bad "ran although the report folder is missing"
mkfifo "$tmp/fifo.png"
refused "-i a FIFO (must not block)" "FIFO" -m "$model" -p x -i "$tmp/fifo.png" -o "$tmp/f.png"
refused "-i /dev/zero" "not a regular file" -m "$model" -p x -i /dev/zero -o "$tmp/f.png"
# a 57-byte PNG whose header claims 32768 x 32768 (CRCs not needed: the size is refused from the header)
printf '\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x80\x00\x00\x00\x80\x00\x08\x02\x00\x00\x00\x00\x00\x00\x00' >"$tmp/huge.png"
refused "-i a PNG claiming 32768x32768 with -W 64 -H 64" "32768x32768" -m "$model" -p x -i "$tmp/huge.png" -W 64 -H 64 -o "$tmp/h.png"
refused "-i a PNG claiming 32768x32768, no -W/-H" "larger than 16384x16384" -m "$model" -p x -i "$tmp/huge.png" -o "$tmp/h.png"

# SDXL: micro-conditioning flags change the image; the tiled decode at one tile is the same image
xl=$ref/tiny-sdxl
if "$sdc" generate -m "$xl" -p "a castle" -W 64 -H 96 --steps 2 -o "$tmp/xl.png" 2>"$tmp/err" &&
   "$sdc" generate -m "$xl" -p "a castle" -W 64 -H 96 --steps 2 --vae-tiling -o "$tmp/xlt.png" 2>>"$tmp/err" &&
   "$sdc" generate -m "$xl" -p "a castle" -W 64 -H 96 --steps 2 --original-size 768x1024 --crop-top-left 16,8 \
     --target-size 512x512 -o "$tmp/xlm.png" 2>>"$tmp/err" &&
   cmp -s "$tmp/xl.png" "$tmp/xlt.png" && ! cmp -s "$tmp/xl.png" "$tmp/xlm.png"; then
  ok "SDXL: --vae-tiling (one tile) gives the same PNG; --original-size/--crop-top-left/--target-size change it"
else bad "SDXL micro-conditioning / tiling: $(cat "$tmp/err")"; fi
refused "--original-size not WxH" "original-size" -m "$xl" -p x --original-size 1024 -o "$tmp/m.png"
refused "--target-size with a zero" "target-size" -m "$xl" -p x --target-size 0x512 -o "$tmp/m.png"
refused "--crop-top-left negative" "crop-top-left" -m "$xl" -p x --crop-top-left -1,0 -o "$tmp/m.png"
mkdir -p "$tmp/xl_no_te2"
for d in model_index.json scheduler text_encoder tokenizer tokenizer_2 unet vae; do ln -s "$xl/$d" "$tmp/xl_no_te2/$d"; done
expect_fail "SDXL folder without text_encoder_2" "text_encoder_2" -m "$tmp/xl_no_te2" -p x -W 64 -H 64

# a report that cannot be written (/dev/full: ENOSPC) fails the run but keeps the images
rm -f "$tmp/full.png"
"$sdc" generate -m "$model" -p x -W 64 -H 64 --steps 1 -o "$tmp/full.png" --report-json /dev/full 2>"$tmp/err"
rc=$?
if [ "$rc" -eq 1 ] && [ -f "$tmp/full.png" ] && grep -q "cannot write the report" "$tmp/err"; then
  ok "a failed report keeps the image: exit 1, $(grep report "$tmp/err" | head -1)"
else bad "a failed report keeps the image: exit $rc, image $( [ -f "$tmp/full.png" ] && echo kept || echo lost), '$(cat "$tmp/err")'"; fi

# --prompt-file (issue 12 item 2): every line's image is the PNG the same prompt and seed make alone,
# whatever --max-batch is; the phases run over the whole list, so phased loads each component once
printf '# a comment, then a blank line\n\nseed=5 | negative=blurry | a red cube\n  a blue sphere  \nseed=9 | negative= | a | green | cone\n' >"$tmp/prompts.txt"
if "$sdc" generate -m "$model" --prompt-file "$tmp/prompts.txt" -s 3 -n "dark" -W 64 -H 64 --steps 2 --max-batch 1 \
     --load-policy phased --report-json "$tmp/pf.json" -o "$tmp/pf.png" 2>"$tmp/err" &&
   "$sdc" generate -m "$model" -p "a red cube" -n blurry -s 5 -W 64 -H 64 --steps 2 -o "$tmp/a1.png" 2>>"$tmp/err" &&
   "$sdc" generate -m "$model" -p "a blue sphere" -n dark -s 3 -W 64 -H 64 --steps 2 -o "$tmp/a2.png" 2>>"$tmp/err" &&
   "$sdc" generate -m "$model" -p "a | green | cone" -s 9 -W 64 -H 64 --steps 2 -o "$tmp/a3.png" 2>>"$tmp/err" &&
   [ ! -e "$tmp/pf-4.png" ] && cmp -s "$tmp/pf-1.png" "$tmp/a1.png" && cmp -s "$tmp/pf-2.png" "$tmp/a2.png" &&
   cmp -s "$tmp/pf-3.png" "$tmp/a3.png"; then
  ok "--prompt-file --max-batch 1: pf-1..3.png byte-identical to each line run alone"
else bad "--prompt-file: $(cat "$tmp/err")"; fi
if grep -aq "Seed: 3, Size" "$tmp/pf-2.png" && grep -aq "Negative prompt: dark" "$tmp/pf-2.png" &&
   ! grep -aq "Negative prompt" "$tmp/pf-3.png"; then
  ok "--prompt-file: each PNG carries its line's prompt, seed and negative prompt"
else bad "--prompt-file: parameters text"; fi
if [ "$(grep -c '"loads":' "$tmp/pf.json")" -eq 3 ] && ! grep -Eq '"loads":[[:space:]]*([02-9]|1[0-9])' "$tmp/pf.json"; then
  ok "--prompt-file under phased: each of 3 components loaded once for the list"
else bad "--prompt-file under phased: loads $(grep '"loads"' "$tmp/pf.json" | tr -d '\n\t ')"; fi
# bad_prompt_file FILE CONTENT WHAT EXPECTED: a prompt file with CONTENT (printf escapes) is refused
bad_prompt_file() {
  printf "$2" >"$tmp/$1"
  refused "$3" "$4" -m "$model" --prompt-file "$tmp/$1" -W 64 -H 64 --steps 1 -o "$tmp/pb.png"
}
bad_prompt_file badseed.txt 'a cat\n\nseed=x1 | a dog\n' "--prompt-file with a bad seed" "badseed.txt:3: bad seed"
bad_prompt_file nobar.txt 'seed=4 a dog\n' "--prompt-file: seed= without '|'" "nobar.txt:1: 'seed' must be followed by '|'"
bad_prompt_file twice.txt 'a cat\nnegative=x | seed=2 | negative=y | a dog\n' "--prompt-file: negative given twice" "twice.txt:2: negative given twice"
bad_prompt_file noprompt.txt 'a cat\nseed=2 |   \n' "--prompt-file: options without a prompt" "noprompt.txt:2: no prompt"
bad_prompt_file utf.txt 'a cat\na \xff dog\n' "--prompt-file: invalid UTF-8" "utf.txt:2: invalid UTF-8"
bad_prompt_file empty.txt '# only a comment\n\n' "--prompt-file without a prompt" "has no prompt"
refused "--prompt-file missing" "cannot read the prompt file" -m "$model" --prompt-file "$tmp/none.txt" -W 64 -H 64 --steps 1 -o "$tmp/pb.png"
refused "--prompt and --prompt-file" "exclude each other" -m "$model" -p x --prompt-file "$tmp/prompts.txt" -o "$tmp/pb.png"
refused "--max-batch negative" "max-batch" -m "$model" -p x --max-batch -1 -o "$tmp/pb.png"
ls "$tmp"/pb*.png >/dev/null 2>&1 && bad "an image was written for a refused prompt file" || ok "no image for a refused prompt file"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
