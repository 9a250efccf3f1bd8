/* model_index.h - every tensor of a model, across all its safetensors and GGUF files, by name.
 *
 * A file is GGUF when it starts with the GGUF magic (whatever its extension), else safetensors. GGUF
 * shapes are indexed in torch order like safetensors ones (io/gguf.h reverses GGUF's innermost-first
 * dimensions), and a block-quantized tensor (Q8_0, Q4_K, ...) has nbytes = sdc_dtype_row_bytes x rows.
 *
 * Building the index reads only the files' headers, never tensor data. A component then loads
 * exactly the tensors it asks for, now or later (deferred loading), from the same retained index:
 * sdc_index_read_raw() preads one tensor's bytes and counts them. Before each read the file's size
 * and mtime are compared with what was indexed, so a file replaced or truncated since is an error,
 * not a crash. */
#ifndef SDC_IO_MODEL_INDEX_H
#define SDC_IO_MODEL_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/log.h"
#include "sdc.h"

#define SDC_INDEX_MAX_DIMS 8

typedef struct sdc_tensor_info {
    const char *name; /* full name: the prefix given to sdc_index_add_file + the (mapped) file name */
    int file;         /* which indexed file holds it (sdc_index_file_path) */
    sdc_dtype dtype;
    int ndim;
    int64_t ne[SDC_INDEX_MAX_DIMS]; /* torch order, as in the file */
    uint64_t offset;                /* absolute byte offset of the data in the file */
    uint64_t nbytes;                /* = nelem * dtype size (block types: row bytes x rows), checked at indexing */
    int transposed;                 /* 2-D, stored [ne[1], ne[0]] in the file: reads transpose (sdc_index_transpose) */
    int64_t roll_rows;              /* canonical row i is file row (i + roll_rows) mod ne[0] (sdc_index_roll_rows) */
} sdc_tensor_info;

/* An index is built (files added, views made) by one thread; reads may then come from several. */
typedef struct sdc_model_index sdc_model_index;

/* Maps a tensor name found in a file to the name to index it under, or returns NULL to skip the
 * tensor. Writes into out (size bytes) and returns out, or returns the input unchanged. */
typedef const char *(*sdc_name_map_fn)(const char *name, char *out, size_t size, void *user);

sdc_model_index *sdc_index_new(const sdc_logger *log); /* log is copied; NULL on OOM */
void sdc_index_free(sdc_model_index *idx);             /* NULL is harmless */

/* Parses path's safetensors or GGUF header (io/gguf.h: what a GGUF header must satisfy) and adds every tensor as prefix + map(name) (prefix may be NULL
 * or "", map may be NULL). Validates the header completely: a truncated file, a header length beyond
 * the end of the file, a header that is not JSON, an unknown dtype, byte counts that disagree with
 * dtype x shape, data offsets out of range or overlapping, and duplicate names are errors
 * (SDC_ERR_FORMAT, or SDC_ERR_IO when the file cannot be read, SDC_ERR_NOT_FOUND when it does not
 * exist). A name already in the index is an error too. On error nothing from this file is added.
 * The file stays open until sdc_index_free; pointers to tensor infos stay valid as long. */
sdc_status sdc_index_add_file(sdc_model_index *idx, const char *path, const char *prefix, sdc_name_map_fn map,
                              void *map_user);

size_t sdc_index_count(const sdc_model_index *idx);
const sdc_tensor_info *sdc_index_at(const sdc_model_index *idx, size_t i);
const sdc_tensor_info *sdc_index_find(const sdc_model_index *idx, const char *name); /* NULL if absent */
const char *sdc_index_file_path(const sdc_model_index *idx, int file);
int sdc_index_file_count(const sdc_model_index *idx);

