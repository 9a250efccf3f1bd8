/* test_t5.c - the T5 encoder against transformers' T5EncoderModel in eval mode: the fixture
 * tests/data/tiny-flux-t5 (made by tools/t5_reference.py: the tiny Flux text_encoder_2's config with seeded
 * weights, float64, no attention mask) on the bundle's 4 T5 id rows [4, 32] and on 300 random ids
 * (distances past max_distance), in f32 on the fast CPU backend (1 and 2 threads, which must agree bit for
 * bit), on the reference backend, and on CUDA where there is one. The bundle's tiny-flux-golden
 * t5.last_hidden_state was made with dropout on, so the bundle's model is run and its error only reported.
 * Also: the config (and refusals), the relative-position buckets against the formula in double and at
 * known points, bad inputs refused, the forward on a counting backend. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/count/count_backend.h"
#include "backend/cpu/cpu_ref.h"
#include "io/config.h"
#include "model/t5.h"
#include "test_golden.h"
#include "test_model_golden.h"
#include "test_util.h"

#define BOUND 1e-5 /* f32 vs transformers' float64 run */

/* The bucket formula with the logarithm in double: where it agrees with sdc_t5_bucket (f32, as torch),
 * no distance sits on a rounding edge. */
static int bucket_double(int rel, int nb, int md) {
    const int half = nb / 2, exact = half / 2, base = rel > 0 ? half : 0, d = abs(rel);
    if (d < exact) return base + d;
    const int b = exact + (int)(log((double)d / exact) / log((double)md / exact) * (half - exact));
    return base + (b < half - 1 ? b : half - 1);
}

static void test_buckets(void) {
    const int known[][2] = {{0, 0},    {1, 17},  {-1, 1},   {7, 23},   {-7, 7},    {8, 24},  {-8, 8}, {16, 26},
                            {-16, 10}, {32, 28}, {127, 31}, {128, 31}, {-500, 15}, {12, 25}, {-12, 9}};
    int bad = 0;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        bad += sdc_t5_bucket(known[i][0], 32, 128) != known[i][1];
    test_check(bad == 0, "buckets (32, 128) at 15 known distances: %d wrong", bad);
    const int configs[][2] = {{32, 128}, {32, 256}, {64, 128}, {8, 16}};
    for (int c = 0; c < 4; c++) {
        int differ = 0;
        for (int r = -4096; r <= 4096; r++)
            differ += sdc_t5_bucket(r, configs[c][0], configs[c][1]) != bucket_double(r, configs[c][0], configs[c][1]);
        test_check(differ == 0, "buckets (%d, %d), |rel| <= 4096: f32 and double formulas differ at %d distances",
                   configs[c][0], configs[c][1], differ);
    }
}

/* The fixture's weights (transformers-made, tests/data/tiny-flux-t5), or the bundle's when bundle. */
static const char *weights_path(int bundle) {
    return bundle ? test_ref_path("tiny-flux-schnell/text_encoder_2/model.safetensors")
                  : SDC_SOURCE_DIR "/tests/data/tiny-flux-t5/model.safetensors";
}

static sdc_model_index *open_weights(int bundle) {
    sdc_model_index *idx = sdc_index_new(test_logger());
    sdc_status st = sdc_index_add_file(idx, weights_path(bundle), "", NULL, NULL);
    test_check(st == SDC_OK, "open %s: %s", weights_path(bundle), sdc_status_str(st));
    return idx;
}

static float *run_golden_at(sdc_backend *be, const sdc_t5_config *cfg, const int32_t *ids, int B, int T,
                            const char *label, int bundle, sdc_prec prec);

/* run_golden_at at the default precision, which T5 runs in f32 */
static float *run_golden(sdc_backend *be, const sdc_t5_config *cfg, const int32_t *ids, int B, int T, const char *label,
                         int bundle) {
    return run_golden_at(be, cfg, ids, B, T, label, bundle, SDC_PREC_AUTO);
}

