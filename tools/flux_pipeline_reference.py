"""flux_pipeline_reference.py - the Flux pipeline reference sdc's tests use (tests/data/tiny-flux-pipe/).

The bundle's tiny-flux-golden/pipeline.safetensors was made with the T5 encoder in training mode
(dropout 0.1 active: its t5.last_hidden_state has ~10% exact zeros), so no correct implementation
matches it. This script reruns the bundle's FluxPipeline cases with diffusers as users load it
(from_pretrained: every model in eval mode), in float64, from the bundle's own latents_in, and writes
pipe.<case>.latents_final / pipe.<case>.image (float32) for the three non-GGUF cases.

    python3 tools/flux_pipeline_reference.py ../shared/reference tests/data/tiny-flux-pipe/pipeline.safetensors

Made with diffusers 0.42.1, transformers 5.25, torch 2.15 (CPU). Not needed to build or test sdc."""
import json
import sys

import torch
from diffusers import FluxPipeline
from safetensors.torch import load_file, save_file

ref, out = sys.argv[1], sys.argv[2]
golden = load_file(f"{ref}/tiny-flux-golden/pipeline.safetensors")
readme = json.load(open(f"{ref}/tiny-flux-golden/README.json"))
tensors = {}
for c in readme["pipelines"]:
    if c["model"].endswith(".gguf"):
        continue
    pipe = FluxPipeline.from_pretrained(f"{ref}/{c['model']}", torch_dtype=torch.float64)
    assert not pipe.text_encoder_2.training
    h, w = c["height"], c["width"]
    lat = golden[f"pipe.{c['case']}.latents_in"].to(torch.float64)
    packed = pipe._pack_latents(lat, 1, lat.shape[1], lat.shape[2], lat.shape[3])
    kw = dict(height=h, width=w, num_inference_steps=c["steps"], guidance_scale=c["guidance_scale"],
              latents=packed, max_sequence_length=c["max_sequence_length"])
    final = pipe(c["prompt"], output_type="latent", **kw).images
    final = pipe._unpack_latents(final, h, w, pipe.vae_scale_factor)
    image = pipe(c["prompt"], output_type="np", **kw).images  # [1, H, W, 3] in [0, 1]
    tensors[f"pipe.{c['case']}.latents_final"] = final.float().contiguous()
    tensors[f"pipe.{c['case']}.image"] = torch.from_numpy(image).float().contiguous()
    print(c["case"], "rel vs the bundle's", float((final.float() - golden[f"pipe.{c['case']}.latents_final"]).norm()
                                                   / golden[f"pipe.{c['case']}.latents_final"].norm()))
save_file(tensors, out, metadata={"made_by": "tools/flux_pipeline_reference.py", "diffusers": "0.42.1"})
