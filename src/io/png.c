#include "io/png.h"

#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/atomic_file.h"
#include "io/path_check.h"

/* Everything that changes between setjmp and a libpng error lives in this heap block, so nothing
 * the error path reads is an automatic variable changed after setjmp (C11 7.13.2.1). */
typedef struct png_job {
    const sdc_logger *log;
    const char *what;
    const char *path;
    sdc_status status; /* returned when libpng fails */
    char msg[256];     /* libpng's error message */
    uint8_t *pixels;   /* reading: the output buffer */
    png_bytep *rows;
} png_job;

static void on_error(png_structp png, png_const_charp msg) {
    png_job *job = png_get_error_ptr(png);
    if (strcmp(msg, "Read Error") == 0) /* libpng's words for a short read */
        snprintf(job->msg, sizeof job->msg, "truncated file (libpng: %s)", msg);
    else
        snprintf(job->msg, sizeof job->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
    png_job *job = png_get_error_ptr(png);
    SDC_LOGD(job->log, "%s: %s: libpng warning: %s", job->what, job->path, msg);
}

/* ---- writing ---- */

/* Decodes one UTF-8 sequence at s; returns its length (1..4) and sets *cp, or 0 when invalid
 * (overlong, surrogate, beyond U+10FFFF, truncated). */
static int utf8_decode(const unsigned char *s, uint32_t *cp) {
    unsigned char c = s[0];
    int len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

/* Checks text is UTF-8. Sets *latin1 to a malloc'd Latin-1 copy when every code point is
 * <= U+00FF, else NULL (the text needs iTXt). Returns SDC_OK, SDC_ERR_INVALID_ARG or SDC_ERR_OOM. */
static sdc_status text_to_latin1(const char *text, char **latin1) {
    *latin1 = NULL;
    const unsigned char *s = (const unsigned char *)text;
    int fits = 1;
    size_t n = 0;
    for (size_t i = 0; s[i];) {
        uint32_t cp;
        int len = utf8_decode(s + i, &cp);
        if (!len) return SDC_ERR_INVALID_ARG;
        if (cp > 0xFF) fits = 0;
        i += (size_t)len;
        n++;
    }
    if (!fits) return SDC_OK;
    char *out = malloc(n + 1);
    if (!out) return SDC_ERR_OOM;
    size_t k = 0;
    for (size_t i = 0; s[i];) {
        uint32_t cp;
        i += (size_t)utf8_decode(s + i, &cp);
        out[k++] = (char)cp;
    }
    out[k] = 0;
    *latin1 = out;
    return SDC_OK;
}

/* PNG keywords: 1-79 characters, here printable ASCII without leading, trailing or double spaces. */
static int key_valid(const char *key) {
    size_t n = strlen(key);
    if (n < 1 || n > 79 || key[0] == ' ' || key[n - 1] == ' ') return 0;
    for (size_t i = 0; i < n; i++) {
        if (key[i] < 32 || key[i] > 126) return 0;
        if (key[i] == ' ' && key[i + 1] == ' ') return 0;
    }
    return 1;
}

sdc_status sdc_png_write(const char *path, const uint8_t *rgb, int w, int h, const char *key, const char *text,
                         const sdc_logger *log) {
    if (!path || !rgb || w < 1 || h < 1 || w > SDC_PNG_MAX_DIM || h > SDC_PNG_MAX_DIM) {
        SDC_LOGE(log, "png_write: bad arguments (%dx%d image)", w, h);
        return SDC_ERR_INVALID_ARG;
    }
    if (!key != !text || (key && !key_valid(key))) {
        SDC_LOGE(log, "png_write: %s: text chunk needs a key of 1-79 printable ASCII characters", path);
        return SDC_ERR_INVALID_ARG;
    }
    char *latin1 = NULL;
    if (text) {
        sdc_status st = text_to_latin1(text, &latin1);
        if (st != SDC_OK) {
            SDC_LOGE(log, "png_write: %s: %s", path,
                     st == SDC_ERR_OOM ? "out of memory" : "text chunk is not valid UTF-8");
            return st;
        }
    }
    png_job *job = calloc(1, sizeof *job);
    png_bytep *rows = malloc((size_t)h * sizeof *rows);
    if (!job || !rows) {
        free(job);
        free(rows);
        free(latin1);
        SDC_LOGE(log, "png_write: out of memory");
        return SDC_ERR_OOM;
    }
    for (int y = 0; y < h; y++) rows[y] = (png_bytep)(uintptr_t)(rgb + (size_t)y * (size_t)w * 3);
    job->log = log;
    job->what = "png_write";
    job->path = path;
    job->status = SDC_ERR_IO;

    sdc_atomic_file af;
    sdc_status st = sdc_atomic_open(&af, path, "png_write", log);
    if (st != SDC_OK) {
        free(job);
        free(rows);
        free(latin1);
        return st;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, job, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        sdc_atomic_abort(&af);
        free(job);
        free(rows);
        free(latin1);
        SDC_LOGE(log, "png_write: out of memory");
        return SDC_ERR_OOM;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        sdc_atomic_abort(&af);
        SDC_LOGE(log, "png_write: cannot write %s: %s", path, job->msg);
        st = job->status;
        free(job);
        free(rows);
        free(latin1);
        return st;
    }
    png_init_io(png, af.f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (text) {
        png_text t;
        memset(&t, 0, sizeof t);
        t.key = (png_charp)(uintptr_t)key;
        if (latin1) {
            t.compression = PNG_TEXT_COMPRESSION_NONE; /* tEXt */
            t.text = latin1;
        } else {
            t.compression = PNG_ITXT_COMPRESSION_NONE; /* iTXt, UTF-8 */
            t.text = (png_charp)(uintptr_t)text;
        }
        t.text_length = strlen(t.text);
        png_set_text(png, info, &t, 1);
    }
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(job);
    free(rows);
    free(latin1);
    return sdc_atomic_commit(&af, "png_write", log);
}

/* ---- reading ---- */

/* The body of sdc_png_read between setjmp and the end; libpng errors longjmp out of it. */
static void read_body(png_structp png, png_infop info, png_job *job, int max_w, int max_h, int *w_out, int *h_out) {
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if (w > (png_uint_32)max_w || h > (png_uint_32)max_h) { /* before anything is decoded or allocated */
        job->status = SDC_ERR_INVALID_ARG;
        snprintf(job->msg, sizeof job->msg, "the image is %lux%lu, larger than the %dx%d the caller can use",
                 (unsigned long)w, (unsigned long)h, max_w, max_h);
        png_longjmp(png, 1);
    }
    int depth = png_get_bit_depth(png, info), type = png_get_color_type(png, info);
    if (depth == 16) png_set_strip_16(png); /* PIL keeps the high byte */
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (type == PNG_COLOR_TYPE_GRAY || type == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    png_set_strip_alpha(png); /* also palette transparency */
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8 ||
        png_get_rowbytes(png, info) != (size_t)w * 3)
        png_error(png, "unexpected pixel layout after conversion to 8-bit RGB");
    job->pixels = malloc((size_t)w * h * 3);
    job->rows = malloc((size_t)h * sizeof *job->rows);
    if (!job->pixels || !job->rows) {
        job->status = SDC_ERR_OOM;
        png_error(png, "out of memory");
    }
    for (png_uint_32 y = 0; y < h; y++) job->rows[y] = job->pixels + (size_t)y * w * 3;
    png_read_image(png, job->rows);
    png_read_end(png, NULL);
    *w_out = (int)w;
    *h_out = (int)h;
}

/* Opens path for reading without blocking on a FIFO; anything but a regular file is refused. */
static FILE *open_regular(const char *path, const sdc_logger *log, sdc_status *st) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        SDC_LOGE(log, "png_read: cannot open %s: %s", path, strerror(e));
        *st = e == ENOENT ? SDC_ERR_NOT_FOUND : SDC_ERR_IO;
        return NULL;
    }
    struct stat sb;
    FILE *f = NULL;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        char kind[128];
        SDC_LOGE(log, "png_read: %s is %s, not a regular file", path, sdc_path_kind(path, kind, sizeof kind));
        *st = SDC_ERR_IO;
    } else if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0 || !(f = fdopen(fd, "rb"))) {
        SDC_LOGE(log, "png_read: cannot open %s: %s", path, strerror(errno));
        *st = SDC_ERR_IO;
    }
    if (!f) close(fd);
    return f;
}

