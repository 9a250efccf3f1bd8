/* test_cuda_models.c - the reference bundle (tiny-sd1-golden) on the GPU: the text encoder, the UNet
 * (every top-level block) and the VAE (every decoder block, the encoder's posterior) on the CUDA
 * backend, then whole pipelines through the public API with device = SDC_DEVICE_CUDA.
 *
 *   f32 (components loaded with f32, f32 weights): the CPU's tolerances x10: 1e-4 per component, latents_final 1e-3,
 *       the image's max |d| 1e-2 (img2img 2e-2);
 *   f16 (f16 weights, f16 activations, f32 accumulation): 1e-2 per component; for whole pipelines the
 *       relative error of latents_final is printed per case (CFG amplifies f16 rounding: no fixed bound).
 * Past a GroupNorm with <= 2 elements per group the tiny UNet is ill-conditioned (see test_unet.c): from
 * there the block bound is the CPU fp16 one (0.25) in f16, 1e-4 in f32.
 * Also: the UNet's activation estimate against the measured peak at the f16 element size, every byte
 * freed, and a pipeline bit-identical across load policies and repeated runs. It needs a GPU. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "io/model_files.h"
#include "model/clip.h"
#include "model/unet.h"
#include "model/vae.h"
#include "sdc.h"
#include "test_golden.h"
#include "test_model_golden.h"
#include "test_pipeline_util.h"
#include "test_util.h"

typedef struct prec {
    const char *label;
    int f32;   // the components' precision (sdc_weight_source.f32)
    sdc_weight_variant variant;
    double bound, ill_bound;   // per component; UNet blocks past the ill-conditioned point
} prec;

static const prec precisions[2] = {
    {"f32", 1, SDC_VARIANT_F32, 1e-4, 1e-4},
    {"f16", 0, SDC_VARIANT_FP16, 1e-2, 0.25},
};

/* --- text encoder --- */

static void run_clip(sdc_backend *be, const prec *p) {
    printf("%s text encoder:\n", p->label);
    sdc_model_files *mf = test_open_tiny_sd1(p->variant, p->label);
    if (!mf) return;
    sdc_clip_config cfg;
    sdc_status st = sdc_clip_config_parse(sdc_model_files_config(mf, "text_encoder"), test_logger(), &cfg);
    sdc_clip *m = NULL;
    if (st == SDC_OK)
        st = sdc_clip_load(&cfg,
                           &(sdc_weight_source){mf->index, "text_encoder.", be, test_logger(), p->f32, 0, NULL, 0}, &m);
    if (!test_check(m != NULL, "load text encoder: %s", sdc_status_str(st))) {
        sdc_model_files_free(mf);
        return;
    }
    sdc_model_index *g = test_golden_open("tiny-sd1-golden/text_encoder.safetensors");
    int B = 0, T = 0;
    int32_t *ids = test_golden_ids(g, "te.input_ids", &B, &T);
    const size_t n = (size_t)B * T * cfg.hidden;
    test_hidden_capture cap;
    test_hidden_capture_init(&cap, cfg.n_layers + 1, n);
    sdc_tensor *out = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, sdc_clip_act_dtype(m), 3, (int64_t[]){B, T, cfg.hidden});
    float *pooled = malloc(sizeof(float) * (size_t)(B * cfg.hidden));
    double t0 = test_now();
    st = sdc_clip_forward(m, ids, B, T, 0, out, pooled, test_on_hidden, &cap);
    test_check(st == SDC_OK, "%s forward: %s (%.3f s)", p->label, sdc_status_str(st), test_now() - t0);

    char name[64], what[96];
    for (int i = 0; i < cap.n; i++) {
        snprintf(name, sizeof name, "te.hidden_states.%d", i);
        snprintf(what, sizeof what, "%s %s", p->label, name);
        test_golden_compare_f32(g, name, cap.h[i], n, what, p->bound);
    }
    snprintf(what, sizeof what, "%s last_hidden_state", p->label);
    test_golden_compare(g, "te.last_hidden_state", out, what, p->bound);
    snprintf(what, sizeof what, "%s pooler_output", p->label);
    test_golden_compare_f32(g, "te.pooler_output", pooled, (size_t)(B * cfg.hidden), what, p->bound);

    sdc_tensor_free(out);
    sdc_clip_free(m);
    test_hidden_capture_free(&cap);
    free(pooled);
    free(ids);
    sdc_index_free(g);
    sdc_model_files_free(mf);
}

/* --- UNet --- */