/* Views, for checkpoints that store a tensor in another form than the canonical one (the index records
 * where the bytes are; every read below returns the canonical form):
 *
 * sdc_index_split_rows: the tensor `name`, n tensors stacked along dim 0 (an attention's fused
 * in_proj [3C, C] or [3C]), becomes n tensors names[0..n) of rows [k R/n, (k+1) R/n): each a
 * contiguous byte range of the file tensor. `name` is no longer found. SDC_ERR_NOT_FOUND when it is
 * absent; SDC_ERR_FORMAT when its rows do not divide by n, it is transposed, or a new name exists.
 *
 * sdc_index_split_rows_sized: the same with row blocks of rows[0..n) rows (summing to the tensor's rows),
 * for tensors fused from parts of different widths (Flux's single-block linear1: q, k, v and the MLP).
 *
 * sdc_index_roll_rows: the tensor `name` stores its row blocks rotated: canonical row i is file row
 * (i + rows) mod R, so reads return rows [rows, R) of the file, then rows [0, rows). Swapping two halves
 * (a checkpoint that stores (shift, scale) where the canonical tensor is (scale, shift)) is rows = R/2.
 * SDC_ERR_NOT_FOUND / SDC_ERR_FORMAT (transposed, rolled already, or rows outside [0, R)).
 *
 * sdc_index_transpose: the 2-D tensor `name` is stored transposed (the file holds [C, P] where the
 * canonical tensor is [P, C]): from now on it is found with its dims swapped and every read returns
 * the canonical row-major data. SDC_ERR_NOT_FOUND / SDC_ERR_FORMAT (not 2-D, or transposed already). */
sdc_status sdc_index_split_rows(sdc_model_index *idx, const char *name, int n, const char *const *names);
sdc_status sdc_index_split_rows_sized(sdc_model_index *idx, const char *name, int n, const int64_t *rows,
                                      const char *const *names);
sdc_status sdc_index_roll_rows(sdc_model_index *idx, const char *name, int64_t rows);
sdc_status sdc_index_transpose(sdc_model_index *idx, const char *name);

/* Reads info->nbytes raw bytes of the tensor into dst (pread, retrying short reads). */
sdc_status sdc_index_read_raw(sdc_model_index *idx, const sdc_tensor_info *info, void *dst);
/* Reads bytes [begin, begin + n) of the tensor's data into dst (same checks and counting). For a
 * transposed tensor begin and n are whole elements of the canonical layout; the whole file tensor is
 * read for each call. For a block-quantized tensor begin and n are whole blocks (multiples of
 * sdc_dtype_block_bytes; a block never straddles two rows, so any run of whole blocks dequantizes alone);
 * such a tensor is never transposed (sdc_index_transpose refuses it). */
sdc_status sdc_index_read_range(sdc_model_index *idx, const sdc_tensor_info *info, uint64_t begin, uint64_t n,
                                void *dst);
/* sdc_index_read_range with the bytes split into `readers` pieces read at once on OpenMP threads (the
 * loader's reads: one copy out of the page cache runs at a fraction of what the memory system takes). The
 * same bytes; at most one reader per processor; reads under 4 MiB, transposed and rolled tensors, and
 * readers < 2 read as one. After a piece fails (no later piece starts), the range is read once more as
 * one read, whose status is returned and logged once. */
sdc_status sdc_index_read_range_par(sdc_model_index *idx, const sdc_tensor_info *info, uint64_t begin, uint64_t n,
                                    void *dst, int readers);
/* SDC_OK for a float dtype; an integer or boolean dtype (I8, I16, I32, I64, U8, BOOL) where a float weight
 * is wanted is SDC_ERR_UNSUPPORTED, logged with the tensor's name. sdc_model_files_open applies it to
 * every weight of a model (the name maps drop the integer buffers checkpoints carry). */
sdc_status sdc_index_check_float(const sdc_model_index *idx, const sdc_tensor_info *info);
/* Reads the tensor and converts it to f32 (F32/F16/BF16/F64/integer types; block types are dequantized
 * with sdc_dequant_row). dst holds nelem floats. */
sdc_status sdc_index_read_f32(sdc_model_index *idx, const sdc_tensor_info *info, float *dst);
/* Bytes read from disk by sdc_index_read_* so far. */
uint64_t sdc_index_bytes_read(const sdc_model_index *idx);
/* Asks the OS to read the tensor's file bytes into its page cache ahead of use (posix_fadvise WILLNEED):
 * a hint, no memory of ours, nothing counted; errors are ignored (the later read reports them). */
void sdc_index_will_need(sdc_model_index *idx, const sdc_tensor_info *info);
int64_t sdc_tensor_info_nelem(const sdc_tensor_info *info);

#endif
