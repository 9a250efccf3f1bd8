/* test_sampler.c - the schedulers against diffusers.
 *
 * Golden: every case of tiny-sd1-golden/schedulers.json (sampler x steps): timesteps, sigmas and
 * init_noise_sigma, and the whole sampling loop from sched.x0 with the analytic stand-in for the UNet
 * the bundle names in "fake_eps", compared with sched.<name>.<steps>.final.
 * Formula checks: v-prediction runs equal epsilon runs of the same model, euler_a's step, the spacings,
 * img2img truncation and add_noise, and clear errors for bad input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/config.h"
#include "sampler/sampler.h"
#include "test_golden.h"
#include "test_util.h"

#define TOL_SCHEDULE 1e-6 /* timesteps, sigmas, init_noise_sigma: relative, per entry */
#define TOL_FINAL 1e-5    /* final latents: ||out - ref|| / ||ref|| */

/* |a - b| / |b|, or |a| when b = 0 */
static double rel1(double a, double b) { return b != 0.0 ? fabs(a - b) / fabs(b) : fabs(a); }

/* The bundle's stand-in for the UNet: eps = tanh(sample) * 0.5 + 0.01 * (t / 1000) on the scaled
 * model input. */
static sdc_status fake_eps(void *user, const float *x_in, float t, float *out) {
    const size_t n = *(const size_t *)user;
    for (size_t k = 0; k < n; k++) out[k] = (float)(tanh((double)x_in[k]) * 0.5 + 0.01 * ((double)t / 1000.0));
    return SDC_OK;
}

/* "euler_karras" -> euler + karras; "dpmpp_2m" -> dpm++2m */
static int parse_case_name(const char *name, sdc_sampler_params *p) {
    char base[64];
    snprintf(base, sizeof base, "%s", name);
    size_t len = strlen(base);
    const char *suffix = "_karras";
    p->karras = 0;
    if (len > strlen(suffix) && strcmp(base + len - strlen(suffix), suffix) == 0) {
        base[len - strlen(suffix)] = 0;
        p->karras = 1;
    }
    return sdc_sampler_kind_from_name(base, &p->kind, test_logger()) == SDC_OK;
}

/* Largest relative deviation of a float list from a JSON number list; -1 when the lengths differ. */
static double list_err(const float *v, int n, const cJSON *ref) {
    if (!cJSON_IsArray(ref) || cJSON_GetArraySize(ref) != n) return -1.0;
    double worst = 0.0;
    int i = 0;
    for (const cJSON *e = ref->child; e; e = e->next, i++) {
        double r = rel1(v[i], e->valuedouble);
        if (!(r <= worst)) worst = r; /* NaN sticks */
    }
    return worst;
}

typedef struct worst_errs {
    double ts, sig, init, fin;
    char ts_case[64], sig_case[64], fin_case[64];
} worst_errs;

