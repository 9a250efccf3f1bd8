/* plan.c - per-phase residency and planned peak memory under each load policy. */
#include "pipeline/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        bytes += (size_t)sdc_tensor_info_nelem(t) * sdc_dtype_size(be->iface->weight_dtype(be, t->dtype));
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

void sdc_plan_make(sdc_ctx *ctx, const sdc_job_shape *job, sdc_load_policy policy, sdc_plan *plan) {
    memset(plan, 0, sizeof *plan);
    plan->policy = policy;
    sdc_backend *be = ctx->be;
    size_t es[SDC_PHASE_COUNT];   /* activation element size: each phase's component has its own precision */
    for (int ph = 0; ph < SDC_PHASE_COUNT; ph++) {
        sdc_ctx_use_part(ctx, phase_part[ph]);
        es[ph] = sdc_dtype_size(be->iface->act_dtype(be));
    }
    const int vs = sdc_vae_downscale(&ctx->vae_cfg);
    const int H = job->height, W = job->width, h = H / vs, w = W / vs, nb = job->cfg ? 2 : 1;
    const int T = ctx->clip_cfg.max_positions;
    /* the conditioning [nb, T, C] lives from condition to the end of the batch */
    const size_t context = (size_t)nb * (size_t)T * (size_t)ctx->clip_cfg.hidden * es[SDC_PHASE_CONDITION];
    size_t act[SDC_PHASE_COUNT];
    act[SDC_PHASE_CONDITION] = sdc_clip_activation_bytes_estimate(&ctx->clip_cfg, nb, T, es[SDC_PHASE_CONDITION]);
    act[SDC_PHASE_ENCODE] = context + sdc_vae_encode_activation_bytes_estimate(&ctx->vae_cfg, 1, H, W, es[SDC_PHASE_ENCODE]);
    act[SDC_PHASE_DENOISE] = sdc_unet_activation_bytes_estimate(&ctx->unet_cfg, nb, h, w, T, es[SDC_PHASE_DENOISE]);
    act[SDC_PHASE_DECODE] = context + sdc_vae_decode_activation_bytes_estimate(&ctx->vae_cfg, 1, h, w, es[SDC_PHASE_DECODE]);
    /* workspace: the largest im2col (3x3 kernels, at most twice the widest channel count at the
     * phase's full resolution: an upper bound) and the longest attention of each phase */
    int cu = 0, cv = 0;
    for (int i = 0; i < ctx->unet_cfg.n_blocks; i++)
        if (ctx->unet_cfg.block_out_channels[i] > cu) cu = ctx->unet_cfg.block_out_channels[i];
    for (int i = 0; i < ctx->vae_cfg.n_blocks; i++)
        if (ctx->vae_cfg.block_out_channels[i] > cv) cv = ctx->vae_cfg.block_out_channels[i];
    const size_t im2col[SDC_PHASE_COUNT] = {
        [SDC_PHASE_CONDITION] = 0,
        [SDC_PHASE_ENCODE] = (size_t)9 * (size_t)cv * (size_t)H * (size_t)W,
        [SDC_PHASE_DENOISE] = (size_t)9 * 2 * (size_t)cu * (size_t)h * (size_t)w,
        [SDC_PHASE_DECODE] = (size_t)9 * (size_t)cv * (size_t)H * (size_t)W,
    };
    const int64_t tokens[SDC_PHASE_COUNT] = {T, (int64_t)h * w, (int64_t)h * w, (int64_t)h * w};

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
        sdc_ctx_use_part(ctx, phase_part[ph]);
        pp->bytes[SDC_MEM_WORKSPACE] = be->iface->workspace_bound ? be->iface->workspace_bound(be, im2col[ph], tokens[ph]) : 0;
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
