"""Trains sdc's demo model: a tiny SD 1.x-architecture pipeline that draws what it is told.

The dataset is drawn here: a red/green/blue/yellow/white/black circle, square or triangle on the left,
right, top, bottom or in the centre of a background of another of those colours, 32x32 pixels, with the
caption "a red circle on the left, blue background" (or "a red circle on a blue background" when the
shape is centred). Training (on the CPU with one thread unless --device says otherwise):
  1. the VAE (two blocks: one downsampling, 4 latent channels at 16x16) as an autoencoder;
  2. the UNet (epsilon prediction, DDPM noise schedule of SD 1.x) and the CLIP text encoder together,
     captions dropped 10% of the time so that classifier-free guidance works. The training noise has an
     offset (--offset-noise: a random constant per image and channel added to the Gaussian noise) and
     coarse components (--pyramid-noise: noise drawn at 1/2, 1/4, ... resolution). SD's schedule keeps
     sqrt(alphas_cumprod) ~ 0.07 of the latent at its last timestep, and the mean of 16x16 Gaussian noise
     has a std of ~0.06: without them the model reads the background colour from the noise instead of the
     caption (and, given plain noise at sampling time, draws the same background whatever it is told).
     Measured by eval.py (80 images): the first model (no offset) had the right background in 19; 716
     more steps with offset 0.1 gave 35, with offset 0.1 and pyramid 0.5 80.
  3. The named side: after 6083 CPU steps the model still ignored it (eval.py: 6 of 40). The left/right
     token states of the text encoder differed (by ~10% of their norm) but the UNet's x0 estimate for "on
     the left" and "on the right" differed by ~1%: it read the shape's place from the noise, not the
     caption, because the epsilon loss weights a wrong layout at the noisy end by the SNR (~0.005 at
     t = 999). Short CPU runs with --center-weight, --t-power or --high-t-weight got 5-8 of 40. What
     worked, on a GPU (H100, 4.5 minutes, 0.08 s/step): 3399 more steps with batch 256 on 40000 new
     images, --high-t-weight 20 (loss weighted by min(1 + 1/SNR, 20)) and --center-weight 0.5; eval.py
     80 of 80 on all three criteria. (An earlier call ran four such runs side by side on one GPU, so each
     made fewer steps: without the weighting 11 of 80 sides, weight 5 and centre weight 1 9 of 80, from
     scratch with weight 5 15 of 80, weight 20 and centre weight 0.5 80 of 80.) The committed model:
       train.py -o OUT --init data/demo-model --lr 5e-4 --high-t-weight 20 --center-weight 0.5 \
                --device cuda --batch 256 --images 40000 --seed 1 --minutes 4.5
The result is written as a diffusers folder with fp16 weights (what sdc reads with `sdc generate -m`).

  /path/to/venv/bin/python tools/train_demo/train.py -o data/demo-model [--device cuda]
Needs torch, diffusers and transformers (not needed to build or test sdc).
"""

import argparse
import json
import math
import os
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import (AutoencoderKL, DDPMScheduler, EulerDiscreteScheduler, StableDiffusionPipeline,
                       UNet2DConditionModel)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (40, 70, 220),
    "yellow": (240, 220, 40),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
SHAPES = ("circle", "square", "triangle")
# Centre of the shape in [0, 1] image coordinates (x right, y down).
POSITIONS = {"left": (0.25, 0.5), "right": (0.75, 0.5), "top": (0.5, 0.25), "bottom": (0.5, 0.75),
             "center": (0.5, 0.5)}
SIZE = 32
SUPER = 4  # drawn at 4x and averaged down: smooth edges


def caption(colour, shape, pos, bg):
    if pos == "center":
        return f"a {colour} {shape} on a {bg} background"
    return f"a {colour} {shape} on the {pos}, {bg} background"


