/* schedule.c - timesteps and sigmas of every sampler, as each diffusers class's set_timesteps() makes
 * them; img2img truncation and add_noise. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sampler/numerics.h"
#include "sampler/schedule.h"

typedef struct build_ctx {
    const sdc_sched_config *c;
    const sdc_sampler_params *p;
    const sdc_logger *log;
    int N;               /* num_train_timesteps */
    float *train_sigmas; /* [N] ascending in t */
    float *log_sigmas;   /* [N] float32 log of train_sigmas */
} build_ctx;

/* ---- timestep spacings ---- */

/* Euler, Euler-a, Heun, LMS: float32 timesteps, descending. Returns the count (numpy's arange may give
 * one more than steps for "trailing"), or -1 on OOM. */
static int sigma_family_timesteps(const build_ctx *b, double **out) {
    const int steps = b->p->steps, N = b->N;
    int len = steps;
    if (b->c->spacing == SDC_SPACING_TRAILING) len = sdc_np_arange(N, 0, -(double)N / steps, NULL);
    double *t = malloc(sizeof(double) * (size_t)(len > 0 ? len : 1));
    if (!t) return -1;
    switch (b->c->spacing) {
    case SDC_SPACING_LINSPACE: /* np.linspace(0, N-1, steps, dtype=float32)[::-1] */
        sdc_np_linspace(0.0, N - 1, steps, t);
        for (int i = 0; i < steps; i++) t[i] = (float)t[i];
        break;
    case SDC_SPACING_LEADING: { /* (arange(steps) * (N // steps)).round()[::-1] + steps_offset */
        const int ratio = N / steps;
        for (int i = 0; i < steps; i++) t[i] = (float)((double)i * ratio) + (float)b->c->steps_offset;
        break;
    }
    case SDC_SPACING_TRAILING: /* arange(N, 0, -N/steps).round() - 1 */
        sdc_np_arange(N, 0, -(double)N / steps, t);
        for (int i = 0; i < len; i++) t[i] = (float)sdc_np_round(t[i]) - 1.0f;
        break;
    }
    if (b->c->spacing != SDC_SPACING_TRAILING) /* reverse to descending */
        for (int i = 0; i < len / 2; i++) {
            double tmp = t[i];
            t[i] = t[len - 1 - i];
            t[len - 1 - i] = tmp;
        }
    *out = t;
    return len;
}

/* DDIM and PNDM: integer timesteps. DDIM's are descending; PNDM's _timesteps ascending. */
static int int_timesteps(const build_ctx *b, int ascending, int **out) {
    const int steps = b->p->steps, N = b->N;
    int len = steps;
    double *tmp = NULL;
    if (b->c->spacing == SDC_SPACING_TRAILING) len = sdc_np_arange(N, 0, -(double)N / steps, NULL);
    tmp = malloc(sizeof(double) * (size_t)(len > 0 ? len : 1));
    int *t = malloc(sizeof(int) * (size_t)(len > 0 ? len : 1));
    if (!tmp || !t) {
        free(tmp);
        free(t);
        return -1;
    }
    int asc; /* order of what was computed */
    switch (b->c->spacing) {
    case SDC_SPACING_LINSPACE:
        sdc_np_linspace(0.0, N - 1, steps, tmp);
        for (int i = 0; i < len; i++) t[i] = (int)sdc_np_round(tmp[i]);
        asc = 1;
        break;
    case SDC_SPACING_LEADING:
        for (int i = 0; i < len; i++) t[i] = i * (N / steps) + b->c->steps_offset;
        asc = 1;
        break;
    default:
        sdc_np_arange(N, 0, -(double)N / steps, tmp);
        for (int i = 0; i < len; i++) t[i] = (int)sdc_np_round(tmp[i]) - 1;
        asc = 0;
        break;
    }
    if (asc != ascending)
        for (int i = 0; i < len / 2; i++) {
            int v = t[i];
            t[i] = t[len - 1 - i];
            t[len - 1 - i] = v;
        }
    free(tmp);
    *out = t;
    return len;
}

