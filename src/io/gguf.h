/* gguf.h - read a GGUF file's header: its metadata and its tensor infos (io/gguf_format.h has the layout).
 *
 * Versions 2 and 3, little-endian. Nothing in the header is trusted: every count and string length is
 * checked against the bytes left in the file before anything is allocated for it, and arrays grow as
 * their elements are actually read, so a header that lies (a tensor count of 2^60, a string of 2^40
 * bytes) fails with SDC_ERR_FORMAT having allocated no more than the bytes it really holds. Tensor
 * infos are checked completely: a ggml type sdc reads, at most 4 dimensions, a row length (the innermost
 * dimension) that is a whole number of blocks, data inside the file and aligned to general.alignment,
 * no two tensors overlapping and no two with one name. Every error is logged on one line naming the file
 * and the problem.
 *
 * Tensors come out as sdc_tensor_info in torch order (GGUF lists dimensions innermost first; they are
 * reversed, so a linear weight of GGUF ne {K, N} is [N, K]) with absolute file offsets and
 * nbytes = sdc_dtype_row_bytes(dtype, row length) x rows.
 *
 * sdc's own convolution kernels (`sdc convert --quantize-convs`, io/gguf_convert.h): a 4-D kernel
 * [Co, Ci, KH, KW] quantized as the 2-D tensor [Co, Ci*KH*KW] (its rows whole blocks) has the metadata
 * key SDC_GGUF_CONV_SHAPE_KEY + its name, a STRING "Co,Ci,KH,KW". Such a tensor comes out 4-D,
 * [Co, Ci, KH, KW], with the same bytes (the canonical row-major order) and nbytes: its rows of blocks are
 * Ci*KH*KW long, not its innermost dimension (model/weights.c loads it so). A key naming no tensor, a
 * value that is not such a string, or a tensor that is not that kernel flattened is SDC_ERR_FORMAT. */
#ifndef SDC_IO_GGUF_H
#define SDC_IO_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "io/gguf_format.h"
#include "io/model_index.h"
#include "sdc.h"

/* The metadata key prefix of a flattened convolution kernel's shape (above). */
#define SDC_GGUF_CONV_SHAPE_KEY "sdc.conv_shape."

typedef struct sdc_gguf sdc_gguf;

/* Reads bytes [off, off + n) of the source into dst; returns 0, or -1 when it cannot (the parser has
 * checked the range lies inside the file, so -1 means an I/O error or a file that shrank). */
typedef int (*sdc_gguf_read_fn)(void *user, uint64_t off, void *dst, size_t n);

/* 1 when the first n bytes of a file begin with the GGUF magic (n >= 4). */
int sdc_gguf_has_magic(const void *head, size_t n);

/* Parses the header of a GGUF source of file_size bytes. what: a name for messages (the path). *out:
 * free with sdc_gguf_free. SDC_ERR_FORMAT for anything invalid, SDC_ERR_IO when read fails,
 * SDC_ERR_OOM. */
sdc_status sdc_gguf_parse(sdc_gguf_read_fn read, void *user, uint64_t file_size, const char *what,
                          const sdc_logger *log, sdc_gguf **out);
/* The same over a file held in memory (the fuzzer's entry). */
sdc_status sdc_gguf_parse_mem(const void *data, size_t size, const char *what, const sdc_logger *log, sdc_gguf **out);
/* The same over an open file descriptor (pread: the file position is not used). */
sdc_status sdc_gguf_parse_fd(int fd, uint64_t file_size, const char *what, const sdc_logger *log, sdc_gguf **out);
/* The same over the file at path (only its header is read). */
sdc_status sdc_gguf_read_file(const char *path, const sdc_logger *log, sdc_gguf **out);
void sdc_gguf_free(sdc_gguf *g); /* NULL is harmless */

uint32_t sdc_gguf_version(const sdc_gguf *g);
uint32_t sdc_gguf_alignment(const sdc_gguf *g);
uint64_t sdc_gguf_data_start(const sdc_gguf *g); /* absolute offset of the data section */

/* The tensors in file order; names owned by g. */
size_t sdc_gguf_tensor_count(const sdc_gguf *g);
const sdc_tensor_info *sdc_gguf_tensor(const sdc_gguf *g, size_t i);

/* Metadata, in file order. Keys are unique (a duplicate key is a format error). */
size_t sdc_gguf_kv_count(const sdc_gguf *g);
const char *sdc_gguf_kv_key(const sdc_gguf *g, size_t i);
sdc_gguf_value_type sdc_gguf_kv_type(const sdc_gguf *g, size_t i);
/* The position of key, or -1. */
int64_t sdc_gguf_find(const sdc_gguf *g, const char *key);
/* key's value when it is a STRING (NUL-terminated; a string holding a NUL byte reads cut there), else NULL. */
const char *sdc_gguf_get_str(const sdc_gguf *g, const char *key);
/* key's value when it is an integer or a BOOL: 0 and *out, else -1 (absent, another type, or a UINT64
 * above INT64_MAX). */
int sdc_gguf_get_int(const sdc_gguf *g, const char *key, int64_t *out);
/* key's value when it is any number (integer, BOOL, FLOAT32, FLOAT64): 0 and *out, else -1. */
int sdc_gguf_get_float(const sdc_gguf *g, const char *key, double *out);
/* key's value when it is an ARRAY: its element count, and *elem_type; else -1. Arrays of arrays are
 * checked and counted but their elements are not kept. */
int64_t sdc_gguf_get_arr(const sdc_gguf *g, const char *key, sdc_gguf_value_type *elem_type);
/* Element k of a STRING array, else NULL. */
const char *sdc_gguf_arr_str(const sdc_gguf *g, const char *key, int64_t k);
/* Element k of a numeric (or BOOL) array as a double: 0 and *out, else -1. */
int sdc_gguf_arr_num(const sdc_gguf *g, const char *key, int64_t k, double *out);

#endif
