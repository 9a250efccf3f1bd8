/* openclip_names.h - tensor names of an OpenCLIP text encoder (open_clip's text tower, as SD 2.x
 * single files store it under cond_stage_model.model.* and SDXL's under conditioner.embedders.1.model.*)
 * to transformers' CLIPTextModel / CLIPTextModelWithProjection names under a component prefix:
 *
 *   token_embedding.weight                      text_model.embeddings.token_embedding.weight
 *   positional_embedding                        text_model.embeddings.position_embedding.weight
 *   transformer.resblocks.N.ln_1.*, ln_2.*      text_model.encoder.layers.N.layer_norm1.*, layer_norm2.*
 *   transformer.resblocks.N.attn.in_proj_weight [3C, C] q, k, v stacked: self_attn.{q,k,v}_proj.weight
 *   transformer.resblocks.N.attn.in_proj_bias   [3C]: self_attn.{q,k,v}_proj.bias
 *   transformer.resblocks.N.attn.out_proj.*     self_attn.out_proj.*
 *   transformer.resblocks.N.mlp.c_fc.*, c_proj.* mlp.fc1.*, mlp.fc2.*
 *   ln_final.*                                  text_model.final_layer_norm.*
 *   text_projection [C, P]                      text_projection.weight [P, C] (stored transposed)
 * logit_scale, attn_mask and anything else is skipped; so are resblocks from n_layers on (SD 2.x's
 * encoder runs 23 of OpenCLIP ViT-H's 24: diffusers' converter drops the last).
 *
 * Indexing takes two steps: the name map renames each fused in_proj to a stand-in name
 * ("...self_attn.in_proj.weight"), then sdc_openclip_index_finish splits it into q/k/v row blocks and
 * marks the projection transposed (model_index.h views): no byte is copied. */
#ifndef SDC_IO_OPENCLIP_NAMES_H
#define SDC_IO_OPENCLIP_NAMES_H

#include <stddef.h>

#include "io/model_index.h"

typedef struct sdc_openclip_map {
    const char *from; /* the file's prefix: "conditioner.embedders.1.model.", "cond_stage_model.model." */
    const char *to;   /* the component's: "text_encoder_2.", "text_encoder." */
    int n_layers;     /* resblocks 0 .. n_layers-1 are kept */
    int projection;   /* 1: text_projection is kept (CLIPTextModelWithProjection) */
} sdc_openclip_map;

/* 1 when name lies under m->from (the map decides about it, if only to skip it). */
int sdc_openclip_owns(const sdc_openclip_map *m, const char *name);
/* The transformers name of an OpenCLIP name in out (size bytes) and out, or NULL to skip it (not
 * under m->from, not a weight sdc loads, or out too small). */
const char *sdc_openclip_to_hf(const sdc_openclip_map *m, const char *name, char *out, size_t size);
/* After the file is indexed through sdc_openclip_to_hf: every layer's fused in_proj weight and bias
 * become q/k/v, and text_projection.weight is read transposed. A layer without its in_proj is left
 * for the loader to report (a missing q_proj). */
sdc_status sdc_openclip_index_finish(sdc_model_index *idx, const sdc_openclip_map *m);

#endif
