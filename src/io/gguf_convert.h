/* gguf_convert.h - one safetensors file (a model's file or one component's) to a GGUF file whose tensor
 * names are the file's own, quantizing its weights: what `sdc convert` runs.
 *
 * Which type each tensor gets (city96's Flux GGUFs' layout, as stable-diffusion.cpp's convert):
 *   1. the first rule whose POSIX extended regex matches the name (anywhere; anchor with ^ and $) gives
 *      its type, for any tensor ("^(img_in|final_layer\\.linear)\\.=f32" keeps Flux's first and last
 *      layers in f32);
 *   2. otherwise a tensor of 2 or more dims gets the chosen type, and a 1-D one (biases, norm scales) F32;
 *   3. a block type on a tensor of one dim or whose innermost dim (its GGUF row) is not a multiple of the
 *      block keeps the source's precision instead: F16 or BF16 as stored, else F32. So convolution kernels
 *      [Co, Ci, KH, KW] (rows of KW = 3 or 1) stay 16-bit, as in city96's and stable-diffusion.cpp's files,
 *      unless quantize_convs is set: then a 4-D tensor whose Ci*KH*KW is a multiple of the block is
 *      stored as the 2-D tensor [Co, Ci*KH*KW] in the block type (sdc-specific files: sdc's loader takes
 *      such a tensor for the 4-D weight, model/weights.h; other engines expect 4-D conv tensors).
 * Integer tensors (I8, I16, I32, I64) are copied unchanged; U8, BOOL and F8 tensors are refused.
 * Metadata: general.architecture ("flux" for BFL transformer names, "sdxl"/"sd1" for LDM UNets, else
 * "unknown", unless given), general.quantization_version 2, general.file_type (llama.cpp's file type of
 * the chosen type). Tensors are read, converted and written in pieces of at most a few MiB. */
#ifndef SDC_IO_GGUF_CONVERT_H
#define SDC_IO_GGUF_CONVERT_H

#include <stdint.h>

#include "core/dtype.h"
#include "core/log.h"
#include "sdc.h"

typedef struct sdc_convert_params {
    const char *input;  /* a .safetensors file, or one component's folder (its file or shards) */
    const char *output; /* the GGUF to write (atomically; its folder must exist) */
    sdc_dtype type;     /* F32, F16, BF16 or a block type sdc_quant_can_write */
    const char *rules;  /* "REGEX=TYPE,REGEX=TYPE,..." (types as sdc_convert_type_from_name), or NULL */
    const char *arch;   /* general.architecture, or NULL to guess from the names */
    /* called after each tensor (done of total; bytes written so far); nonzero cancels. May be NULL. */
    int (*progress)(int done, int total, uint64_t bytes, void *user);
    void *user;
    /* 1: a 4-D convolution kernel [Co, Ci, KH, KW] whose Ci*KH*KW is whole blocks of its block type is
     * stored as the 2-D tensor [Co, Ci*KH*KW] (the same bytes in row-major order: one row per output
     * channel) in that type, instead of keeping its precision (rule 3), with the metadata
     * sdc.conv_shape.NAME = "Co,Ci,KH,KW" from which sdc's reader gives it back 4-D (io/gguf.h), so shape
     * detection sees the kernel (sdc's loader also takes the 2-D tensor for the kernel without the key,
     * model/weights.h). sdc-specific: other engines
     * (stable-diffusion.cpp, ComfyUI-GGUF) expect 4-D conv tensors. 0 (default): city96-compatible. */
    int quantize_convs;
} sdc_convert_params;

/* "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k" ... "q6_k" (any case) to a type
 * sdc can write; -1 for anything else. */
int sdc_convert_type_from_name(const char *name, sdc_dtype *out);

/* Converts p->input to p->output. SDC_ERR_NOT_FOUND: input missing;
 * SDC_ERR_INVALID_ARG: a bad rule or type; SDC_ERR_FORMAT: not a safetensors file; SDC_ERR_UNSUPPORTED: a
 * tensor sdc cannot store (U8, BOOL, F8, more than 4 dims, a name over 63 bytes); a folder with neither a
 * weights file nor a shard index (a whole diffusers model, say) is SDC_ERR_NOT_FOUND, saying which;
 * SDC_ERR_IO: the output cannot be written; SDC_ERR_CANCELLED. Every error is logged and leaves no output
 * file. A component folder's shards (the diffusers / transformers "*.safetensors.index.json" beside them)
 * are read as one file. Tensors are quantized row by row on OpenMP's threads: the output's bytes do not
 * depend on the thread count. */
sdc_status sdc_convert_gguf(const sdc_convert_params *p, const sdc_logger *log);

#endif
