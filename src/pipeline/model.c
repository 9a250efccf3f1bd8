/* model.c - opening a model (files -> family -> configs, index, backend; no weights), and loading /
 * freeing its components by index into the family's component table. */
#include "pipeline/model.h"

#include "backend/count/count_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sysmem.h"
#include "pipeline/plan.h"

/* SDXL before SD 1.x: both are UNet folders; sdxl claims those with a text_time UNet. */
const sdc_family *const sdc_families[] = {&sdc_family_flux, &sdc_family_sdxl, &sdc_family_sd1, NULL};

void sdc_model_params_init(sdc_model_params *p) {
    memset(p, 0, sizeof *p);
    p->device = SDC_DEVICE_CPU;
    p->log_level = SDC_LOG_INFO;
}

static char *base_name(const char *path) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && path[b - 1] != '/') b--;
    char *s = malloc(n - b + 1);
    if (s) {
        memcpy(s, path + b, n - b);
        s[n - b] = 0;
    }
    return s;
}

/* Every message goes to the caller's callback; the first error since the model was opened or the last
 * job began is kept for sdc_model_last_error (the cause, not the summary lines that follow it). */
static void model_log(sdc_log_level level, const char *msg, void *user) {
    sdc_model *m = user;
    if (level >= SDC_LOG_ERROR && !m->last_error[0]) snprintf(m->last_error, sizeof m->last_error, "%s", msg);
    if (m->user_log) m->user_log(level, msg, m->user_log_user);
}

const char *sdc_model_last_error(const sdc_model *m) { return m ? m->last_error : ""; }

/* The path given for a role, NULL when none. */
static const char *path_of(const sdc_model_params *p, const char *role) {
    for (int i = 0; i < p->n_paths; i++)
        if (p->paths[i].role && !strcmp(p->paths[i].role, role)) return p->paths[i].path;
    return NULL;
}

/* Roles this version reads; any other is refused (rather than silently ignored). */
static sdc_status check_roles(const sdc_model_params *p, const sdc_logger *log) {
    static const char *const known[] = {"model", "config", "tokenizer", "diffusion_model", "clip_l", "t5xxl", "vae"};
    for (int i = 0; i < p->n_paths; i++) {
        int ok = p->paths[i].role && p->paths[i].path;
        for (size_t k = 0; ok && k < sizeof known / sizeof known[0]; k++)
            if (!strcmp(p->paths[i].role, known[k]))
                break;
            else if (k + 1 == sizeof known / sizeof known[0])
                ok = 0;
        if (!ok) {
            SDC_LOGE(log,
                     "sdc_model_open: component path %d has an unknown role '%s' (known: model, config, tokenizer, "
                     "diffusion_model, clip_l, t5xxl, vae)",
                     i, p->paths[i].role ? p->paths[i].role : "(null)");
            return SDC_ERR_INVALID_ARG;
        }
    }
    if ((!path_of(p, "model") || !*path_of(p, "model")) &&
        (!path_of(p, "diffusion_model") || !*path_of(p, "diffusion_model"))) {
        SDC_LOGE(log, "sdc_model_open: no model path given (role \"model\" or \"diffusion_model\")");
        return SDC_ERR_INVALID_ARG;
    }
    return SDC_OK;
}

static sdc_status open_family(sdc_model *m, const sdc_family *forced, const char *tokenizer_dir) {
    for (int i = 0; !forced && sdc_families[i]; i++)
        if (sdc_families[i]->probe(m->mf)) forced = sdc_families[i];
    if (!forced) {
        SDC_LOGE(&m->log, "sdc_model_open: %s is not a model of any family sdc knows", m->mf->root);
        return SDC_ERR_UNSUPPORTED;
    }
    m->family = forced;
    m->n_components = forced->n_components;
    if (m->n_components > SDC_MAX_COMPONENTS || forced->n_phases > SDC_MAX_PHASES) {
        SDC_LOGE(&m->log, "sdc_model_open: family %s has %d components and %d phases (at most %d and %d)", forced->name,
                 forced->n_components, forced->n_phases, SDC_MAX_COMPONENTS, SDC_MAX_PHASES);
        return SDC_ERR_UNSUPPORTED;
    }
    sdc_status st = forced->open(m->mf, tokenizer_dir, &m->log, &m->fam);
    return st == SDC_OK ? sdc_model_files_check_used(m->mf, forced->name, &m->log) : st;
}

