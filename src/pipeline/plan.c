/* plan.c - per-phase residency and planned peak memory under each load policy. */
#include "pipeline/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/count/count_backend.h"
#include "model/activations.h"
#include "model/clip.h"
#include "model/unet.h"
#include "model/vae.h"

const char *sdc_phase_name(sdc_phase ph) {
    static const char *const names[] = {"condition", "encode", "denoise", "decode"};
    _Static_assert(sizeof(names) / sizeof(names[0]) == SDC_PHASE_COUNT, "phase names");
    return (unsigned)ph < SDC_PHASE_COUNT ? names[ph] : "?";
}

static const char *const policy_names[] = {"auto", "all", "sequential", "phased"};
_Static_assert(sizeof(policy_names) / sizeof(policy_names[0]) == SDC_LOAD_POLICY_COUNT, "policy names");

const char *sdc_load_policy_name(sdc_load_policy p) {
    return (unsigned)p < SDC_LOAD_POLICY_COUNT ? policy_names[p] : "?";
}

int sdc_load_policy_from_name(const char *name, sdc_load_policy *out) {
    for (int i = 0; i < SDC_LOAD_POLICY_COUNT; i++)
        if (!strcmp(name, policy_names[i])) {
            *out = (sdc_load_policy)i;
            return 0;
        }
    return -1;
}

void sdc_job_shape_from_params(const sdc_gen_params *p, sdc_job_shape *job) {
    job->width = p->width;
    job->height = p->height;
    job->cfg = p->cfg_scale > 1.0f;
    job->img2img = p->init_image != NULL;
}

/* Tensor-name prefixes of each part in the model index. */
static int part_owns(sdc_part p, const char *name) {
    static const char *const prefixes[SDC_PART_COUNT][2] = {
        [SDC_PART_TEXT_ENCODER] = {"text_encoder.text_model.", NULL},
        [SDC_PART_UNET] = {"unet.", NULL},
        [SDC_PART_VAE_DECODER] = {"vae.decoder.", "vae.post_quant_conv."},
        [SDC_PART_VAE_ENCODER] = {"vae.encoder.", "vae.quant_conv."},
    };
    for (int i = 0; i < 2; i++)
        if (prefixes[p][i] && !strncmp(name, prefixes[p][i], strlen(prefixes[p][i]))) return 1;
    return 0;
}

size_t sdc_part_weight_bytes(const sdc_ctx *ctx, sdc_part p, int *n_tensors) {
    const sdc_model_index *idx = ctx->mf->index;
    sdc_backend *be = ctx->be;
    size_t bytes = 0;
    *n_tensors = 0;
    for (size_t i = 0; i < sdc_index_count(idx); i++) {
        const sdc_tensor_info *t = sdc_index_at(idx, i);
        if (!part_owns(p, t->name)) continue;
        bytes += (size_t)sdc_tensor_info_nelem(t) *
                 sdc_dtype_size(be->iface->weight_dtype(be, t->dtype, sdc_ctx_part_f32(ctx, p)));
        (*n_tensors)++;
    }
    return bytes;
}


static const sdc_part phase_part[SDC_PHASE_COUNT] = {
    [SDC_PHASE_CONDITION] = SDC_PART_TEXT_ENCODER,
    [SDC_PHASE_ENCODE] = SDC_PART_VAE_ENCODER,
    [SDC_PHASE_DENOISE] = SDC_PART_UNET,
    [SDC_PHASE_DECODE] = SDC_PART_VAE_DECODER,
};

/* Runs phase ph's component forward for this job on cb (a counting backend): the component loaded through
 * its normal loader, its inputs and outputs allocated as generate.c allocates them, after the conditioning
 * [nb, T, C] that lives from condition to the end of the batch. */
