/* model_files.c - a diffusers model folder (or a single-file checkpoint, single_file.c): its JSON
 * configs, and one index over the weights of the components a family uses, with every name
 * canonicalised and prefixed "<component>.". */
#include "io/model_files.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "io/config.h"
#include "io/name_map.h"
#include "io/path_check.h"
#include "io/shard_index.h"

/* SDC_DATA_DIR (the installed <datadir>/sdc) and SDC_SOURCE_DATA_DIR (the source tree's data/) come
 * from CMakeLists.txt. */

/* The weights file base name of a part (without ".safetensors"): transformers models are "model",
 * diffusers models "diffusion_pytorch_model". The name map for its tensors' variant spellings. */
static const char *weights_base(const char *part) {
    return strncmp(part, "text_encoder", 12) == 0 ? "model" : "diffusion_pytorch_model";
}

/* The name map for a part's tensors, by what its config says it is: a CLIP text model (transformers 5
 * drops "text_model."), an AutoencoderKL (old attention names); none for the rest (T5, UNet, ...). */
static sdc_name_map_fn part_map(const cJSON *config) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(config, "model_type");
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(config, "_class_name");
    if (cJSON_IsString(type) && strcmp(type->valuestring, "clip_text_model") == 0) return sdc_name_map_text_encoder;
    if (cJSON_IsString(cls) && strcmp(cls->valuestring, "AutoencoderKL") == 0) return sdc_name_map_vae;
    return NULL;
}

static char *join2(const char *a, const char *b, const char *c) {
    char *ab = sdc_path_join(a, b);
    if (!ab || !c) return ab;
    char *abc = sdc_path_join(ab, c);
    free(ab);
    return abc;
}

static char *weights_name(const char *part, int fp16) {
    const char *base = weights_base(part), *ext = fp16 ? ".fp16.safetensors" : ".safetensors";
    char *s = malloc(strlen(base) + strlen(ext) + 1);
    if (s) {
        strcpy(s, base);
        strcat(s, ext);
    }
    return s;
}

/* path + ".index.json" when that file exists (a sharded checkpoint: io/shard_index.h), else NULL. */
static char *shard_index_of(const char *path) {
    const size_t n = strlen(path);
    char *s = malloc(n + sizeof ".index.json");
    if (s) {
        memcpy(s, path, n);
        memcpy(s + n, ".index.json", sizeof ".index.json");
        if (!sdc_file_exists(s)) {
            free(s);
            s = NULL;
        }
    }
    return s;
}

/* Picks the weights file of part in compdir by variant into *out: the single file, or else the shard index
 * of a sharded checkpoint (f32 before fp16 as for single files). */
