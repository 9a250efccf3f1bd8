"""What one FLUX.1-schnell transformer step costs in the best library kernels of this card, without any
engine around them: every GEMM of the 19 double and 38 single blocks (torch.matmul on bf16, i.e. cuBLASLt)
and every joint attention (torch's scaled_dot_product_attention, flash backend), each timed alone with
CUDA events on random data, summed. Elementwise work (modulation, norms, RoPE, GELU) is left out, so the
sum is a lower bound for a transformer step built from these libraries; 4 steps of it bound a 4-step
image's denoise from below.

  python3 bench/flux_roofline.py --sizes 512,1024 [--txt 256]
"""
import argparse

import torch
import torch.nn.functional as F

HIDDEN, HEADS, HEAD_DIM, MLP, N_DOUBLE, N_SINGLE = 3072, 24, 128, 12288, 19, 38


def timed(fn, reps=20):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(reps):
        fn()
    b.record()
    torch.cuda.synchronize()
    return a.elapsed_time(b) / reps / 1e3  # seconds


def gemm(m, k, n):
    x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(k, n, device="cuda", dtype=torch.bfloat16)
    return timed(lambda: x @ w), 2.0 * m * k * n


def attention(n_tok):
    q, k, v = (torch.randn(1, HEADS, n_tok, HEAD_DIM, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.FLASH_ATTENTION):
        t = timed(lambda: F.scaled_dot_product_attention(q, k, v))
    return t, 4.0 * HEADS * n_tok * n_tok * HEAD_DIM


def step(size, txt):
    img = (size // 16) ** 2
    n = img + txt
    rows = []
    for name, m, k, nn in (("double img qkv", img, HIDDEN, 3 * HIDDEN), ("double img proj", img, HIDDEN, HIDDEN),
                           ("double img mlp up", img, HIDDEN, MLP), ("double img mlp down", img, MLP, HIDDEN),
                           ("double txt qkv", txt, HIDDEN, 3 * HIDDEN), ("double txt proj", txt, HIDDEN, HIDDEN),
                           ("double txt mlp up", txt, HIDDEN, MLP), ("double txt mlp down", txt, MLP, HIDDEN)):
        t, f = gemm(m, k, nn)
        rows.append((name, N_DOUBLE, t, f))
    t, f = attention(n)
    rows.append(("double attention", N_DOUBLE, t, f))
    for name, m, k, nn in (("single linear1", n, HIDDEN, 3 * HIDDEN + MLP), ("single linear2", n, HIDDEN + MLP, HIDDEN)):
        t, f = gemm(m, k, nn)
        rows.append((name, N_SINGLE, t, f))
    t, f = attention(n)
    rows.append(("single attention", N_SINGLE, t, f))
    total_t = sum(r[1] * r[2] for r in rows)
    total_f = sum(r[1] * r[3] for r in rows)
    print(f"# {size}x{size}: {img} image + {txt} text tokens, {torch.cuda.get_device_name()}")
    print(f"{'kernel':22s} {'count':>5s} {'ms each':>9s} {'TFLOP/s':>8s} {'ms total':>9s}")
    for name, cnt, t, f in rows:
        print(f"{name:22s} {cnt:5d} {t * 1e3:9.3f} {f / t / 1e12:8.1f} {cnt * t * 1e3:9.2f}")
    print(f"{'one step':22s} {'':5s} {'':9s} {total_f / total_t / 1e12:8.1f} {total_t * 1e3:9.2f}")
    print(f"4 steps: {4 * total_t:.3f} s of GEMM + attention kernels alone ({4 * total_f / 1e12:.1f} TFLOP)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="512,1024")
    ap.add_argument("--txt", type=int, default=256)
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    for s in args.sizes.split(","):
        step(int(s), args.txt)


if __name__ == "__main__":
    main()