static sdc_status run_phase(sdc_ctx *ctx, const sdc_job_shape *job, sdc_phase ph, sdc_backend *cb,
                            const sdc_logger *log) {
    const int vs = sdc_vae_downscale(&ctx->vae_cfg);
    const int64_t H = job->height, W = job->width, h = H / vs, w = W / vs, nb = job->cfg ? 2 : 1;
    const int T = ctx->clip_cfg.max_positions;
    const sdc_part part = phase_part[ph];
    sdc_weight_source src;
    sdc_ctx_part_source(ctx, part, cb, &src);
    src.log = log;
    const sdc_dtype cdt = cb->iface->act_dtype(cb, sdc_ctx_part_f32(ctx, SDC_PART_TEXT_ENCODER));
    const sdc_vae_config *vc = &ctx->vae_cfg;
    sdc_clip *clip = NULL;
    sdc_unet *unet = NULL;
    sdc_vae_encoder *enc = NULL;
    sdc_vae_decoder *dec = NULL;
    sdc_tensor *t[4] = {0};   // the conditioning, then the phase's inputs and outputs
    sdc_status st;
    switch (ph) {
    case SDC_PHASE_CONDITION: st = sdc_clip_load(&ctx->clip_cfg, &src, &clip); break;
    case SDC_PHASE_ENCODE: st = sdc_vae_encoder_load(vc, &src, &enc); break;
    case SDC_PHASE_DENOISE: st = sdc_unet_load(&ctx->unet_cfg, &src, &unet); break;
    default: st = sdc_vae_decoder_load(vc, &src, &dec); break;
    }
    sdc_mem_stats_reset_peak(&cb->stats);   // the weights are loaded: activations and workspace from here
    if (st == SDC_OK && !(t[0] = sdc_act_new(cb, cdt, 3, (int64_t[]){nb, T, ctx->clip_cfg.hidden}))) st = SDC_ERR_OOM;
    if (st == SDC_OK && clip) {
        int32_t *ids = calloc((size_t)(nb * T), sizeof *ids);
        st = ids ? sdc_clip_forward(clip, ids, (int)nb, T, 0, t[0], NULL, NULL, NULL) : SDC_ERR_OOM;
        free(ids);
    } else if (st == SDC_OK && enc) {
        const sdc_dtype dt = sdc_vae_encoder_act_dtype(enc);
        const int64_t ls[4] = {1, vc->latent_channels, h, w};
        t[1] = sdc_act_new(cb, dt, 4, (int64_t[]){1, vc->in_channels, H, W});
        t[2] = sdc_act_new(cb, dt, 4, ls);
        t[3] = sdc_act_new(cb, dt, 4, ls);
        st = t[1] && t[2] && t[3] ? sdc_vae_encode(enc, t[1], t[2], t[3]) : SDC_ERR_OOM;
    } else if (st == SDC_OK && unet) {
        const sdc_dtype dt = sdc_unet_act_dtype(unet);
        const int64_t shape[4] = {nb, ctx->unet_cfg.in_channels, h, w};
        const float ts[2] = {999.0f, 999.0f};
        t[1] = sdc_act_new(cb, dt, 4, shape);
        t[2] = sdc_act_new(cb, dt, 4, shape);
        st = t[1] && t[2] ? sdc_unet_forward(unet, t[1], ts, t[0], t[2], NULL, NULL) : SDC_ERR_OOM;
    } else if (st == SDC_OK && dec) {
        const sdc_dtype dt = sdc_vae_decoder_act_dtype(dec);
        t[1] = sdc_act_new(cb, dt, 4, (int64_t[]){1, vc->latent_channels, h, w});
        t[2] = sdc_act_new(cb, dt, 4, (int64_t[]){1, vc->out_channels, h * vs, w * vs});
        st = t[1] && t[2] ? sdc_vae_decode(dec, t[1], t[2], NULL, NULL) : SDC_ERR_OOM;
    }
    for (int i = 0; i < 4; i++) sdc_tensor_free(t[i]);
    sdc_clip_free(clip);
    sdc_unet_free(unet);
    sdc_vae_encoder_free(enc);
    sdc_vae_decoder_free(dec);
    return st;
}

/* Activation and workspace peaks of phase ph, measured by running it on a counting backend shaped like the
 * context's: exact for this backend, and nothing is read or allocated. */
static void measure_phase(sdc_ctx *ctx, const sdc_job_shape *job, sdc_phase ph, size_t *act, size_t *ws) {
    *act = *ws = 0;
    sdc_logger quiet = ctx->log;   // the loaders' info lines would repeat on every plan
    if (quiet.min_level < SDC_LOG_WARN) quiet.min_level = SDC_LOG_WARN;
    sdc_backend *cb = sdc_backend_count_new(ctx->be);
    sdc_status st = cb ? run_phase(ctx, job, ph, cb, &quiet) : SDC_ERR_OOM;
    if (st == SDC_OK) {
        *act = cb->stats.peak[SDC_MEM_ACTIVATIONS];
        *ws = cb->stats.peak[SDC_MEM_WORKSPACE];
    } else {
        SDC_LOGW(&ctx->log, "plan: cannot measure phase %s: %s", sdc_phase_name(ph), sdc_status_str(st));
    }
    sdc_backend_free(cb);
}

