/* shard_index.h - sharded safetensors checkpoints: "model.safetensors.index.json" (transformers) or
 * "diffusion_pytorch_model.safetensors.index.json" (diffusers) beside shards such as
 * "diffusion_pytorch_model-00001-of-00003.safetensors", as the Hugging Face hub stores every large model
 * (Flux's transformer and T5, SDXL's UNet in f32). The index's "weight_map" maps each tensor name to the
 * shard file that holds it. */
#ifndef SDC_IO_SHARD_INDEX_H
#define SDC_IO_SHARD_INDEX_H

#include "core/log.h"
#include "sdc.h"

/* Reads the index at path and returns the shard files it names, each once, in order of first mention,
 * as paths joined to the index's folder: *files (n_files strings, free with sdc_shard_list_free). A
 * shard name with a '/' or that is "." or ".." (pointing out of the folder), a weight_map that is
 * missing, empty or has a non-string value: SDC_ERR_FORMAT, logged. */
sdc_status sdc_shard_list(const char *path, const sdc_logger *log, char ***files, int *n_files);
void sdc_shard_list_free(char **files, int n_files);

#endif
