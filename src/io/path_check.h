/* path_check.h - what is at a path, said plainly: a reader that needs a regular file (or a folder)
 * reports a FIFO, a device, a folder or a symlink loop as what it is, not as "missing". Nothing here
 * opens the path, so a FIFO never blocks. */
#ifndef SDC_IO_PATH_CHECK_H
#define SDC_IO_PATH_CHECK_H

#include "core/log.h"
#include "sdc.h"

/* "a regular file", "a folder", "a FIFO", "a character device", "a block device", "a socket", "a
 * symlink loop", "missing", or "unreadable (<reason>)" (a static string, or buf when the reason is
 * needed), following symlinks. */
const char *sdc_path_kind(const char *path, char *buf, size_t size);

/* The kind of file a stat mode says ("a regular file", "a symbolic link", "a folder", "a FIFO", ...). */
const char *sdc_mode_kind(unsigned mode);

/* SDC_OK when path is a regular file (want_dir 0) or a folder (want_dir 1), following symlinks.
 * Otherwise logs "<fn>: <what> <path> is missing" (SDC_ERR_NOT_FOUND) or "<fn>: <what> <path> is a FIFO,
 * not a regular file" (SDC_ERR_IO). */
sdc_status sdc_path_need(const char *path, int want_dir, const char *fn, const char *what, const sdc_logger *log);

#endif
