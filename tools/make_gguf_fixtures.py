"""make_gguf_fixtures.py - the small GGUF files tests/test_gguf.c reads (tests/data/gguf/), written with the
`gguf` Python package (0.19, llama.cpp's gguf-py):

  tiny-t5-f32.gguf  tests/data/tiny-flux-t5's T5 encoder under llama.cpp's T5 names (token_embd,
                    enc.blk.N.attn_q/k/v/o, attn_rel_b, attn_norm, ffn_gate/up/down, ffn_norm,
                    enc.output_norm), every tensor F32, with llama.cpp-style metadata (general.architecture
                    "t5", t5.* numbers, a tokenizer.ggml.tokens string array): the T5 must give exactly the
                    safetensors file's output.
  meta.gguf         one value of every metadata type, arrays (numbers, strings, an array of arrays),
                    general.alignment 64, and tensors of several types and ranks with known values:
                    'f32' [3, 5] = arange(15)/8, 'f16' [2, 32] = (arange(64) - 20)/4, 'q8_0' [2, 64]
                    (Q8_0 of sin(arange(128)) / 2, row length 64 = two blocks), 'vec' [7] = -arange(7),
                    'cube' [2, 3, 4] F32 = arange(24).

    python3 tools/make_gguf_fixtures.py tests/data/gguf

Not needed to build or test sdc."""
import sys

import gguf
import numpy as np
from safetensors.numpy import load_file

out = sys.argv[1]
src = load_file("tests/data/tiny-flux-t5/model.safetensors")

# --- the T5 encoder under llama.cpp names -------------------------------------------------------------
w = gguf.GGUFWriter(f"{out}/tiny-t5-f32.gguf", "t5")
w.add_context_length(512)
w.add_embedding_length(32)
w.add_feed_forward_length(40)
w.add_block_count(2)
w.add_head_count(4)
w.add_key_length(8)
w.add_value_length(8)
w.add_layer_norm_rms_eps(1e-6)
w.add_relative_attn_buckets_count(32)
w.add_tokenizer_model("t5")
w.add_token_list(["<pad>", "</s>", "<unk>", "\u2581a", "\u2581photo"])
blk = {
    "layer.0.SelfAttention.q": "attn_q", "layer.0.SelfAttention.k": "attn_k", "layer.0.SelfAttention.v": "attn_v",
    "layer.0.SelfAttention.o": "attn_o", "layer.0.SelfAttention.relative_attention_bias": "attn_rel_b",
    "layer.0.layer_norm": "attn_norm", "layer.1.DenseReluDense.wi_0": "ffn_gate",
    "layer.1.DenseReluDense.wi_1": "ffn_up", "layer.1.DenseReluDense.wo": "ffn_down",
    "layer.1.layer_norm": "ffn_norm",
}
for name, t in sorted(src.items()):
    if name in ("shared.weight", "encoder.embed_tokens.weight"):
        if name == "shared.weight" or "shared.weight" not in src:
            w.add_tensor("token_embd.weight", t.astype(np.float32))
        continue
    if name == "encoder.final_layer_norm.weight":
        w.add_tensor("enc.output_norm.weight", t.astype(np.float32))
        continue
    parts = name.split(".")  # encoder.block.N.<rest>.weight
    assert parts[:2] == ["encoder", "block"] and parts[-1] == "weight", name
    w.add_tensor(f"enc.blk.{parts[2]}.{blk['.'.join(parts[3:-1])]}.weight", t.astype(np.float32))
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()

# --- every metadata type, several tensor types --------------------------------------------------------
w = gguf.GGUFWriter(f"{out}/meta.gguf", "test")
w.add_custom_alignment(64)
w.add_uint8("t.u8", 200)
w.add_int8("t.i8", -100)
w.add_uint16("t.u16", 60000)
w.add_int16("t.i16", -30000)
w.add_uint32("t.u32", 4000000000)
w.add_int32("t.i32", -2000000000)
w.add_float32("t.f32", 0.15625)
w.add_bool("t.bool", True)
w.add_string("t.str", "h\u00e9llo")
w.add_uint64("t.u64", 2**63 + 5)
w.add_int64("t.i64", -(2**40))
w.add_float64("t.f64", -2.5e300)
w.add_array("t.arr_i32", [1, -2, 3])
w.add_array("t.arr_str", ["a", "", "\u00fcber"])
w.add_array("t.arr_f32", [0.5, 1.5])
w.add_array("t.arr_arr", [[1, 2], [3]])
w.add_tensor("f32", (np.arange(15, dtype=np.float32) / 8).reshape(3, 5))
w.add_tensor("f16", ((np.arange(64, dtype=np.float32) - 20) / 4).astype(np.float16).reshape(2, 32))
q = (np.sin(np.arange(128, dtype=np.float32)) / 2).reshape(2, 64)
w.add_tensor("q8_0", gguf.quants.quantize(q, gguf.GGMLQuantizationType.Q8_0),
             raw_dtype=gguf.GGMLQuantizationType.Q8_0)
w.add_tensor("vec", -np.arange(7, dtype=np.float32))
w.add_tensor("cube", np.arange(24, dtype=np.float32).reshape(2, 3, 4))
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
