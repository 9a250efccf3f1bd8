/* ctx.c - opening a model into a context, and loading / freeing its components. */
#include "pipeline/ctx.h"

#include "core/sysmem.h"
#include "pipeline/plan.h"

#include <stdlib.h>
#include <string.h>

const char *sdc_part_name(sdc_part p) {
    static const char *const names[] = {"text_encoder", "unet", "vae_decoder", "vae_encoder"};
    _Static_assert(sizeof(names) / sizeof(names[0]) == SDC_PART_COUNT, "part names");
    return (unsigned)p < SDC_PART_COUNT ? names[p] : "?";
}

void sdc_ctx_params_init(sdc_ctx_params *p) {
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

sdc_ctx *sdc_ctx_new(const sdc_ctx_params *p) {
    sdc_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    ctx->log = (sdc_logger){p->log_fn, p->log_user, p->log_level};
    ctx->progress = p->progress_fn;
    ctx->progress_user = p->progress_user;
    const sdc_logger *log = &ctx->log;
    if (!p->model_path || !*p->model_path) {
        SDC_LOGE(log, "sdc_ctx_new: no model path given");
        free(ctx);
        return NULL;
    }
    sdc_status st = sdc_model_files_open_ex(p->model_path, p->config_dir,
                                            p->prefer_fp16 ? SDC_VARIANT_FP16 : SDC_VARIANT_AUTO, log, &ctx->mf);
    if (st == SDC_OK) st = sdc_clip_config_parse(ctx->mf->config[SDC_COMP_TEXT_ENCODER], log, &ctx->clip_cfg);
    if (st == SDC_OK) st = sdc_unet_config_parse(ctx->mf->config[SDC_COMP_UNET], log, &ctx->unet_cfg);
    if (st == SDC_OK) st = sdc_vae_config_parse(ctx->mf->config[SDC_COMP_VAE], log, &ctx->vae_cfg);
    if (st == SDC_OK) {
        const char *tok_dir = p->tokenizer_dir ? p->tokenizer_dir : ctx->mf->tokenizer_dir;
        if (!tok_dir) {
            SDC_LOGE(log, "sdc_ctx_new: %s has no %s; pass a tokenizer directory", p->model_path,
                     ctx->mf->single_file ? "tokenizer, nor was sdc's own found" : "tokenizer/ folder");
            st = SDC_ERR_NOT_FOUND;
        } else {
            st = sdc_clip_tokenizer_load(tok_dir, log, &ctx->tok);
        }
    }
    if (st == SDC_OK && (ctx->clip_cfg.hidden != ctx->unet_cfg.cross_attention_dim)) {
        SDC_LOGE(log, "sdc_ctx_new: text encoder width %d does not match the UNet's cross_attention_dim %d",
                 ctx->clip_cfg.hidden, ctx->unet_cfg.cross_attention_dim);
        st = SDC_ERR_UNSUPPORTED;
    }
    if (st == SDC_OK) {
        sdc_device dev = p->device;
        if (dev == SDC_DEVICE_AUTO) {
            ctx->be = sdc_backend_new(SDC_DEVICE_CUDA, p->n_threads, NULL);
            if (!ctx->be) SDC_LOGW(log, "sdc_ctx_new: device auto: no usable CUDA device; running on the CPU");
            dev = SDC_DEVICE_CPU;
        }
        if (!ctx->be) ctx->be = sdc_backend_new(dev, p->n_threads, log);
        if (!ctx->be) st = SDC_ERR_BACKEND;
        ctx->precision_f32 = p->precision_f32 != 0;
        if (ctx->be && p->profile && !(ctx->be->profile = calloc(1, sizeof *ctx->be->profile))) st = SDC_ERR_OOM;
    }
    if (st == SDC_OK) {
        ctx->model_name = base_name(p->model_path);
        if (!ctx->model_name) st = SDC_ERR_OOM;
    }
    if (st == SDC_OK && (unsigned)p->load_policy >= SDC_LOAD_POLICY_COUNT) {
        SDC_LOGE(log, "sdc_ctx_new: unknown load policy %d", (int)p->load_policy);
        st = SDC_ERR_INVALID_ARG;
    }
    if (st == SDC_OK) {
        for (int i = 0; i < SDC_PART_COUNT; i++) {
            ctx->part_bytes[i] = sdc_part_weight_bytes(ctx, (sdc_part)i, &ctx->part_tensors[i]);
        }
        ctx->policy = p->load_policy;
        ctx->budget = p->mem_budget > 0 ? (size_t)p->mem_budget : sdc_plan_default_budget(ctx);
    }
    if (st != SDC_OK) {
        SDC_LOGE(log, "sdc_ctx_new: cannot open model %s: %s", p->model_path, sdc_status_str(st));
        sdc_ctx_free(ctx);
        return NULL;
    }
    return ctx;
}

void sdc_ctx_free(sdc_ctx *ctx) {
    if (!ctx) return;
    for (int p = 0; p < SDC_PART_COUNT; p++) sdc_ctx_free_part(ctx, (sdc_part)p);
    if (ctx->be) free(ctx->be->profile);
    sdc_backend_free(ctx->be);
    sdc_clip_tokenizer_free(ctx->tok);
    sdc_model_files_free(ctx->mf);
    free(ctx->model_name);
    free(ctx->last_report);
    free(ctx);
}

int sdc_ctx_part_f32(const sdc_ctx *ctx, sdc_part p) {
    int vae = p == SDC_PART_VAE_DECODER || p == SDC_PART_VAE_ENCODER;
    return ctx->precision_f32 || (vae && ctx->vae_cfg.force_upcast);
}

void sdc_ctx_part_source(sdc_ctx *ctx, sdc_part p, sdc_backend *be, sdc_weight_source *src) {
    static const char *const prefixes[SDC_PART_COUNT] = {"text_encoder.", "unet.", "vae.", "vae."};
    *src = (sdc_weight_source){ctx->mf->index, prefixes[p], be, &ctx->log, sdc_ctx_part_f32(ctx, p)};
}

sdc_status sdc_ctx_load_part(sdc_ctx *ctx, sdc_part p) {
    sdc_status st = SDC_OK;
    if ((unsigned)p >= SDC_PART_COUNT) return SDC_ERR_INVALID_ARG;
    sdc_weight_source src;
    sdc_ctx_part_source(ctx, p, ctx->be, &src);
    switch (p) {
    case SDC_PART_TEXT_ENCODER:
        if (ctx->clip) return SDC_OK;
        st = sdc_clip_load(&ctx->clip_cfg, &src, &ctx->clip);
        break;
    case SDC_PART_UNET:
        if (ctx->unet) return SDC_OK;
        st = sdc_unet_load(&ctx->unet_cfg, &src, &ctx->unet);
        break;
    case SDC_PART_VAE_DECODER:
        if (ctx->vae_dec) return SDC_OK;
        st = sdc_vae_decoder_load(&ctx->vae_cfg, &src, &ctx->vae_dec);
        break;
    case SDC_PART_VAE_ENCODER:
        if (ctx->vae_enc) return SDC_OK;
        st = sdc_vae_encoder_load(&ctx->vae_cfg, &src, &ctx->vae_enc);
        break;
    default: return SDC_ERR_INVALID_ARG;
    }
    if (st != SDC_OK) SDC_LOGE(&ctx->log, "load %s: %s", sdc_part_name(p), sdc_status_str(st));
    return st;
}

int sdc_ctx_part_resident(const sdc_ctx *ctx, sdc_part p) {
    switch (p) {
    case SDC_PART_TEXT_ENCODER: return ctx->clip != NULL;
    case SDC_PART_UNET: return ctx->unet != NULL;
    case SDC_PART_VAE_DECODER: return ctx->vae_dec != NULL;
    case SDC_PART_VAE_ENCODER: return ctx->vae_enc != NULL;
    default: return 0;
    }
}

const char *sdc_last_report_json(const sdc_ctx *ctx) { return ctx->last_report; }

void sdc_ctx_free_part(sdc_ctx *ctx, sdc_part p) {
    switch (p) {
    case SDC_PART_TEXT_ENCODER: sdc_clip_free(ctx->clip); ctx->clip = NULL; break;
    case SDC_PART_UNET: sdc_unet_free(ctx->unet); ctx->unet = NULL; break;
    case SDC_PART_VAE_DECODER: sdc_vae_decoder_free(ctx->vae_dec); ctx->vae_dec = NULL; break;
    case SDC_PART_VAE_ENCODER: sdc_vae_encoder_free(ctx->vae_enc); ctx->vae_enc = NULL; break;
    default: break;
    }
}
