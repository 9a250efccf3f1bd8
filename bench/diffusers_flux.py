"""diffusers_flux.py - a Flux-schnell-shaped random model, and the same Flux job in Hugging Face diffusers
for the side-by-side benchmark.

    python3 bench/diffusers_flux.py make OUT_DIR --from TINY_DIR [--tiny] [--blocks D,S,T]
    python3 bench/diffusers_flux.py run MODEL_DIR [--sizes 512,1024] [--steps 4] [--repeat N]

make: builds FLUX.1-schnell's four models from their published shapes (transformer: 19 double + 38
single blocks, hidden 3072; T5-XXL encoder: 24 layers, d_model 4096; CLIP ViT-L/14 text; the 16-channel
VAE) with random weights directly on the GPU in bf16, and saves them with save_pretrained (sharded, as
the hub stores them) beside the tokenizers, scheduler and model_index.json of TINY_DIR (what
`sdc mkmodel --arch tiny-flux-schnell` writes). --tiny keeps the tiny shapes (a CPU check of the script).
--blocks D,S,T makes D double and S single transformer blocks and T T5 layers at the real widths: a small
model whose blocks run the real kernels (for profiles; step times scale with the block counts).
sdc and diffusers then read the same files.

run: loads MODEL_DIR as FluxPipeline in bf16, resident on the GPU, and per size runs one 1-image job
N times (default 2): the first also times loading (from_pretrained and .to("cuda")) for the first size,
the others are the steady state. Prints per run the time, torch's peak allocated bytes and the driver's
peak used bytes (cudaMemGetInfo sampled every 5 ms; runs 3 and later sample none, "-", as in
diffusers_sdxl.py). The FlowMatchEuler scheduler of the folder, guidance 0, 256 T5
tokens (schnell's), the prompt sdc_bench uses."""
import argparse, json, os, shutil, time

import torch

from driver_peak import DriverPeak, column, sampler_for


def make(a):
    from diffusers import AutoencoderKL, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    cfg = {}
    for part in ("transformer", "vae", "text_encoder", "text_encoder_2"):
        cfg[part] = json.load(open(os.path.join(a.tiny_dir, part, "config.json")))
    if not a.tiny:   # FLUX.1-schnell's published shapes
        cfg["transformer"].update(num_layers=19, num_single_layers=38, attention_head_dim=128, num_attention_heads=24,
                                  joint_attention_dim=4096, pooled_projection_dim=768, in_channels=64,
                                  axes_dims_rope=[16, 56, 56], guidance_embeds=False)
        cfg["vae"].update(block_out_channels=[128, 256, 512, 512], layers_per_block=2, latent_channels=16,
                          norm_num_groups=32, sample_size=1024)
        cfg["text_encoder"].update(hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                                   num_hidden_layers=12, projection_dim=768, max_position_embeddings=77)
        cfg["text_encoder_2"].update(d_model=4096, d_ff=10240, d_kv=64, num_heads=64, num_layers=24,
                                     vocab_size=32128, relative_attention_num_buckets=32,
                                     relative_attention_max_distance=128, feed_forward_proj="gated-gelu")
        if a.blocks:
            d, s, t = (int(v) for v in a.blocks.split(","))
            cfg["transformer"].update(num_layers=d, num_single_layers=s)
            cfg["text_encoder_2"].update(num_layers=t)
    os.makedirs(a.out, exist_ok=True)
    for f in ("model_index.json",):
        shutil.copy(os.path.join(a.tiny_dir, f), a.out)
    for d in ("tokenizer", "tokenizer_2", "scheduler"):
        shutil.copytree(os.path.join(a.tiny_dir, d), os.path.join(a.out, d), dirs_exist_ok=True)
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)   # parameters are made in bf16: no f32 copy of 12 B weights
    strip = lambda c: {k: v for k, v in c.items() if not k.startswith("_")}
    with torch.device(dev):
        t0 = time.perf_counter()
        m = FluxTransformer2DModel.from_config(strip(cfg["transformer"])).to(torch.bfloat16)
        m.save_pretrained(os.path.join(a.out, "transformer"))
        del m
        m = AutoencoderKL.from_config(strip(cfg["vae"])).to(torch.bfloat16)
        m.save_pretrained(os.path.join(a.out, "vae"))
        del m
        c = {k: v for k, v in cfg["text_encoder"].items() if k not in ("architectures", "transformers_version")}
        m = CLIPTextModel(CLIPTextConfig(**c)).to(torch.bfloat16)
        m.save_pretrained(os.path.join(a.out, "text_encoder"))
        del m
        c = {k: v for k, v in cfg["text_encoder_2"].items() if k not in ("architectures", "transformers_version")}
        m = T5EncoderModel(T5Config(**c)).to(torch.bfloat16)
        m.save_pretrained(os.path.join(a.out, "text_encoder_2"))
        del m
    print(f"made {a.out} in {time.perf_counter() - t0:.1f} s", flush=True)


def run(a):
    from diffusers import FluxPipeline

    torch.cuda.init()
    base = torch.cuda.mem_get_info()[1] - torch.cuda.mem_get_info()[0]
    prompt = "a photo of an astronaut riding a horse on mars"
    print(f"{'size':>5} {'mode':<10} {'rep':>3} {'s/image':>9} {'alloc MiB':>10} {'drv MiB':>9}", flush=True)
    drv = DriverPeak()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    pipe = FluxPipeline.from_pretrained(a.model, torch_dtype=torch.bfloat16).to("cuda")
    pipe.set_progress_bar_config(disable=True)
    for size in [int(s) for s in a.sizes.split(",")]:
        for rep in range(1, max(a.repeat, 1) + 1):
            if rep >= 2 or t0 is None:
                drv = sampler_for(rep)
                torch.cuda.reset_peak_memory_stats()
                t0 = time.perf_counter()
            g = torch.Generator("cpu").manual_seed(42)
            pipe(prompt, height=size, width=size, num_inference_steps=a.steps, guidance_scale=0.0,
                 max_sequence_length=256, generator=g)
            torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            t0 = None
            drv_col = column(drv, base)
            alloc = torch.cuda.max_memory_allocated()
            print(f"{size:>5} {'resident':<10} {rep:>3} {dt:>9.3f} {alloc / 2**20:>10.1f} {drv_col}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("out")
    m.add_argument("--from", dest="tiny_dir", required=True)
    m.add_argument("--tiny", action="store_true")
    m.add_argument("--blocks", default="")
    r = sub.add_parser("run")
    r.add_argument("model")
    r.add_argument("--sizes", default="512,1024")
    r.add_argument("--steps", type=int, default=4)
    r.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    make(a) if a.cmd == "make" else run(a)


if __name__ == "__main__":
    main()
