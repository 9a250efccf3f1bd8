"""flux_pipeline_reference.py - the Flux pipeline reference sdc's tests use (tests/data/tiny-flux-pipe/).

The bundle's tiny-flux-golden/pipeline.safetensors was made with the T5 encoder in training mode
(dropout 0.1 active: its t5.last_hidden_state has ~10% exact zeros), so no correct implementation
matches it. This script reruns the bundle's FluxPipeline cases with diffusers as users load it
(from_pretrained: every model in eval mode), in float64, from the bundle's own latents_in, and writes
pipe.<case>.latents_final / pipe.<case>.image (float32) for every case. The GGUF cases (schnell_4_q8_0,
schnell_4_q4_0) run the schnell folder with its transformer replaced by the bundle's city96-style GGUF
(BFL names), every tensor dequantized with gguf.quants.dequantize (the gguf package) and converted to
diffusers names with diffusers' own BFL converter.

    python3 tools/flux_pipeline_reference.py ../shared/reference tests/data/tiny-flux-pipe/pipeline.safetensors

Made with diffusers 0.42.1, transformers 5.25, torch 2.15, gguf 0.19 (CPU). Not needed to build or test sdc."""
import json
import sys

import gguf
import torch
from diffusers import FluxPipeline
import diffusers.loaders.single_file_utils as sfu
import inspect
from safetensors.torch import load_file, save_file

# diffusers' BFL converter with its FLUX.1 width (inner_dim = 3072) taken from the model instead
_src = inspect.getsource(sfu.convert_flux_transformer_checkpoint_to_diffusers)
assert "inner_dim = 3072" in _src
_ns = dict(vars(sfu))
exec(_src.replace("inner_dim = 3072", "inner_dim = kwargs['inner_dim']"), _ns)
convert_bfl = _ns["convert_flux_transformer_checkpoint_to_diffusers"]


def gguf_transformer(pipe, path):
    """pipe's transformer with the weights of the GGUF file at path, dequantized (float64)."""
    bfl = {}
    for t in gguf.GGUFReader(path).tensors:
        shape = [int(d) for d in reversed(t.shape)]  # GGUF lists dims innermost first
        w = gguf.quants.dequantize(t.data, t.tensor_type).reshape(shape)
        bfl[t.name] = torch.from_numpy(w.copy()).to(torch.float64)
    cfg = pipe.transformer.config
    sd = convert_bfl(bfl, inner_dim=cfg.num_attention_heads * cfg.attention_head_dim)
    missing, unexpected = pipe.transformer.load_state_dict(sd, strict=True)
    assert not missing and not unexpected
    return pipe


ref, out = sys.argv[1], sys.argv[2]
golden = load_file(f"{ref}/tiny-flux-golden/pipeline.safetensors")
readme = json.load(open(f"{ref}/tiny-flux-golden/README.json"))
tensors = {}
for c in readme["pipelines"]:
    gg = c["model"].endswith(".gguf")
    pipe = FluxPipeline.from_pretrained(f"{ref}/{'tiny-flux-schnell' if gg else c['model']}", torch_dtype=torch.float64)
    if gg:
        gguf_transformer(pipe, f"{ref}/{c['model']}")
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