/* The activation and workspace peaks of the same forward on a counting backend (uc: the UNet loaded onto
 * it): the planner's numbers, which must equal the device's exactly. */
static void count_unet(sdc_unet *uc, const sdc_tensor *x, const float *t, const sdc_tensor *ctx, size_t *act,
                       size_t *ws) {
    sdc_backend *cb = sdc_unet_backend(uc);
    const sdc_dtype dt = sdc_unet_act_dtype(uc);
    sdc_tensor *cx = sdc_tensor_new(cb, SDC_MEM_ACTIVATIONS, dt, 4, x->ne);
    sdc_tensor *cc = sdc_tensor_new(cb, SDC_MEM_ACTIVATIONS, dt, 3, ctx->ne);
    sdc_tensor *co = sdc_tensor_new(cb, SDC_MEM_ACTIVATIONS, dt, 4, x->ne);
    sdc_mem_stats_reset_peak(&cb->stats);   // as the real run: the caller's tensors exist, then the peak restarts
    sdc_status st = sdc_unet_forward(uc, cx, t, &(sdc_unet_cond){.context = cc}, co, NULL, NULL);
    *act = st == SDC_OK ? cb->stats.peak[SDC_MEM_ACTIVATIONS] : 0;
    *ws = st == SDC_OK ? cb->stats.peak[SDC_MEM_WORKSPACE] : 0;
    sdc_tensor_free(cx);
    sdc_tensor_free(cc);
    sdc_tensor_free(co);
}

static void unet_case(sdc_unet *u, sdc_unet *uc, sdc_backend *be, sdc_model_index *g, const prec *p,
                      const char *cname) {
    const sdc_unet_config *cfg = sdc_unet_get_config(u);
    char name[256], what[256];
    const sdc_tensor_info *ti = NULL, *oi = NULL;
    snprintf(name, sizeof name, "unet.%.60s.t", cname);
    float *t = test_golden_f32(g, name, &ti);
    snprintf(name, sizeof name, "unet.%.60s.out", cname);
    float *ref = test_golden_f32(g, name, &oi);
    snprintf(name, sizeof name, "unet.%.60s.x", cname);
    sdc_tensor *x = test_golden_tensor(be, sdc_unet_act_dtype(u), g, name);
    snprintf(name, sizeof name, "unet.%.60s.context", cname);
    sdc_tensor *ctx = test_golden_tensor(be, sdc_unet_act_dtype(u), g, name);
    sdc_tensor *out = oi ? sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, sdc_unet_act_dtype(u), oi->ndim, oi->ne) : NULL;
    if (t && ref && x && ctx && out) {
        test_block_check bc;
        snprintf(name, sizeof name, "unet.%.60s.block.", cname);
        snprintf(what, sizeof what, "%s unet %.60s", p->label, cname);
        test_block_check_init(&bc, g, name, what, p->bound, p->ill_bound, cfg->norm_num_groups);
        sdc_mem_stats_reset_peak(&be->stats);
        double t0 = test_now();
        sdc_status st = sdc_unet_forward(u, x, t, &(sdc_unet_cond){.context = ctx}, out, test_on_block, &bc);
        test_check(st == SDC_OK, "%s unet %s: forward: %s (%.3f s)", p->label, cname, sdc_status_str(st),
                   test_now() - t0);
        test_check(bc.n_seen == 4 + 2 * cfg->n_blocks, "%s unet %s: %d block outputs compared", p->label, cname,
                   bc.n_seen);
        snprintf(what, sizeof what, "%s unet %.60s out", p->label, cname);
        size_t n = (size_t)sdc_tensor_nelem(out);
        float *o = malloc(sizeof(float) * n);
        sdc_tensor_get_f32(out, o);
        test_check_err(what, "rel err", test_rel_err(o, ref, n), test_block_bound(&bc));
        free(o);
        const size_t measured = be->stats.peak[SDC_MEM_ACTIVATIONS], ws = be->stats.peak[SDC_MEM_WORKSPACE];
        size_t c_act = 0, c_ws = 0;
        count_unet(uc, x, t, ctx, &c_act, &c_ws);
        test_check(c_act == measured && c_ws == ws,
                   "%s unet %s: counting backend activations %zu (device peak %zu), "
                   "workspace %zu (device peak %zu), bound 0",
                   p->label, cname, c_act, measured, c_ws, ws);

        /* the same forward again: bit-identical */
        float *o1 = malloc(sizeof(float) * n), *o2 = malloc(sizeof(float) * n);
        sdc_tensor_get_f32(out, o1);
        sdc_unet_forward(u, x, t, &(sdc_unet_cond){.context = ctx}, out, NULL, NULL);
        sdc_tensor_get_f32(out, o2);
        test_check(memcmp(o1, o2, sizeof(float) * n) == 0, "%s unet %s: bit-identical run to run", p->label, cname);
        free(o1);
        free(o2);
    }
    sdc_tensor_free(x);
    sdc_tensor_free(ctx);
    sdc_tensor_free(out);
    free(t);
    free(ref);
}