/* Loads the encoder onto be and runs the golden ids; the output as malloc'd host floats (NULL on error). */
static float *run_golden_at(sdc_backend *be, const sdc_t5_config *cfg, const int32_t *ids, int B, int T,
                            const char *label, int bundle, sdc_prec prec) {
    sdc_model_index *idx = open_weights(bundle);
    sdc_t5 *m = NULL;
    sdc_status st = sdc_t5_load(cfg, &(sdc_weight_source){idx, "", be, test_logger(), prec, 0, NULL, 0}, &m);
    sdc_index_free(idx);
    if (!test_check(st == SDC_OK, "%s: load: %s", label, sdc_status_str(st))) return NULL;
    const sdc_dtype want = prec == SDC_PREC_BF16 ? sdc_backend_act_dtype(be, SDC_PREC_BF16) : SDC_DTYPE_F32;
    test_check(sdc_t5_act_dtype(m) == want, "%s: computes in %s (never f16)", label, sdc_dtype_name(want));
    const size_t n = (size_t)B * T * cfg->d_model;
    sdc_tensor *out = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 3, (int64_t[]){B, T, cfg->d_model});
    float *host = malloc(n * sizeof *host);
    st = sdc_t5_forward(m, ids, B, T, out);
    if (st == SDC_OK) st = sdc_backend_sync(be);
    test_check(st == SDC_OK, "%s: forward: %s", label, sdc_status_str(st));
    sdc_tensor_get_f32(out, host);
    sdc_tensor_free(out);
    sdc_t5_free(m);
    test_check(be->stats.cur_total == 0 || sdc_backend_is_count(be) ||
                   be->stats.cur_total == be->stats.cur[SDC_MEM_WORKSPACE],
               "%s: everything freed", label);
    return host;
}

static void test_bad_inputs(sdc_backend *be, const sdc_t5_config *cfg) {
    sdc_model_index *idx = open_weights(0);
    sdc_t5 *m = NULL;
    sdc_t5_load(cfg, &(sdc_weight_source){idx, "", be, test_capture_logger(), 0, 0, NULL, 0}, &m);
    sdc_index_free(idx);
    if (!m) return;
    int32_t ids[4] = {5, 1, 0, 0};
    sdc_tensor *out = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 3, (int64_t[]){1, 4, cfg->d_model});
    const int32_t bad_ids[] = {cfg->vocab, -1, INT32_MAX};
    for (int i = 0; i < 3; i++) {
        ids[2] = bad_ids[i];
        sdc_status st = sdc_t5_forward(m, ids, 1, 4, out);
        test_check(st == SDC_ERR_INVALID_ARG, "id %d refused: %s", bad_ids[i], sdc_status_str(st));
    }
    ids[2] = 0;
    test_check(sdc_t5_forward(m, ids, 1, 0, out) == SDC_ERR_INVALID_ARG, "0 tokens refused");
    test_check(sdc_t5_forward(m, ids, 1, 3, out) == SDC_ERR_INVALID_ARG, "out of another shape refused");
    test_check(sdc_t5_forward(m, ids, 1, 4, out) == SDC_OK, "the same call with valid ids runs");
    sdc_tensor_free(out);
    sdc_t5_free(m);

    /* a file without the relative attention bias */
    sdc_t5_config c2 = *cfg;
    c2.num_buckets = 16;
    idx = open_weights(0);
    sdc_status st = sdc_t5_load(&c2, &(sdc_weight_source){idx, "", be, test_capture_logger(), 0, 0, NULL, 0}, &m);
    sdc_index_free(idx);
    test_check(st == SDC_ERR_FORMAT && m == NULL, "a bias table of another shape refused: %s", sdc_status_str(st));
}

