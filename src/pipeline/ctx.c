/* ctx.c - the compatibility layer: sdc_ctx is a model plus the report of its last sdc_generate. */
#include <stdlib.h>
#include <string.h>

#include "pipeline/ctx.h"

void sdc_ctx_params_init(sdc_ctx_params *p) {
    memset(p, 0, sizeof *p);
    p->device = SDC_DEVICE_CPU;
    p->log_level = SDC_LOG_INFO;
}

sdc_ctx *sdc_ctx_new(const sdc_ctx_params *p) {
    sdc_component_path paths[7];
    int n = 0;
    if (p->model_path) paths[n++] = (sdc_component_path){"model", p->model_path};
    if (p->config_dir) paths[n++] = (sdc_component_path){"config", p->config_dir};
    if (p->tokenizer_dir) paths[n++] = (sdc_component_path){"tokenizer", p->tokenizer_dir};
    if (p->diffusion_model_path) paths[n++] = (sdc_component_path){"diffusion_model", p->diffusion_model_path};
    if (p->clip_l_path) paths[n++] = (sdc_component_path){"clip_l", p->clip_l_path};
    if (p->t5xxl_path) paths[n++] = (sdc_component_path){"t5xxl", p->t5xxl_path};
    if (p->vae_path) paths[n++] = (sdc_component_path){"vae", p->vae_path};
    sdc_model_params mp;
    sdc_model_params_init(&mp);
    mp.paths = paths;
    mp.n_paths = n;
    mp.device = p->device;
    mp.n_threads = p->n_threads;
    mp.prefer_fp16 = p->prefer_fp16;
    mp.log_fn = p->log_fn;
    mp.log_user = p->log_user;
    mp.log_level = p->log_level;
    mp.load_policy = p->load_policy;
    mp.mem_budget = p->mem_budget;
    mp.precision = p->precision;
    mp.profile = p->profile;
    mp.prediction_type = p->prediction_type;
    mp.stream_window = p->stream_window;
    mp.prefetch_mem = p->prefetch_mem;
    mp.host_cache = p->host_cache;
    mp.stream_prefetch = p->stream_prefetch;
    sdc_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    ctx->m = sdc_model_open(&mp);
    if (!ctx->m) {
        free(ctx);
        return NULL;
    }
    ctx->progress = p->progress_fn;
    ctx->progress_user = p->progress_user;
    return ctx;
}

void sdc_ctx_free(sdc_ctx *ctx) {
    if (!ctx) return;
    sdc_model_free(ctx->m);
    free(ctx->last_report);
    free(ctx);
}

sdc_status sdc_generate(sdc_ctx *ctx, const sdc_gen_params *p, sdc_image **images, int *n_images) {
    *images = NULL;
    *n_images = 0;
    sdc_job *j = sdc_job_new(ctx->m, p);
    if (!j) return SDC_ERR_INVALID_ARG;
    sdc_job_set_progress(j, ctx->progress, ctx->progress_user);
    sdc_status st = sdc_job_run(j);
    if (st == SDC_OK) {
        free(ctx->last_report);
        ctx->last_report = sdc_job_report_json(j) ? strdup(sdc_job_report_json(j)) : NULL;
        *images = sdc_job_take_images(j, n_images);
    }
    sdc_job_free(j);
    return st;
}

const char *sdc_last_report_json(const sdc_ctx *ctx) { return ctx->last_report; }

const char *sdc_ctx_family(const sdc_ctx *ctx) { return sdc_model_family(ctx->m); }

sdc_status sdc_plan_memory(sdc_ctx *ctx, const sdc_gen_params *p, char **text) {
    return sdc_model_plan_memory(ctx->m, p, text);
}
