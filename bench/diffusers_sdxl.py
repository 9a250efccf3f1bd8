"""diffusers_sdxl.py - the same SDXL job in Hugging Face diffusers, for the side-by-side benchmark.

    python3 bench/diffusers_sdxl.py MODEL_DIR [--size 1024] [--steps 20] [--cfg 7] [--offload] [--repeat N]

Loads the diffusers folder MODEL_DIR (the fp16 variant sdc's `mkmodel --arch sdxl --fp16` writes) in
float16, then runs one 1-image job N times (default 2): the first run's time includes loading
(from_pretrained and moving to the GPU, or enable_model_cpu_offload), the others are the steady state.
Prints one row per run with the time, torch's peak allocated bytes and the driver's peak used bytes
(cudaMemGetInfo sampled by a thread every 5 ms). Runs 3 and later sample no driver peak ("-"): the
sampling thread takes the GIL every 5 ms, which slows a host-bound pipeline, so those rows are the
steady-state times to compare. Euler (the folder's EulerDiscreteScheduler), the same prompt as sdc_bench."""
import argparse, time

import torch

from driver_peak import DriverPeak, column, sampler_for
from diffusers import StableDiffusionXLPipeline


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--cfg", type=float, default=7.0)
    ap.add_argument("--offload", action="store_true")
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    mode = "model_cpu_offload" if a.offload else "resident"
    torch.cuda.init()
    base = torch.cuda.mem_get_info()[1] - torch.cuda.mem_get_info()[0]
    prompt = "a photo of an astronaut riding a horse on mars"
    print(f"{'size':>5} {'mode':<18} {'rep':>3} {'s/image':>9} {'alloc MiB':>10} {'drv MiB':>9}", flush=True)
    drv = DriverPeak()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    pipe = StableDiffusionXLPipeline.from_pretrained(a.model, torch_dtype=torch.float16, variant="fp16")
    if a.offload:
        pipe.enable_model_cpu_offload()
    else:
        pipe.to("cuda")
    pipe.set_progress_bar_config(disable=True)
    for rep in range(1, max(a.repeat, 1) + 1):
        if rep >= 2:
            drv = sampler_for(rep)
            torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
        g = torch.Generator("cpu").manual_seed(42)
        pipe(prompt, height=a.size, width=a.size, num_inference_steps=a.steps, guidance_scale=a.cfg, generator=g)
        torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        drv_col = column(drv, base)
        alloc = torch.cuda.max_memory_allocated()
        print(f"{a.size:>5} {mode:<18} {rep:>3} {dt:>9.3f} {alloc / 2**20:>10.1f} {drv_col}", flush=True)


if __name__ == "__main__":
    main()