static void test_config(const cJSON *cfg_json, sdc_t5_config *cfg) {
    sdc_status st = sdc_t5_config_parse(cfg_json, test_logger(), cfg);
    test_check(st == SDC_OK && cfg->d_model == 32 && cfg->d_kv == 8 && cfg->d_ff == 40 && cfg->n_layers == 2 &&
                   cfg->n_heads == 4 && cfg->vocab == 2000 && cfg->num_buckets == 32 && cfg->max_distance == 128 &&
                   cfg->act == SDC_UNARY_GELU_TANH && fabsf(cfg->eps - 1e-6f) < 1e-12f,
               "config: d_model %d, d_kv %d, d_ff %d, %d layers, %d heads, vocab %d, buckets %d/%d, eps %g",
               cfg->d_model, cfg->d_kv, cfg->d_ff, cfg->n_layers, cfg->n_heads, cfg->vocab, cfg->num_buckets,
               cfg->max_distance, cfg->eps);
    struct {
        const char *key, *value;
        sdc_status want;
    } bad[] = {{"feed_forward_proj", "\"relu\"", SDC_ERR_UNSUPPORTED},
               {"num_heads", "0", SDC_ERR_FORMAT},
               {"d_model", "100000", SDC_ERR_UNSUPPORTED},
               {"relative_attention_num_buckets", "2", SDC_ERR_FORMAT},
               {"relative_attention_max_distance", "8", SDC_ERR_FORMAT},
               {"layer_norm_epsilon", "-1", SDC_ERR_FORMAT},
               {"d_kv", "\"8\"", SDC_ERR_FORMAT}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *j = cJSON_Duplicate(cfg_json, 1);
        cJSON_ReplaceItemInObjectCaseSensitive(j, bad[i].key, cJSON_Parse(bad[i].value));
        sdc_t5_config c;
        st = sdc_t5_config_parse(j, test_capture_logger(), &c);
        test_check(st == bad[i].want, "config %s = %s refused: %s (want %s)", bad[i].key, bad[i].value,
                   sdc_status_str(st), sdc_status_str(bad[i].want));
        cJSON_Delete(j);
    }
}

/* The bundle's t5.last_hidden_state was made with dropout active: 10% exact zeros (transformers in train
 * mode gave 392 of 4096 on the fixture, eval mode none). So the bundle's model is run and its error
 * reported, not bounded. */
static void report_bundle_golden(sdc_backend *be, const sdc_t5_config *cfg, sdc_model_index *g, const int32_t *ids,
                                 int B, int T) {
    const size_t n = (size_t)B * T * cfg->d_model;
    float *b = test_golden_f32(g, "t5.last_hidden_state", NULL), *h = run_golden(be, cfg, ids, B, T, "bundle", 1);
    if (b && h) {
        size_t zeros = 0;
        for (size_t i = 0; i < n; i++) zeros += b[i] == 0.0f;
        printf("  note: the bundle's t5.last_hidden_state has %zu exact zeros of %zu (dropout p=0.1 was on when it "
               "was made); sdc on the bundle's weights vs it: rel err %.3g (not bounded)\n",
               zeros, n, test_rel_err(h, b, n));
    }
    free(b);
    free(h);
}

