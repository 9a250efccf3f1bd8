/* test_flow.c - the flow-matching Euler schedule (Flux) against diffusers: tiny-flux-golden/schedulers.json
 * (schnell: static shift 1; dev: dynamic shift from the image's token count) at 1, 4, 8 and 28 steps for
 * 16, 1024 and 4096 tokens: mu, timesteps and sigmas; the step arithmetic on an analytic velocity; bad
 * configs refused. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/config.h"
#include "sampler/sampler.h"
#include "test_util.h"

static double max_rel(const float *got, const cJSON *want, int n) {
    double worst = 0;
    for (int i = 0; i < n; i++) {
        const double w = cJSON_GetArrayItem(want, i)->valuedouble;
        const double d = fabs((double)got[i] - w) / (fabs(w) > 1e-30 ? fabs(w) : 1.0);
        if (!(d <= worst)) worst = d; /* NaN propagates */
    }
    return worst;
}

static const cJSON *variant_config(const char *variant, cJSON **owned) {
    char rel[128];
    snprintf(rel, sizeof rel, "tiny-flux-%s/scheduler/scheduler_config.json", variant);
    if (sdc_json_load(test_ref_path(rel), test_logger(), owned) != SDC_OK) return NULL;
    return *owned;
}

static sdc_status velocity(void *user, const float *x, float t, float *out) {
    size_t n = *(size_t *)user;
    for (size_t k = 0; k < n; k++) out[k] = tanhf(x[k]) * 0.5f + t / 1000.0f;
    return SDC_OK;
}

int main(void) {
    cJSON *doc = NULL;
    if (!test_check(sdc_json_load(test_ref_path("tiny-flux-golden/schedulers.json"), test_logger(), &doc) == SDC_OK,
                    "read tiny-flux-golden/schedulers.json"))
        return test_finish();
    cJSON *own[2] = {NULL, NULL};
    sdc_flow_config cfg[2];
    const char *names[2] = {"schnell", "dev"};
    for (int v = 0; v < 2; v++) {
        const cJSON *c = variant_config(names[v], &own[v]);
        test_check(c && sdc_flow_config_parse(c, test_logger(), &cfg[v]) == SDC_OK, "%s scheduler config parsed",
                   names[v]);
    }
    double worst_t = 0, worst_s = 0, worst_mu = 0;
    int cases = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, doc) {
        const char *variant = cJSON_GetObjectItemCaseSensitive(c, "variant")->valuestring;
        const int steps = cJSON_GetObjectItemCaseSensitive(c, "steps")->valueint;
        const int seq = cJSON_GetObjectItemCaseSensitive(c, "image_seq_len")->valueint;
        const cJSON *mu = cJSON_GetObjectItemCaseSensitive(c, "mu");
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(c, "timesteps");
        const cJSON *sg = cJSON_GetObjectItemCaseSensitive(c, "sigmas");
        const sdc_flow_config *fc = &cfg[strcmp(variant, "dev") == 0];
        sdc_schedule s;
        sdc_status st = sdc_flow_schedule_build(fc, steps, seq, test_logger(), &s);
        if (!test_check(st == SDC_OK && cJSON_GetArraySize(ts) == s.n && cJSON_GetArraySize(sg) == s.n + 1,
                        "%s %d steps %d tokens: built, %d timesteps", variant, steps, seq, s.n))
            continue;
        const double et = max_rel(s.timesteps, ts, s.n), es = max_rel(s.sigmas, sg, s.n + 1);
        if (et > worst_t) worst_t = et;
        if (es > worst_s) worst_s = es;
        if (cJSON_IsNumber(mu)) {
            const double em = fabs(sdc_flow_mu(fc, seq) - mu->valuedouble);
            if (em > worst_mu) worst_mu = em;
        }
        test_check(et <= 1e-6 && es <= 1e-6, "%s %d steps %d tokens: timesteps rel %.2e, sigmas rel %.2e (bound 1e-6)",
                   variant, steps, seq, et, es);
        sdc_schedule_free(&s);
        cases++;
    }
    test_check(cases == 24, "%d cases (want 24); worst timesteps %.2e, sigmas %.2e, |mu| %.2e", cases, worst_t, worst_s,
               worst_mu);
    test_check(worst_mu <= 1e-12, "mu within %.2e of diffusers' (bound 1e-12)", worst_mu);

    /* the step: x += (sigma_next - sigma) * v in float32, the model given x and timesteps[i] */
    sdc_schedule s;
    if (sdc_flow_schedule_build(&cfg[1], 4, 1024, test_logger(), &s) == SDC_OK) {
        enum {
            N = 33
        };
        float x[N], want[N];
        for (int k = 0; k < N; k++) x[k] = want[k] = (float)(k - 16) / 8.0f;
        for (int i = 0; i < s.n; i++)
            for (int k = 0; k < N; k++) {
                const float v = tanhf(want[k]) * 0.5f + s.timesteps[i] / 1000.0f;
                want[k] = want[k] + (s.sigmas[i + 1] - s.sigmas[i]) * v;
            }
        size_t n = N;
        sdc_sample_callbacks cb = {velocity, &n, NULL, NULL, NULL, NULL};
        test_check(sdc_sample(&s, x, N, &cb, test_logger()) == SDC_OK && memcmp(x, want, sizeof x) == 0,
                   "sdc_sample on a flow schedule: the float32 Euler step, bit for bit");
        sdc_schedule_free(&s);
    }

    /* configs sdc cannot honour */
    static const char *const bad[][2] = {
        {"{\"stochastic_sampling\": true}", "unsupported"},
        {"{\"use_karras_sigmas\": true}", "unsupported"},
        {"{\"shift_terminal\": 0.1}", "unsupported"},
        {"{\"time_shift_type\": \"linear\"}", "unsupported"},
        {"{\"shift\": -1}", "bad file format"},
        {"{\"max_image_seq_len\": 10}", "bad file format"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *j = cJSON_Parse(bad[i][0]);
        sdc_flow_config fc;
        sdc_status st = sdc_flow_config_parse(j, test_capture_logger(), &fc);
        test_check(strcmp(sdc_status_str(st), bad[i][1]) == 0, "%s: %s \"%s\"", bad[i][0], sdc_status_str(st),
                   test_last_error());
        cJSON_Delete(j);
    }
    for (int v = 0; v < 2; v++) cJSON_Delete(own[v]);
    cJSON_Delete(doc);
    return test_finish();
}
