#!/usr/bin/env python3
"""Checks a GGUF written by `sdc convert` with ggml's own Python package: gguf-py reads it, and every
tensor equals gguf-py's own conversion of the source safetensors tensor (same name): for Q4_0, Q4_1,
Q5_0, Q5_1, Q8_0, F32, F16 the bytes are compared (bound: 0 mismatching bytes); for the K-quants (sdc's
own scale search) gguf.quants.dequantize of sdc's bytes is compared with the source (relative error
printed, bound --k-bound).

  /tmp/mkflux-venv/bin/python tools/check_convert.py SOURCE.safetensors OUT.gguf
Exits 1 on any mismatch.
"""
import argparse
import json
import struct
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader, quants

EXACT = {T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.F32, T.F16}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = np.frombuffer(data[b:e], dtype=np.uint8)
        dt = info["dtype"]
        if dt == "F32":
            arr = raw.view(np.float32)
        elif dt == "F16":
            arr = raw.view(np.float16).astype(np.float32)
        elif dt == "BF16":
            arr = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            continue
        out[name] = arr.reshape(info["shape"])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("source")
    ap.add_argument("gguf")
    ap.add_argument("--k-bound", type=float, default=0.35)
    a = ap.parse_args()
    src = read_safetensors(a.source)
    reader = GGUFReader(a.gguf)
    failed = 0
    for t in reader.tensors:
        if t.name not in src:
            print(f"FAIL {t.name}: not in the source")
            failed += 1
            continue
        # quantized along the GGUF row (ne[0]): a kernel flattened by --quantize-convs is [Co, Ci*KH*KW]
        x = src[t.name].astype(np.float32).reshape(-1, int(t.shape[0]))
        got = np.asarray(t.data).view(np.uint8).reshape(-1)
        if t.tensor_type in EXACT:
            want = quants.quantize(x, t.tensor_type).view(np.uint8).reshape(-1)
            bad = int((got != want).sum()) if got.size == want.size else max(got.size, want.size)
            ok = bad == 0
            print(f"{'PASS' if ok else 'FAIL'} {t.name} {t.tensor_type.name}: mismatching bytes {bad} (bound 0)")
        else:
            y = quants.dequantize(got, t.tensor_type).reshape(-1)
            err = float(np.linalg.norm(y - x.reshape(-1)) / max(np.linalg.norm(x), 1e-30))
            ok = err <= a.k_bound
            print(f"{'PASS' if ok else 'FAIL'} {t.name} {t.tensor_type.name}: rel err {err:.3e} (bound {a.k_bound})")
        failed += not ok
    print(f"{len(reader.tensors) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
