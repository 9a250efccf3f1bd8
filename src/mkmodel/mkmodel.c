/* mkmodel.c - drawing the weights and writing the files of a random-weight model. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/file.h"
#include "io/atomic_file.h"
#include "io/ldm_names.h"
#include "io/st_writer.h"
#include "mkmodel/mkmodel_internal.h"

#define MK_SCRATCH 16384 /* floats drawn at a time, then converted to the file dtype */

/* ---- random numbers: splitmix64, Box-Muller ---- */

typedef struct mk_rng {
    uint64_t s;
    int has_spare;
    double spare;
} mk_rng;

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_normal(mk_rng *r) {
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u1 = ((double)(splitmix64(&r->s) >> 11) + 0.5) * 0x1p-53; /* (0, 1): log is finite */
    double u2 = (double)(splitmix64(&r->s) >> 11) * 0x1p-53;
    double rad = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
    r->spare = rad * sin(th);
    r->has_spare = 1;
    return rad * cos(th);
}

/* The seed of one tensor's generator, from the model seed and its canonical name. */
static uint64_t tensor_seed(uint64_t seed, const char *name) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) h = (h ^ *p) * 0x100000001b3ull;
    uint64_t s = seed;
    return splitmix64(&s) ^ h;
}

/* ---- the architecture being written: either family ---- */

typedef struct mk_model {
    const sdc_mk_arch *sd;        /* SD 1.x / SDXL, or NULL */
    const sdc_mk_flux_arch *flux; /* Flux, or NULL */
} mk_model;

static const char *model_name(const mk_model *m) { return m->sd ? m->sd->name : m->flux->name; }

static int model_has_part(const mk_model *m, sdc_mk_part p) {
    return m->sd ? sdc_mk_has_part(m->sd, p) : sdc_mk_flux_has_part(m->flux, p);
}

static void model_enum_part(const mk_model *m, sdc_mk_part p, sdc_mk_tensor_fn fn, void *user) {
    if (m->sd)
        sdc_mk_enum_component(m->sd, p, fn, user);
    else
        sdc_mk_enum_flux_component(m->flux, p, fn, user);
}

/* ---- one output file: its tensors and how to draw them ---- */

typedef struct mk_file mk_file;

typedef struct mk_tensor {
    mk_file *file;
    double shift, scale; /* value = shift + scale * N(0, 1) */
    uint64_t seed, next; /* next: the element the writer asks for next */
    mk_rng rng;
} mk_tensor;

struct mk_file {
    sdc_st_writer *w;
    sdc_dtype dtype;
    uint64_t seed;
    const sdc_ldm_map *ldm; /* non-NULL: LDM single-file names */
    const char *prefix;     /* of the component being enumerated: "unet." */
    sdc_mk_part comp;
    mk_tensor **tensors;
    size_t n, cap;
    float *scratch;
    sdc_status status;      /* first error */
    sdc_mkmodel_info *info; /* counts, may be NULL */
    const sdc_logger *log;
};

static sdc_status fill(void *user, void *dst, uint64_t first, uint64_t count) {
    mk_tensor *t = user;
    mk_file *f = t->file;
    if (first == 0) {
        t->rng = (mk_rng){t->seed, 0, 0.0};
        t->next = 0;
    }
    if (first != t->next) return SDC_ERR_INVALID_ARG; /* the writer streams in order */
    size_t esize = sdc_dtype_size(f->dtype);
    for (uint64_t done = 0; done < count;) {
        size_t n = count - done < MK_SCRATCH ? (size_t)(count - done) : MK_SCRATCH;
        for (size_t i = 0; i < n; i++) f->scratch[i] = (float)(t->shift + t->scale * rng_normal(&t->rng));
        if (sdc_convert_from_f32((char *)dst + done * esize, f->dtype, f->scratch, n) != 0) return SDC_ERR_INVALID_ARG;
        done += n;
    }
    t->next = first + count;
    return SDC_OK;
}