static sdc_status pick_weights(const char *compdir, const char *part, sdc_weight_variant variant, const sdc_logger *log,
                               char **out) {
    char *f32_name = weights_name(part, 0), *f16_name = weights_name(part, 1);
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
    } else if ((variant != SDC_VARIANT_FP16 && (*out = shard_index_of(f32))) ||
               (variant != SDC_VARIANT_F32 && (*out = shard_index_of(f16)))) {
        /* sharded */
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

/* The part named name, NULL if none. */
static sdc_model_part *find_part(const sdc_model_files *m, const char *name) {
    for (int i = 0; i < m->n_parts; i++)
        if (strcmp(m->parts[i].name, name) == 0) return (sdc_model_part *)&m->parts[i];
    return NULL;
}

const cJSON *sdc_model_files_config(const sdc_model_files *m, const char *part) {
    const sdc_model_part *p = find_part(m, part);
    return p ? p->config : NULL;
}

char *sdc_model_files_subdir(const sdc_model_files *m, const char *name) {
    if (m->single_file) return NULL;
    char *path = sdc_path_join(m->root, name);
    if (path && sdc_dir_exists(path)) return path;
    free(path);
    return NULL;
}

/* Indexes part's weights in dir/part (chosen by m->variant) under "<part>."; p: its part (with config). */
/* Indexes a weights file, or each shard a shard index names (*.index.json). */
static sdc_status add_weights(sdc_model_index *idx, const char *weights, const char *prefix, sdc_name_map_fn map,
                              const sdc_logger *log) {
    const size_t n = strlen(weights);
    if (n < 11 || strcmp(weights + n - 11, ".index.json") != 0)
        return sdc_index_add_file(idx, weights, prefix, map, NULL);
    char **shards = NULL;
    int n_shards = 0;
    sdc_status st = sdc_shard_list(weights, log, &shards, &n_shards);
    for (int i = 0; st == SDC_OK && i < n_shards; i++) st = sdc_index_add_file(idx, shards[i], prefix, map, NULL);
    sdc_shard_list_free(shards, n_shards);
    return st;
}

static sdc_status index_part_dir(sdc_model_files *m, const char *dir, sdc_model_part *p, const char *part,
                                 const sdc_logger *log) {
    char *compdir = sdc_path_join(dir, part);
    char *cfg = compdir ? sdc_path_join(compdir, "config.json") : NULL;
    sdc_status st = cfg ? SDC_OK : SDC_ERR_OOM;
    if (st == SDC_OK) st = sdc_path_need(compdir, 1, "sdc_model_files_open", "component folder", log);
    if (st == SDC_OK && !p) st = sdc_path_need(cfg, 0, "sdc_model_files_open", "config", log);
    if (st == SDC_OK && !p) { /* the folder has a config.json now: it appeared since the model was opened */
        SDC_LOGE(log, "sdc_model_files_open: %s appeared after the model was opened", cfg);
        st = SDC_ERR_IO;
    }
    char *weights = NULL;
    if (st == SDC_OK) st = pick_weights(compdir, part, m->variant, log, &weights);
    size_t first = sdc_index_count(m->index);
    if (st == SDC_OK) {
        char prefix[SDC_MAX_PART_NAME + 2];
        snprintf(prefix, sizeof prefix, "%s.", part);
        st = add_weights(m->index, weights, prefix, part_map(p->config), log);
    }
    /* every weight a component holds is a float; an integer tensor would be converted silently */
    for (size_t i = first; st == SDC_OK && i < sdc_index_count(m->index); i++)
        st = sdc_index_check_float(m->index, sdc_index_at(m->index, i));
    if (st == SDC_OK) {
        free(p->weights_path);
        p->weights_path = weights;
        weights = NULL;
        SDC_LOGD(log, "sdc_model_files_use: %s: %zu tensors from %s", part, sdc_index_count(m->index) - first,
                 p->weights_path);
    } else if (st == SDC_ERR_OOM) {
        SDC_LOGE(log, "sdc_model_files_use: %s: out of memory", part);
    }
    free(weights);
    free(cfg);
    free(compdir);
    return st;
}

sdc_status sdc_model_files_use(sdc_model_files *m, const char *part, const sdc_logger *log) {
    if (m->single_file) return SDC_OK;
    sdc_model_part *p = find_part(m, part);
    if (p && p->weights_path) return SDC_OK; /* indexed already */
    return index_part_dir(m, m->root, p, part, log);
}

sdc_status sdc_model_files_use_config(sdc_model_files *m, const char *part, const sdc_logger *log) {
    if (!m->single_file) return sdc_model_files_use(m, part, log);
    sdc_model_part *p = find_part(m, part);
    if (!m->config_dir || !p) {
        if (!m->config_dir)
            SDC_LOGE(log, "sdc_model_files_use: %s holds no %s and no config folder was given to take it from", m->root,
                     part);
        else
            SDC_LOGE(log, "sdc_model_files_use: the config folder %s has no %s/config.json", m->config_dir, part);
        return SDC_ERR_NOT_FOUND;
    }
    if (p->weights_path && strcmp(p->weights_path, m->root) != 0) return SDC_OK; /* indexed already */
    return index_part_dir(m, m->config_dir, p, part, log);
}

const char *sdc_model_files_config_dir(const sdc_model_files *m) { return m->single_file ? m->config_dir : m->root; }

sdc_status sdc_model_files_add_file(sdc_model_files *m, const char *role, const char *path, const sdc_logger *log) {
    for (int i = 0; i < m->n_files; i++)
        if (strcmp(m->files[i].role, role) == 0) {
            SDC_LOGE(log, "sdc_model_open: the %s file is given twice (%s, %s)", role, m->files[i].path, path);
            return SDC_ERR_INVALID_ARG;
        }
    if (m->n_files == SDC_MAX_ROLE_FILES) {
        SDC_LOGE(log, "sdc_model_open: more than %d component files", SDC_MAX_ROLE_FILES);
        return SDC_ERR_INVALID_ARG;
    }
    if (!sdc_file_exists(path)) {
        char kind[128];
        SDC_LOGE(log, "sdc_model_open: the %s file %s is %s, not a file", role, path,
                 sdc_path_kind(path, kind, sizeof kind));
        return SDC_ERR_NOT_FOUND;
    }
    sdc_model_role_file *f = &m->files[m->n_files];
    f->role = strdup(role);
    f->path = strdup(path);
    f->used = 0;
    m->n_files++; /* freed with m */
    return f->role && f->path ? SDC_OK : SDC_ERR_OOM;
}

const char *sdc_model_files_file(sdc_model_files *m, const char *role) {
    for (int i = 0; i < m->n_files; i++)
        if (strcmp(m->files[i].role, role) == 0) {
            m->files[i].used = 1;
            return m->files[i].path;
        }
    return NULL;
}

sdc_status sdc_model_files_check_used(const sdc_model_files *m, const char *family, const sdc_logger *log) {
    for (int i = 0; i < m->n_files; i++)
        if (!m->files[i].used) {
            SDC_LOGE(log, "sdc_model_open: a %s file (%s) was given, but the %s family takes no separate %s file",
                     m->files[i].role, m->files[i].path, family, m->files[i].role);
            return SDC_ERR_UNSUPPORTED;
        }
    return SDC_OK;
}

sdc_status sdc_model_files_use_all(sdc_model_files *m, const sdc_logger *log) {
    sdc_status st = SDC_OK;
    for (int i = 0; i < m->n_parts && st == SDC_OK; i++) st = sdc_model_files_use(m, m->parts[i].name, log);
    return st;
}

static int part_cmp(const void *a, const void *b) {
    return strcmp(((const sdc_model_part *)a)->name, ((const sdc_model_part *)b)->name);
}

/* Every subfolder of dir that holds a config.json becomes a part (its config loaded), sorted by name. */
static sdc_status load_parts(sdc_model_files *m, const char *dir, const sdc_logger *log) {
    DIR *d = opendir(dir);
    if (!d) {
        SDC_LOGE(log, "sdc_model_files_open: cannot list %s", dir);
        return SDC_ERR_IO;
    }
    sdc_status st = SDC_OK;
    for (struct dirent *e; st == SDC_OK && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char *cfg = join2(dir, e->d_name, "config.json");
        if (!cfg) {
            st = SDC_ERR_OOM;
            break;
        }
        char kind[128];
        if (strcmp(sdc_path_kind(cfg, kind, sizeof kind), "missing") != 0) {
            if (strlen(e->d_name) > SDC_MAX_PART_NAME) {
                SDC_LOGE(log, "sdc_model_files_open: component folder name %s is longer than %d bytes", e->d_name,
                         SDC_MAX_PART_NAME);
                st = SDC_ERR_UNSUPPORTED;
            } else if (m->n_parts == SDC_MAX_PARTS) {
                SDC_LOGE(log, "sdc_model_files_open: %s has more than %d component folders", dir, SDC_MAX_PARTS);
                st = SDC_ERR_UNSUPPORTED;
            } else {
                sdc_model_part *p = &m->parts[m->n_parts];
                st = load_required(cfg, "config", log, &p->config);
                if (st == SDC_OK && !(p->name = strdup(e->d_name))) st = SDC_ERR_OOM;
                if (st == SDC_OK || p->config || p->name) m->n_parts++; /* freed with m */
            }
        }
        free(cfg);
    }
    closedir(d);
    if (st == SDC_OK) qsort(m->parts, (size_t)m->n_parts, sizeof m->parts[0], part_cmp);
    return st;
}

/* A diffusers folder: model_index.json, the components' configs, the optional scheduler and tokenizer. */
static sdc_status open_folder(sdc_model_files *m, const char *dir, const sdc_logger *log) {
    char *path = sdc_path_join(dir, "model_index.json");
    sdc_status st = path ? load_required(path, "model index", log, &m->model_index) : SDC_ERR_OOM;
    free(path);
    if (st == SDC_OK) st = load_parts(m, dir, log);

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

/* The architecture a diffusers folder describes: its components' config.json files (the family that
 * claims the file says which it needs), its scheduler config and model_index.json (optional). */
static sdc_status configs_from_dir(const char *dir, const sdc_logger *log, sdc_model_files *m) {
    if (!sdc_dir_exists(dir)) {
        SDC_LOGE(log, "sdc_model_files_open: config folder %s does not exist", dir);
        return SDC_ERR_NOT_FOUND;
    }
    sdc_status st = load_parts(m, dir, log);
    if (st == SDC_OK) st = load_json(dir, "scheduler", "scheduler_config.json", 0, log, &m->scheduler_config);
    if (st == SDC_OK) st = load_json(dir, NULL, "model_index.json", 0, log, &m->model_index);
    return st;
}

/* A single-file checkpoint: its facts and the config folder's configs, each part's weights_path = the
 * file; it carries no tokenizer, so the one sdc ships stands in. */
static sdc_status open_single_file(sdc_model_files *m, const char *path, const char *config_dir,
                                   const sdc_logger *log) {
    m->single_file = 1;
    sdc_status st = SDC_OK;
    if (config_dir && !(m->config_dir = strdup(config_dir))) st = SDC_ERR_OOM;
    if (st == SDC_OK && config_dir) st = configs_from_dir(config_dir, log, m);
    if (st == SDC_OK) st = sdc_sf_facts_read(path, log, &m->single);
    for (int i = 0; i < m->n_parts && st == SDC_OK; i++)
        if (!(m->parts[i].weights_path = strdup(path))) st = SDC_ERR_OOM;
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
    m->variant = variant;
    sdc_status st = m->root && m->index ? SDC_OK : SDC_ERR_OOM;
    if (st == SDC_OK) st = folder ? open_folder(m, path, log) : open_single_file(m, path, config_dir, log);
    if (st != SDC_OK) {
        if (st == SDC_ERR_OOM) SDC_LOGE(log, "sdc_model_files_open: %s: out of memory", path);
        sdc_model_files_free(m);
        return st;
    }
    if (folder) {
        SDC_LOGI(log, "sdc_model_files_open: %s: diffusers folder of %d components", path, m->n_parts);
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

sdc_status sdc_model_files_set_prediction(sdc_model_files *m, const char *prediction_type, const sdc_logger *log) {
    if (!prediction_type) return SDC_OK;
    if (strcmp(prediction_type, "epsilon") != 0 && strcmp(prediction_type, "v_prediction") != 0) {
        SDC_LOGE(log, "sdc_model_files_set_prediction: prediction type '%s' is neither epsilon nor v_prediction",
                 prediction_type);
        return SDC_ERR_INVALID_ARG;
    }
    free(m->prediction_type);
    if (!(m->prediction_type = strdup(prediction_type))) return SDC_ERR_OOM;
    if (!m->scheduler_config) return SDC_OK;
    cJSON *v = cJSON_CreateString(prediction_type);
    if (v && cJSON_GetObjectItemCaseSensitive(m->scheduler_config, "prediction_type")
            ? cJSON_ReplaceItemInObjectCaseSensitive(m->scheduler_config, "prediction_type", v)
            : cJSON_AddItemToObject(m->scheduler_config, "prediction_type", v))
        return SDC_OK;
    cJSON_Delete(v);
    return SDC_ERR_OOM;
}

void sdc_model_files_free(sdc_model_files *m) {
    if (!m) return;
    free(m->root);
    free(m->prediction_type);
    free(m->config_dir);
    cJSON_Delete(m->model_index);
    for (int i = 0; i < m->n_parts; i++) {
        free(m->parts[i].name);
        cJSON_Delete(m->parts[i].config);
        free(m->parts[i].weights_path);
    }
    for (int i = 0; i < m->n_files; i++) {
        free(m->files[i].role);
        free(m->files[i].path);
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