/* DPMSolverMultistep: integer timesteps, descending, over [0, last_timestep) */
static int dpm_timesteps(const build_ctx *b, const float *alphas_cumprod, int **out) {
    const int steps = b->p->steps, N = b->N;
    /* last_timestep = N - searchsorted(flip(lambda_t), lambda_min_clipped) */
    int clipped = 0;
    for (int i = N - 1; i >= 0; i--) {
        const float lambda = logf(sqrtf(alphas_cumprod[i])) - logf(sqrtf(1.0f - alphas_cumprod[i]));
        if ((double)lambda >= b->c->lambda_min_clipped) break;
        clipped++;
    }
    const int last = N - clipped;
    int len = steps;
    if (b->c->spacing == SDC_SPACING_TRAILING) len = sdc_np_arange(last, 0, -(double)N / steps, NULL);
    double *tmp = malloc(sizeof(double) * (size_t)(steps + 1 > len ? steps + 1 : len));
    int *t = malloc(sizeof(int) * (size_t)(len > 0 ? len : 1));
    if (!tmp || !t) {
        free(tmp);
        free(t);
        return -1;
    }
    switch (b->c->spacing) {
    case SDC_SPACING_LINSPACE: /* linspace(0, last-1, steps+1).round()[::-1][:-1] */
        sdc_np_linspace(0.0, last - 1, steps + 1, tmp);
        for (int i = 0; i < len; i++) t[i] = (int)sdc_np_round(tmp[steps - i]);
        break;
    case SDC_SPACING_LEADING: { /* (arange(steps+1) * (last // (steps+1)))[::-1][:-1] + offset */
        const int ratio = last / (steps + 1);
        for (int i = 0; i < len; i++) t[i] = (steps - i) * ratio + b->c->steps_offset;
        break;
    }
    case SDC_SPACING_TRAILING: /* arange(last, 0, -N/steps).round() - 1 */
        sdc_np_arange(last, 0, -(double)N / steps, tmp);
        for (int i = 0; i < len; i++) t[i] = (int)sdc_np_round(tmp[i]) - 1;
        break;
    }
    free(tmp);
    *out = t;
    return len;
}

/* ---- per-family builders ---- */

static float init_sigma_of(const sdc_schedule *s, sdc_timestep_spacing spacing) {
    float mx = 0.0f;
    for (int i = 0; i <= s->n; i++)
        if (s->sigmas[i] > mx) mx = s->sigmas[i];
    if (spacing != SDC_SPACING_LEADING) return mx;
    return sqrtf(mx * mx + 1.0f);
}

static sdc_status build_sigma_family(const build_ctx *b, sdc_schedule *s) {
    const sdc_sampler kind = b->p->kind;
    double *t = NULL, *sg = NULL;
    int n = sigma_family_timesteps(b, &t);
    if (n < 1) {
        free(t);
        if (n < 0) return SDC_ERR_OOM;
        SDC_LOGE(b->log, "sdc_schedule_build: no timesteps for %d steps", b->p->steps);
        return SDC_ERR_INVALID_ARG;
    }
    const int n_out = b->p->karras ? b->p->steps : n;
    sg = malloc(sizeof(double) * (size_t)(n > n_out ? n : n_out));
    if (!sg) {
        free(t);
        return SDC_ERR_OOM;
    }
    for (int i = 0; i < n; i++) sg[i] = sdc_np_interp_index(t[i], b->train_sigmas, b->N);
    if (b->p->karras) {
        const int euler_cfg = kind == SDC_SAMPLER_EULER || kind == SDC_SAMPLER_EULER_A;
        const double smin = euler_cfg && b->c->has_sigma_min ? b->c->sigma_min : sg[n - 1];
        const double smax = euler_cfg && b->c->has_sigma_max ? b->c->sigma_max : sg[0];
        sdc_karras_sigmas(smin, smax, n_out, sg);
        double *t2 = realloc(t, sizeof(double) * (size_t)n_out);
        if (!t2) {
            free(t);
            free(sg);
            return SDC_ERR_OOM;
        }
        t = t2;
        for (int i = 0; i < n_out; i++) t[i] = sdc_sigma_to_t(sg[i], b->log_sigmas, b->N);
        n = n_out;
    }
    const float final_sigma = b->c->final_sigma_min ? b->train_sigmas[0] : 0.0f;

    if (kind == SDC_SAMPLER_HEUN) { /* [t0, t1, t1, t2, t2, ...], [s0, s1, s1, ..., s_{n-1}, s_{n-1}, 0] */
        s->n = 2 * n - 1;
    } else {
        s->n = n;
    }
    s->timesteps = malloc(sizeof(float) * (size_t)s->n);
    s->sigmas = malloc(sizeof(float) * (size_t)(s->n + 1));
    if (!s->timesteps || !s->sigmas) {
        free(t);
        free(sg);
        return SDC_ERR_OOM;
    }
    if (kind == SDC_SAMPLER_HEUN) {
        s->timesteps[0] = (float)t[0];
        s->sigmas[0] = (float)sg[0];
        for (int i = 1; i < n; i++) {
            s->timesteps[2 * i - 1] = s->timesteps[2 * i] = (float)t[i];
            s->sigmas[2 * i - 1] = s->sigmas[2 * i] = (float)sg[i];
        }
    } else {
        for (int i = 0; i < n; i++) {
            s->timesteps[i] = (float)t[i];
            s->sigmas[i] = (float)sg[i];
        }
    }
    s->sigmas[s->n] = final_sigma;
    if (b->c->continuous_timesteps) /* euler, v-prediction: t = 0.25 * log(sigma) */
        for (int i = 0; i < s->n; i++) s->timesteps[i] = 0.25f * logf(s->sigmas[i]);
    s->init_noise_sigma = init_sigma_of(s, b->c->spacing);
    free(t);
    free(sg);
    return SDC_OK;
}

