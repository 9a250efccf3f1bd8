/* png.h - 8-bit RGB images to and from PNG files (libpng).
 *
 * Writing is atomic: the image goes to a temporary file in the same directory that is renamed over
 * path only once complete, so a failed or interrupted run never leaves a half-written image.
 * One text chunk can ride along (A1111 keeps generation settings under the key "parameters"):
 * tEXt when the UTF-8 text is representable in Latin-1 (it is stored converted), iTXt otherwise,
 * the same choice PIL makes.
 *
 * Reading accepts every PNG colour type and bit depth and returns 8-bit RGB the way PIL's
 * Image.convert("RGB") does: palettes expanded (transparency ignored), gray replicated, alpha
 * dropped (not composited), 16-bit samples cut to their high byte.
 *
 * Neither function keeps state; both are safe to call from several threads on different files. */
#ifndef SDC_IO_PNG_H
#define SDC_IO_PNG_H

#include <stdint.h>

#include "core/log.h"
#include "sdc.h"

/* Largest width or height either direction accepts. */
#define SDC_PNG_MAX_DIM 32768

/* rgb: h rows of w pixels, 3 bytes each, top row first. key/text: an optional text chunk (both
 * NULL, or key of 1..79 printable Latin-1 characters and text valid UTF-8).
 * SDC_ERR_INVALID_ARG for bad sizes, key or text; SDC_ERR_IO when path cannot be written (nothing
 * is left behind). */
sdc_status sdc_png_write(const char *path, const uint8_t *rgb, int w, int h, const char *key, const char *text,
                         const sdc_logger *log);

/* *rgb receives a malloc'd h*w*3 buffer (caller frees). SDC_ERR_NOT_FOUND / SDC_ERR_IO when the
 * file cannot be opened; SDC_ERR_FORMAT for a file that is not a PNG, is truncated or corrupt, or is
 * larger than SDC_PNG_MAX_DIM; SDC_ERR_OOM. On error *rgb is NULL. */
sdc_status sdc_png_read(const char *path, uint8_t **rgb, int *w, int *h, const sdc_logger *log);
/* sdc_png_read for a caller that can use at most max_w x max_h (each 1..SDC_PNG_MAX_DIM): a larger
 * header is SDC_ERR_INVALID_ARG, logged with both sizes, before any pixel is decoded or allocated.
 * Both functions open without blocking and refuse anything but a regular file (a FIFO, a device, a
 * folder: SDC_ERR_IO, named in the message). */
sdc_status sdc_png_read_max(const char *path, int max_w, int max_h, uint8_t **rgb, int *w, int *h,
                            const sdc_logger *log);

#endif
