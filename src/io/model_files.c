/* model_files.c - a diffusers model folder (or a single-file checkpoint, single_file.c): its JSON
 * configs, and one index over the weights of the text encoder, UNet and VAE, with every name
 * canonicalised and prefixed "<component>.". */
#include "io/model_files.h"

#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "io/config.h"
#include "io/name_map.h"
#include "io/path_check.h"

/* SDC_DATA_DIR (the installed <datadir>/sdc) and SDC_SOURCE_DATA_DIR (the source tree's data/) come
 * from CMakeLists.txt. */

static const struct {
    const char *name;
    const char *weights; /* base name of the weights file, without ".safetensors" */
    sdc_name_map_fn map;
} components[] = {
    [SDC_COMP_TEXT_ENCODER] = {"text_encoder", "model", sdc_name_map_text_encoder},
    [SDC_COMP_UNET] = {"unet", "diffusion_pytorch_model", NULL},
    [SDC_COMP_VAE] = {"vae", "diffusion_pytorch_model", sdc_name_map_vae},
};
_Static_assert(sizeof(components) / sizeof(components[0]) == SDC_COMP_COUNT, "component table");

const char *sdc_component_name(sdc_component c) { return (unsigned)c < SDC_COMP_COUNT ? components[c].name : "?"; }

static char *join2(const char *a, const char *b, const char *c) {
    char *ab = sdc_path_join(a, b);
    if (!ab || !c) return ab;
    char *abc = sdc_path_join(ab, c);
    free(ab);
    return abc;
}

static char *weights_name(sdc_component c, int fp16) {
    const char *base = components[c].weights, *ext = fp16 ? ".fp16.safetensors" : ".safetensors";
    char *s = malloc(strlen(base) + strlen(ext) + 1);
    if (s) {
        strcpy(s, base);
        strcat(s, ext);
    }
    return s;
}

/* Picks the weights file of component c in compdir by variant into *out. */
static sdc_status pick_weights(const char *compdir, sdc_component c, sdc_weight_variant variant, const sdc_logger *log,
                               char **out) {
    char *f32_name = weights_name(c, 0), *f16_name = weights_name(c, 1);
    char *f32 = f32_name ? sdc_path_join(compdir, f32_name) : NULL;
    char *f16 = f16_name ? sdc_path_join(compdir, f16_name) : NULL;
    free(f32_name);
    free(f16_name);
    sdc_status st = SDC_OK;
    *out = NULL;
    char kind[128];
    if (!f32 || !f16) {
        st = SDC_ERR_OOM;
    } else if (variant != SDC_VARIANT_FP16 && strcmp(sdc_path_kind(f32, kind, sizeof kind), "missing") != 0 &&
               !sdc_file_exists(f32)) {
        st = sdc_path_need(f32, 0, "sdc_model_files_open", "weights file", log);
    } else if (variant != SDC_VARIANT_F32 && !sdc_file_exists(f32) &&
               strcmp(sdc_path_kind(f16, kind, sizeof kind), "missing") != 0 && !sdc_file_exists(f16)) {
        st = sdc_path_need(f16, 0, "sdc_model_files_open", "weights file", log);
    } else if (variant != SDC_VARIANT_FP16 && sdc_file_exists(f32)) {
        *out = f32;
        f32 = NULL;
    } else if (variant != SDC_VARIANT_F32 && sdc_file_exists(f16)) {
        *out = f16;
        f16 = NULL;
    } else {
        if (variant == SDC_VARIANT_F32)
            SDC_LOGE(log, "sdc_model_files_open: missing weights file %s", f32);
        else if (variant == SDC_VARIANT_FP16)
            SDC_LOGE(log, "sdc_model_files_open: missing weights file %s", f16);
        else
            SDC_LOGE(log, "sdc_model_files_open: missing weights file %s (nor is there %s)", f32, f16);
        st = SDC_ERR_NOT_FOUND;
    }
    free(f32);
    free(f16);
    return st;
}

/* A required JSON file: a clear NOT_FOUND naming it, else whatever loading it gives. */
static sdc_status load_required(const char *path, const char *what, const sdc_logger *log, cJSON **out) {
    sdc_status st = sdc_path_need(path, 0, "sdc_model_files_open", what, log);
    return st == SDC_OK ? sdc_json_load(path, log, out) : st;
}

