/* gguf_write.h - writing a GGUF v3 file (io/gguf_format.h): metadata, tensor infos, then the tensors' data,
 * each at an offset aligned to 32 bytes (the default general.alignment, so the key is not written).
 *
 * Use: declare every metadata value and every tensor (name, dtype, torch-order shape) first; begin() opens
 * the file atomically (io/atomic_file.h) and writes everything up to the data section; then write() each
 * tensor's bytes in the order they were added; finish() pads and renames the file into place. Any
 * failure, or a free() before finish(), deletes the temporary file: a reader only ever sees a complete
 * GGUF. One writer is used by one thread. */
#ifndef SDC_IO_GGUF_WRITE_H
#define SDC_IO_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/log.h"
#include "sdc.h"

/* bytes of a tensor name: stable-diffusion.cpp builds ggml with GGML_MAX_NAME 128 (less the NUL) because SD
 * checkpoints have names such as cond_stage_model.transformer.text_model.embeddings.position_embedding.weight
 * (76); llama.cpp's ggml allows 63, so such files load in sd.cpp, not in llama.cpp */
#define SDC_GGUF_MAX_NAME 127

typedef struct sdc_gguf_writer sdc_gguf_writer;

sdc_gguf_writer *sdc_gguf_writer_new(const sdc_logger *log); /* NULL on OOM; log is copied */
void sdc_gguf_writer_free(sdc_gguf_writer *w);               /* deletes an unfinished file; NULL is harmless */

/* Metadata, written in the order given. A key given twice is SDC_ERR_INVALID_ARG. */
sdc_status sdc_gguf_writer_kv_u32(sdc_gguf_writer *w, const char *key, uint32_t v);
sdc_status sdc_gguf_writer_kv_str(sdc_gguf_writer *w, const char *key, const char *v);

/* Declares the next tensor: shape in torch order (outermost first; GGUF stores it reversed), 1 to 4
 * dims; dtype one with a ggml type id (core/quant.h); a block type's innermost dim a multiple of its
 * block. A duplicate or too long name, or a bad shape, is SDC_ERR_INVALID_ARG (logged). */
sdc_status sdc_gguf_writer_add_tensor(sdc_gguf_writer *w, const char *name, sdc_dtype dtype, int ndim,
                                      const int64_t *shape);
/* Bytes of tensor i's data (sdc_dtype_row_bytes of its elements). */
uint64_t sdc_gguf_writer_tensor_bytes(const sdc_gguf_writer *w, size_t i);

/* Opens path (atomically) and writes the header, metadata and tensor infos. SDC_ERR_IO (logged) when the
 * folder is missing or not writable or path is not a regular file. */
sdc_status sdc_gguf_writer_begin(sdc_gguf_writer *w, const char *path);
/* Appends nbytes to the data of the tensors, in the order they were added: a tensor may come in pieces
 * (row by row); when its last byte is in, the padding to the next aligned offset follows. More bytes than
 * the tensors still need is SDC_ERR_INVALID_ARG; a failed write SDC_ERR_IO (the file is deleted). */
sdc_status sdc_gguf_writer_write(sdc_gguf_writer *w, const void *data, size_t nbytes);
/* After the last tensor: flushes and renames the file into place. Writing fewer tensors than declared is
 * SDC_ERR_INVALID_ARG (and the file is deleted). */
sdc_status sdc_gguf_writer_finish(sdc_gguf_writer *w);

#endif