static void run_unet(sdc_backend *be, const prec *p) {
    printf("%s unet:\n", p->label);
    sdc_model_files *mf = test_open_tiny_sd1(p->variant, p->label);
    if (!mf) return;
    sdc_unet_config cfg;
    sdc_unet *u = NULL;
    sdc_status st = sdc_unet_config_parse(sdc_model_files_config(mf, "unet"), test_logger(), &cfg);
    sdc_backend *cb = sdc_backend_count_new(be);
    sdc_unet *uc = NULL;
    if (st == SDC_OK)
        st = sdc_unet_load(&cfg, &(sdc_weight_source){mf->index, "unet.", be, test_logger(), p->f32, 0, NULL, 0}, &u);
    if (st == SDC_OK)
        st = sdc_unet_load(&cfg, &(sdc_weight_source){mf->index, "unet.", cb, test_logger(), p->f32, 0, NULL, 0}, &uc);
    if (test_check(u != NULL && uc != NULL, "load unet (and onto a counting backend): %s", sdc_status_str(st))) {
        sdc_model_index *g = test_golden_open("tiny-sd1-golden/unet.safetensors");
        char cases[TEST_GOLDEN_MAX_CASES][64];
        int n = test_golden_cases(g, "unet.", ".x", cases);
        test_check(n >= 2, "%d reference cases found", n);
        for (int i = 0; i < n; i++) unet_case(u, uc, be, g, p, cases[i]);
        sdc_index_free(g);
    }
    sdc_unet_free(u);
    sdc_unet_free(uc);
    sdc_backend_free(cb);
    sdc_model_files_free(mf);
}

/* --- VAE --- */

static void run_vae(sdc_backend *be, const prec *p) {
    printf("%s vae:\n", p->label);
    sdc_model_files *mf = test_open_tiny_sd1(p->variant, p->label);
    if (!mf) return;
    sdc_vae_config cfg;
    sdc_vae_decoder *dec = NULL;
    sdc_vae_encoder *enc = NULL;
    sdc_status st = sdc_vae_config_parse(sdc_model_files_config(mf, "vae"), test_logger(), &cfg);
    const sdc_weight_source src = {mf->index, "vae.", be, test_logger(), p->f32, 0, NULL, 0};
    if (st == SDC_OK) st = sdc_vae_decoder_load(&cfg, &src, &dec);
    if (st == SDC_OK) st = sdc_vae_encoder_load(&cfg, &src, &enc);
    if (test_check(st == SDC_OK, "load vae decoder and encoder: %s", sdc_status_str(st))) {
        sdc_model_index *g = test_golden_open("tiny-sd1-golden/vae.safetensors");
        char cases[TEST_GOLDEN_MAX_CASES][64], name[256], what[256];
        int n = test_golden_cases(g, "vae.decode.", ".z", cases);
        test_check(n > 0, "%d decode cases", n);
        for (int i = 0; i < n; i++) {
            snprintf(name, sizeof name, "vae.decode.%.60s.z", cases[i]);
            sdc_tensor *z = test_golden_tensor(be, sdc_vae_decoder_act_dtype(dec), g, name);
            if (!z) continue;
            const int64_t f = sdc_vae_downscale(&cfg);
            sdc_tensor *image = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, sdc_vae_decoder_act_dtype(dec), 4,
                                               (int64_t[]){z->ne[0], cfg.out_channels, z->ne[2] * f, z->ne[3] * f});
            test_block_check bc;
            snprintf(name, sizeof name, "vae.decode.%.60s.block.", cases[i]);
            snprintf(what, sizeof what, "%s decode %.60s", p->label, cases[i]);
            test_block_check_init(&bc, g, name, what, p->bound, p->bound, 0);
            st = sdc_vae_decode(dec, z, image, test_on_block, &bc);
            test_check(st == SDC_OK && bc.n_seen > 0, "%s decode %s: %s, %d blocks compared", p->label, cases[i],
                       sdc_status_str(st), bc.n_seen);
            snprintf(name, sizeof name, "vae.decode.%.60s.image", cases[i]);
            snprintf(what, sizeof what, "%s decode %.60s image", p->label, cases[i]);
            test_golden_compare(g, name, image, what, p->bound);
            sdc_tensor_free(z);
            sdc_tensor_free(image);
        }
        n = test_golden_cases(g, "vae.encode.", ".image", cases);
        test_check(n > 0, "%d encode cases", n);
        for (int i = 0; i < n; i++) {
            snprintf(name, sizeof name, "vae.encode.%.60s.image", cases[i]);
            sdc_tensor *image = test_golden_tensor(be, sdc_vae_encoder_act_dtype(enc), g, name);
            if (!image) continue;
            int64_t h, w;
            sdc_vae_encode_latent_size(&cfg, image->ne[2], image->ne[3], &h, &w);
            const int64_t ne[4] = {image->ne[0], cfg.latent_channels, h, w};
            sdc_tensor *mean = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, sdc_vae_encoder_act_dtype(enc), 4, ne);
            sdc_tensor *logvar = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, sdc_vae_encoder_act_dtype(enc), 4, ne);
            st = sdc_vae_encode(enc, image, mean, logvar);
            test_check(st == SDC_OK, "%s encode %s: %s", p->label, cases[i], sdc_status_str(st));
            snprintf(name, sizeof name, "vae.encode.%.60s.mean", cases[i]);
            snprintf(what, sizeof what, "%s encode %.60s mean", p->label, cases[i]);
            test_golden_compare(g, name, mean, what, p->bound);
            snprintf(name, sizeof name, "vae.encode.%.60s.logvar", cases[i]);
            snprintf(what, sizeof what, "%s encode %.60s logvar", p->label, cases[i]);
            test_golden_compare(g, name, logvar, what, p->bound);
            sdc_tensor_free(image);
            sdc_tensor_free(mean);
            sdc_tensor_free(logvar);
        }
        sdc_index_free(g);
    }
    sdc_vae_decoder_free(dec);
    sdc_vae_encoder_free(enc);
    sdc_model_files_free(mf);
}