static void run_golden(worst_errs *w) {
    cJSON *doc = NULL;
    if (sdc_json_load(test_ref_path("tiny-sd1-golden/schedulers.json"), test_logger(), &doc) != SDC_OK) {
        test_check(0, "schedulers.json readable");
        return;
    }
    const cJSON *fake = cJSON_GetObjectItemCaseSensitive(doc, "fake_eps");
    test_check(cJSON_IsString(fake) && strcmp(fake->valuestring, "tanh(sample)*0.5 + 0.01*(t/1000)") == 0,
               "the bundle's stand-in model is the one this test implements (%s)",
               cJSON_IsString(fake) ? fake->valuestring : "missing");
    const cJSON *top_cfg = cJSON_GetObjectItemCaseSensitive(doc, "config");
    cJSON *bundle_cfg = NULL;
    if (!top_cfg) { /* fall back on the model's own scheduler config */
        sdc_json_load(test_ref_path("tiny-sd1/scheduler/scheduler_config.json"), test_logger(), &bundle_cfg);
        top_cfg = bundle_cfg;
    }
    sdc_model_index *g = test_golden_open("tiny-sd1-golden/schedulers.safetensors");
    const sdc_tensor_info *x0_info = NULL;
    float *x0 = test_golden_f32(g, "sched.x0", &x0_info);
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(doc, "cases");
    test_check(x0 && cJSON_GetArraySize(cases) > 0, "golden cases present (%d)", cJSON_GetArraySize(cases));
    if (!x0 || !cases) goto out;
    size_t n = (size_t)sdc_tensor_info_nelem(x0_info);
    float *x = malloc(sizeof(float) * n);

    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const cJSON *jname = cJSON_GetObjectItemCaseSensitive(c, "scheduler");
        const cJSON *jsteps = cJSON_GetObjectItemCaseSensitive(c, "steps");
        const cJSON *case_cfg = cJSON_GetObjectItemCaseSensitive(c, "config");
        if (!cJSON_IsString(jname) || !cJSON_IsNumber(jsteps)) {
            test_check(0, "case has a scheduler name and steps");
            continue;
        }
        char label[64];
        snprintf(label, sizeof label, "%s.%d", jname->valuestring, jsteps->valueint);
        sdc_sampler_params p;
        sdc_sampler_params_init(&p);
        p.steps = jsteps->valueint;
        if (!test_check(parse_case_name(jname->valuestring, &p), "%s: sampler name known", label)) continue;
        sdc_schedule s;
        sdc_status st = sdc_schedule_build(case_cfg ? case_cfg : top_cfg, &p, test_logger(), &s);
        if (!test_check(st == SDC_OK, "%s: schedule builds (%s)", label, sdc_status_str(st))) continue;

        double e_ts = list_err(s.timesteps, s.n, cJSON_GetObjectItemCaseSensitive(c, "timesteps"));
        const cJSON *jsig = cJSON_GetObjectItemCaseSensitive(c, "sigmas");
        double e_sig = 0.0;
        if (jsig && !cJSON_IsNull(jsig)) e_sig = s.sigmas ? list_err(s.sigmas, s.n + 1, jsig) : -1.0;
        const cJSON *jinit = cJSON_GetObjectItemCaseSensitive(c, "init_noise_sigma");
        double e_init = cJSON_IsNumber(jinit) ? rel1(s.init_noise_sigma, jinit->valuedouble) : -1.0;
        int ok = e_ts >= 0 && e_ts <= TOL_SCHEDULE && e_sig >= 0 && e_sig <= TOL_SCHEDULE && e_init >= 0 &&
            e_init <= TOL_SCHEDULE;
        if (!ok)
            test_check(0, "%s: schedule (timesteps %.2e, sigmas %.2e, init_noise_sigma %.2e; -1 = length mismatch)",
                       label, e_ts, e_sig, e_init);
        else
            test_check(1, "%s: %d timesteps, sigmas, init_noise_sigma", label, s.n);
        if (e_ts > w->ts) {
            w->ts = e_ts;
            snprintf(w->ts_case, sizeof w->ts_case, "%s", label);
        }
        if (e_sig > w->sig) {
            w->sig = e_sig;
            snprintf(w->sig_case, sizeof w->sig_case, "%s", label);
        }
        if (e_init > w->init) w->init = e_init;

        char ref_name[128];
        snprintf(ref_name, sizeof ref_name, "sched.%s.%d.final", jname->valuestring, jsteps->valueint);
        float *ref = test_golden_f32(g, ref_name, NULL);
        if (ref) {
            memcpy(x, x0, sizeof(float) * n);
            sdc_schedule_scale_noise(&s, x, n); /* x0 is unit noise, as the pipeline's latents are */
            sdc_sample_callbacks cb = {.model = fake_eps, .model_user = &n};
            st = sdc_sample(&s, x, n, &cb, test_logger());
            double e = st == SDC_OK ? test_rel_err(x, ref, n) : INFINITY;
            char what[96];
            snprintf(what, sizeof what, "%s final", label);
            test_check_err(what, "rel", e, TOL_FINAL);
            if (!(e <= w->fin)) {
                w->fin = e;
                snprintf(w->fin_case, sizeof w->fin_case, "%s", label);
            }
            free(ref);
        }
        sdc_schedule_free(&s);
    }
    free(x);
out:
    free(x0);
    sdc_index_free(g);
    cJSON_Delete(bundle_cfg);
    cJSON_Delete(doc);
}

/* ---- v-prediction: the v model of the same denoiser must give the same run ---- */

typedef struct v_model {
    const sdc_schedule *s;
    size_t n;
    int i;    /* evaluation index of the next call */
    int as_v; /* 0: answer eps, 1: answer v */
} v_model;

