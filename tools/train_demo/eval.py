"""Measures what a demo model draws, the way tests/test_demo.c does, with diffusers instead of sdc.

For the 20 captions of tests/test_demo.c x N seeds, generates a 32x32 image (euler, 20 steps, cfg 5) and
labels every pixel with the nearest of the six training colours. Verdicts, as in the C test:
  background  the most frequent label is the caption's background colour;
  shape       the most frequent other label is the shape's colour and covers >= 20 pixels;
  side        the centroid of the shape-coloured pixels is < 0.45 (left/top) or > 0.55 (right/bottom).
The seeds are torch's, not sdc's, so the counts are statistically, not pixel for pixel, those of the C test.

  /path/to/venv/bin/python tools/train_demo/eval.py data/demo-model [--seeds 2] [-v]
"""

import argparse
import time

import numpy as np
import torch
from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

from train import COLOURS as PALETTE  # the training palette (this script's folder is on sys.path)

NAMES = list(PALETTE)
# tests/test_demo.c cases: (shape colour, shape, side, background)
CASES = [
    ("red", "circle", "left", "blue"), ("blue", "square", "right", "yellow"), ("green", "triangle", "top", "white"),
    ("yellow", "circle", "bottom", "black"), ("white", "square", "left", "red"),
    ("black", "triangle", "right", "green"), ("red", "square", "top", "white"), ("blue", "circle", "bottom", "green"),
    ("green", "circle", "left", "black"), ("yellow", "triangle", "right", "blue"), ("white", "circle", "top", "blue"),
    ("black", "square", "bottom", "yellow"), ("red", "triangle", "left", "yellow"),
    ("blue", "triangle", "top", "white"), ("green", "square", "right", "red"), ("yellow", "square", "left", "green"),
    ("white", "triangle", "bottom", "red"), ("black", "circle", "top", "white"), ("red", "circle", "right", "green"),
    ("blue", "square", "bottom", "white"),
]
MIN_SHAPE_PX, SIDE_LO, SIDE_HI = 20, 0.45, 0.55


def caption(colour, shape, side, bg):
    return f"a {colour} {shape} on the {side}, {bg} background"


def labels(img):
    """img: [H, W, 3] uint8 -> [H, W] index of the nearest palette colour."""
    pal = np.array([PALETTE[n] for n in NAMES], np.int64)
    d = ((img[:, :, None, :].astype(np.int64) - pal[None, None]) ** 2).sum(-1)
    return d.argmin(-1)


def judge(img, case):
    colour, _, side, bg = case
    lab = labels(img)
    h, w = lab.shape
    count = np.bincount(lab.ravel(), minlength=len(NAMES))
    got_bg = int(count.argmax())
    rest = count.copy()
    rest[got_bg] = -1
    got_shape = int(rest.argmax())
    px = int(count[got_shape])
    ys, xs = np.nonzero(lab == got_shape)
    horiz = side in ("left", "right")
    pos = float(((xs + 0.5) / w if horiz else (ys + 0.5) / h).mean()) if px else float("nan")
    ok_bg = NAMES[got_bg] == bg
    ok_shape = NAMES[got_shape] == colour and px >= MIN_SHAPE_PX
    ok_side = pos < SIDE_LO if side in ("left", "top") else pos > SIDE_HI
    return ok_bg, ok_shape, ok_side, f"bg {NAMES[got_bg]} ({count[got_bg]} px), shape {NAMES[got_shape]} ({px} px), " \
                                     f"{'x' if horiz else 'y'} {pos:.2f}"


def load(path):
    pipe = StableDiffusionPipeline.from_pretrained(path, variant="fp16", torch_dtype=torch.float16,
                                                   safety_checker=None, requires_safety_checker=False)
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.to(torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate(pipe, prompts, seeds, steps=20, cfg=5.0):
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    out = pipe(prompts, height=32, width=32, num_inference_steps=steps, guidance_scale=cfg, generator=gens,
               output_type="np").images
    return [np.clip(np.rint(im * 255), 0, 255).astype(np.uint8) for im in out]


def evaluate(pipe, n_seeds=2, verbose=False):
    prompts, seeds, cases = [], [], []
    for c in CASES:
        for s in range(n_seeds):
            prompts.append(caption(*c))
            seeds.append(s + 1)
            cases.append(c)
    imgs = generate(pipe, prompts, seeds)
    tot = np.zeros(4, int)
    for p, s, c, im in zip(prompts, seeds, cases, imgs):
        ok_bg, ok_shape, ok_side, msg = judge(im, c)
        tot += (ok_shape, ok_bg, ok_side, ok_bg and ok_shape and ok_side)
        if verbose:
            print(f"  {'match' if ok_bg and ok_shape and ok_side else 'miss '} {p} (seed {s}): {msg}")
    return dict(n=len(imgs), shape=int(tot[0]), background=int(tot[1]), side=int(tot[2]), all=int(tot[3]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    r = evaluate(load(args.model), args.seeds, args.verbose)
    print(f"{args.model}: shape {r['shape']}/{r['n']}, background {r['background']}/{r['n']}, "
          f"side {r['side']}/{r['n']}, all three {r['all']}/{r['n']} ({time.time() - t0:.1f} s)")


if __name__ == "__main__":
    main()
