#!/usr/bin/env python3
"""Writes tests/data/quant/quant.safetensors: fixtures for tests/test_quant.c, made with ggml's own Python
package (gguf.quants, the reference for GGUF block layouts and rounding).

  dequant.<TYPE>.blocks  U8   random blocks (random bytes; every f16 scale field redrawn until finite)
  dequant.<TYPE>.values  F32  gguf.quants.dequantize of those blocks
  quant.input            F32  [8, 256] rows: normal, tiny (1e-20), huge (1e30), zeros and lone values,
                              exact .5 ties, uniform, constant, wide dynamic range
  quant.<TYPE>.bytes     U8   gguf.quants.quantize of quant.input (the types gguf-py can quantize)

Run: /tmp/mkflux-venv/bin/python tools/make_quant_fixtures.py (numpy + the gguf package).
"""
import json
import os
import struct

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

# type -> (blocks to draw, byte offsets of f16 fields in a block)
DEQUANT = {
    "Q4_0": (8, [0]), "Q4_1": (8, [0, 2]), "Q5_0": (8, [0]), "Q5_1": (8, [0, 2]), "Q8_0": (8, [0]),
    "Q2_K": (3, [80, 82]), "Q3_K": (3, [108]), "Q4_K": (3, [0, 2]), "Q5_K": (3, [0, 2]),
    "Q6_K": (3, [208]), "IQ4_NL": (8, [0]), "IQ4_XS": (3, [0]),
}
QUANT = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"]


def random_blocks(rng, qtype, n_blocks, f16_offsets):
    _, type_size = quants.GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for b in range(n_blocks):
        for off in f16_offsets:
            while True:  # finite f16: exponent bits not all ones
                h = int(rng.integers(0, 65536))
                if (h >> 10) & 0x1F != 0x1F:
                    break
            blocks[b, off:off + 2] = np.frombuffer(struct.pack("<H", h), dtype=np.uint8)
    return blocks


def quant_rows(rng):
    rows = np.zeros((8, 256), dtype=np.float32)
    rows[0] = rng.standard_normal(256)
    rows[1] = rng.standard_normal(256) * 1e-20
    rows[2] = rng.standard_normal(256) * 1e30
    r = rng.standard_normal(256)
    r[0:32] = 0.0                 # a block of zeros
    r[32:64] = 0.0
    r[40] = -3.0                  # a block with one value
    r[64:96:2] = 0.0              # half zeros
    rows[3] = r
    ties = (rng.integers(-127, 127, size=256) + 0.5).astype(np.float32)
    ties[::32] = 127.0            # max 127: d = 1, so x / d lands on .5 exactly
    ties[16::64] = -8.0
    rows[4] = ties
    rows[5] = rng.uniform(-1, 1, 256)
    rows[6] = -0.75               # constant rows: max == min
    rows[6, 128:] = 2.5
    rows[7] = rng.standard_normal(256) * np.exp(rng.standard_normal(256) * 5)
    return rows.astype(np.float32)


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        dtype = {np.dtype(np.uint8): "U8", np.dtype(np.float32): "F32"}[arr.dtype]
        data = arr.tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for blob in blobs:
            f.write(blob)


def main():
    rng = np.random.default_rng(11)
    out = {}
    for name, (n_blocks, f16_offsets) in DEQUANT.items():
        qtype = T[name]
        blocks = random_blocks(rng, qtype, n_blocks, f16_offsets)
        values = quants.dequantize(blocks.reshape(-1), qtype).astype(np.float32)
        out[f"dequant.{name}.blocks"] = blocks.reshape(-1)
        out[f"dequant.{name}.values"] = values.reshape(-1)
    rows = quant_rows(rng)
    out["quant.input"] = rows
    for name in QUANT:
        with np.errstate(all="ignore"):
            out[f"quant.{name}.bytes"] = quants.quantize(rows, T[name]).reshape(-1)
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "tests", "data", "quant", "quant.safetensors")
    write_safetensors(path, out)
    print(f"wrote {os.path.normpath(path)} ({os.path.getsize(path)} bytes, {len(out)} tensors)")


if __name__ == "__main__":
    main()