static sdc_status check_indices(const build_ctx *b, const int *t, int n) {
    for (int i = 0; i < n; i++)
        if (t[i] < 0 || t[i] >= b->N) {
            SDC_LOGE(b->log, "sdc_schedule_build: %d steps give timestep %d, outside [0, %d)", b->p->steps, t[i], b->N);
            return SDC_ERR_INVALID_ARG;
        }
    return SDC_OK;
}

static sdc_status build_ddim_pndm(const build_ctx *b, sdc_schedule *s) {
    if (b->p->steps > b->N) {
        SDC_LOGE(b->log, "sdc_schedule_build: %d steps exceed num_train_timesteps %d", b->p->steps, b->N);
        return SDC_ERR_INVALID_ARG;
    }
    const int pndm = b->p->kind == SDC_SAMPLER_PNDM;
    int *t = NULL;
    int len = int_timesteps(b, pndm, &t);
    if (len < 0) return SDC_ERR_OOM;
    sdc_status st = len > 0 ? check_indices(b, t, len) : SDC_ERR_INVALID_ARG;
    if (st != SDC_OK) {
        if (len == 0) SDC_LOGE(b->log, "sdc_schedule_build: no timesteps for %d steps", b->p->steps);
        free(t);
        return st;
    }
    /* PLMS: concat(_t[:-1], _t[-2:-1], _t[-1:])[::-1]; DDIM: as is */
    s->n = pndm ? (len - 1) + (len >= 2) + 1 : len;
    s->timesteps = malloc(sizeof(float) * (size_t)s->n);
    if (!s->timesteps) {
        free(t);
        return SDC_ERR_OOM;
    }
    if (pndm) {
        int k = 0;
        float *tmp = s->timesteps;
        for (int i = 0; i < len - 1; i++) tmp[k++] = (float)t[i];
        if (len >= 2) tmp[k++] = (float)t[len - 2];
        tmp[k++] = (float)t[len - 1];
        for (int i = 0; i < k / 2; i++) {
            float v = tmp[i];
            tmp[i] = tmp[k - 1 - i];
            tmp[k - 1 - i] = v;
        }
        if (!b->c->skip_prk_steps)
            SDC_LOGW(b->log,
                     "sdc_schedule_build: pndm runs PLMS steps only (the config asks for Runge-Kutta warm-up steps)");
    } else {
        for (int i = 0; i < len; i++) s->timesteps[i] = (float)t[i];
    }
    free(t);
    s->init_noise_sigma = 1.0f;
    s->timestep_step = b->N / b->p->steps;
    s->final_alpha_cumprod = b->c->set_alpha_to_one ? 1.0f : s->alphas_cumprod[0];
    return SDC_OK;
}