/* eps = tanh(x_vp) * 0.5 + 0.01 * t/1000 on the VP-space input x_vp, and v = alpha eps - sigma_t x0,
 * x0 = (x_vp - sigma_t eps) / alpha, with alpha, sigma_t of the evaluation's noise level. */
static sdc_status v_or_eps(void *user, const float *x_in, float t, float *out) {
    v_model *vm = user;
    const sdc_schedule *s = vm->s;
    double alpha;
    if (s->sigmas) {
        const double sigma = s->sigmas[vm->i];
        alpha = 1.0 / sqrt(sigma * sigma + 1.0);
    } else {
        alpha = sqrt((double)s->alphas_cumprod[(int)t]);
    }
    const double sigma_t = sqrt(1.0 - alpha * alpha);
    vm->i++;
    for (size_t k = 0; k < vm->n; k++) {
        const double xv = x_in[k];
        const double eps = tanh(xv) * 0.5 + 0.01 * ((double)t / 1000.0);
        const double x0 = (xv - sigma_t * eps) / alpha;
        out[k] = (float)(vm->as_v ? alpha * eps - sigma_t * x0 : eps);
    }
    return SDC_OK;
}

static void test_v_prediction(const cJSON *base_cfg) {
    /* SD 2.x style: v_prediction, and no timestep_spacing (the class default applies) */
    cJSON *eps_cfg = cJSON_Duplicate(base_cfg, 1), *v_cfg = cJSON_Duplicate(base_cfg, 1);
    cJSON_DeleteItemFromObjectCaseSensitive(eps_cfg, "timestep_spacing");
    cJSON_DeleteItemFromObjectCaseSensitive(v_cfg, "timestep_spacing");
    cJSON_ReplaceItemInObjectCaseSensitive(eps_cfg, "prediction_type", cJSON_CreateString("epsilon"));
    cJSON_ReplaceItemInObjectCaseSensitive(v_cfg, "prediction_type", cJSON_CreateString("v_prediction"));
    size_t n = 96;
    float *x0 = malloc(sizeof(float) * n), *xe = malloc(sizeof(float) * n), *xv = malloc(sizeof(float) * n);
    test_fill_normal(x0, n, 11, 1.0f);
    for (int kind = 0; kind < SDC_SAMPLER_COUNT; kind++) {
        if (kind == SDC_SAMPLER_EULER_A) continue; /* stochastic: covered by test_euler_a */
        for (int karras = 0; karras <= 1; karras++) {
            if (karras && (kind == SDC_SAMPLER_DDIM || kind == SDC_SAMPLER_PNDM)) continue;
            /* PLMS combines raw v outputs of different steps before converting them, as diffusers
             * does; only its first step is a pure conversion. */
            const int steps = kind == SDC_SAMPLER_PNDM ? 1 : 12;
            sdc_sampler_params p = {.kind = (sdc_sampler)kind, .karras = karras, .steps = steps};
            sdc_schedule se, sv;
            int ok = sdc_schedule_build(eps_cfg, &p, test_logger(), &se) == SDC_OK &&
                sdc_schedule_build(v_cfg, &p, test_logger(), &sv) == SDC_OK;
            if (!test_check(ok, "v-prediction %s%s: schedules build", sdc_sampler_kind_name(p.kind),
                            karras ? " karras" : ""))
                continue;
            test_check(sv.prediction == SDC_PREDICT_V && se.prediction == SDC_PREDICT_EPSILON, "prediction_type read");
            memcpy(xe, x0, sizeof(float) * n);
            sdc_schedule_scale_noise(&se, xe, n);
            memcpy(xv, xe, sizeof(float) * n);
            v_model me = {.s = &se, .n = n, .as_v = 0}, mv = {.s = &sv, .n = n, .as_v = 1};
            sdc_sample_callbacks cbe = {.model = v_or_eps, .model_user = &me},
                                 cbv = {.model = v_or_eps, .model_user = &mv};
            ok = sdc_sample(&se, xe, n, &cbe, test_logger()) == SDC_OK &&
                sdc_sample(&sv, xv, n, &cbv, test_logger()) == SDC_OK;
            char what[96];
            snprintf(what, sizeof what, "v-prediction %s%s %d steps == epsilon run", sdc_sampler_kind_name(p.kind),
                     karras ? " karras" : "", steps);
            test_check_err(what, "rel", ok ? test_rel_err(xv, xe, n) : INFINITY, 2e-6);
            sdc_schedule_free(&se);
            sdc_schedule_free(&sv);
        }
    }
    /* the first euler step by hand: x0 = -sigma/sqrt(sigma^2+1) v + x/(sigma^2+1), x' = x + (x - x0)/sigma * dt */
    sdc_sampler_params p = {.kind = SDC_SAMPLER_EULER, .karras = 0, .steps = 4};
    sdc_schedule s;
    if (sdc_schedule_build(v_cfg, &p, test_logger(), &s) == SDC_OK) {
        memcpy(xv, x0, sizeof(float) * n);
        sdc_sample_callbacks cb = {.model = fake_eps, .model_user = &n};
        sdc_schedule first = s;
        first.n = 1;
        sdc_sample(&first, xv, n, &cb, test_logger());
        const double sigma = s.sigmas[0], dt = (double)s.sigmas[1] - sigma;
        double worst = 0.0;
        for (size_t k = 0; k < n; k++) {
            const double x = x0[k], xin = x / sqrt(sigma * sigma + 1.0);
            const double v = tanh(xin) * 0.5 + 0.01 * (s.timesteps[0] / 1000.0);
            const double pred = -sigma / sqrt(sigma * sigma + 1.0) * v + x / (sigma * sigma + 1.0);
            const double want = x + (x - pred) / sigma * dt;
            const double e = fabs(xv[k] - want) / (fabs(want) + 1e-3);
            if (e > worst) worst = e;
        }
        test_check_err("euler v-prediction step by the formula", "max rel", worst, 1e-6);
        test_check(s.init_noise_sigma == s.sigmas[0], "linspace spacing: init_noise_sigma = max sigma (%g)",
                   (double)s.init_noise_sigma);
        sdc_schedule_free(&s);
    }
    free(x0);
    free(xe);
    free(xv);
    cJSON_Delete(eps_cfg);
    cJSON_Delete(v_cfg);
}