static void on_tensor(void *user, const char *name, int ndim, const int64_t *ne, sdc_mk_init init) {
    mk_file *f = user;
    if (f->status != SDC_OK) return;
    char full[256], ldm[256];
    snprintf(full, sizeof full, "%s%s", f->prefix, name);
    uint64_t nelem = 1, fan_in = 1;
    for (int i = 0; i < ndim; i++) nelem *= (uint64_t)ne[i];
    for (int i = 1; i < ndim; i++) fan_in *= (uint64_t)ne[i];
    if (f->info) {
        f->info->n_tensors[f->comp]++;
        f->info->n_params[f->comp] += nelem;
    }
    mk_tensor *t = calloc(1, sizeof *t);
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 512;
        mk_tensor **ts = realloc(f->tensors, cap * sizeof *ts);
        if (ts) f->tensors = ts, f->cap = cap;
    }
    if (!t || f->n == f->cap) {
        free(t);
        SDC_LOGE(f->log, "mkmodel: out of memory");
        f->status = SDC_ERR_OOM;
        return;
    }
    f->tensors[f->n++] = t;
    t->file = f;
    t->seed = tensor_seed(f->seed, full);
    switch (init) {
    case SDC_MK_INIT_FAN_IN: t->scale = 1.0 / sqrt((double)fan_in); break;
    case SDC_MK_INIT_EMBEDDING: t->scale = 0.5; break;
    case SDC_MK_INIT_NORM_SCALE: t->shift = 1.0, t->scale = 0.1; break;
    default: t->scale = 0.05; break;
    }
    const char *out_name = name; /* a folder file holds one component, without its prefix */
    int64_t shape[8];
    for (int i = 0; i < ndim; i++) shape[i] = ne[i];
    if (f->ldm) {
        int conv1x1 = 0;
        out_name = sdc_diffusers_to_ldm(f->ldm, full, ldm, sizeof ldm, &conv1x1);
        if (!out_name) {
            SDC_LOGE(f->log, "mkmodel: no LDM name for %s", full);
            f->status = SDC_ERR_INVALID_ARG;
            return;
        }
        if (conv1x1) { /* LDM keeps these as 1x1 convolutions */
            shape[ndim++] = 1;
            shape[ndim++] = 1;
        }
    }
    sdc_status st = sdc_st_writer_add_fill(f->w, out_name, f->dtype, ndim, shape, fill, t);
    if (st != SDC_OK) f->status = st;
}

static void file_free(mk_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) free(f->tensors[i]);
    free(f->tensors);
    free(f->scratch);
    sdc_st_writer_free(f->w);
    free(f);
}

/* Collects the tensors of the given components into a writer. ldm: NULL for a folder file. */
static mk_file *file_new(const mk_model *m, const sdc_mk_part *comps, int n_comps, const sdc_ldm_map *ldm,
                         sdc_dtype dtype, uint64_t seed, sdc_mkmodel_info *info, const sdc_logger *log) {
    mk_file *f = calloc(1, sizeof *f);
    if (!f || !(f->w = sdc_st_writer_new(log)) || !(f->scratch = malloc(MK_SCRATCH * sizeof(float)))) {
        file_free(f);
        SDC_LOGE(log, "mkmodel: out of memory");
        return NULL;
    }
    f->dtype = dtype;
    f->seed = seed;
    f->ldm = ldm;
    f->info = info;
    f->log = log;
    if (!ldm) sdc_st_writer_set_metadata(f->w, "format", "pt"); /* as diffusers saves */
    for (int c = 0; c < n_comps && f->status == SDC_OK; c++) {
        static const char *const prefix[SDC_MK_N_PARTS] = {"text_encoder.", "unet.", "vae.", "text_encoder_2.",
                                                           "transformer."};
        f->comp = comps[c];
        f->prefix = prefix[comps[c]];
        model_enum_part(m, comps[c], on_tensor, f);
    }
    if (f->status != SDC_OK) {
        file_free(f);
        return NULL;
    }
    return f;
}

/* ---- files and folders ---- */

static sdc_status make_dir(const char *path, const sdc_logger *log) {
    if (mkdir(path, 0755) == 0 || (errno == EEXIST && sdc_dir_exists(path))) return SDC_OK;
    SDC_LOGE(log, "mkmodel: cannot create directory %s: %s", path, strerror(errno));
    return SDC_ERR_IO;
}

static sdc_status write_bytes(const char *path, const void *data, size_t n, const sdc_logger *log) {
    sdc_atomic_file af;
    sdc_status st = sdc_atomic_open(&af, path, "mkmodel", log);
    if (st != SDC_OK) return st;
    if (fwrite(data, 1, n, af.f) != n) {
        SDC_LOGE(log, "mkmodel: write error on %s", path);
        sdc_atomic_abort(&af);
        return SDC_ERR_IO;
    }
    return sdc_atomic_commit(&af, "mkmodel", log);
}