static sdc_status build_dpm(const build_ctx *b, sdc_schedule *s) {
    int *ti = NULL;
    int len = dpm_timesteps(b, s->alphas_cumprod, &ti);
    if (len < 1) {
        free(ti);
        if (len < 0) return SDC_ERR_OOM;
        SDC_LOGE(b->log, "sdc_schedule_build: no timesteps for %d steps", b->p->steps);
        return SDC_ERR_INVALID_ARG;
    }
    const int n = b->p->karras ? b->p->steps : len;
    s->n = n;
    s->timesteps = malloc(sizeof(float) * (size_t)n);
    s->sigmas = malloc(sizeof(float) * (size_t)(n + 1));
    double *sg = malloc(sizeof(double) * (size_t)n);
    if (!s->timesteps || !s->sigmas || !sg) {
        free(ti);
        free(sg);
        return SDC_ERR_OOM;
    }
    if (b->p->karras) { /* over the whole training range; timesteps rounded (truncated for squaredcos) */
        sdc_karras_sigmas(b->train_sigmas[0], b->train_sigmas[b->N - 1], n, sg);
        const int round = b->c->beta_schedule != SDC_BETAS_SQUAREDCOS_CAP_V2;
        for (int i = 0; i < n; i++) {
            const double t = sdc_sigma_to_t(sg[i], b->log_sigmas, b->N);
            s->timesteps[i] = (float)(round ? sdc_np_round(t) : trunc(t));
        }
    } else {
        for (int i = 0; i < n; i++) {
            s->timesteps[i] = (float)ti[i];
            sg[i] = sdc_np_interp_index(ti[i], b->train_sigmas, b->N);
        }
    }
    for (int i = 0; i < n; i++) s->sigmas[i] = (float)sg[i];
    s->sigmas[n] = b->c->final_sigma_min ? b->train_sigmas[0] : 0.0f;
    free(ti);
    free(sg);
    s->init_noise_sigma = 1.0f;
    s->dpm_lower_order_final = b->c->euler_at_final || (b->c->lower_order_final && n < 15) || !b->c->final_sigma_min;
    s->dpm_solver_heun = b->c->solver_heun;
    return SDC_OK;
}

/* ---- public ---- */

/* np.log of a float32 array (correctly rounded here; numpy's SIMD log may differ in the last bit) */
static void log_f32(const float *x, int n, float *out) {
    for (int i = 0; i < n; i++) out[i] = (float)log((double)x[i]);
}

void sdc_sampler_params_init(sdc_sampler_params *p) {
    p->kind = SDC_SAMPLER_EULER;
    p->karras = 0;
    p->steps = 20;
}

static sdc_status check_params(const sdc_sampler_params *p, const sdc_logger *log) {
    if (!p || (unsigned)p->kind >= SDC_SAMPLER_COUNT) {
        SDC_LOGE(log, "sdc_schedule_build: invalid sampler kind");
        return SDC_ERR_INVALID_ARG;
    }
    if (p->steps < 1) {
        SDC_LOGE(log, "sdc_schedule_build: steps must be >= 1 (got %d)", p->steps);
        return SDC_ERR_INVALID_ARG;
    }
    if (p->karras && (p->kind == SDC_SAMPLER_DDIM || p->kind == SDC_SAMPLER_PNDM)) {
        SDC_LOGE(log, "sdc_schedule_build: %s has no karras sigma schedule (use discrete)",
                 sdc_sampler_kind_name(p->kind));
        return SDC_ERR_INVALID_ARG;
    }
    return SDC_OK;
}

/* The last line of defence behind the config checks: every noise level finite and non-negative, every
 * timestep finite. */
static sdc_status check_built(const sdc_schedule *s, const sdc_logger *log) {
    for (int i = 0; i < s->n; i++) {
        if (!isfinite(s->timesteps[i])) {
            SDC_LOGE(log, "sdc_schedule_build: timestep %d is %g; the scheduler config is out of range", i,
                     (double)s->timesteps[i]);
            return SDC_ERR_FORMAT;
        }
    }
    for (int i = 0; s->sigmas && i <= s->n; i++) {
        if (!(isfinite(s->sigmas[i]) && s->sigmas[i] >= 0.0f)) {
            SDC_LOGE(log, "sdc_schedule_build: sigma %d is %g; the scheduler config is out of range", i,
                     (double)s->sigmas[i]);
            return SDC_ERR_FORMAT;
        }
    }
    if (!(isfinite(s->init_noise_sigma) && s->init_noise_sigma > 0.0f)) {
        SDC_LOGE(log, "sdc_schedule_build: init_noise_sigma is %g; the scheduler config is out of range",
                 (double)s->init_noise_sigma);
        return SDC_ERR_FORMAT;
    }
    return SDC_OK;
}

