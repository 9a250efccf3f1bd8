/* name_map.h - canonical diffusers tensor names for the name variants found in the wild, as
 * sdc_name_map_fn callbacks for sdc_index_add_file. The canonical names are what diffusers and
 * transformers load today; each map accepts both the canonical and the variant spelling. */
#ifndef SDC_IO_NAME_MAP_H
#define SDC_IO_NAME_MAP_H

#include <stddef.h>

/* CLIP text encoder: files saved by transformers 5 drop the "text_model." prefix
 * ("encoder.layers.0..." -> "text_model.encoder.layers.0..."); the position_ids buffer that some
 * files carry ("text_model.embeddings.position_ids") is skipped. */
const char *sdc_name_map_text_encoder(const char *name, char *out, size_t size, void *user);

/* AutoencoderKL: older diffusers VAEs name the mid-block attention projections
 * query/key/value/proj_attn; canonical are to_q/to_k/to_v/to_out.0. */
const char *sdc_name_map_vae(const char *name, char *out, size_t size, void *user);

#endif