/* Writes json (and deletes it) to dir/name. */
sdc_status sdc_mk_write_json(const char *dir, const char *name, cJSON *json, const sdc_logger *log) {
    char *text = json ? cJSON_Print(json) : NULL;
    char *path = sdc_path_join(dir, name);
    sdc_status st = SDC_ERR_OOM;
    if (text && path) {
        size_t n = strlen(text);
        text[n] = '\n'; /* cJSON's terminator becomes the final newline */
        st = write_bytes(path, text, n + 1, log);
    } else {
        SDC_LOGE(log, "mkmodel: out of memory writing %s", name);
    }
    cJSON_Delete(json);
    free(text);
    free(path);
    return st;
}

static sdc_status copy_file(const char *src_dir, const char *dst_dir, const char *name, const sdc_logger *log) {
    char *src = sdc_path_join(src_dir, name), *dst = sdc_path_join(dst_dir, name);
    char *data = NULL;
    size_t n = 0;
    sdc_status st = src && dst ? sdc_read_file(src, log, &data, &n) : SDC_ERR_OOM;
    if (st == SDC_OK) st = write_bytes(dst, data, n, log);
    free(data);
    free(src);
    free(dst);
    return st;
}

static sdc_status write_weights(const mk_model *m, const char *path, const sdc_mk_part *comps, int n_comps,
                                const sdc_ldm_map *ldm, sdc_dtype dtype, uint64_t seed, const sdc_logger *log) {
    mk_file *f = file_new(m, comps, n_comps, ldm, dtype, seed, NULL, log);
    if (!f) return SDC_ERR_OOM;
    uint64_t bytes = sdc_st_writer_file_size(f->w);
    sdc_status st = sdc_st_writer_write(f->w, path);
    if (st == SDC_OK)
        SDC_LOGI(log, "mkmodel: wrote %s (%zu tensors, %.1f MiB)", path, sdc_st_writer_count(f->w), bytes / 1048576.0);
    file_free(f);
    return st;
}

static void ldm_map_for(const sdc_mk_arch *a, sdc_ldm_map *m) {
    sdc_status st = sdc_ldm_map_init(m, a->unet_blocks, a->unet_layers, a->unet_attn, a->vae_blocks, a->vae_layers);
    (void)st; /* the embedded architectures fit the map by construction */
}

/* The config.json of an SD 1.x / SDXL component. */
static cJSON *sd_config(const sdc_mk_arch *a, sdc_mk_part comp, sdc_dtype dtype) {
    return comp == SDC_MK_TEXT_ENCODER  ? sdc_mk_text_encoder_json(&a->te, dtype)
        : comp == SDC_MK_TEXT_ENCODER_2 ? sdc_mk_text_encoder_json(&a->te2, dtype)
        : comp == SDC_MK_UNET           ? sdc_mk_unet_json(a)
                                        : sdc_mk_vae_json(a);
}

/* The config.json of a Flux component. */
static cJSON *flux_config(const sdc_mk_flux_arch *a, sdc_mk_part comp, sdc_dtype dtype) {
    return comp == SDC_MK_TEXT_ENCODER  ? sdc_mk_text_encoder_json(&a->te, dtype)
        : comp == SDC_MK_TEXT_ENCODER_2 ? sdc_mk_t5_json(&a->t5, dtype)
        : comp == SDC_MK_TRANSFORMER    ? sdc_mk_flux_transformer_json(a)
                                        : sdc_mk_flux_vae_json(a);
}

/* dir/config.json and dir/<weights>.safetensors of one component. */
static sdc_status write_component(const mk_model *m, const char *root, sdc_mk_part comp, sdc_dtype dtype, uint64_t seed,
                                  const sdc_logger *log) {
    static const char *const weights[SDC_MK_N_PARTS] = {"model", "diffusion_pytorch_model", "diffusion_pytorch_model",
                                                        "model", "diffusion_pytorch_model"};
    char *dir = sdc_path_join(root, sdc_mk_part_name(comp));
    char file[64];
    snprintf(file, sizeof file, "%s%s.safetensors", weights[comp], dtype == SDC_DTYPE_F16 ? ".fp16" : "");
    char *path = dir ? sdc_path_join(dir, file) : NULL;
    if (!path) {
        free(dir);
        return SDC_ERR_OOM;
    }
    cJSON *cfg = m->sd ? sd_config(m->sd, comp, dtype) : flux_config(m->flux, comp, dtype);
    sdc_status st = make_dir(dir, log);
    if (st == SDC_OK)
        st = sdc_mk_write_json(dir, "config.json", cfg, log);
    else
        cJSON_Delete(cfg);
    if (st == SDC_OK) st = write_weights(m, path, &comp, 1, NULL, dtype, seed, log);
    free(dir);
    free(path);
    return st;
}

