# tools/t5_reference.py OUT_DIR - the T5 fixture of tests/test_t5.c (tests/data/tiny-flux-t5), made with
# transformers (5.17, torch 2.11 on the device machine): a T5EncoderModel with the tiny Flux text_encoder_2's
# config and seeded random weights (N(0, 1/fan_in) matrices, N(0, 1) embeddings and relative bias, norms
# 1 + 0.1 N), run in float64 and eval mode without an attention mask (as FluxPipeline calls it) on the
# bundle's 4 golden T5 id rows and on 300 seeded random ids. Writes OUT_DIR/m/{config.json,
# model.safetensors} (weights in f32) and OUT_DIR/t5_eval.safetensors.
# Why not the bundle's tiny-flux-golden t5.last_hidden_state: it was made with dropout on (10% exact
# zeros; this model in train mode gives 392 of 4096, in eval mode none).
import math
import sys

import torch
from safetensors.torch import save_file
from transformers import T5Config, T5EncoderModel

o = sys.argv[1]
torch.manual_seed(0)
c = T5Config(d_model=32, d_kv=8, d_ff=40, num_layers=2, num_heads=4, vocab_size=2000, feed_forward_proj='gated-gelu',
             relative_attention_num_buckets=32, relative_attention_max_distance=128, layer_norm_epsilon=1e-6,
             dropout_rate=0.1, is_encoder_decoder=False, use_cache=False, tie_word_embeddings=True)
m = T5EncoderModel(c).double()
with torch.no_grad():
    for n, p in m.named_parameters():
        if 'layer_norm' in n:
            p.copy_(1 + 0.1 * torch.randn_like(p))
        elif 'relative_attention_bias' in n or 'shared' in n:
            p.copy_(torch.randn_like(p))
        else:
            p.copy_(torch.randn_like(p) / math.sqrt(p.shape[1]))
m.eval()
a = [28, 1058, 75, 30, 223, 1211, 32, 7, 161, 171, 12, 10, 28, 1284, 1]
b = [4, 1914, 16, 1818, 148, 12, 5, 4, 1699, 1853, 1304, 4, 1379, 1488, 1815, 1819, 1]
rows = [a + [0] * (32 - len(a)), [1] + [0] * 31, b + [0] * (32 - len(b)), [28] * 31 + [1]]
i = torch.tensor(rows)
with torch.no_grad():
    h = m(input_ids=i).last_hidden_state
    l = torch.randint(0, 2000, (1, 300), generator=torch.Generator().manual_seed(0))
    hl = m(input_ids=l).last_hidden_state
    m.train()
    t = m(input_ids=i).last_hidden_state
    print('train-mode zeros', (t == 0).sum().item(), 'eval zeros', (h == 0).sum().item(), 'of', h.numel())
m.float().save_pretrained(o + '/m')
save_file({'t5.input_ids': i.int(), 't5.last_hidden_state': h.float(), 't5.long.input_ids': l.int(),
           't5.long.last_hidden_state': hl.float()}, o + '/t5_eval.safetensors')
