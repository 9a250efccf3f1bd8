/* sched_config.c - scheduler_config.json -> sdc_sched_config, with the defaults of the diffusers class
 * each sampler maps to, and the float32 training constants (betas, alphas_cumprod, sigmas). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sampler/numerics.h"
#include "sampler/schedule.h"

/* ---- typed getters: an absent or null key keeps *out (the class default) ---- */

static const cJSON *item(const cJSON *cfg, const char *key) {
    const cJSON *it = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, key) : NULL;
    return it && !cJSON_IsNull(it) ? it : NULL;
}

static sdc_status get_num(const cJSON *cfg, const char *key, const sdc_logger *log, double *out) {
    const cJSON *it = item(cfg, key);
    if (!it) return SDC_OK;
    if (!cJSON_IsNumber(it)) {
        SDC_LOGE(log, "sdc_schedule_build: scheduler config '%s' is not a number", key);
        return SDC_ERR_FORMAT;
    }
    *out = it->valuedouble;
    return SDC_OK;
}

static sdc_status get_int(const cJSON *cfg, const char *key, const sdc_logger *log, int *out) {
    double v = *out;
    sdc_status st = get_num(cfg, key, log, &v);
    if (st != SDC_OK) return st;
    if (v != floor(v) || fabs(v) > 1e9) {
        SDC_LOGE(log, "sdc_schedule_build: scheduler config '%s' = %g is not an integer", key, v);
        return SDC_ERR_FORMAT;
    }
    *out = (int)v;
    return SDC_OK;
}

static sdc_status get_bool(const cJSON *cfg, const char *key, const sdc_logger *log, int *out) {
    const cJSON *it = item(cfg, key);
    if (!it) return SDC_OK;
    if (!cJSON_IsBool(it)) {
        SDC_LOGE(log, "sdc_schedule_build: scheduler config '%s' is not a boolean", key);
        return SDC_ERR_FORMAT;
    }
    *out = cJSON_IsTrue(it);
    return SDC_OK;
}

/* Maps the string value of key to its index in names (count entries); *out keeps the default when the
 * key is absent. */
static sdc_status get_enum(const cJSON *cfg, const char *key, const char *const *names, int count,
                           const sdc_logger *log, int *out) {
    const cJSON *it = item(cfg, key);
    if (!it) return SDC_OK;
    if (!cJSON_IsString(it)) {
        SDC_LOGE(log, "sdc_schedule_build: scheduler config '%s' is not a string", key);
        return SDC_ERR_FORMAT;
    }
    for (int i = 0; i < count; i++)
        if (strcmp(it->valuestring, names[i]) == 0) {
            *out = i;
            return SDC_OK;
        }
    SDC_LOGE(log, "sdc_schedule_build: scheduler config '%s' = '%s' is not a known value", key, it->valuestring);
    return SDC_ERR_FORMAT;
}

#define TRY(x)                         \
    do {                               \
        sdc_status st_ = (x);          \
        if (st_ != SDC_OK) return st_; \
    } while (0)

static sdc_status read_betas(const cJSON *cfg, const sdc_logger *log, sdc_sched_config *c) {
    static const char *const schedules[] = {"linear", "scaled_linear", "squaredcos_cap_v2", "exp"};
    int bs = (int)c->beta_schedule;
    TRY(get_enum(cfg, "beta_schedule", schedules, 4, log, &bs));
    if (bs == 3) {
        SDC_LOGE(log, "sdc_schedule_build: beta_schedule 'exp' is not supported");
        return SDC_ERR_UNSUPPORTED;
    }
    c->beta_schedule = (sdc_beta_schedule)bs;
    const cJSON *tb = item(cfg, "trained_betas");
    if (!tb) return SDC_OK;
    if (!cJSON_IsArray(tb) || cJSON_GetArraySize(tb) != c->num_train_timesteps) {
        SDC_LOGE(log, "sdc_schedule_build: trained_betas is not a list of num_train_timesteps (%d) numbers",
                 c->num_train_timesteps);
        return SDC_ERR_FORMAT;
    }
    c->trained_betas = malloc(sizeof(float) * (size_t)c->num_train_timesteps);
    if (!c->trained_betas) return SDC_ERR_OOM;
    int i = 0;
    for (const cJSON *e = tb->child; e; e = e->next, i++) {
        if (!cJSON_IsNumber(e)) {
            SDC_LOGE(log, "sdc_schedule_build: trained_betas[%d] is not a number", i);
            return SDC_ERR_FORMAT;
        }
        c->trained_betas[i] = (float)e->valuedouble;
    }
    c->beta_schedule = SDC_BETAS_TRAINED;
    return SDC_OK;
}

