/* t5_gguf_names.h - llama.cpp's T5 encoder names (its converter's, as city96's T5 GGUFs carry them) to the
 * Hugging Face names the T5 loader asks for (model/t5.c):
 *   token_embd                     shared
 *   enc.blk.N.attn_q / k / v / o   encoder.block.N.layer.0.SelfAttention.q / k / v / o
 *   enc.blk.N.attn_rel_b           encoder.block.N.layer.0.SelfAttention.relative_attention_bias
 *   enc.blk.N.attn_norm            encoder.block.N.layer.0.layer_norm
 *   enc.blk.N.ffn_gate / up        encoder.block.N.layer.1.DenseReluDense.wi_0 / wi_1 (a T5 without
 *                                  ffn_gate: ffn_up is wi)
 *   enc.blk.N.ffn_down             encoder.block.N.layer.1.DenseReluDense.wo
 *   enc.blk.N.ffn_norm             encoder.block.N.layer.1.layer_norm
 *   enc.output_norm                encoder.final_layer_norm
 * each with its ".weight". Anything else (a whole T5's decoder, dec.*, and output) is skipped. */
#ifndef SDC_IO_T5_GGUF_NAMES_H
#define SDC_IO_T5_GGUF_NAMES_H

#include <stddef.h>

#include "io/single_file.h"

/* 1 when the file's tensors carry llama.cpp's T5 names. */
int sdc_t5_gguf_names(const sdc_sf_facts *f);

/* sdc_name_map_fn; user: an int, nonzero for a gated feed-forward (the file has enc.blk.0.ffn_gate). */
const char *sdc_t5_gguf_name_map(const char *name, char *out, size_t size, void *user);

/* The facts of the file at path under the Hugging Face names (gated: as for the map). */
sdc_status sdc_t5_gguf_facts(const char *path, int gated, const sdc_logger *log, sdc_sf_facts **out);

#endif
