/* file.h - small file helpers shared by the readers. */
#ifndef SDC_CORE_FILE_H
#define SDC_CORE_FILE_H

#include <stddef.h>

#include "core/log.h"
#include "sdc.h"

/* Reads a whole file into a malloc'd, NUL-terminated buffer (*len excludes the NUL).
 * SDC_ERR_NOT_FOUND if it does not exist; SDC_ERR_IO for anything that is not a regular file (a FIFO,
 * device, directory or socket: refused without blocking or reading, the log names what it is) and for a
 * read error; SDC_ERR_OOM when the buffer cannot be had. Logs the path. */
sdc_status sdc_read_file(const char *path, const sdc_logger *log, char **out, size_t *len);
int sdc_file_exists(const char *path);
int sdc_dir_exists(const char *path);
/* dir + "/" + name into a malloc'd string. */
char *sdc_path_join(const char *dir, const char *name);

#endif