static sdc_status open_component(sdc_model_files *m, sdc_component c, sdc_weight_variant variant,
                                 const sdc_logger *log) {
    char *compdir = sdc_path_join(m->root, components[c].name);
    char *cfg = compdir ? sdc_path_join(compdir, "config.json") : NULL;
    sdc_status st = cfg ? SDC_OK : SDC_ERR_OOM;
    if (st == SDC_OK) st = sdc_path_need(compdir, 1, "sdc_model_files_open", "component folder", log);
    if (st == SDC_OK) st = load_required(cfg, "config", log, &m->config[c]);
    if (st == SDC_OK) st = pick_weights(compdir, c, variant, log, &m->weights_path[c]);
    if (st == SDC_OK) {
        char prefix[64];
        strcpy(prefix, components[c].name);
        strcat(prefix, ".");
        st = sdc_index_add_file(m->index, m->weights_path[c], prefix, components[c].map, NULL);
    }
    free(cfg);
    free(compdir);
    return st;
}

/* A diffusers folder: model_index.json, the three components, the optional scheduler and tokenizer. */
static sdc_status open_folder(sdc_model_files *m, const char *dir, sdc_weight_variant variant, const sdc_logger *log) {
    char *path = sdc_path_join(dir, "model_index.json");
    sdc_status st = path ? load_required(path, "model index", log, &m->model_index) : SDC_ERR_OOM;
    free(path);
    for (int c = 0; c < SDC_COMP_COUNT && st == SDC_OK; c++) st = open_component(m, (sdc_component)c, variant, log);

    /* optional parts: absent is fine, present but broken is not */
    path = st == SDC_OK ? join2(dir, "scheduler", "scheduler_config.json") : NULL;
    char kind[128];
    if (path && strcmp(sdc_path_kind(path, kind, sizeof kind), "missing") != 0)
        st = load_required(path, "scheduler config", log, &m->scheduler_config);
    free(path);
    path = st == SDC_OK ? sdc_path_join(dir, "tokenizer") : NULL;
    if (path && sdc_dir_exists(path)) {
        m->tokenizer_dir = path;
        path = NULL;
    }
    free(path);
    return st;
}

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
        SDC_LOGE(log, "sdc_model_files_open: missing config %s", path);
        st = SDC_ERR_NOT_FOUND;
    }
    free(path);
    return st;
}

/* The architecture a diffusers folder describes: its components' config.json files (required), its
 * scheduler config and model_index.json (optional). */
static sdc_status configs_from_dir(const char *dir, const sdc_logger *log, sdc_model_files *m) {
    if (!sdc_dir_exists(dir)) {
        SDC_LOGE(log, "sdc_model_files_open: config folder %s does not exist", dir);
        return SDC_ERR_NOT_FOUND;
    }
    sdc_status st = SDC_OK;
    for (int c = 0; c < SDC_COMP_COUNT && st == SDC_OK; c++)
        st = load_json(dir, sdc_component_name((sdc_component)c), "config.json", 1, log, &m->config[c]);
    if (st == SDC_OK) st = load_json(dir, "scheduler", "scheduler_config.json", 0, log, &m->scheduler_config);
    if (st == SDC_OK) st = load_json(dir, NULL, "model_index.json", 0, log, &m->model_index);
    return st;
}

/* A single-file checkpoint: its facts and the config folder's configs, weights_path[] = the file for
 * every component; it carries no tokenizer, so the one sdc ships stands in. */