/* The component files given (role "model" absent: the diffusion model file is the model). */
static sdc_status add_files(sdc_model *m, const sdc_model_params *p, const char *model_path) {
    static const char *const roles[] = {"diffusion_model", "clip_l", "t5xxl", "vae"};
    sdc_status st = SDC_OK;
    for (size_t i = 0; i < sizeof roles / sizeof roles[0] && st == SDC_OK; i++) {
        const char *f = path_of(p, roles[i]);
        if (f && f != model_path) st = sdc_model_files_add_file(m->mf, roles[i], f, &m->log);
    }
    return st;
}

static sdc_status open_backend(sdc_model *m, const sdc_model_params *p) {
    sdc_device dev = p->device;
    if (dev == SDC_DEVICE_AUTO) {
        m->be = sdc_backend_new(SDC_DEVICE_CUDA, p->n_threads, NULL);
        if (!m->be) SDC_LOGW(&m->log, "sdc_model_open: device auto: no usable CUDA device; running on the CPU");
        dev = SDC_DEVICE_CPU;
    }
    if (!m->be) m->be = sdc_backend_new(dev, p->n_threads, &m->log);
    if (!m->be) return SDC_ERR_BACKEND;
    if (p->profile && !(m->be->profile = calloc(1, sizeof *m->be->profile))) return SDC_ERR_OOM;
    return SDC_OK;
}

sdc_model *sdc_model_open(const sdc_model_params *p) { return sdc_model_open_as(p, NULL); }

/* Component c's precision: the user's F32 or BF16 (every component: bf16 has f32's range, so neither a
 * VAE's force_upcast nor T5 needs f32 then, as diffusers upcasts only from fp16), else the family's. */
static sdc_prec component_precision(sdc_precision user, const sdc_component_def *def, const void *fam) {
    if (user == SDC_PRECISION_F32) return SDC_PREC_F32;
    if (user == SDC_PRECISION_BF16) return SDC_PREC_BF16_ALL;
    return def->precision ? def->precision(fam) : SDC_PREC_AUTO;
}

static sdc_status load_on(sdc_model *m, int c, sdc_backend *be, const sdc_logger *log, int window, void **out) {
    const sdc_component_def *def = &m->family->components[c];
    const sdc_weight_source src = {m->mf->index,
                                   def->source_prefix,
                                   be,
                                   log,
                                   m->prec[c],
                                   def->stream ? window : 0,
                                   be == m->be ? m->tier.img[c] : NULL,
                                   m->stream_prefetch};
    *out = NULL;
    sdc_status st = def->load(m->fam, &src, out);
    if (st != SDC_OK) *out = NULL;
    return st;
}

/* m->stream[c]: the component loaded streamed on a counting backend (no byte read) with every unit in its
 * window, each unit acquired once; the bytes it adds are the unit's. */
static void stream_shape(sdc_model *m, int c) {
    const sdc_component_def *def = &m->family->components[c];
    sdc_stream_shape *sh = &m->stream[c];
    memset(sh, 0, sizeof *sh);
    if (!def->stream) return;
    sdc_backend *cb = sdc_backend_count_new(m->be);
    const sdc_logger silent = {0}; /* a load that fails here fails again, logged, when it is real */
    void *comp = NULL;
    if (cb && load_on(m, c, cb, &silent, SDC_MAX_STREAM_UNITS, &comp) == SDC_OK) {
        sdc_weight_stream *s = def->stream(comp);
        int ok = s && s->n_units <= SDC_MAX_STREAM_UNITS && s->window == s->n_units;
        sh->rest = cb->stats.cur[SDC_MEM_WEIGHTS];
        for (int k = 0; ok && k < s->n_units; k++) {
            const size_t b0 = cb->stats.cur[SDC_MEM_WEIGHTS];
            ok = sdc_stream_acquire(s, k);
            sh->unit[k] = cb->stats.cur[SDC_MEM_WEIGHTS] - b0;
            sdc_stream_release(s, k);
        }
        if (ok) sh->n_units = s->n_units;
        def->free(comp);
    }
    sdc_backend_free(cb);
}