def draw(colour, shape, pos, bg, rng):
    """One image, [3, SIZE, SIZE] float in [-1, 1]."""
    n = SIZE * SUPER
    cx, cy = POSITIONS[pos]
    cx += rng.uniform(-0.05, 0.05)
    cy += rng.uniform(-0.05, 0.05)
    r = rng.uniform(0.14, 0.19)
    g = (np.arange(n) + 0.5) / n
    x, y = np.meshgrid(g, g)
    if shape == "circle":
        m = (x - cx) ** 2 + (y - cy) ** 2 <= r * r
    elif shape == "square":
        s = r * 0.9
        m = (np.abs(x - cx) <= s) & (np.abs(y - cy) <= s)
    else:  # upward triangle inscribed in the circle of radius r*1.15
        R = r * 1.15
        top, base = cy - R, cy + R * 0.5
        half = (y - top) / (base - top) * R * math.sqrt(3) / 2
        m = (y >= top) & (y <= base) & (np.abs(x - cx) <= half)
    img = np.empty((3, n, n), np.float32)
    for c in range(3):
        img[c] = np.where(m, COLOURS[colour][c], COLOURS[bg][c])
    img = img.reshape(3, SIZE, SUPER, SIZE, SUPER).mean(axis=(2, 4))
    return img / 127.5 - 1.0


def sample(rng, center_weight=1.0):
    names = list(COLOURS)
    colour = names[rng.integers(len(names))]
    bg = colour
    while bg == colour:
        bg = names[rng.integers(len(names))]
    shape = SHAPES[rng.integers(len(SHAPES))]
    if center_weight == 1.0:
        pos = list(POSITIONS)[rng.integers(len(POSITIONS))]
    else:  # "center" drawn center_weight times as often as each of the other positions
        w = np.array([center_weight if p == "center" else 1.0 for p in POSITIONS])
        pos = list(POSITIONS)[rng.choice(len(POSITIONS), p=w / w.sum())]
    return draw(colour, shape, pos, bg, rng), caption(colour, shape, pos, bg)


def dataset(n, rng, center_weight=1.0):
    imgs, caps = zip(*(sample(rng, center_weight) for _ in range(n)))
    return torch.from_numpy(np.stack(imgs)), list(caps)


