/* config.h - reading diffusers/transformers config.json files (cJSON).
 * Getters log "<what>: missing key 'x'" and return SDC_ERR_NOT_FOUND, or SDC_ERR_FORMAT for a value of
 * the wrong type. The *_or variants return a default for an absent (or null) key but still reject a
 * wrong type. */
#ifndef SDC_IO_CONFIG_H
#define SDC_IO_CONFIG_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "core/log.h"
#include "sdc.h"

/* Reads and parses a JSON file. SDC_ERR_NOT_FOUND if absent, SDC_ERR_IO if unreadable, SDC_ERR_FORMAT
 * if not JSON (the message gives the position). */
sdc_status sdc_json_load(const char *path, const sdc_logger *log, cJSON **out);
sdc_status sdc_json_parse(const char *text, size_t len, const char *what, const sdc_logger *log, cJSON **out);

sdc_status sdc_cfg_int(const cJSON *obj, const char *key, const char *what, const sdc_logger *log, int *out);
sdc_status sdc_cfg_float(const cJSON *obj, const char *key, const char *what, const sdc_logger *log, double *out);
sdc_status sdc_cfg_bool(const cJSON *obj, const char *key, const char *what, const sdc_logger *log, int *out);
/* *out points into obj (valid while obj lives) */
sdc_status sdc_cfg_string(const cJSON *obj, const char *key, const char *what, const sdc_logger *log, const char **out);
/* An int or a list of ints: fills up to max values into out, sets *n. A single int fills *n = 1. */
sdc_status sdc_cfg_int_list(const cJSON *obj, const char *key, const char *what, const sdc_logger *log, int *out,
                            int max, int *n);
/* A list of strings; pointers into obj. */
sdc_status sdc_cfg_string_list(const cJSON *obj, const char *key, const char *what, const sdc_logger *log,
                               const char **out, int max, int *n);

sdc_status sdc_cfg_int_or(const cJSON *obj, const char *key, int def, const char *what, const sdc_logger *log,
                          int *out);
sdc_status sdc_cfg_float_or(const cJSON *obj, const char *key, double def, const char *what, const sdc_logger *log,
                            double *out);
sdc_status sdc_cfg_bool_or(const cJSON *obj, const char *key, int def, const char *what, const sdc_logger *log,
                           int *out);
sdc_status sdc_cfg_string_or(const cJSON *obj, const char *key, const char *def, const char *what,
                             const sdc_logger *log, const char **out);

/* Bounds on architecture numbers, checked before any work or allocation proportional to them. Generous
 * next to real models (SD 1.x/2.x, SDXL: channels up to 2048, transformer_layers_per_block 10, OpenCLIP
 * bigG: 32 layers, hidden 1280, 20 heads, vocab 49408; T5-XXL: d_ff 10240; Flux: hidden 3072). */
#define SDC_CFG_MAX_CHANNELS 16384        /* block channels, hidden sizes, cross-attention width */
#define SDC_CFG_MAX_WIDTH 65536           /* MLP widths, embedding sizes */
#define SDC_CFG_MAX_IO_CHANNELS 1024      /* image/latent channels in and out */
#define SDC_CFG_MAX_LAYERS 256            /* transformer layers of a text encoder */
#define SDC_CFG_MAX_TRANSFORMER_LAYERS 64 /* BasicTransformerBlocks per UNet block */
#define SDC_CFG_MAX_HEADS 1024
#define SDC_CFG_MAX_GROUPS 1024 /* GroupNorm groups */
#define SDC_CFG_MAX_VOCAB (1 << 20)
#define SDC_CFG_MAX_POSITIONS 65536
#define SDC_CFG_MAX_SAMPLE_SIZE 16384

/* v must lie in [lo, hi]. Otherwise logs "<fn>: <key> = <v> is outside [lo, hi]" and returns
 * SDC_ERR_FORMAT (below lo: not a valid model) or SDC_ERR_UNSUPPORTED (above hi: larger than sdc
 * handles). */
sdc_status sdc_cfg_bound(const char *fn, const char *key, long long v, long long lo, long long hi,
                         const sdc_logger *log);

#endif