void sdc_plan_make(sdc_ctx *ctx, const sdc_job_shape *job, sdc_load_policy policy, sdc_plan *plan) {
    memset(plan, 0, sizeof *plan);
    plan->policy = policy;
    size_t act[SDC_PHASE_COUNT] = {0}, ws[SDC_PHASE_COUNT] = {0};
    for (int ph = 0; ph < SDC_PHASE_COUNT; ph++)
        if (ph != SDC_PHASE_ENCODE || job->img2img) measure_phase(ctx, job, (sdc_phase)ph, &act[ph], &ws[ph]);

    unsigned needed = 0;
    for (int ph = 0; ph < SDC_PHASE_COUNT; ph++) {
        plan->phase[ph].runs = ph != SDC_PHASE_ENCODE || job->img2img;
        if (plan->phase[ph].runs) needed |= 1u << phase_part[ph];
    }
    for (int ph = 0; ph < SDC_PHASE_COUNT; ph++) {
        sdc_phase_plan *pp = &plan->phase[ph];
        if (!pp->runs) continue;
        unsigned own = 1u << phase_part[ph];
        switch (policy) {
        case SDC_LOAD_SEQUENTIAL:
            pp->resident = ph >= SDC_PHASE_DENOISE ? (1u << SDC_PART_UNET) | (1u << SDC_PART_VAE_DECODER) : own;
            break;
        case SDC_LOAD_PHASED: pp->resident = own; break;
        default: pp->resident = needed; break;
        }
        for (int p = 0; p < SDC_PART_COUNT; p++)
            if (pp->resident & (1u << p)) pp->bytes[SDC_MEM_WEIGHTS] += ctx->part_bytes[p];
        pp->bytes[SDC_MEM_ACTIVATIONS] = act[ph];
        pp->bytes[SDC_MEM_WORKSPACE] = ws[ph];
        pp->total = pp->bytes[SDC_MEM_WEIGHTS] + act[ph] + pp->bytes[SDC_MEM_WORKSPACE];
        if (pp->total > plan->peak) plan->peak = pp->total;
    }
}

static double mib(size_t b) { return (double)b / (1024.0 * 1024.0); }

sdc_status sdc_plan_choose(sdc_ctx *ctx, const sdc_job_shape *job, size_t budget, sdc_plan *plan, char *why,
                           size_t why_size) {
    for (int pol = SDC_LOAD_ALL; pol < SDC_LOAD_POLICY_COUNT; pol++) {
        sdc_plan_make(ctx, job, (sdc_load_policy)pol, plan);
        if (plan->peak <= budget) {
            snprintf(why, why_size, "auto: %s is the first policy whose planned peak %.1f MiB fits the budget %.1f MiB",
                     sdc_load_policy_name(plan->policy), mib(plan->peak), mib(budget));
            return SDC_OK;
        }
    }
    snprintf(why, why_size, "auto: no policy fits the budget %.1f MiB (phased needs %.1f MiB)", mib(budget),
             mib(plan->peak));
    return SDC_ERR_OOM;
}

size_t sdc_plan_default_budget(const sdc_ctx *ctx) {
    sdc_backend *be = ctx->be;
    int64_t b = be->iface->default_budget ? be->iface->default_budget(be) : -1;
    return b < 0 ? (size_t)-1 : (size_t)b;
}

char *sdc_plan_table(sdc_ctx *ctx, const sdc_job_shape *job) {
    size_t cap = 16384, len = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
#define OUT(...) len += (size_t)snprintf(s + len, len < cap ? cap - len : 0, __VA_ARGS__)
    OUT("plan for %dx%d, %s%s, %s backend (MiB)\n", job->width, job->height, job->img2img ? "img2img" : "txt2img",
        job->cfg ? " with CFG" : "", ctx->be->iface->name);
    OUT("%-11s %-10s %9s %12s %10s %9s  %s\n", "policy", "phase", "weights", "activations", "workspace", "total",
        "resident");
    for (int pol = SDC_LOAD_ALL; pol < SDC_LOAD_POLICY_COUNT; pol++) {
        sdc_plan plan;
        sdc_plan_make(ctx, job, (sdc_load_policy)pol, &plan);
        for (int ph = 0; ph < SDC_PHASE_COUNT; ph++) {
            const sdc_phase_plan *pp = &plan.phase[ph];
            if (!pp->runs) continue;
            char parts[96] = "";
            for (int p = 0; p < SDC_PART_COUNT; p++)
                if (pp->resident & (1u << p))
                    snprintf(parts + strlen(parts), sizeof parts - strlen(parts), "%s%s", parts[0] ? "+" : "",
                             sdc_part_name((sdc_part)p));
            OUT("%-11s %-10s %9.1f %12.1f %10.1f %9.1f  %s\n", sdc_load_policy_name(plan.policy),
                sdc_phase_name((sdc_phase)ph), mib(pp->bytes[SDC_MEM_WEIGHTS]), mib(pp->bytes[SDC_MEM_ACTIVATIONS]),
                mib(pp->bytes[SDC_MEM_WORKSPACE]), mib(pp->total), parts);
        }
        OUT("%-11s %-10s %9s %12s %10s %9.1f\n", sdc_load_policy_name(plan.policy), "PEAK", "", "", "", mib(plan.peak));
        if (len >= cap) break;
    }
#undef OUT
    if (len >= cap) {   /* cannot happen with 3 policies x 4 phases */
        free(s);
        return NULL;
    }
    return s;
}