/* A number that must lie in [lo, hi) (hi_open) or [lo, hi]; NaN and infinities fail. */
static sdc_status in_range(const char *key, double v, double lo, double hi, int hi_open, const sdc_logger *log) {
    if (isfinite(v) && v >= lo && (hi_open ? v < hi : v <= hi)) return SDC_OK;
    SDC_LOGE(log, "sdc_schedule_build: scheduler config %s = %g is outside [%g, %g%c", key, v, lo, hi,
             hi_open ? ')' : ']');
    return SDC_ERR_FORMAT;
}

/* Betas are probabilities below 1 (each alpha = 1 - beta must stay in (0, 1]); sigmas and ranges are
 * finite and non-negative. Out of range, the schedule would hold NaN or negative noise levels. */
static sdc_status check_ranges(const sdc_sched_config *c, const sdc_logger *log) {
    if (c->beta_schedule != SDC_BETAS_TRAINED && c->beta_schedule != SDC_BETAS_SQUAREDCOS_CAP_V2) {
        TRY(in_range("beta_start", c->beta_start, 0.0, 1.0, 1, log));
        TRY(in_range("beta_end", c->beta_end, 0.0, 1.0, 1, log));
    }
    for (int i = 0; c->trained_betas && i < c->num_train_timesteps; i++) {
        char key[48];
        snprintf(key, sizeof key, "trained_betas[%d]", i);
        TRY(in_range(key, c->trained_betas[i], 0.0, 1.0, 1, log));
    }
    if (c->clip_sample) TRY(in_range("clip_sample_range", c->clip_sample_range, 0.0, 1e30, 0, log));
    if (c->has_sigma_min) TRY(in_range("sigma_min", c->sigma_min, 0.0, 1e30, 0, log));
    if (c->has_sigma_max) TRY(in_range("sigma_max", c->sigma_max, 0.0, 1e30, 0, log));
    if (c->has_sigma_min && c->has_sigma_max && c->sigma_min > c->sigma_max) {
        SDC_LOGE(log, "sdc_schedule_build: scheduler config sigma_min %g is above sigma_max %g", c->sigma_min,
                 c->sigma_max);
        return SDC_ERR_FORMAT;
    }
    return SDC_OK;
}