/* root/name/: tokenizer_config.json for the tower c, vocab.json and merges.txt from tokenizer_dir. */
static sdc_status write_tokenizer(const sdc_mk_clip *c, const char *root, const char *name, const char *tokenizer_dir,
                                  const sdc_logger *log) {
    char *tok = sdc_path_join(root, name);
    sdc_status st = tok ? make_dir(tok, log) : SDC_ERR_OOM;
    if (st == SDC_OK) st = sdc_mk_write_json(tok, "tokenizer_config.json", sdc_mk_tokenizer_json(c), log);
    if (st == SDC_OK) st = copy_file(tokenizer_dir, tok, "vocab.json", log);
    if (st == SDC_OK) st = copy_file(tokenizer_dir, tok, "merges.txt", log);
    free(tok);
    return st;
}

/* root/ with every component of m and scheduler/scheduler_config.json (sched, deleted here). */
static sdc_status write_components(const mk_model *m, const char *root, cJSON *sched_json, sdc_dtype dtype,
                                   uint64_t seed, const sdc_logger *log) {
    sdc_status st = make_dir(root, log);
    for (int c = 0; c < SDC_MK_N_PARTS && st == SDC_OK; c++)
        if (model_has_part(m, (sdc_mk_part)c)) st = write_component(m, root, (sdc_mk_part)c, dtype, seed, log);
    char *sched = sdc_path_join(root, "scheduler");
    if (!sched) st = SDC_ERR_OOM;
    if (st == SDC_OK) st = make_dir(sched, log);
    if (st == SDC_OK)
        st = sdc_mk_write_json(sched, "scheduler_config.json", sched_json, log);
    else
        cJSON_Delete(sched_json);
    free(sched);
    return st;
}

sdc_status sdc_mkmodel_folder(const sdc_mk_arch *a, const char *root, sdc_dtype dtype, uint64_t seed,
                              const char *tokenizer_dir, const sdc_logger *log) {
    const mk_model m = {a, NULL};
    sdc_status st = write_components(&m, root, sdc_mk_scheduler_json(a), dtype, seed, log);
    if (st == SDC_OK && tokenizer_dir) {
        st = write_tokenizer(&a->te, root, "tokenizer", tokenizer_dir, log);
        if (st == SDC_OK && sdc_mk_arch_is_xl(a))
            st = write_tokenizer(&a->te2, root, "tokenizer_2", tokenizer_dir, log);
    } else if (st == SDC_OK) {
        SDC_LOGW(log, "mkmodel: no tokenizer directory given: %s has no tokenizer/", root);
    }
    /* last, so that a folder a failed run leaves behind does not pass for a model */
    if (st == SDC_OK) st = sdc_mk_write_json(root, "model_index.json", sdc_mk_model_index_json(a), log);
    return st;
}

/* root/tokenizer_2/: tokenizer.json and tokenizer_config.json of the T5 tokenizer in t5_dir, or (NULL)
 * sdc's own small Unigram tokenizer (mkmodel_t5tok.c). */
static sdc_status write_t5_tokenizer(const char *root, const char *t5_dir, const sdc_logger *log) {
    char *tok = sdc_path_join(root, "tokenizer_2");
    sdc_status st = tok ? make_dir(tok, log) : SDC_ERR_OOM;
    if (st == SDC_OK && !t5_dir) st = sdc_mk_write_t5_tokenizer(tok, log);
    if (st == SDC_OK && t5_dir) st = copy_file(t5_dir, tok, "tokenizer.json", log);
    if (st == SDC_OK && t5_dir) st = copy_file(t5_dir, tok, "tokenizer_config.json", log);
    free(tok);
    return st;
}

sdc_status sdc_mkmodel_flux_folder(const sdc_mk_flux_arch *a, const char *root, sdc_dtype dtype, uint64_t seed,
                                   const char *clip_tokenizer_dir, const char *t5_tokenizer_dir,
                                   const sdc_logger *log) {
    const mk_model m = {NULL, a};
    sdc_status st = write_components(&m, root, sdc_mk_flux_scheduler_json(a), dtype, seed, log);
    if (st == SDC_OK && clip_tokenizer_dir)
        st = write_tokenizer(&a->te, root, "tokenizer", clip_tokenizer_dir, log);
    else if (st == SDC_OK)
        SDC_LOGW(log, "mkmodel: no CLIP tokenizer directory given: %s has no tokenizer/", root);
    if (st == SDC_OK) st = write_t5_tokenizer(root, t5_tokenizer_dir, log);
    if (st == SDC_OK) st = sdc_mk_write_json(root, "model_index.json", sdc_mk_flux_model_index_json(a), log);
    return st;
}