sdc_status sdc_schedule_build(const cJSON *scheduler_config, const sdc_sampler_params *params, const sdc_logger *log,
                              sdc_schedule *out) {
    memset(out, 0, sizeof(*out));
    sdc_status st = check_params(params, log);
    if (st != SDC_OK) return st;
    sdc_sched_config cfg;
    st = sdc_sched_config_read(scheduler_config, params->kind, log, &cfg);
    if (st != SDC_OK) return st;

    build_ctx b = {.c = &cfg, .p = params, .log = log, .N = cfg.num_train_timesteps};
    out->kind = params->kind;
    out->karras = params->karras != 0;
    out->steps = params->steps;
    out->prediction = cfg.prediction;
    out->num_train_timesteps = b.N;
    out->clip_sample = cfg.clip_sample;
    out->clip_sample_range = (float)cfg.clip_sample_range;
    out->alphas_cumprod = malloc(sizeof(float) * (size_t)b.N);
    b.train_sigmas = malloc(sizeof(float) * (size_t)b.N);
    b.log_sigmas = malloc(sizeof(float) * (size_t)b.N);
    if (!out->alphas_cumprod || !b.train_sigmas || !b.log_sigmas) {
        st = SDC_ERR_OOM;
        goto done;
    }
    sdc_alphas_cumprod(&cfg, params->kind, out->alphas_cumprod);
    sdc_train_sigmas(out->alphas_cumprod, b.N, b.train_sigmas);
    log_f32(b.train_sigmas, b.N, b.log_sigmas);

    switch (params->kind) {
    case SDC_SAMPLER_DDIM:
    case SDC_SAMPLER_PNDM: st = build_ddim_pndm(&b, out); break;
    case SDC_SAMPLER_DPMPP_2M: st = build_dpm(&b, out); break;
    default: st = build_sigma_family(&b, out); break;
    }
done:
    if (st == SDC_OK) st = check_built(out, log);
    if (st == SDC_OK) {
        SDC_LOGD(log, "sdc_schedule_build: %s%s, %d steps -> %d evaluations, init_noise_sigma %.6g",
                 sdc_sampler_kind_name(out->kind), out->karras ? " karras" : "", out->steps, out->n,
                 (double)out->init_noise_sigma);
    } else {
        if (st == SDC_ERR_OOM) SDC_LOGE(log, "sdc_schedule_build: out of memory");
        sdc_schedule_free(out);
    }
    free(b.train_sigmas);
    free(b.log_sigmas);
    sdc_sched_config_free(&cfg);
    return st;
}

void sdc_schedule_free(sdc_schedule *s) {
    if (!s) return;
    free(s->timesteps);
    free(s->sigmas);
    free(s->alphas_cumprod);
    memset(s, 0, sizeof(*s));
}

void sdc_schedule_scale_noise(const sdc_schedule *s, float *x, size_t n) {
    const float k = s->init_noise_sigma;
    for (size_t i = 0; i < n; i++) x[i] = x[i] * k;
}

sdc_status sdc_schedule_truncate_for_strength(sdc_schedule *s, double strength, const sdc_logger *log) {
    if (!(strength >= 0.0 && strength <= 1.0)) {
        SDC_LOGE(log, "sdc_schedule_truncate_for_strength: strength %g outside [0, 1]", strength);
        return SDC_ERR_INVALID_ARG;
    }
    int init_timestep = (int)(s->steps * strength);
    if (init_timestep > s->steps) init_timestep = s->steps;
    int t_start = s->steps - init_timestep;
    if (t_start < 0) t_start = 0;
    const int begin = t_start * (s->kind == SDC_SAMPLER_HEUN ? 2 : 1);
    if (init_timestep < 1 || begin >= s->n) {
        SDC_LOGE(log, "sdc_schedule_truncate_for_strength: strength %g leaves no step of %d to run", strength,
                 s->steps);
        return SDC_ERR_INVALID_ARG;
    }
    s->begin = begin;
    return SDC_OK;
}

void sdc_schedule_add_noise(const sdc_schedule *s, const float *x0, const float *noise, float *out, size_t n) {
    const int i = s->begin;
    if (s->kind == SDC_SAMPLER_DDIM || s->kind == SDC_SAMPLER_PNDM) {
        const float ac = s->alphas_cumprod[(int)s->timesteps[i]];
        const float a = sqrtf(ac), b = sqrtf(1.0f - ac);
        for (size_t k = 0; k < n; k++) out[k] = a * x0[k] + b * noise[k];
    } else if (s->kind == SDC_SAMPLER_DPMPP_2M) {
        const float sigma = s->sigmas[i];
        const float alpha_t = 1.0f / sqrtf(sigma * sigma + 1.0f), sigma_t = sigma * alpha_t;
        for (size_t k = 0; k < n; k++) out[k] = alpha_t * x0[k] + sigma_t * noise[k];
    } else {
        const float sigma = s->sigmas[i];
        for (size_t k = 0; k < n; k++) out[k] = x0[k] + noise[k] * sigma;
    }
}
