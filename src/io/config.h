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
sdc_status sdc_json_parse(const char *text, size_t len, const char *what, const sdc_logger *log,
                          cJSON **out);

sdc_status sdc_cfg_int(const cJSON *obj, const char *key, const char *what, const sdc_logger *log, int *out);
sdc_status sdc_cfg_float(const cJSON *obj, const char *key, const char *what, const sdc_logger *log,
                         double *out);
sdc_status sdc_cfg_bool(const cJSON *obj, const char *key, const char *what, const sdc_logger *log, int *out);
/* *out points into obj (valid while obj lives) */
sdc_status sdc_cfg_string(const cJSON *obj, const char *key, const char *what, const sdc_logger *log,
                          const char **out);
/* An int or a list of ints: fills up to max values into out, sets *n. A single int fills *n = 1. */
sdc_status sdc_cfg_int_list(const cJSON *obj, const char *key, const char *what, const sdc_logger *log,
                            int *out, int max, int *n);
/* A list of strings; pointers into obj. */
sdc_status sdc_cfg_string_list(const cJSON *obj, const char *key, const char *what, const sdc_logger *log,
                               const char **out, int max, int *n);

sdc_status sdc_cfg_int_or(const cJSON *obj, const char *key, int def, const char *what,
                          const sdc_logger *log, int *out);
sdc_status sdc_cfg_float_or(const cJSON *obj, const char *key, double def, const char *what,
                            const sdc_logger *log, double *out);
sdc_status sdc_cfg_bool_or(const cJSON *obj, const char *key, int def, const char *what,
                           const sdc_logger *log, int *out);
sdc_status sdc_cfg_string_or(const cJSON *obj, const char *key, const char *def, const char *what,
                             const sdc_logger *log, const char **out);

#endif