/* The parts of an SD 1.x LDM single file. */
static const sdc_mk_part ldm_comps[] = {SDC_MK_TEXT_ENCODER, SDC_MK_UNET, SDC_MK_VAE};
#define N_LDM_COMPS ((int)(sizeof ldm_comps / sizeof ldm_comps[0]))

static sdc_status check_args(const char *arch, int single_file, sdc_dtype dtype, mk_model *m, const sdc_logger *log) {
    *m = (mk_model){sdc_mk_arch_find(arch), sdc_mk_flux_arch_find(arch)};
    if (!m->sd && !m->flux) {
        SDC_LOGE(log,
                 "mkmodel: unknown architecture '%s' (tiny-sd1, sd15, tiny-sdxl, sdxl, tiny-flux-schnell, "
                 "tiny-flux-dev, flux-schnell, flux-dev)",
                 arch ? arch : "(null)");
        return SDC_ERR_INVALID_ARG;
    }
    if (dtype != SDC_DTYPE_F32 && dtype != SDC_DTYPE_F16) {
        SDC_LOGE(log, "mkmodel: dtype %s not supported (F32, F16)", sdc_dtype_name(dtype));
        return SDC_ERR_INVALID_ARG;
    }
    if (single_file && m->sd && sdc_mk_arch_is_xl(m->sd)) {
        SDC_LOGE(log, "mkmodel: %s: no single-file output for SDXL yet (its SGM layout); write a diffusers folder",
                 m->sd->name);
        return SDC_ERR_UNSUPPORTED;
    }
    if (single_file && m->flux) {
        SDC_LOGE(log,
                 "mkmodel: %s: no single-file output for Flux (its BFL layout is not written); write a diffusers "
                 "folder",
                 m->flux->name);
        return SDC_ERR_UNSUPPORTED;
    }
    return SDC_OK;
}

sdc_status sdc_mkmodel(const char *arch, const char *out_path, int single_file, sdc_dtype dtype, uint64_t seed,
                       const char *tokenizer_dir, const sdc_logger *log) {
    mk_model m;
    sdc_status st = check_args(arch, single_file, dtype, &m, log);
    if (st != SDC_OK) return st;
    if (!out_path || !*out_path) {
        SDC_LOGE(log, "mkmodel: no output path");
        return SDC_ERR_INVALID_ARG;
    }
    SDC_LOGI(log, "mkmodel: %s, %s, %s, seed %llu -> %s", model_name(&m),
             single_file ? "single file" : "diffusers folder", sdc_dtype_name(dtype), (unsigned long long)seed,
             out_path);
    if (m.flux) {
        return sdc_mkmodel_flux_folder(m.flux, out_path, dtype, seed, tokenizer_dir, NULL, log);
    }
    if (!single_file) return sdc_mkmodel_folder(m.sd, out_path, dtype, seed, tokenizer_dir, log);
    sdc_ldm_map *map = malloc(sizeof *map);
    if (!map) return SDC_ERR_OOM;
    ldm_map_for(m.sd, map);
    st = write_weights(&m, out_path, ldm_comps, N_LDM_COMPS, map, dtype, seed, log);
    free(map);
    return st;
}

sdc_status sdc_mkmodel_plan(const char *arch, int single_file, sdc_dtype dtype, sdc_mkmodel_info *info,
                            const sdc_logger *log) {
    memset(info, 0, sizeof *info);
    mk_model m;
    sdc_status st = check_args(arch, single_file, dtype, &m, log);
    if (st != SDC_OK) return st;
    sdc_ldm_map *map = single_file ? malloc(sizeof *map) : NULL;
    if (single_file && !map) return SDC_ERR_OOM;
    if (map) ldm_map_for(m.sd, map); /* single files are SD 1.x only (check_args) */
    for (int c = 0; c < (single_file ? 1 : SDC_MK_N_PARTS) && st == SDC_OK; c++) {
        const sdc_mk_part comp = (sdc_mk_part)c;
        if (!single_file && !model_has_part(&m, comp)) continue;
        mk_file *f = single_file ? file_new(&m, ldm_comps, N_LDM_COMPS, map, dtype, 0, info, log)
                                 : file_new(&m, &comp, 1, NULL, dtype, 0, info, log);
        if (!f) {
            st = SDC_ERR_OOM;
            break;
        }
        info->weight_file_bytes += sdc_st_writer_file_size(f->w);
        file_free(f);
    }
    free(map);
    return st;
}