/* ---- euler_a: one step by the formula, noise drawn once per evaluation ---- */

typedef struct noise_src {
    int calls;
    uint64_t seed;
    float last[64];
} noise_src;

static void draw(void *user, float *out, size_t n) {
    noise_src *ns = user;
    test_fill_normal(out, n, ns->seed + (uint64_t)ns->calls, 1.0f);
    if (n <= 64) memcpy(ns->last, out, sizeof(float) * n);
    ns->calls++;
}

static void test_euler_a(const cJSON *cfg) {
    size_t n = 64;
    float x[64], xs[64];
    test_fill_normal(xs, n, 5, 1.0f);
    sdc_sampler_params p = {.kind = SDC_SAMPLER_EULER_A, .karras = 0, .steps = 7};
    sdc_schedule s;
    if (!test_check(sdc_schedule_build(cfg, &p, test_logger(), &s) == SDC_OK, "euler_a schedule builds")) return;
    /* run to the end and count draws */
    noise_src ns = {.seed = 100};
    memcpy(x, xs, sizeof x);
    sdc_sample_callbacks cb = {.model = fake_eps, .model_user = &n, .noise = draw, .noise_user = &ns};
    sdc_status rc = sdc_sample(&s, x, n, &cb, test_logger());
    test_check(rc == SDC_OK && ns.calls == s.n, "euler_a draws noise once per evaluation (%d draws, %d evaluations)",
               ns.calls, s.n);
    /* the last step alone (begin = n-1), against the formula */
    s.begin = s.n - 2;
    ns.calls = 0;
    memcpy(x, xs, sizeof x);
    sdc_sample_callbacks one = cb;
    sdc_schedule first = s;
    first.n = s.n - 1; /* stop after evaluation n-2: one step */
    sdc_sample(&first, x, n, &one, test_logger());
    const int i = s.n - 2;
    const double sf = s.sigmas[i], st = s.sigmas[i + 1];
    const double up = sqrt(st * st * (sf * sf - st * st) / (sf * sf)), down = sqrt(st * st - up * up);
    double worst = 0.0;
    for (size_t k = 0; k < n; k++) {
        const double xin = xs[k] / sqrt(sf * sf + 1.0);
        const double eps = tanh(xin) * 0.5 + 0.01 * (s.timesteps[i] / 1000.0);
        const double want = xs[k] + eps * (down - sf) + ns.last[k] * up;
        const double e = fabs(x[k] - want) / (fabs(want) + 1e-3);
        if (e > worst) worst = e;
    }
    test_check_err("euler_a step by the formula", "max rel", worst, 2e-6);
    s.begin = 0;
    sdc_sample_callbacks no_noise = {.model = fake_eps, .model_user = &n};
    test_check(sdc_sample(&s, x, n, &no_noise, test_capture_logger()) == SDC_ERR_INVALID_ARG,
               "euler_a without a noise callback: INVALID_ARG (%s)", test_last_error());
    sdc_schedule_free(&s);
}