sdc_model *sdc_model_open_as(const sdc_model_params *p, const sdc_family *family) {
    sdc_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->user_log = p->log_fn;
    m->user_log_user = p->log_user;
    m->log = (sdc_logger){model_log, m, p->log_level};
    pthread_mutex_init(&m->lock, NULL);
    sdc_plan_memo_new(m);
    const sdc_logger *log = &m->log;
    sdc_status st = check_roles(p, log);
    const char *path = st == SDC_OK ? path_of(p, "model") : NULL;
    if (st == SDC_OK && (!path || !*path)) path = path_of(p, "diffusion_model");
    if (st == SDC_OK && (unsigned)p->load_policy >= SDC_LOAD_POLICY_COUNT) {
        SDC_LOGE(log, "sdc_model_open: unknown load policy %d", (int)p->load_policy);
        st = SDC_ERR_INVALID_ARG;
    }
    if (st == SDC_OK && (unsigned)p->precision > SDC_PRECISION_BF16) {
        SDC_LOGE(log, "sdc_model_open: unknown precision %d", (int)p->precision);
        st = SDC_ERR_INVALID_ARG;
    }
    if (st == SDC_OK)
        st = sdc_model_files_open_ex(path, path_of(p, "config"), p->prefer_fp16 ? SDC_VARIANT_FP16 : SDC_VARIANT_AUTO,
                                     log, &m->mf);
    if (st == SDC_OK) st = add_files(m, p, path);
    if (st == SDC_OK) st = sdc_model_files_set_prediction(m->mf, p->prediction_type, log);
    if (st == SDC_OK) st = open_family(m, family, path_of(p, "tokenizer"));
    if (st == SDC_OK) st = open_backend(m, p);
    if (st == SDC_OK && !(m->model_name = base_name(path))) st = SDC_ERR_OOM;
    if (st == SDC_OK) {
        for (int c = 0; c < m->n_components; c++) {
            const sdc_component_def *def = &m->family->components[c];
            m->prec[c] = component_precision(p->precision, def, m->fam);
            m->comp_bytes[c] = sdc_component_weight_bytes(m, c, &m->comp_tensors[c]);
            stream_shape(m, c);
            sdc_component_dtypes(m->mf->index, def, m->comp_dtypes[c], sizeof m->comp_dtypes[c]);
        }
        sdc_host_tier_init(&m->tier, m->mf->index, p->prefetch_mem, p->host_cache);
        m->policy = p->load_policy;
        m->budget = p->mem_budget > 0 ? (size_t)p->mem_budget : sdc_plan_default_budget(m);
        m->stream_window = p->stream_window > 0 ? p->stream_window : 0;
        m->stream_prefetch = p->stream_prefetch >= 0;
        m->upload_behind = p->stream_prefetch > 0;
    }
    if (st != SDC_OK) {
        SDC_LOGE(log, "sdc_model_open: cannot open model %s: %s", path ? path : "(none)", sdc_status_str(st));
        sdc_model_free(m);
        return NULL;
    }
    return m;
}

