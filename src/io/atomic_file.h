/* atomic_file.h - writing a file so that readers only ever see the old file or the complete new one.
 *
 * Data goes to "<path>.tmp-XXXXXX" (mkstemp, same directory, so the rename cannot cross file
 * systems); commit flushes, closes and renames it over path; abort (or any failed commit) deletes
 * it. A run that fails or is killed between open and commit never leaves a half-written path. */
#ifndef SDC_IO_ATOMIC_FILE_H
#define SDC_IO_ATOMIC_FILE_H

#include <stdio.h>

#include "core/log.h"
#include "sdc.h"

typedef struct sdc_atomic_file {
    FILE *f;        /* write here between open and commit */
    char *path;     /* the final name */
    char *tmp_path; /* the temporary name */
} sdc_atomic_file;

/* SDC_OK when path is absent or a regular file. A path that exists as anything else - a symbolic link
 * (never followed), a folder, a FIFO, a device, a socket - is SDC_ERR_IO, logged
 * "<what>: refusing to replace <path>: it is a FIFO ...". open and commit both apply it. */
sdc_status sdc_atomic_check_target(const char *path, const char *what, const sdc_logger *log);
/* Creates the temporary file (mode 0644). what names the writer in messages ("png_write").
 * SDC_ERR_IO (logged with the path and the reason) when the directory is not writable. */
sdc_status sdc_atomic_open(sdc_atomic_file *af, const char *path, const char *what, const sdc_logger *log);
/* Flushes, closes and renames over path. On any error the temporary file is deleted and SDC_ERR_IO
 * returned. af is reset either way. */
sdc_status sdc_atomic_commit(sdc_atomic_file *af, const char *what, const sdc_logger *log);
/* Closes and deletes the temporary file; harmless on a reset or zeroed af. */
void sdc_atomic_abort(sdc_atomic_file *af);

#endif