/* ---- spacings and img2img ---- */

static int int_list_is(const sdc_schedule *s, const int *want, int n) {
    if (s->n != n) return 0;
    for (int i = 0; i < n; i++)
        if (s->timesteps[i] != (float)want[i]) return 0;
    return 1;
}

/* SD 2.x scheduler_config.json (v-prediction, no timestep_spacing: the class default "linspace"):
 * EulerDiscreteScheduler.set_timesteps(5) in diffusers 0.42 gives these float32 values. */
static void test_sd2_config(void) {
    static const char sd2[] = "{\"_class_name\": \"EulerDiscreteScheduler\", \"beta_start\": 0.00085, "
                              "\"beta_end\": 0.012, \"beta_schedule\": \"scaled_linear\", \"clip_sample\": false, "
                              "\"num_train_timesteps\": 1000, \"prediction_type\": \"v_prediction\", "
                              "\"set_alpha_to_one\": false, \"skip_prk_steps\": true, \"steps_offset\": 1, "
                              "\"trained_betas\": null}";
    static const double ts[] = {999.0, 749.25, 499.5, 249.75, 0.0};
    static const double sig[] = {14.614646911621094, 4.086089611053467,    1.6155834197998047,
                                 0.6951509714126587, 0.029167532920837402, 0.0};
    cJSON *cfg = cJSON_Parse(sd2);
    sdc_sampler_params p = {.kind = SDC_SAMPLER_EULER, .karras = 0, .steps = 5};
    sdc_schedule s;
    if (test_check(cfg && sdc_schedule_build(cfg, &p, test_logger(), &s) == SDC_OK && s.n == 5,
                   "SD 2.x config builds")) {
        double worst = rel1(s.init_noise_sigma, sig[0]);
        for (int i = 0; i < 5; i++) worst = fmax(worst, rel1(s.timesteps[i], ts[i]));
        for (int i = 0; i < 6; i++) worst = fmax(worst, rel1(s.sigmas[i], sig[i]));
        test_check_err("SD 2.x euler 5 steps: timesteps, sigmas, init_noise_sigma as diffusers", "max rel", worst,
                       TOL_SCHEDULE);
        test_check(s.prediction == SDC_PREDICT_V, "SD 2.x config: v-prediction");
        sdc_schedule_free(&s);
    }
    cJSON_Delete(cfg);
}