def make_models(tokenizer_dir):
    tok = CLIPTokenizer(os.path.join(tokenizer_dir, "vocab.json"), os.path.join(tokenizer_dir, "merges.txt"))
    te = CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, max_position_embeddings=77, projection_dim=32,
                                      hidden_act="quick_gelu", bos_token_id=49406, eos_token_id=49407,
                                      pad_token_id=49407))
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(16, 32), layers_per_block=1,
                        latent_channels=4, norm_num_groups=8, sample_size=SIZE, mid_block_add_attention=False)
    unet = UNet2DConditionModel(
        sample_size=SIZE // 2, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=16)
    return tok, te, vae, unet


def slim_tokenizer(out, tokenizer_dir):
    """The tokenizer as vocab.json + merges.txt (sdc's own copies, 1.5 MB) instead of tokenizer.json (3.6 MB)."""
    tdir = os.path.join(out, "tokenizer")
    if os.path.exists(os.path.join(tdir, "tokenizer.json")):
        os.remove(os.path.join(tdir, "tokenizer.json"))
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(os.path.join(tokenizer_dir, name), os.path.join(tdir, name))
    cfg_path = os.path.join(tdir, "tokenizer_config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["model_max_length"] = 77
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2)


def ids(tok, caps):
    return tok(caps, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids


def train_vae(vae, imgs, steps, log, batch=32):
    opt = torch.optim.AdamW(vae.parameters(), lr=2e-3, weight_decay=0.0)
    g = torch.Generator(imgs.device).manual_seed(1)
    for step in range(steps):
        x = imgs[torch.randint(len(imgs), (batch,), generator=g, device=imgs.device)]
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample(generator=g)).sample
        loss = F.mse_loss(rec, x) + 1e-6 * post.kl().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            log(f"vae step {step} loss {loss.item():.5f}")
    return loss.item()


def training_noise(shape, offset, pyramid, g):
    """Gaussian noise of shape [B, C, H, W] plus the offset and pyramid components (see the docstring)."""
    dev = g.device
    noise = torch.randn(shape, generator=g, device=dev)
    if pyramid > 0:
        b, c, h, w = shape
        k = 1
        while min(h, w) >> k >= 1:
            coarse = torch.randn((b, c, h >> k, w >> k), generator=g, device=dev)
            noise = noise + pyramid ** k * F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
            k += 1
        noise = noise / noise.std(dim=(1, 2, 3), keepdim=True)
    if offset > 0:
        noise = noise + offset * torch.randn((shape[0], shape[1], 1, 1), generator=g, device=dev)
    return noise


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-o", "--out", default="data/demo-model")
    ap.add_argument("--tokenizer", default=os.path.join(os.path.dirname(__file__), "../../data/clip-tokenizer"))
    ap.add_argument("--vae-steps", type=int, default=600)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--minutes", type=float, default=0, help="if set, fewer steps so that the UNet trains this long")
    ap.add_argument("--batch", type=int, default=24)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--images", type=int, default=8000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu",
                    help="where to train (\"cuda\": the same steps, larger batches are cheap there; the random "
                         "draws differ from the CPU's)")
    ap.add_argument("--seed", type=int, default=0,
                    help="seeds the drawn images and the batches (a run that continues another with --init can "
                         "use a new one to see new images)")
    ap.add_argument("--offset-noise", type=float, default=0.1,
                    help="std of the random constant per image and channel added to the training noise")
    ap.add_argument("--pyramid-noise", type=float, default=0.5,
                    help="if > 0, also add noise drawn at 1/2, 1/4, ... resolution, weighted by this to the power 1, 2, ...")
    ap.add_argument("--center-weight", type=float, default=1.0,
                    help="how often a centred shape is drawn relative to each of the four sides (1: all five "
                         "positions equally often; below 1 oversamples the sides)")
    ap.add_argument("--t-power", type=float, default=1.0,
                    help="timesteps drawn as 1000 * (1 - u^P), u uniform: 1 is uniform, above 1 trains the noisy "
                         "end (where the shape's place is decided) more often")
    ap.add_argument("--high-t-weight", type=float, default=1.0,
                    help="if > 1, weight each image's loss by min(1 + 1/SNR(t), this) (then normalised): the noisy "
                         "timesteps, where the shape's place comes from the caption alone, count more")
    ap.add_argument("--init", help="continue from this output folder (its VAE is kept: --vae-steps is ignored)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    t0 = time.time()
    log_lines = []

    def log(s):
        s = f"[{time.time() - t0:7.1f}s] {s}"
        print(s, flush=True)
        log_lines.append(s)

    tok, te, vae, unet = make_models(args.tokenizer)
    init_training = None
    if args.init:
        if os.path.exists(os.path.join(args.init, "training.json")):
            with open(os.path.join(args.init, "training.json")) as f:
                init_training = json.load(f)
        te = CLIPTextModel.from_pretrained(args.init, subfolder="text_encoder", variant="fp16").float()
        vae = AutoencoderKL.from_pretrained(args.init, subfolder="vae", variant="fp16").float()
        unet = UNet2DConditionModel.from_pretrained(args.init, subfolder="unet", variant="fp16").float()
        args.vae_steps = 0
    for name, m in (("text_encoder", te), ("vae", vae), ("unet", unet)):
        log(f"{name}: {sum(p.numel() for p in m.parameters()) / 1e6:.3f} M params")
    dev = torch.device(args.device)
    te, vae, unet = te.to(dev), vae.to(dev), unet.to(dev)
    imgs, caps = dataset(args.images, rng, args.center_weight)
    imgs = imgs.to(dev)
    log(f"drew {len(imgs)} images")

    vae_loss = train_vae(vae, imgs, args.vae_steps, log, max(32, args.batch)) if args.vae_steps else None
    vae.requires_grad_(False).eval()
    with torch.no_grad():
        lat = torch.cat([vae.encode(imgs[i:i + 512]).latent_dist.mean for i in range(0, len(imgs), 512)])
        rec = vae.decode(lat[:512]).sample
        log(f"vae reconstruction mse {F.mse_loss(rec, imgs[:512]).item():.5f}")
    scale = float(1.0 / lat.std()) if not args.init else vae.config.scaling_factor
    vae.register_to_config(scaling_factor=scale)
    lat = lat * scale
    log(f"latents std scaled by {scale:.4f}")

    noise_sched = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                                beta_schedule="scaled_linear", prediction_type="epsilon")
    alphas_cumprod = noise_sched.alphas_cumprod.to(dev)
    tok_ids = ids(tok, caps).to(dev)
    empty = ids(tok, [""])[0].to(dev)
    params = list(unet.parameters()) + list(te.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-2)
    total = [args.steps]
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 200) * 0.5 * (1 + math.cos(math.pi * min(s, total[0]) / total[0])))
    g = torch.Generator(dev).manual_seed(2 + args.seed)
    ema = None
    step, t_unet = 0, time.time()
    while step < total[0]:
        if step == 50 and args.minutes > 0:
            rate = (time.time() - t_unet) / 50
            total[0] = min(args.steps, int(args.minutes * 60 / rate))
            log(f"{rate:.3f} s/step: training {total[0]} steps")
        idx = torch.randint(len(lat), (args.batch,), generator=g, device=dev)
        x0 = lat[idx]
        tid = tok_ids[idx].clone()
        drop = torch.rand(args.batch, generator=g, device=dev) < 0.1
        tid[drop] = empty
        noise = training_noise(x0.shape, args.offset_noise, args.pyramid_noise, g)
        if args.t_power == 1.0:
            t = torch.randint(0, 1000, (args.batch,), generator=g, device=dev)
        else:  # biased towards the noisy end, where the layout is decided
            u = torch.rand(args.batch, generator=g, device=dev)
            t = (1000 * (1 - u ** args.t_power)).long().clamp(0, 999)
        xt = noise_sched.add_noise(x0, noise, t)
        states = te(tid).last_hidden_state
        pred = unet(xt, t, encoder_hidden_states=states).sample
        if args.high_t_weight > 1:
            # epsilon loss = SNR * x0 loss: at the noisy end, where only the caption can say where the shape
            # goes, a wrong layout costs almost nothing. Weight 1 + 1/SNR (v-prediction's), capped.
            snr = alphas_cumprod[t] / (1 - alphas_cumprod[t])
            w = torch.clamp(1 + 1 / snr, max=args.high_t_weight)
            loss = ((pred - noise) ** 2).mean(dim=(1, 2, 3)).mul(w).mean() / w.mean()
        else:
            loss = F.mse_loss(pred, noise)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        ema = loss.item() if ema is None else 0.99 * ema + 0.01 * loss.item()
        step += 1
        if step % 100 == 0 or step == total[0]:
            log(f"unet step {step} loss {loss.item():.4f} ema {ema:.4f}")

    euler = EulerDiscreteScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                                   beta_schedule="scaled_linear", prediction_type="epsilon",
                                   timestep_spacing="leading", steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=tok, unet=unet, scheduler=euler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.to("cpu").to(torch.float16)
    pipe.save_pretrained(args.out, variant="fp16", safe_serialization=True)
    slim_tokenizer(args.out, args.tokenizer)
    with open(os.path.join(args.out, "training.json"), "w") as f:
        json.dump({"vae_steps": args.vae_steps, "vae_loss": vae_loss, "steps": total[0], "batch": args.batch,
                   "lr": args.lr, "offset_noise": args.offset_noise, "pyramid_noise": args.pyramid_noise,
                   "center_weight": args.center_weight, "t_power": args.t_power,
                   "high_t_weight": args.high_t_weight, "seed": args.seed, "threads": args.threads,
                   "device": args.device,
                   "final_loss_ema": ema, "seconds": time.time() - t0,
                   "scaling_factor": scale, "init": args.init,
                   "command": " ".join(["tools/train_demo/train.py"] + sys.argv[1:]),
                   "init_training": init_training}, f, indent=2)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