int main(void) {
    cJSON *cfg_json = NULL, *fix_json = NULL;
    sdc_status st =
        sdc_json_load(test_ref_path("tiny-flux-schnell/text_encoder_2/config.json"), test_logger(), &cfg_json);
    if (!test_check(st == SDC_OK, "read text_encoder_2/config.json: %s", sdc_status_str(st))) return test_finish();
    sdc_t5_config cfg, fix;
    test_config(cfg_json, &cfg);
    cJSON_Delete(cfg_json);
    st = sdc_json_load(SDC_SOURCE_DIR "/tests/data/tiny-flux-t5/config.json", test_logger(), &fix_json);
    st = st == SDC_OK ? sdc_t5_config_parse(fix_json, test_logger(), &fix) : st;
    cJSON_Delete(fix_json);
    test_check(st == SDC_OK && memcmp(&fix, &cfg, sizeof fix) == 0, "the fixture's config is the bundle's: %s",
               sdc_status_str(st));
    test_buckets();

    /* transformers' T5EncoderModel in eval mode, float64, no attention mask (tools/t5_reference.py) */
    sdc_model_index *e = sdc_index_new(test_logger());
    st = sdc_index_add_file(e, SDC_SOURCE_DIR "/tests/data/tiny-flux-t5/t5_eval.safetensors", "", NULL, NULL);
    if (!test_check(st == SDC_OK, "open tests/data/tiny-flux-t5/t5_eval.safetensors: %s", sdc_status_str(st)))
        return test_finish();
    sdc_model_index *g = test_golden_open("tiny-flux-golden/components.safetensors");
    int B = 0, T = 0, Bg = 0, Tg = 0, Bl = 0, Tl = 0;
    int32_t *ids = test_golden_ids(e, "t5.input_ids", &B, &T), *gids = test_golden_ids(g, "t5.input_ids", &Bg, &Tg);
    int32_t *lids = test_golden_ids(e, "t5.long.input_ids", &Bl, &Tl);
    test_check(B == 4 && T == 32 && Bg == B && Tg == T && memcmp(ids, gids, sizeof(int32_t) * (size_t)(B * T)) == 0,
               "reference ids [%d, %d] are the bundle's t5.input_ids [%d, %d]", B, T, Bg, Tg);
    const size_t n = (size_t)B * T * cfg.d_model, nl = (size_t)Bl * Tl * cfg.d_model;

    sdc_backend *cpu2 = sdc_backend_cpu_new(2, test_logger()), *cpu1 = sdc_backend_cpu_new(1, test_logger());
    sdc_backend *ref = sdc_backend_cpu_ref_new(test_logger());
    float *h2 = run_golden(cpu2, &cfg, ids, B, T, "cpu 2 threads", 0);
    float *h1 = run_golden(cpu1, &cfg, ids, B, T, "cpu 1 thread", 0);
    float *hr = run_golden(ref, &cfg, ids, B, T, "cpu-ref", 0);
    float *hl = run_golden(cpu2, &cfg, lids, Bl, Tl, "cpu 300 tokens", 0);
    if (h2) test_golden_compare_f32(e, "t5.last_hidden_state", h2, n, "cpu 2 threads last_hidden_state", BOUND);
    if (hr) test_golden_compare_f32(e, "t5.last_hidden_state", hr, n, "cpu-ref last_hidden_state", BOUND);
    if (hl)
        test_golden_compare_f32(e, "t5.long.last_hidden_state", hl, nl, "cpu 300 random ids last_hidden_state", BOUND);
    if (h1 && h2) test_check(memcmp(h1, h2, n * sizeof *h1) == 0, "cpu: bit-identical on 1 and 2 threads");
    report_bundle_golden(cpu2, &cfg, g, ids, B, T);

    /* CUDA where this build and machine have it: f32 at the default precision and in bf16 (Flux's choice on the
     * GPU, as diffusers runs it; 8-bit mantissas: a bound of 3e-2 relative) */
    if (sdc_device_available(SDC_DEVICE_CUDA)) {
        sdc_backend *gpu = sdc_backend_new(SDC_DEVICE_CUDA, 0, test_logger());
        float *hg = gpu ? run_golden(gpu, &cfg, ids, B, T, "cuda", 0) : NULL;
        float *hgl = gpu ? run_golden(gpu, &cfg, lids, Bl, Tl, "cuda 300 tokens", 0) : NULL;
        if (hg) test_golden_compare_f32(e, "t5.last_hidden_state", hg, n, "cuda last_hidden_state", BOUND);
        if (hgl) test_golden_compare_f32(e, "t5.long.last_hidden_state", hgl, nl, "cuda 300 random ids", BOUND);
        float *hb = gpu ? run_golden_at(gpu, &cfg, ids, B, T, "cuda bf16", 0, SDC_PREC_BF16) : NULL;
        if (hb) test_golden_compare_f32(e, "t5.last_hidden_state", hb, n, "cuda bf16 last_hidden_state", 3e-2);
        free(hg), free(hgl), free(hb);
        sdc_backend_free(gpu);
    } else {
        printf("  cuda: not in this build or no device: not run\n");
    }

    /* the planner's view: the same forward on a counting backend reads no weight and computes nothing */
    sdc_backend *cnt = sdc_backend_count_new(cpu2);
    float *hc = run_golden(cnt, &cfg, ids, B, T, "count", 0);
    test_check(cnt->stats.peak[SDC_MEM_ACTIVATIONS] > 0 && cnt->stats.peak[SDC_MEM_WEIGHTS] > 0,
               "count: weights %.1f kB and activations %.1f kB counted", cnt->stats.peak[SDC_MEM_WEIGHTS] / 1024.0,
               cnt->stats.peak[SDC_MEM_ACTIVATIONS] / 1024.0);
    sdc_backend_free(cnt);

    test_bad_inputs(cpu2, &cfg);
    free(h1), free(h2), free(hr), free(hc), free(hl);
    free(ids), free(gids), free(lids);
    sdc_index_free(g);
    sdc_index_free(e);
    sdc_backend_free(cpu1);
    sdc_backend_free(cpu2);
    sdc_backend_free(ref);
    return test_finish();
}