static void test_spacings(const cJSON *base_cfg) {
    cJSON *cfg = cJSON_Duplicate(base_cfg, 1);
    cJSON_ReplaceItemInObjectCaseSensitive(cfg, "timestep_spacing", cJSON_CreateString("trailing"));
    sdc_sampler_params p = {.kind = SDC_SAMPLER_DDIM, .karras = 0, .steps = 10};
    sdc_schedule s;
    static const int ddim_trailing[] = {999, 899, 799, 699, 599, 499, 399, 299, 199, 99};
    test_check(sdc_schedule_build(cfg, &p, test_logger(), &s) == SDC_OK && int_list_is(&s, ddim_trailing, 10),
               "ddim trailing 10 steps: 999, 899, ..., 99");
    sdc_schedule_free(&s);
    cJSON_ReplaceItemInObjectCaseSensitive(cfg, "steps_offset", cJSON_CreateNumber(0));
    p.kind = SDC_SAMPLER_EULER;
    p.steps = 7;
    static const int euler_trailing[] = {999, 856, 713, 570,
                                         428, 285, 142}; /* np.arange(1000, 0, -1000/7).round() - 1 */
    test_check(sdc_schedule_build(cfg, &p, test_logger(), &s) == SDC_OK && int_list_is(&s, euler_trailing, 7),
               "euler trailing 7 steps: 999, 856, 713, 570, 428, 285, 142");
    sdc_schedule_free(&s);
    cJSON_ReplaceItemInObjectCaseSensitive(cfg, "timestep_spacing", cJSON_CreateString("linspace"));
    p.kind = SDC_SAMPLER_EULER;
    p.steps = 4;
    static const int euler_linspace[] = {999, 666, 333, 0};
    test_check(sdc_schedule_build(cfg, &p, test_logger(), &s) == SDC_OK && int_list_is(&s, euler_linspace, 4) &&
                   s.init_noise_sigma == s.sigmas[0],
               "euler linspace 4 steps: 999, 666, 333, 0; init_noise_sigma = sigma_max");
    sdc_schedule_free(&s);
    p.kind = SDC_SAMPLER_DPMPP_2M;
    p.steps = 5;
    static const int dpm_linspace[] = {999, 799, 599, 400, 200}; /* linspace(0, 999, 6).round() */
    test_check(sdc_schedule_build(cfg, &p, test_logger(), &s) == SDC_OK && int_list_is(&s, dpm_linspace, 5),
               "dpm++2m linspace 5 steps: 999, 799, 599, 400, 200");
    sdc_schedule_free(&s);
    cJSON_Delete(cfg);
}

static void test_img2img(const cJSON *cfg) {
    const size_t n = 32;
    float x0[32], noise[32], out[32];
    test_fill_normal(x0, n, 21, 1.0f);
    test_fill_normal(noise, n, 22, 1.0f);
    sdc_sampler_params p = {.kind = SDC_SAMPLER_EULER, .karras = 0, .steps = 8};
    sdc_schedule s;
    sdc_schedule_build(cfg, &p, test_logger(), &s);
    /* init_timestep = int(8 * 0.75) = 6, t_start = 2 */
    test_check(sdc_schedule_truncate_for_strength(&s, 0.75, test_logger()) == SDC_OK && s.begin == 2,
               "euler 8 steps, strength 0.75: begins at evaluation 2 (got %d)", s.begin);
    sdc_schedule_add_noise(&s, x0, noise, out, n);
    double worst = 0.0;
    for (size_t k = 0; k < n; k++) {
        const float want = x0[k] + noise[k] * s.sigmas[2];
        if (fabs(out[k] - want) > worst) worst = fabs(out[k] - want);
    }
    test_check_err("euler add_noise = x0 + noise * sigma[begin]", "max abs", worst, 0.0);
    test_check(sdc_schedule_truncate_for_strength(&s, 1.5, test_capture_logger()) == SDC_ERR_INVALID_ARG,
               "strength 1.5: INVALID_ARG (%s)", test_last_error());
    test_check(sdc_schedule_truncate_for_strength(&s, 0.1, test_capture_logger()) == SDC_ERR_INVALID_ARG,
               "strength 0.1 with 8 steps runs nothing: INVALID_ARG (%s)", test_last_error());
    sdc_schedule_free(&s);

    p.kind = SDC_SAMPLER_HEUN;
    sdc_schedule_build(cfg, &p, test_logger(), &s);
    test_check(sdc_schedule_truncate_for_strength(&s, 0.75, test_logger()) == SDC_OK && s.begin == 4 &&
                   s.timesteps[4] == s.timesteps[3],
               "heun (order 2), strength 0.75: begins at evaluation 4, a first-order step (got %d)", s.begin);
    sdc_schedule_free(&s);

    p.kind = SDC_SAMPLER_DDIM;
    sdc_schedule_build(cfg, &p, test_logger(), &s);
    sdc_schedule_truncate_for_strength(&s, 0.5, test_logger());
    sdc_schedule_add_noise(&s, x0, noise, out, n);
    const float ac = s.alphas_cumprod[(int)s.timesteps[s.begin]];
    worst = 0.0;
    for (size_t k = 0; k < n; k++) {
        const float want = sqrtf(ac) * x0[k] + sqrtf(1.0f - ac) * noise[k];
        if (fabs(out[k] - want) > worst) worst = fabs(out[k] - want);
    }
    test_check_err("ddim add_noise = sqrt(ac) x0 + sqrt(1 - ac) noise", "max abs", worst, 0.0);
    sdc_schedule_free(&s);
}