/* --- whole pipelines through the public API --- */

/* A model of the bundle and its golden pipelines: tiny-sd1 (with .fp16 files for the fp16 runs) and
 * tiny-sdxl (f32 files only: fp16 runs convert them at load). */
typedef struct pipe_model {
    const char *model, *golden;
    int has_fp16_files;
} pipe_model;

static const pipe_model *cur_model;

static sdc_ctx *open_ctx(int f32, sdc_load_policy policy) {
    sdc_ctx_params cp;
    sdc_ctx_params_init(&cp);
    cp.model_path = test_ref_path(cur_model->model);
    cp.device = SDC_DEVICE_CUDA;
    cp.precision = f32 ? SDC_PRECISION_F32 : SDC_PRECISION_AUTO;
    cp.prefer_fp16 = !f32 && cur_model->has_fp16_files;
    cp.load_policy = policy;
    cp.log_fn = sdc_log_stderr;
    cp.log_level = SDC_LOG_WARN;
    return sdc_ctx_new(&cp);
}

static void run_pipelines(const prec *p, const cJSON *readme, sdc_model_index *g) {
    printf("%s %s pipelines (device cuda):\n", cur_model->model, p->label);
    sdc_ctx *ctx = open_ctx(p->f32, SDC_LOAD_AUTO);
    if (!test_check(ctx != NULL, "%s: open %s on cuda", p->label, cur_model->model)) return;
    const cJSON *c;
    char what[200];
    cJSON_ArrayForEach(c, test_pipe_cases(readme)) {
        test_pipe_run r;
        if (test_pipe_run_case(ctx, c, g, p->label, &r)) {
            const double lat = r.latents_ref ? test_rel_err(r.latents, r.latents_ref, r.n_lat) : NAN;
            const double img = r.image_ref ? test_max_abs(r.pixels, r.image_ref, r.n_pix) : NAN;
            if (r.latents_ref)
                printf("    %s %-24s latents_final rel err %.3e, image max |d| %.3e (%.2f s)\n", p->label, r.name, lat,
                       img, r.seconds);
            else /* img2img: the bundle stores only the image */
                printf("    %s %-24s latents_final (no reference), image max |d| %.3e (%.2f s)\n", p->label, r.name,
                       img, r.seconds);
            snprintf(what, sizeof what, "%s %s", p->label, r.name);
            if (p->f32 && r.latents_ref) test_check_err(what, "latents_final rel err", lat, 1e-3);
            if (p->f32 && r.image_ref) test_check_err(what, "image max |d|", img, r.img2img ? 2e-2 : 1e-2);
            if (!p->f32)
                test_check(isfinite(test_max_abs(r.latents, r.latents, r.n_lat)) &&
                               isfinite(test_max_abs(r.pixels, r.pixels, r.n_pix)),
                           "%s: finite latents and image (no bound in f16)", what);
        }
        test_pipe_run_free(&r);
    }
    sdc_ctx_free(ctx);
}