sdc_status sdc_png_read(const char *path, uint8_t **rgb, int *w, int *h, const sdc_logger *log) {
    return sdc_png_read_max(path, SDC_PNG_MAX_DIM, SDC_PNG_MAX_DIM, rgb, w, h, log);
}

sdc_status sdc_png_read_max(const char *path, int max_w, int max_h, uint8_t **rgb, int *w, int *h,
                            const sdc_logger *log) {
    *rgb = NULL;
    *w = *h = 0;
    if (max_w < 1 || max_h < 1 || max_w > SDC_PNG_MAX_DIM || max_h > SDC_PNG_MAX_DIM) {
        SDC_LOGE(log, "png_read: bad size limit %dx%d (1 to %d each)", max_w, max_h, SDC_PNG_MAX_DIM);
        return SDC_ERR_INVALID_ARG;
    }
    sdc_status ost = SDC_OK;
    FILE *f = open_regular(path, log, &ost);
    if (!f) return ost;
    unsigned char sig[8];
    if (fread(sig, 1, 8, f) != 8 || png_sig_cmp(sig, 0, 8) != 0) {
        fclose(f);
        SDC_LOGE(log, "png_read: %s is not a PNG file", path);
        return SDC_ERR_FORMAT;
    }
    png_job *job = calloc(1, sizeof *job);
    png_structp png = job ? png_create_read_struct(PNG_LIBPNG_VER_STRING, job, on_error, on_warning) : NULL;
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        free(job);
        fclose(f);
        SDC_LOGE(log, "png_read: out of memory");
        return SDC_ERR_OOM;
    }
    job->log = log;
    job->what = "png_read";
    job->path = path;
    job->status = SDC_ERR_FORMAT;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        SDC_LOGE(log, "png_read: %s: %s", path, job->msg);
        sdc_status st = job->status;
        free(job->pixels);
        free(job->rows);
        free(job);
        return st;
    }
    png_set_user_limits(png, SDC_PNG_MAX_DIM, SDC_PNG_MAX_DIM);
    png_set_chunk_malloc_max(png, 8u << 20); /* ancillary chunks (text, profiles): no decompression bombs */
    png_init_io(png, f);
    png_set_sig_bytes(png, 8);
    read_body(png, info, job, max_w, max_h, w, h);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    *rgb = job->pixels;
    free(job->rows);
    free(job);
    return SDC_OK;
}
