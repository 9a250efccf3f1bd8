/* st_writer.h - writing safetensors files of any size, streaming.
 *
 * Collect tensors (name, dtype, shape, and either borrowed bytes or a fill callback), then write
 * once. The file is what the Python safetensors library writes: tensors ordered by dtype (widest
 * first, as its dtype order goes) then by name, a compact JSON header with "__metadata__" first,
 * padded with spaces to a multiple of 8 bytes, then the data in header order. Tensor data is never
 * gathered in memory: fill callbacks produce each tensor chunk by chunk into one reusable buffer, so
 * an 860M-parameter UNet is written in a few MiB. The write is atomic (temporary file + rename, see
 * atomic_file.h).
 *
 *   sdc_st_writer *w = sdc_st_writer_new(log);
 *   sdc_st_writer_set_metadata(w, "format", "pt");
 *   sdc_st_writer_add(w, "a.weight", SDC_DTYPE_F32, 2, (int64_t[]){4, 3}, bytes);
 *   sdc_st_writer_add_fill(w, "b.weight", SDC_DTYPE_F16, 1, (int64_t[]){1 << 20}, my_fill, my_state);
 *   sdc_status st = sdc_st_writer_write(w, "out.safetensors");
 *   sdc_st_writer_free(w);
 *
 * The first error of any call sticks and is returned again by sdc_st_writer_write. A writer is used
 * from one thread at a time. */
#ifndef SDC_IO_ST_WRITER_H
#define SDC_IO_ST_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/log.h"
#include "sdc.h"

typedef struct sdc_st_writer sdc_st_writer;

/* Produces elements [first, first + count) of one tensor, in the tensor's file dtype, into dst.
 * Called with first = 0, then increasing, each element exactly once, during sdc_st_writer_write.
 * A status other than SDC_OK aborts the write (no file is left). */
typedef sdc_status (*sdc_st_fill_fn)(void *user, void *dst, uint64_t first, uint64_t count);

/* NULL on OOM. log is copied. */
sdc_st_writer *sdc_st_writer_new(const sdc_logger *log);
void sdc_st_writer_free(sdc_st_writer *w); /* NULL is harmless */

/* A "__metadata__" string entry (copied). */
sdc_status sdc_st_writer_set_metadata(sdc_st_writer *w, const char *key, const char *value);

/* Adds a tensor with its bytes (nelem x dtype size, borrowed: they must stay valid until the write).
 * name and ne are copied. ndim 0..8; ne[i] >= 0. SDC_ERR_INVALID_ARG for a bad shape or dtype or a
 * duplicate name. */
sdc_status sdc_st_writer_add(sdc_st_writer *w, const char *name, sdc_dtype dtype, int ndim, const int64_t *ne,
                             const void *data);
/* Adds a tensor whose data fill(user, ...) produces at write time. */
sdc_status sdc_st_writer_add_fill(sdc_st_writer *w, const char *name, sdc_dtype dtype, int ndim, const int64_t *ne,
                                  sdc_st_fill_fn fill, void *user);

size_t sdc_st_writer_count(const sdc_st_writer *w);
/* Bytes of the file the tensors added so far make: 8 + padded header + data. Writes nothing. */
uint64_t sdc_st_writer_file_size(sdc_st_writer *w);

/* Writes the file. SDC_ERR_IO when it cannot be written (nothing is left behind), the sticky
 * error of an earlier call, or a fill callback's error. The writer can be written again. */
sdc_status sdc_st_writer_write(sdc_st_writer *w, const char *path);

#endif