static sdc_status read_all(const cJSON *cfg, sdc_sampler kind, const sdc_logger *log, sdc_sched_config *c) {
    /* class defaults (diffusers 0.40) */
    c->num_train_timesteps = 1000;
    c->beta_start = kind == SDC_SAMPLER_HEUN ? 0.00085 : 0.0001;
    c->beta_end = kind == SDC_SAMPLER_HEUN ? 0.012 : 0.02;
    c->beta_schedule = SDC_BETAS_LINEAR;
    c->prediction = SDC_PREDICT_EPSILON;
    c->spacing = kind == SDC_SAMPLER_DDIM || kind == SDC_SAMPLER_PNDM ? SDC_SPACING_LEADING : SDC_SPACING_LINSPACE;
    c->steps_offset = 0;
    c->set_alpha_to_one = kind == SDC_SAMPLER_DDIM;
    c->clip_sample = kind == SDC_SAMPLER_DDIM;
    c->clip_sample_range = 1.0;
    c->lower_order_final = 1;
    c->lambda_min_clipped = -INFINITY;

    TRY(get_int(cfg, "num_train_timesteps", log, &c->num_train_timesteps));
    if (c->num_train_timesteps < 2 || c->num_train_timesteps > 100000) {
        SDC_LOGE(log, "sdc_schedule_build: num_train_timesteps %d out of range", c->num_train_timesteps);
        return SDC_ERR_FORMAT;
    }
    TRY(get_num(cfg, "beta_start", log, &c->beta_start));
    TRY(get_num(cfg, "beta_end", log, &c->beta_end));
    TRY(read_betas(cfg, log, c));
    TRY(get_int(cfg, "steps_offset", log, &c->steps_offset));

    static const char *const predictions[] = {"epsilon", "v_prediction", "sample", "flow_prediction"};
    int pred = 0;
    TRY(get_enum(cfg, "prediction_type", predictions, 4, log, &pred));
    if (pred >= SDC_PREDICT_COUNT) {
        SDC_LOGE(log, "sdc_schedule_build: prediction_type '%s' is not supported", predictions[pred]);
        return SDC_ERR_UNSUPPORTED;
    }
    c->prediction = (sdc_prediction_type)pred;

    static const char *const spacings[] = {"linspace", "leading", "trailing"};
    int sp = (int)c->spacing;
    TRY(get_enum(cfg, "timestep_spacing", spacings, 3, log, &sp));
    c->spacing = (sdc_timestep_spacing)sp;

    /* options only some classes have; the others ignore the key, as diffusers' from_config does */
    const int has_rescale = kind == SDC_SAMPLER_EULER || kind == SDC_SAMPLER_EULER_A || kind == SDC_SAMPLER_DDIM ||
        kind == SDC_SAMPLER_DPMPP_2M;
    if (has_rescale) TRY(get_bool(cfg, "rescale_betas_zero_snr", log, &c->rescale_betas_zero_snr));
    if (kind == SDC_SAMPLER_DDIM || kind == SDC_SAMPLER_PNDM)
        TRY(get_bool(cfg, "set_alpha_to_one", log, &c->set_alpha_to_one));
    if (kind == SDC_SAMPLER_DDIM || kind == SDC_SAMPLER_HEUN) {
        TRY(get_bool(cfg, "clip_sample", log, &c->clip_sample));
        TRY(get_num(cfg, "clip_sample_range", log, &c->clip_sample_range));
    }
    if (kind == SDC_SAMPLER_DDIM || kind == SDC_SAMPLER_DPMPP_2M) {
        int thresholding = 0;
        TRY(get_bool(cfg, "thresholding", log, &thresholding));
        if (thresholding) {
            SDC_LOGE(log, "sdc_schedule_build: dynamic thresholding is not supported");
            return SDC_ERR_UNSUPPORTED;
        }
    }
    static const char *const final_types[] = {"zero", "sigma_min"};
    if (kind == SDC_SAMPLER_EULER || kind == SDC_SAMPLER_DPMPP_2M)
        TRY(get_enum(cfg, "final_sigmas_type", final_types, 2, log, &c->final_sigma_min));
    if (kind == SDC_SAMPLER_EULER) {
        static const char *const interps[] = {"linear", "log_linear"};
        static const char *const ttypes[] = {"discrete", "continuous"};
        int interp = 0, ttype = 0;
        TRY(get_enum(cfg, "interpolation_type", interps, 2, log, &interp));
        if (interp != 0) {
            SDC_LOGE(log, "sdc_schedule_build: interpolation_type 'log_linear' is not supported");
            return SDC_ERR_UNSUPPORTED;
        }
        TRY(get_enum(cfg, "timestep_type", ttypes, 2, log, &ttype));
        c->continuous_timesteps = ttype == 1 && c->prediction == SDC_PREDICT_V;
        if (item(cfg, "sigma_min")) {
            TRY(get_num(cfg, "sigma_min", log, &c->sigma_min));
            c->has_sigma_min = 1;
        }
        if (item(cfg, "sigma_max")) {
            TRY(get_num(cfg, "sigma_max", log, &c->sigma_max));
            c->has_sigma_max = 1;
        }
    }
    if (kind == SDC_SAMPLER_PNDM) TRY(get_bool(cfg, "skip_prk_steps", log, &c->skip_prk_steps));
    TRY(check_ranges(c, log));
    if (kind == SDC_SAMPLER_DPMPP_2M) {
        static const char *const solvers[] = {"midpoint", "heun"};
        static const char *const algos[] = {"dpmsolver++", "dpmsolver", "sde-dpmsolver++", "sde-dpmsolver"};
        int algo = 0;
        TRY(get_enum(cfg, "algorithm_type", algos, 4, log, &algo));
        if (algo != 0)
            SDC_LOGW(log, "sdc_schedule_build: algorithm_type '%s' in the config; dpm++2m runs dpmsolver++",
                     algos[algo]);
        TRY(get_enum(cfg, "solver_type", solvers, 2, log, &c->solver_heun));
        TRY(get_bool(cfg, "lower_order_final", log, &c->lower_order_final));
        TRY(get_bool(cfg, "euler_at_final", log, &c->euler_at_final));
        TRY(get_num(cfg, "lambda_min_clipped", log, &c->lambda_min_clipped));
        const cJSON *vt = item(cfg, "variance_type");
        if (vt) {
            SDC_LOGE(log, "sdc_schedule_build: variance_type (learned variance) is not supported");
            return SDC_ERR_UNSUPPORTED;
        }
    }
    return SDC_OK;
}