void sdc_model_free(sdc_model *m) {
    if (!m) return;
    sdc_host_tier_cancel(&m->tier);
    for (int c = 0; c < m->n_components; c++) sdc_model_free_component(m, c);
    if (m->be) {
        sdc_host_tier_free(&m->tier, m->be); /* its page-locked memory goes back through the backend */
        free(m->be->profile);
    }
    sdc_backend_free(m->be);
    if (m->family) m->family->close(m->fam);
    sdc_model_files_free(m->mf);
    free(m->model_name);
    sdc_plan_memo_free(m);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

const char *sdc_model_family(const sdc_model *m) { return m && m->family ? m->family->name : "?"; }

sdc_status sdc_model_latent_shape(const sdc_model *m, int width, int height, int64_t ne[4]) {
    if (!m || width <= 0 || height <= 0) return SDC_ERR_INVALID_ARG;
    m->family->latent_shape(m->fam, width, height, ne);
    return SDC_OK;
}

const char *sdc_model_component_name(const sdc_model *m, int c) {
    return c >= 0 && c < m->n_components ? m->family->components[c].name : "?";
}

sdc_status sdc_model_load_component_on(sdc_model *m, int c, sdc_backend *be, const sdc_logger *log, void **out) {
    return load_on(m, c, be, log, 0, out);
}

sdc_status sdc_model_load_component(sdc_model *m, int c) {
    if (m->comp[c]) return SDC_OK;
    const sdc_component_def *def = &m->family->components[c];
    sdc_host_tier_before_load(m, c);
    sdc_status st = load_on(m, c, m->be, &m->log, m->window[c], &m->comp[c]);
    if (st == SDC_OK && m->window[c] == SDC_WINDOW_WHOLE && !sdc_stream_preload(def->stream(m->comp[c]))) {
        st = sdc_stream_status(def->stream(m->comp[c]));
        (void)sdc_backend_sync(m->be); /* no upload may still land in memory the free hands back */
        def->free(m->comp[c]);
    }
    if (st != SDC_OK) {
        m->comp[c] = NULL;
        SDC_LOGE(&m->log, "load %s: %s", def->name, sdc_status_str(st));
    }
    sdc_host_tier_after_load(m, c);
    return st;
}

void sdc_model_free_component(sdc_model *m, int c) {
    if (!m->comp[c]) return;
    m->family->components[c].free(m->comp[c]);
    m->comp[c] = NULL;
    sdc_host_tier_component_freed(m, c);
}

void sdc_model_unload_all(sdc_model *m) {
    sdc_host_tier_cancel(&m->tier);
    for (int c = 0; c < m->n_components; c++) sdc_model_free_component(m, c);
    sdc_backend_trim(m->be);
}

int sdc_component_owns(const sdc_component_def *def, const char *name) {
    for (const char *const *p = def->prefixes; *p; p++)
        if (!strncmp(name, *p, strlen(*p))) return 1;
    return 0;
}

/* The tensors under the component's prefixes: their count, and their bytes were each converted as a
 * non-matrix weight is; their bytes in the files go to m->comp_file_bytes[c], and whether the backend
 * stores any of them in another dtype (as a matrix or not) to m->comp_converts[c]. */
static size_t index_weight_bytes(sdc_model *m, int c, int *n_tensors) {
    const sdc_component_def *def = &m->family->components[c];
    const sdc_model_index *idx = m->mf->index;
    size_t bytes = 0;
    *n_tensors = 0;
    m->comp_file_bytes[c] = 0;
    m->comp_converts[c] = 0;
    for (size_t i = 0; i < sdc_index_count(idx); i++) {
        const sdc_tensor_info *t = sdc_index_at(idx, i);
        if (!sdc_component_owns(def, t->name)) continue;
        /* as the backend stores it: a block type (a quantized weight kept quantized) is whole rows of blocks */
        const int64_t n = sdc_tensor_info_nelem(t), row = t->ndim ? t->ne[t->ndim - 1] : 1;
        const sdc_dtype wdt = sdc_backend_weight_dtype(m->be, t->dtype, m->prec[c], 0);
        bytes += row ? (size_t)(n / row) * sdc_dtype_row_bytes(wdt, row) : 0;
        m->comp_file_bytes[c] += (size_t)t->nbytes;
        /* bf16 -> f16 converts without changing a byte count: compare dtypes, not sizes */
        m->comp_converts[c] |= wdt != t->dtype || sdc_backend_weight_dtype(m->be, t->dtype, m->prec[c], 1) != t->dtype;
        (*n_tensors)++;
    }
    return bytes;
}

void sdc_component_dtypes(const sdc_model_index *idx, const sdc_component_def *def, char *out, size_t size) {
    int count[SDC_DTYPE_COUNT] = {0};
    for (size_t i = 0; i < sdc_index_count(idx); i++) {
        const sdc_tensor_info *t = sdc_index_at(idx, i);
        if (sdc_component_owns(def, t->name) && (unsigned)t->dtype < SDC_DTYPE_COUNT) count[t->dtype]++;
    }
    size_t len = 0;
    if (size) out[0] = 0;
    for (int pass = 0; pass < 2; pass++) /* block types first: what a quantized file is made of */
        for (int d = 0; d < SDC_DTYPE_COUNT; d++)
            if (count[d] && sdc_dtype_is_quant((sdc_dtype)d) == !pass && len < size)
                len += (size_t)snprintf(out + len, size - len, "%s%s x %d", len ? ", " : "",
                                        sdc_dtype_name((sdc_dtype)d), count[d]);
}

size_t sdc_component_weight_bytes(sdc_model *m, int c, int *n_tensors) {
    size_t bytes = index_weight_bytes(m, c, n_tensors);
    sdc_backend *cb = sdc_backend_count_new(m->be);
    const sdc_logger silent = {0}; /* a load that fails here fails again, logged, when it is real */
    void *comp = NULL;
    if (cb && sdc_model_load_component_on(m, c, cb, &silent, &comp) == SDC_OK) {
        bytes = cb->stats.cur[SDC_MEM_WEIGHTS];
        m->family->components[c].free(comp);
    }
    sdc_backend_free(cb);
    return bytes;
}
