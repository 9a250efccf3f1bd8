#!/usr/bin/env python3
"""make_tiny_sd2.py - the tiny SD 2.x fixture of tests/test_sd2_single.c (not part of the build).

Builds a random SD 2.x-architecture model with diffusers (OpenCLIP-style CLIPTextModel: gelu, pad "!";
UNet with linear projections; a 4-block VAE, 2 layers per block as the converter assumes; DDIM with v_prediction), rounds every weight to
fp16, and writes under OUT (tests/data/tiny-sd2 by default):
  model_index.json, scheduler/, text_encoder/, unet/, vae/   the diffusers configs (no weights)
  tiny-sd2.safetensors   the original single file (fp16), converted with diffusers'
                         scripts/convert_diffusers_to_original_stable_diffusion.py's v2 functions,
                         plus what real SD 2.x files carry and sdc must skip: one more resblock (the
                         24th layer that SD 2.x does not run), text_projection, logit_scale
  check.safetensors      diffusers.<part>.<name>: the folder's tensors (fp16) as diffusers saves them,
                         except the token embedding (the single file's, 790 KB, is the same bytes);
                         golden.*: diffusers' StableDiffusionPipeline (float32, these fp16-rounded
                         weights) from golden.latents_in: v_prediction and epsilon runs.

usage: python3 tools/make_tiny_sd2.py --convert-script PATH/convert_diffusers_to_original_stable_diffusion.py
       [--out tests/data/tiny-sd2]
Needs torch, diffusers, transformers, safetensors (made with torch 2.15, diffusers 0.42.1, transformers 5.25).
"""
import argparse
import importlib.util
import json
import os

import torch
from safetensors.torch import save_file

from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

PROMPT, NEGATIVE, STEPS, CFG, H, W = "a red fox in the snow", "blurry", 3, 5.0, 32, 32


def load_converter(path):
    spec = importlib.util.spec_from_file_location("convert_sd", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def half_round(model):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    return model


def build(seed=42):
    torch.manual_seed(seed)
    te = CLIPTextModel(CLIPTextConfig(hidden_size=4, intermediate_size=8, num_hidden_layers=2, num_attention_heads=2,
                                      hidden_act="gelu", vocab_size=49408, max_position_embeddings=77,
                                      bos_token_id=49406, eos_token_id=49407, pad_token_id=0, projection_dim=4))
    unet = UNet2DConditionModel(block_out_channels=(16, 16), layers_per_block=2,
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=4,
                                attention_head_dim=(2, 2), use_linear_projection=True, norm_num_groups=8,
                                sample_size=8)
    # the converter's VAE and UNet names assume SD's 4 VAE blocks and 2 layers per block
    vae = AutoencoderKL(block_out_channels=(16,) * 4, layers_per_block=2, latent_channels=4, norm_num_groups=8,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        sample_size=32)
    # random, not default-initialised, weights: every tensor matters for the outputs
    with torch.no_grad():
        for m in (te, unet, vae):
            for name, p in m.named_parameters():
                p.copy_(torch.randn_like(p) * (0.3 if "norm" in name else 0.2) + (1.0 if "norm" in name and name.endswith("weight") else 0.0))
    return half_round(te).eval(), half_round(unet).eval(), half_round(vae).eval()


def hf_text_state(te):
    sd = te.state_dict()
    return {(k if k.startswith("text_model.") else "text_model." + k): v for k, v in sd.items() if "position_ids" not in k}


def single_file(conv, te, unet, vae):
    u = {"model.diffusion_model." + k: v for k, v in conv.convert_unet_state_dict(unet.state_dict()).items()}
    v = {"first_stage_model." + k: v for k, v in conv.convert_vae_state_dict(vae.state_dict()).items()}
    t = {"transformer." + k: v for k, v in hf_text_state(te).items()}
    t = {"cond_stage_model.model." + k: v for k, v in conv.convert_text_enc_state_dict_v20(t).items()}
    # what a real SD 2.x file has beyond diffusers' encoder: the last resblock, the projection, logit_scale
    g = torch.Generator().manual_seed(7)
    n = sum(1 for k in t if k.endswith(".attn.in_proj_weight"))
    for k in [k for k in t if ".resblocks.0." in k]:
        t[k.replace(".resblocks.0.", ".resblocks.%d." % n)] = torch.randn(t[k].shape, generator=g)
    t["cond_stage_model.model.text_projection"] = torch.randn(4, 4, generator=g)
    t["cond_stage_model.model.logit_scale"] = torch.tensor(4.6)
    return {k: x.half().contiguous() for k, x in {**u, **v, **t}.items()}


def scheduler(prediction):
    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                         set_alpha_to_one=False, steps_offset=1, prediction_type=prediction)


def run(te, unet, vae, tok, prediction, latents):
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=tok, unet=unet, scheduler=scheduler(prediction),
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    out = pipe(PROMPT, negative_prompt=NEGATIVE, num_inference_steps=STEPS, guidance_scale=CFG, height=H, width=W,
               latents=latents.clone(), output_type="latent")
    lat = out.images
    img = vae.decode(lat / vae.config.scaling_factor).sample
    img = (img / 2 + 0.5).clamp(0, 1)[0].permute(1, 2, 0).contiguous()
    return lat[0].contiguous(), img


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--convert-script", required=True)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data", "tiny-sd2"))
    ap.add_argument("--tokenizer", default=os.path.join(os.path.dirname(__file__), "..", "data", "clip-tokenizer"))
    a = ap.parse_args()
    conv = load_converter(a.convert_script)
    te, unet, vae = build()
    tok = CLIPTokenizer(os.path.join(a.tokenizer, "vocab.json"), os.path.join(a.tokenizer, "merges.txt"),
                        pad_token="!", model_max_length=77)
    os.makedirs(a.out, exist_ok=True)
    # the configs: a diffusers folder without weights
    te.config.save_pretrained(os.path.join(a.out, "text_encoder"))
    unet.save_config(os.path.join(a.out, "unet"))
    vae.save_config(os.path.join(a.out, "vae"))
    scheduler("v_prediction").save_config(os.path.join(a.out, "scheduler"))
    with open(os.path.join(a.out, "model_index.json"), "w") as f:
        json.dump({"_class_name": "StableDiffusionPipeline", "scheduler": ["diffusers", "DDIMScheduler"],
                   "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
                   "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}, f, indent=2)
    save_file(single_file(conv, te, unet, vae), os.path.join(a.out, "tiny-sd2.safetensors"))

    check = {}
    for part, m in (("text_encoder", te), ("unet", unet), ("vae", vae)):
        sd = hf_text_state(m) if part == "text_encoder" else m.state_dict()
        for k, x in sd.items():
            if not k.endswith("token_embedding.weight"):
                check["diffusers.%s.%s" % (part, k)] = x.half().contiguous()
    latents = torch.randn(1, 4, H // 8, W // 8, generator=torch.Generator().manual_seed(42))
    check["golden.latents_in"] = latents.contiguous()
    with torch.no_grad():
        for pred, key in (("v_prediction", "v"), ("epsilon", "eps")):
            lat, img = run(te, unet, vae, tok, pred, latents)
            check["golden.%s.latents_final" % key] = lat
            check["golden.%s.image" % key] = img
    save_file(check, os.path.join(a.out, "check.safetensors"),
              metadata={"prompt": PROMPT, "negative_prompt": NEGATIVE, "steps": str(STEPS), "cfg": str(CFG),
                        "height": str(H), "width": str(W), "sampler": "ddim"})


if __name__ == "__main__":
    main()
