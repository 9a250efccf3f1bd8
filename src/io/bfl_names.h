/* bfl_names.h - tensor names of a Black Forest Labs Flux transformer single file (flux1-dev.safetensors,
 * flux1-schnell.safetensors; also under "model.diffusion_model." as some tools save them) to the
 * canonical diffusers FluxTransformer2DModel names under a component prefix ("transformer."):
 *
 *   img_in.*, txt_in.*                          x_embedder.*, context_embedder.*
 *   time_in / vector_in / guidance_in .{in,out}_layer.*
 *                                               time_text_embed.{timestep,text,guidance}_embedder.linear_{1,2}.*
 *   double_blocks.N.img_mod.lin.*, txt_mod.lin.*  transformer_blocks.N.norm1.linear.*, norm1_context.linear.*
 *   double_blocks.N.img_attn.qkv.* [3C, C]      attn.to_q, to_k, to_v (q, k, v stacked along the rows)
 *   double_blocks.N.txt_attn.qkv.*              attn.add_q_proj, add_k_proj, add_v_proj
 *   double_blocks.N.{img,txt}_attn.norm.{query,key}_norm.scale
 *                                               attn.norm_{q,k}.weight, attn.norm_added_{q,k}.weight
 *   double_blocks.N.img_attn.proj.*, txt_attn.proj.*   attn.to_out.0.*, attn.to_add_out.*
 *   double_blocks.N.img_mlp.{0,2}.*, txt_mlp.{0,2}.*   ff.net.{0.proj,2}.*, ff_context.net.{0.proj,2}.*
 *   single_blocks.N.linear1.* [3C + F, C]       single_transformer_blocks.N.attn.to_{q,k,v}, proj_mlp
 *   single_blocks.N.linear2.*, modulation.lin.*  proj_out.*, norm.linear.*
 *   single_blocks.N.norm.{query,key}_norm.scale  attn.norm_{q,k}.weight
 *   final_layer.linear.*                        proj_out.*
 *   final_layer.adaLN_modulation.1.* [2C, ...]  norm_out.linear.*, whose halves BFL stores as (shift, scale)
 *                                               and diffusers as (scale, shift)
 * Anything else is skipped.
 *
 * Indexing takes two steps, as for OpenCLIP (io/openclip_names.h): the name map renames each fused tensor
 * to a stand-in ("transformer_blocks.N.attn.qkv.weight", "single_transformer_blocks.N.linear1.weight"),
 * then sdc_bfl_flux_index_finish splits them into row-block views and rolls norm_out.linear by half its
 * rows (model_index.h views): no byte is copied. */
#ifndef SDC_IO_BFL_NAMES_H
#define SDC_IO_BFL_NAMES_H

#include <stddef.h>

#include "io/model_index.h"

/* The diffusers name of a BFL name under prefix (user: the const char * prefix; NULL means
 * "transformer.") in out (size bytes) and out, or NULL to skip it. An sdc_name_map_fn. */
const char *sdc_bfl_flux_name_map(const char *name, char *out, size_t size, void *user);
/* After a file was indexed through sdc_bfl_flux_name_map with the same prefix: the stand-ins become
 * their parts, and norm_out.linear is read as (scale, shift). SDC_ERR_FORMAT (logged) when a fused
 * tensor's rows do not fit its parts. */
sdc_status sdc_bfl_flux_index_finish(sdc_model_index *idx, const char *prefix, const sdc_logger *log);
/* Both steps for the single file at path (with sdc_single_file_index's float check). Errors of the
 * second step are logged through log (may be NULL); the index logs its own. */
sdc_status sdc_bfl_flux_index(sdc_model_index *idx, const char *path, const char *prefix, const sdc_logger *log);

#endif
