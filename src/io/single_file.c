/* single_file.c - opening an LDM single-file checkpoint as if it were a diffusers folder: the
 * configs (from a config folder, or detected), and one index of the file's tensors under their
 * canonical "<component>.<diffusers name>". */
#include "io/single_file.h"

#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "io/config.h"

static sdc_status load_json(const char *dir, const char *sub, const char *file, int required, const sdc_logger *log,
                            cJSON **out) {
    char *d = sub ? sdc_path_join(dir, sub) : strdup(dir);
    char *path = d ? sdc_path_join(d, file) : NULL;
    free(d);
    if (!path) return SDC_ERR_OOM;
    sdc_status st = SDC_OK;
    if (sdc_file_exists(path)) {
        st = sdc_json_load(path, log, out);
    } else if (required) {
        SDC_LOGE(log, "sdc_single_file_open: missing config %s", path);
        st = SDC_ERR_NOT_FOUND;
    }
    free(path);
    return st;
}

/* The architecture a diffusers folder describes: its components' config.json files (required), its
 * scheduler config and model_index.json (SD 1.5's when absent). */
static sdc_status configs_from_dir(const char *dir, const sdc_logger *log, sdc_model_files *m) {
    if (!sdc_dir_exists(dir)) {
        SDC_LOGE(log, "sdc_single_file_open: config folder %s does not exist", dir);
        return SDC_ERR_NOT_FOUND;
    }
    sdc_status st = SDC_OK;
    for (int c = 0; c < SDC_COMP_COUNT && st == SDC_OK; c++)
        st = load_json(dir, sdc_component_name((sdc_component)c), "config.json", 1, log, &m->config[c]);
    if (st == SDC_OK) st = load_json(dir, "scheduler", "scheduler_config.json", 0, log, &m->scheduler_config);
    if (st == SDC_OK) st = load_json(dir, NULL, "model_index.json", 0, log, &m->model_index);
    return st;
}

/* The architecture detected from the file's tensor names and shapes. */
static sdc_status configs_detected(const char *path, const sdc_logger *log, sdc_model_files *m) {
    sdc_model_index *raw = sdc_index_new(log);
    if (!raw) return SDC_ERR_OOM;
    sdc_status st = sdc_index_add_file(raw, path, NULL, NULL, NULL);
    size_t n = sdc_index_count(raw);
    sdc_tensor_info *t = st == SDC_OK ? malloc(sizeof *t * (n ? n : 1)) : NULL;
    if (st == SDC_OK && !t) st = SDC_ERR_OOM;
    for (size_t i = 0; st == SDC_OK && i < n; i++) t[i] = *sdc_index_at(raw, i);
    sdc_sf_arch a;
    if (st == SDC_OK) st = sdc_single_file_detect(t, n, log, &a);
    free(t);
    sdc_index_free(raw);
    if (st != SDC_OK) return st;
    m->config[SDC_COMP_TEXT_ENCODER] = sdc_sf_text_encoder_config(&a);
    m->config[SDC_COMP_UNET] = sdc_sf_unet_config(&a);
    m->config[SDC_COMP_VAE] = sdc_sf_vae_config(&a);
    m->scheduler_config = sdc_sf_scheduler_config();
    for (int c = 0; c < SDC_COMP_COUNT; c++)
        if (!m->config[c]) st = SDC_ERR_OOM;
    return m->scheduler_config ? st : SDC_ERR_OOM;
}

/* Every component must have tensors in the index. */
static sdc_status check_components(const char *path, const sdc_logger *log, const sdc_model_files *m) {
    size_t count[SDC_COMP_COUNT] = {0};
    for (size_t i = 0; i < sdc_index_count(m->index); i++) {
        const char *name = sdc_index_at(m->index, i)->name;
        for (int c = 0; c < SDC_COMP_COUNT; c++) {
            const char *cn = sdc_component_name((sdc_component)c);
            size_t l = strlen(cn);
            if (strncmp(name, cn, l) == 0 && name[l] == '.') count[c]++;
        }
    }
    static const char *const ldm_prefix[SDC_COMP_COUNT] = {
        [SDC_COMP_TEXT_ENCODER] = "cond_stage_model.transformer.",
        [SDC_COMP_UNET] = "model.diffusion_model.",
        [SDC_COMP_VAE] = "first_stage_model.",
    };
    for (int c = 0; c < SDC_COMP_COUNT; c++) {
        if (count[c] == 0) {
            SDC_LOGE(log, "sdc_single_file_open: %s has no %s (no %s* tensors)", path,
                     sdc_component_name((sdc_component)c), ldm_prefix[c]);
            return SDC_ERR_NOT_FOUND;
        }
    }
    return SDC_OK;
}

sdc_status sdc_single_file_open(const char *path, const char *config_dir, const sdc_logger *log, sdc_model_files *m) {
    sdc_status st = config_dir ? configs_from_dir(config_dir, log, m) : configs_detected(path, log, m);
    if (st == SDC_OK && !m->scheduler_config) {
        m->scheduler_config = sdc_sf_scheduler_config();
        if (!m->scheduler_config) st = SDC_ERR_OOM;
    }
    if (st == SDC_OK && !m->model_index) {
        m->model_index = sdc_sf_model_index(m->scheduler_config);
        if (!m->model_index) st = SDC_ERR_OOM;
    }
    sdc_ldm_map *map = st == SDC_OK ? malloc(sizeof *map) : NULL;
    if (st == SDC_OK && !map) st = SDC_ERR_OOM;
    if (st == SDC_OK) st = sdc_sf_ldm_map_from_configs(m->config[SDC_COMP_UNET], m->config[SDC_COMP_VAE], log, map);
    if (st == SDC_OK) st = sdc_index_add_file(m->index, path, NULL, sdc_ldm_name_map, map);
    free(map);
    if (st == SDC_OK) st = check_components(path, log, m);
    for (int c = 0; c < SDC_COMP_COUNT && st == SDC_OK; c++) {
        m->weights_path[c] = strdup(path);
        if (!m->weights_path[c]) st = SDC_ERR_OOM;
    }
    return st;
}
