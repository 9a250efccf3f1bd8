/* image_io.c - the public PNG entry points, over io/png. */
#include <stdlib.h>

#include "io/png.h"
#include "sdc.h"

sdc_status sdc_image_load(const char *path, sdc_image **out, sdc_log_fn log_fn, void *log_user) {
    sdc_logger log = {log_fn, log_user, SDC_LOG_DEBUG};
    *out = NULL;
    sdc_image *img = calloc(1, sizeof *img);
    if (!img) return SDC_ERR_OOM;
    /* the header is checked against the largest size a job takes before anything is decoded */
    sdc_status st = sdc_png_read_max(path, 16384, 16384, &img->data, &img->width, &img->height, &log);
    if (st != SDC_OK) {
        free(img);
        return st;
    }
    img->channels = 3;
    *out = img;
    return SDC_OK;
}

sdc_status sdc_image_save(const sdc_image *img, const char *path, sdc_log_fn log_fn, void *log_user) {
    sdc_logger log = {log_fn, log_user, SDC_LOG_DEBUG};
    if (!img || !img->data || img->channels != 3) {
        SDC_LOGE(&log, "sdc_image_save: not an RGB image");
        return SDC_ERR_INVALID_ARG;
    }
    return sdc_png_write(path, img->data, img->width, img->height, "parameters", img->parameters, &log);
}