/* ---- bad input ---- */

static void test_errors(const cJSON *cfg) {
    const sdc_logger *cap = test_capture_logger();
    sdc_sampler kind;
    sdc_sampler_params p = {.kind = SDC_SAMPLER_EULER, .karras = 0, .steps = 0};
    sdc_schedule s;
    test_check(sdc_schedule_build(cfg, &p, cap, &s) == SDC_ERR_INVALID_ARG && s.timesteps == NULL,
               "steps 0: INVALID_ARG (%s)", test_last_error());
    test_check(sdc_sampler_kind_from_name("euler_b", &kind, cap) == SDC_ERR_INVALID_ARG,
               "unknown sampler name: INVALID_ARG (%s)", test_last_error());
    int karras;
    test_check(sdc_sigma_schedule_from_name("exponential", &karras, cap) == SDC_ERR_INVALID_ARG,
               "unknown sigma schedule: INVALID_ARG (%s)", test_last_error());
    test_check(sdc_sampler_kind_from_name("dpm++2m", &kind, cap) == SDC_OK && kind == SDC_SAMPLER_DPMPP_2M &&
                   sdc_sigma_schedule_from_name("karras", &karras, cap) == SDC_OK && karras == 1,
               "dpm++2m / karras parse");
    p.steps = 10;
    p.karras = 1;
    p.kind = SDC_SAMPLER_DDIM;
    test_check(sdc_schedule_build(cfg, &p, cap, &s) == SDC_ERR_INVALID_ARG, "karras with ddim: INVALID_ARG (%s)",
               test_last_error());
    p.kind = SDC_SAMPLER_PNDM;
    test_check(sdc_schedule_build(cfg, &p, cap, &s) == SDC_ERR_INVALID_ARG, "karras with pndm: INVALID_ARG (%s)",
               test_last_error());
    p.karras = 0;
    p.kind = SDC_SAMPLER_DDIM;
    p.steps = 2000;
    test_check(sdc_schedule_build(cfg, &p, cap, &s) == SDC_ERR_INVALID_ARG, "ddim 2000 steps: INVALID_ARG (%s)",
               test_last_error());
    p.steps = 10;
    cJSON *bad = cJSON_Duplicate(cfg, 1);
    cJSON_ReplaceItemInObjectCaseSensitive(bad, "beta_start", cJSON_CreateString("0.00085"));
    test_check(sdc_schedule_build(bad, &p, cap, &s) == SDC_ERR_FORMAT, "beta_start as a string: FORMAT (%s)",
               test_last_error());
    cJSON_Delete(bad);
    bad = cJSON_Duplicate(cfg, 1);
    cJSON_ReplaceItemInObjectCaseSensitive(bad, "timestep_spacing", cJSON_CreateString("sideways"));
    test_check(sdc_schedule_build(bad, &p, cap, &s) == SDC_ERR_FORMAT, "unknown timestep_spacing: FORMAT (%s)",
               test_last_error());
    cJSON_Delete(bad);
    bad = cJSON_Duplicate(cfg, 1);
    cJSON_ReplaceItemInObjectCaseSensitive(bad, "prediction_type", cJSON_CreateString("flow_prediction"));
    test_check(sdc_schedule_build(bad, &p, cap, &s) == SDC_ERR_UNSUPPORTED, "flow_prediction: UNSUPPORTED (%s)",
               test_last_error());
    cJSON_Delete(bad);
    sdc_schedule_free(NULL);
}

/* Issue 13 item 3 (scheduler part): a config whose betas or sigmas are out of range is refused when the
 * schedule is built, never turned into NaN or negative noise levels. */