static sdc_status open_single_file(sdc_model_files *m, const char *path, const char *config_dir,
                                   const sdc_logger *log) {
    m->single_file = 1;
    sdc_status st = config_dir ? configs_from_dir(config_dir, log, m) : SDC_OK;
    if (st == SDC_OK) st = sdc_sf_facts_read(path, log, &m->single);
    for (int c = 0; c < SDC_COMP_COUNT && st == SDC_OK; c++)
        if (!(m->weights_path[c] = strdup(path))) st = SDC_ERR_OOM;
    if (st == SDC_OK) {
        m->tokenizer_dir = sdc_data_path("clip-tokenizer");
        if (!m->tokenizer_dir)
            SDC_LOGW(log,
                     "sdc_model_files_open: the CLIP tokenizer sdc ships was not found in $SDC_DATA_DIR, %s or "
                     "%s; pass a tokenizer folder",
                     SDC_DATA_DIR, SDC_SOURCE_DATA_DIR);
    }
    return st;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

sdc_status sdc_model_files_open_ex(const char *path, const char *config_dir, sdc_weight_variant variant,
                                   const sdc_logger *log, sdc_model_files **out) {
    *out = NULL;
    if ((unsigned)variant > SDC_VARIANT_FP16) {
        SDC_LOGE(log, "sdc_model_files_open: invalid weight variant %d", (int)variant);
        return SDC_ERR_INVALID_ARG;
    }
    const int folder = sdc_dir_exists(path);
    if (!folder && !sdc_file_exists(path)) {
        char kind[128];
        const char *k = sdc_path_kind(path, kind, sizeof kind);
        if (strcmp(k, "missing") == 0) {
            SDC_LOGE(log, "sdc_model_files_open: model %s does not exist (neither a folder nor a file)", path);
            return SDC_ERR_NOT_FOUND;
        }
        SDC_LOGE(log, "sdc_model_files_open: model %s is %s, neither a folder nor a regular file", path, k);
        return SDC_ERR_IO;
    }
    if (folder && config_dir) {
        SDC_LOGE(log,
                 "sdc_model_files_open: %s is a diffusers folder; a config folder (%s) is only for "
                 "single-file checkpoints",
                 path, config_dir);
        return SDC_ERR_INVALID_ARG;
    }
    if (!folder && (ends_with(path, ".ckpt") || ends_with(path, ".pt") || ends_with(path, ".pth"))) {
        SDC_LOGE(log,
                 "sdc_model_files_open: %s: PyTorch pickle checkpoints are not supported (loading one can "
                 "run code); convert it to .safetensors",
                 path);
        return SDC_ERR_UNSUPPORTED;
    }
    sdc_model_files *m = calloc(1, sizeof *m);
    if (!m) return SDC_ERR_OOM;
    m->root = strdup(path);
    m->index = sdc_index_new(log);
    sdc_status st = m->root && m->index ? SDC_OK : SDC_ERR_OOM;
    if (st == SDC_OK) st = folder ? open_folder(m, path, variant, log) : open_single_file(m, path, config_dir, log);
    /* every weight a component holds is a float; an integer tensor would be converted silently */
    for (size_t i = 0; st == SDC_OK && i < sdc_index_count(m->index); i++)
        st = sdc_index_check_float(m->index, sdc_index_at(m->index, i));
    if (st != SDC_OK) {
        if (st == SDC_ERR_OOM) SDC_LOGE(log, "sdc_model_files_open: %s: out of memory", path);
        sdc_model_files_free(m);
        return st;
    }
    if (folder) {
        SDC_LOGI(log, "sdc_model_files_open: %s: %zu tensors in %d files", path, sdc_index_count(m->index),
                 sdc_index_file_count(m->index));
    } else {
        char groups[512];
        SDC_LOGI(log, "sdc_model_files_open: %s: single-file checkpoint of %zu tensors: %s", path,
                 sdc_sf_count(m->single), sdc_sf_groups(m->single, groups, sizeof groups));
    }
    *out = m;
    return SDC_OK;
}

sdc_status sdc_model_files_open(const char *dir, sdc_weight_variant variant, const sdc_logger *log,
                                sdc_model_files **out) {
    return sdc_model_files_open_ex(dir, NULL, variant, log, out);
}

void sdc_model_files_free(sdc_model_files *m) {
    if (!m) return;
    free(m->root);
    cJSON_Delete(m->model_index);
    for (int c = 0; c < SDC_COMP_COUNT; c++) {
        cJSON_Delete(m->config[c]);
        free(m->weights_path[c]);
    }
    cJSON_Delete(m->scheduler_config);
    sdc_sf_facts_free(m->single);
    free(m->tokenizer_dir);
    sdc_index_free(m->index);
    free(m);
}

char *sdc_data_path(const char *rel) {
    const char *const roots[] = {getenv("SDC_DATA_DIR"), SDC_DATA_DIR, SDC_SOURCE_DATA_DIR};
    for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
        if (!roots[i] || !*roots[i]) continue;
        char *p = sdc_path_join(roots[i], rel);
        if (p && (sdc_dir_exists(p) || sdc_file_exists(p))) return p;
        free(p);
    }
    return NULL;
}