/* The first txt2img case under every load policy, and twice under one: the same bits each time. */
static void run_policies(const cJSON *readme, sdc_model_index *g) {
    printf("f16 pipeline under every load policy:\n");
    const cJSON *c, *first = NULL;
    cJSON_ArrayForEach(c, test_pipe_cases(readme)) {
        if (!first && !cJSON_GetObjectItemCaseSensitive(c, "init_image")) first = c;
    }
    if (!test_check(first != NULL, "a txt2img case")) return;
    test_pipe_run base = {0};
    const sdc_load_policy pols[] = {SDC_LOAD_ALL, SDC_LOAD_ALL, SDC_LOAD_SEQUENTIAL, SDC_LOAD_PHASED};
    for (size_t i = 0; i < sizeof pols / sizeof pols[0]; i++) {
        sdc_ctx *ctx = open_ctx(0, pols[i]);
        test_pipe_run r = {0};
        if (test_check(ctx != NULL, "open %s on cuda (%s)", cur_model->model, sdc_load_policy_name(pols[i])) &&
            test_pipe_run_case(ctx, first, g, sdc_load_policy_name(pols[i]), &r)) {
            if (!base.latents) {
                base = r;
                memset(&r, 0, sizeof r);
            } else {
                test_check(memcmp(base.latents, r.latents, sizeof(float) * r.n_lat) == 0 &&
                               memcmp(base.pixels, r.pixels, sizeof(float) * r.n_pix) == 0,
                           "%s %s: latents and image bit-identical to the first 'all' run", r.name,
                           sdc_load_policy_name(pols[i]));
            }
        }
        test_pipe_run_free(&r);
        sdc_ctx_free(ctx);
    }
    test_pipe_run_free(&base);
}

int main(void) {
    sdc_backend *be = sdc_backend_new(SDC_DEVICE_CUDA, 0, test_logger());
    if (!test_check(be != NULL, "CUDA backend created (this test needs an NVIDIA GPU and driver)"))
        return test_finish();
    /* SDC_CUDA_MODELS: which of the bundle's models to run (default both): the device machine's working
     * tree cannot carry both at once */
    const char *which = getenv("SDC_CUDA_MODELS") ? getenv("SDC_CUDA_MODELS") : "tiny-sd1 tiny-sdxl";
    const int sd1 = strstr(which, "tiny-sd1") != NULL;
    const size_t start = be->stats.cur_total;
    double t0 = test_now();
    for (int i = 0; i < 2 && sd1; i++) {
        run_clip(be, &precisions[i]);
        run_unet(be, &precisions[i]);
        run_vae(be, &precisions[i]);
        test_check(be->stats.cur_total == start, "%s: every component byte freed (%zu left)", precisions[i].label,
                   be->stats.cur_total - start);
    }
    sdc_backend_free(be);

    static const pipe_model models[] = {{"tiny-sd1", "tiny-sd1-golden", 1}, {"tiny-sdxl", "tiny-sdxl-golden", 0}};
    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
        cur_model = &models[m];
        const char *at = strstr(which, cur_model->model);
        if (!at || (at[strlen(cur_model->model)] != ' ' && at[strlen(cur_model->model)] != 0)) {
            printf("%s: not in SDC_CUDA_MODELS (%s), skipped\n", cur_model->model, which);
            continue;
        }
        char rel[128];
        snprintf(rel, sizeof rel, "%s/pipeline.safetensors", cur_model->golden);
        cJSON *readme = test_pipe_readme(cur_model->golden);
        sdc_model_index *g = test_golden_open(rel);
        for (int i = 0; i < 2; i++) run_pipelines(&precisions[i], readme, g);
        run_policies(readme, g);
        cJSON_Delete(readme);
        sdc_index_free(g);
    }
    printf("total %.1f s\n", test_now() - t0);
    return test_finish();
}