static void test_out_of_range(const cJSON *base) {
    static const struct {
        sdc_sampler kind;
        int karras;
        const char *key, *value, *shown;
    } cases[] = {
        {SDC_SAMPLER_EULER, 0, "beta_end", "5", "beta_end = 5 is outside [0, 1)"},
        {SDC_SAMPLER_DDIM, 0, "beta_end", "5", "beta_end = 5 is outside [0, 1)"},
        {SDC_SAMPLER_DPMPP_2M, 0, "beta_start", "-0.5", "beta_start = -0.5 is outside [0, 1)"},
        {SDC_SAMPLER_EULER, 0, "beta_end", "1", "beta_end = 1 is outside [0, 1)"},
        {SDC_SAMPLER_EULER, 1, "sigma_min", "-3", "sigma_min = -3 is outside [0, 1e+30]"},
        {SDC_SAMPLER_EULER, 1, "sigma_max", "-1", "sigma_max = -1 is outside [0, 1e+30]"},
        {SDC_SAMPLER_EULER, 1, "sigma_max", "1e300", "sigma_max = 1e+300 is outside"},
        {SDC_SAMPLER_HEUN, 0, "clip_sample_range", "-1", "clip_sample_range = -1 is outside"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *cfg = cJSON_Duplicate(base, 1);
        cJSON_DeleteItemFromObjectCaseSensitive(cfg, cases[i].key);
        cJSON_AddItemToObject(cfg, cases[i].key, cJSON_Parse(cases[i].value));
        if (cases[i].kind == SDC_SAMPLER_HEUN) {
            cJSON_DeleteItemFromObjectCaseSensitive(cfg, "clip_sample");
            cJSON_AddTrueToObject(cfg, "clip_sample");
        }
        sdc_sampler_params p;
        sdc_sampler_params_init(&p);
        p.kind = cases[i].kind;
        p.karras = cases[i].karras;
        p.steps = 10;
        sdc_schedule s;
        sdc_status st = sdc_schedule_build(cfg, &p, test_capture_logger(), &s);
        const char *msg = test_last_error();
        test_check(st == SDC_ERR_FORMAT && strstr(msg, cases[i].shown),
                   "%s %s = %s refused: %s, message '%s' names '%s'", sdc_sampler_kind_name(p.kind), cases[i].key,
                   cases[i].value, sdc_status_str(st), msg, cases[i].shown);
        if (st == SDC_OK) sdc_schedule_free(&s);
        cJSON_Delete(cfg);
    }
}

/* Issue 13 item 10: a diffusers class name maps to its sampler; an unknown one is reported (and falls
 * back to euler) instead of silently becoming euler. */
static void test_class_names(void) {
    static const struct {
        const char *cls;
        sdc_sampler kind;
    } known[] = {{"EulerDiscreteScheduler", SDC_SAMPLER_EULER},
                 {"EulerAncestralDiscreteScheduler", SDC_SAMPLER_EULER_A},
                 {"HeunDiscreteScheduler", SDC_SAMPLER_HEUN},
                 {"LMSDiscreteScheduler", SDC_SAMPLER_LMS},
                 {"DDIMScheduler", SDC_SAMPLER_DDIM},
                 {"PNDMScheduler", SDC_SAMPLER_PNDM},
                 {"DPMSolverMultistepScheduler", SDC_SAMPLER_DPMPP_2M}};
    int ok = 1;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        sdc_sampler k = SDC_SAMPLER_DEFAULT;
        ok &= sdc_sampler_kind_from_class(known[i].cls, &k, test_logger()) == SDC_OK && k == known[i].kind;
    }
    test_check(ok, "the seven diffusers scheduler classes map to their samplers");
    sdc_sampler k = SDC_SAMPLER_DEFAULT;
    sdc_status st = sdc_sampler_kind_from_class("UniPCMultistepScheduler", &k, test_logger());
    test_check(st == SDC_ERR_UNSUPPORTED && k == SDC_SAMPLER_EULER,
               "an unknown class is reported (%s) and falls back to euler (%s)", sdc_status_str(st),
               sdc_sampler_kind_name(k));
}

int main(void) {
    worst_errs w = {0};
    run_golden(&w);
    printf("  worst: timesteps %.3e (%s), sigmas %.3e (%s), init_noise_sigma %.3e, final %.3e (%s)\n", w.ts, w.ts_case,
           w.sig, w.sig_case, w.init, w.fin, w.fin_case);

    cJSON *cfg = NULL;
    if (sdc_json_load(test_ref_path("tiny-sd1/scheduler/scheduler_config.json"), test_logger(), &cfg) != SDC_OK) {
        test_check(0, "bundle scheduler_config.json readable");
        return test_finish();
    }
    test_v_prediction(cfg);
    test_sd2_config();
    test_euler_a(cfg);
    test_spacings(cfg);
    test_img2img(cfg);
    test_errors(cfg);
    test_out_of_range(cfg);
    test_class_names();
    cJSON_Delete(cfg);
    return test_finish();
}