sdc_status sdc_sched_config_read(const cJSON *cfg, sdc_sampler kind, const sdc_logger *log, sdc_sched_config *out) {
    memset(out, 0, sizeof(*out));
    if (cfg && !cJSON_IsObject(cfg)) {
        SDC_LOGE(log, "sdc_schedule_build: scheduler config is not a JSON object");
        return SDC_ERR_FORMAT;
    }
    sdc_status st = read_all(cfg, kind, log, out);
    if (st != SDC_OK) sdc_sched_config_free(out);
    return st;
}

void sdc_sched_config_free(sdc_sched_config *c) {
    if (!c) return;
    free(c->trained_betas);
    c->trained_betas = NULL;
}

/* ---- training constants ---- */

static double alpha_bar_cosine(double t) {
    const double pi = 3.141592653589793;
    double a = (t + 0.008) / 1.008 * pi / 2.0;
    return pow(cos(a), 2.0);
}

static void betas(const sdc_sched_config *c, float *b) {
    const int n = c->num_train_timesteps;
    switch (c->beta_schedule) {
    case SDC_BETAS_LINEAR: sdc_torch_linspace_f32(c->beta_start, c->beta_end, n, b); break;
    case SDC_BETAS_SCALED_LINEAR:
        sdc_torch_linspace_f32(sqrt(c->beta_start), sqrt(c->beta_end), n, b);
        for (int i = 0; i < n; i++) b[i] = b[i] * b[i];
        break;
    case SDC_BETAS_SQUAREDCOS_CAP_V2:
        for (int i = 0; i < n; i++) {
            double t1 = (double)i / n, t2 = (double)(i + 1) / n;
            double v = 1.0 - alpha_bar_cosine(t2) / alpha_bar_cosine(t1);
            b[i] = (float)(v < 0.999 ? v : 0.999);
        }
        break;
    case SDC_BETAS_TRAINED: memcpy(b, c->trained_betas, sizeof(float) * (size_t)n); break;
    }
}

/* diffusers' rescale_zero_terminal_snr, float32 op by op, in place on b[n] */
static void rescale_zero_snr(float *b, int n) {
    for (int i = 0; i < n; i++) b[i] = 1.0f - b[i];
    sdc_torch_cumprod_f32(b, n, b);
    for (int i = 0; i < n; i++) b[i] = sqrtf(b[i]);
    const float a0 = b[0], aT = b[n - 1];
    for (int i = 0; i < n; i++) b[i] -= aT;
    const float scale = a0 / (a0 - aT);
    for (int i = 0; i < n; i++) b[i] *= scale;
    for (int i = 0; i < n; i++) b[i] = b[i] * b[i]; /* alphas_bar */
    for (int i = n - 1; i > 0; i--) b[i] = 1.0f - b[i] / b[i - 1];
    b[0] = 1.0f - b[0];
}

void sdc_alphas_cumprod(const sdc_sched_config *c, sdc_sampler kind, float *out) {
    const int n = c->num_train_timesteps;
    betas(c, out);
    if (c->rescale_betas_zero_snr) rescale_zero_snr(out, n);
    for (int i = 0; i < n; i++) out[i] = 1.0f - out[i]; /* alphas */
    sdc_torch_cumprod_f32(out, n, out);
    if (c->rescale_betas_zero_snr && kind != SDC_SAMPLER_DDIM) out[n - 1] = 0x1p-24f;
}

void sdc_train_sigmas(const float *alphas_cumprod, int n, float *out) {
    for (int i = 0; i < n; i++) out[i] = sqrtf((1.0f - alphas_cumprod[i]) / alphas_cumprod[i]);
}
