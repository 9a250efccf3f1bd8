/* test_unet.c - UNet2DConditionModel against diffusers (tiny-sd1-golden/unet.safetensors): every
 * top-level block and the output of each reference case, f32 and fp16 weights; the activation
 * activation peak printed (test_count.c checks the planner's count of it); config parsing of SD 2.x settings and of unsupported ones. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "io/model_files.h"
#include "model/unet.h"
#include "model/unet_transformer.h"
#include "test_golden.h"
#include "test_model_golden.h"
#include "test_util.h"

/* A GroupNorm over a group of 2 elements a, b outputs +-(a - b) / 2 / sqrt((a - b)^2 / 4 + eps): when a
 * and b nearly agree, a perturbation of their difference is amplified up to 1 / (2 sqrt(eps)) = 158x
 * (eps 1e-5). The square case reaches 1x1 spatial with 2 channels per group, and one of its groups has
 * std 0.0097 against values around 2, so the fp16 rounding of the weights (~1e-3 relative) turns
 * into 1e-2..1e-1 after that point, in diffusers as much as here. Those blocks get ill_bound (the
 * block checker of test_model_golden.c switches to it). */

static void run_case(sdc_unet *u, sdc_backend *be, sdc_model_index *g, const char *label, const char *cname,
                     double bound, double ill_bound) {
    const sdc_unet_config *cfg = sdc_unet_get_config(u);
    char name[128], what[160];
    const sdc_tensor_info *ti, *oi;
    snprintf(name, sizeof name, "unet.%.60s.t", cname);
    float *t = test_golden_f32(g, name, &ti);
    snprintf(name, sizeof name, "unet.%.60s.out", cname);
    float *ref = test_golden_f32(g, name, &oi);
    snprintf(name, sizeof name, "unet.%.60s.x", cname);
    sdc_tensor *xt = test_golden_tensor(be, sdc_unet_act_dtype(u), g, name);   // [B, C, H, W]
    snprintf(name, sizeof name, "unet.%.60s.context", cname);
    sdc_tensor *ct = test_golden_tensor(be, sdc_unet_act_dtype(u), g, name);   // [B, T, D]
    sdc_tensor *ot = NULL;
    if (!t || !ref || !xt || !ct) goto done;
    const int B = (int)xt->ne[0], H = (int)xt->ne[2], W = (int)xt->ne[3];
    test_check(sdc_tensor_info_nelem(ti) == B, "%s %s: %d timesteps for batch %d", label, cname,
               (int)sdc_tensor_info_nelem(ti), B);

    ot = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, sdc_unet_act_dtype(u), oi->ndim, oi->ne);
    if (!test_check(ot != NULL, "%s %s: allocate the output", label, cname)) goto done;

    sdc_mem_stats_reset_peak(&be->stats);
    test_block_check bc;
    snprintf(name, sizeof name, "unet.%.60s.block.", cname);
    snprintf(what, sizeof what, "%s %.60s", label, cname);
    test_block_check_init(&bc, g, name, what, bound, ill_bound, cfg->norm_num_groups);
    double t0 = test_now();
    sdc_status st = sdc_unet_forward(u, xt, t, &(sdc_unet_cond){.context = ct}, ot, test_on_block, &bc);
    double dt = test_now() - t0;
    test_check(st == SDC_OK, "%s %s: forward: %s (%.3f s)", label, cname, sdc_status_str(st), dt);
    test_check(bc.n_seen == 4 + 2 * cfg->n_blocks, "%s %s: %d block outputs compared (expected %d)", label, cname,
               bc.n_seen, 4 + 2 * cfg->n_blocks);
    size_t n = (size_t)sdc_tensor_nelem(ot);
    float *out = malloc(sizeof(float) * n);
    sdc_tensor_get_f32(ot, out);
    snprintf(what, sizeof what, "%s %.60s out", label, cname);
    test_check_err(what, "rel err", test_rel_err(out, ref, n), test_block_bound(&bc));
    printf("    %s max |diff| %.3g\n", what, test_max_abs(out, ref, n));
    free(out);

    /* the planner's number for this peak comes from the counting backend: test_count.c */
    printf("    %s %s activations: measured peak %zu bytes (%dx%dx%d)\n", label, cname,
           be->stats.peak[SDC_MEM_ACTIVATIONS], B, H, W);
    test_check(be->stats.cur[SDC_MEM_ACTIVATIONS] == xt->nbytes + ct->nbytes + ot->nbytes,
               "%s %s: only the caller's tensors stay allocated (%zu bytes)", label, cname,
               be->stats.cur[SDC_MEM_ACTIVATIONS]);

    /* Wrong context width is the caller's error, not a crash. */
    sdc_tensor bad = sdc_tensor_view(ct, 3, (int64_t[]){ct->ne[0], ct->ne[1] * ct->ne[2] / 2, 2});
    if (ct->ne[2] != 2 && (ct->ne[1] * ct->ne[2]) % 2 == 0)
        test_check(sdc_unet_forward(u, xt, t, &(sdc_unet_cond){.context = &bad}, ot, NULL, NULL) == SDC_ERR_INVALID_ARG,
                   "%s %s: mismatched context is SDC_ERR_INVALID_ARG", label, cname);

done:
    sdc_tensor_free(xt);
    sdc_tensor_free(ct);
    sdc_tensor_free(ot);
    free(t);
    free(ref);
}

/* The transformers' feed-forward runs the backend's row chunk of the batch at a time (the CPU's: 1024 rows). Two images of 48x48
 * latents (2304 tokens each at level 0: chunks of the batch start inside the second image, and each
 * image alone is cut elsewhere) give each image the bits it has alone: a row's output depends on its own
 * row only, however the chunks cut the batch. Fresh random inputs, a timestep per image. */
static void test_ff_chunks(sdc_unet *u, sdc_backend *be, const char *label) {
    const sdc_unet_config *cfg = sdc_unet_get_config(u);
    const int64_t H = 48, W = 48, T = 77, D = cfg->cross_attention_dim, C = cfg->in_channels;
    const size_t nx = (size_t)(C * H * W), nc = (size_t)(T * D), no = (size_t)(cfg->out_channels * H * W);
    const float ts[2] = {981.0f, 41.0f};
    float *x = malloc(2 * nx * sizeof(float)), *c = malloc(2 * nc * sizeof(float));
    float *both = malloc(2 * no * sizeof(float)), *alone = malloc(2 * no * sizeof(float));
    test_fill_normal(x, 2 * nx, 7101, 1.0f);
    test_fill_normal(c, 2 * nc, 7102, 1.0f);
    const sdc_dtype dt = sdc_unet_act_dtype(u);
    sdc_status st = SDC_OK;
    for (int64_t B = 2; B >= 1; B--)   // the batch, then each image alone
        for (int64_t i = 0; i < 3 - B; i++) {
            sdc_tensor *xt = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, dt, 4, (int64_t[]){B, C, H, W});
            sdc_tensor *ct = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, dt, 3, (int64_t[]){B, T, D});
            sdc_tensor *ot = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, dt, 4, (int64_t[]){B, cfg->out_channels, H, W});
            if (!xt || !ct || !ot) st = SDC_ERR_OOM;
            if (st == SDC_OK) {
                sdc_tensor_set_f32(xt, x + i * nx);
                sdc_tensor_set_f32(ct, c + i * nc);
                st = sdc_unet_forward(u, xt, ts + i, &(sdc_unet_cond){.context = ct}, ot, NULL, NULL);
            }
            if (st == SDC_OK) sdc_tensor_get_f32(ot, (B == 2 ? both : alone) + i * no);
            sdc_tensor_free(xt);
            sdc_tensor_free(ct);
            sdc_tensor_free(ot);
        }
    const int64_t rows = 2 * H * W, chunk = sdc_backend_row_chunk(be);
    test_check(chunk > 0 && rows > chunk && H * W % chunk != 0,
               "%s: %lld level-0 rows in feed-forward chunks of %lld, the second image from row %lld", label,
               (long long)rows, (long long)chunk, (long long)(H * W));
    test_check(st == SDC_OK, "%s: forward of 2 images and of each alone: %s", label, sdc_status_str(st));
    for (int i = 0; i < 2 && st == SDC_OK; i++)
        test_check_err(label,
                       i ? "image 2 in the batch: max |diff| vs alone" : "image 1 in the batch: max |diff| vs alone",
                       test_max_abs(both + i * no, alone + i * no, no), 0);
    free(x);
    free(c);
    free(both);
    free(alone);
}

static void run_variant(sdc_weight_variant variant, const char *label, double bound, double ill_bound) {
    printf("%s weights:\n", label);
    const sdc_logger *log = test_logger();
    sdc_model_files *mf = test_open_tiny_sd1(variant, label);
    if (!mf) return;
    sdc_unet_config cfg;
    sdc_status st = sdc_unet_config_parse(sdc_model_files_config(mf, "unet"), log, &cfg);
    sdc_backend *be = sdc_backend_cpu_new(0, log);
    sdc_unet *u = NULL;
    if (test_check(st == SDC_OK, "parse unet config: %s", sdc_status_str(st)) && test_check(be != NULL, "cpu backend"))
        st = sdc_unet_load(&cfg, &(sdc_weight_source){mf->index, "unet.", be, log, 0, 0, NULL, 0}, &u);
    if (test_check(u != NULL, "load unet: %s", sdc_status_str(st))) {
        printf("    %zu weight bytes\n", sdc_unet_weight_bytes(u));
        sdc_model_index *g = test_golden_open("tiny-sd1-golden/unet.safetensors");
        char cases[TEST_GOLDEN_MAX_CASES][64];
        int n = test_golden_cases(g, "unet.", ".x", cases);
        test_check(n >= 2, "%d reference cases found", n);
        for (int i = 0; i < n; i++) run_case(u, be, g, label, cases[i], bound, ill_bound);
        sdc_index_free(g);
        test_ff_chunks(u, be, label);
    }
    sdc_unet_free(u);
    if (be) {
        test_check(be->stats.cur[SDC_MEM_WEIGHTS] == 0, "%s: weights freed (%zu bytes left)", label,
                   be->stats.cur[SDC_MEM_WEIGHTS]);
        sdc_backend_free(be);
    }
    sdc_model_files_free(mf);
}

/* A config that disagrees with the file's shapes fails cleanly, leaving nothing allocated. */
static void test_shape_mismatch(void) {
    sdc_model_files *mf = test_open_tiny_sd1(SDC_VARIANT_F32, NULL);
    if (!mf) return;
    sdc_unet_config cfg;
    sdc_backend *be = sdc_backend_cpu_new(1, test_logger());
    if (test_check(sdc_unet_config_parse(sdc_model_files_config(mf, "unet"), test_logger(), &cfg) == SDC_OK, "parse") &&
        be) {
        cfg.cross_attention_dim += 8;
        sdc_unet *u = NULL;
        sdc_status st =
            sdc_unet_load(&cfg, &(sdc_weight_source){mf->index, "unet.", be, test_capture_logger(), 0, 0, NULL, 0}, &u);
        test_check(st == SDC_ERR_FORMAT && u == NULL, "wrong cross_attention_dim: %s (%s)", sdc_status_str(st),
                   test_last_error());
        test_check(be->stats.cur[SDC_MEM_WEIGHTS] == 0, "nothing left after a failed load (%zu bytes)",
                   be->stats.cur[SDC_MEM_WEIGHTS]);
        st =
            sdc_unet_load(&cfg, &(sdc_weight_source){mf->index, "nope.", be, test_capture_logger(), 0, 0, NULL, 0}, &u);
        test_check(st == SDC_ERR_NOT_FOUND && u == NULL, "wrong prefix: %s (%s)", sdc_status_str(st),
                   test_last_error());
    }
    sdc_backend_free(be);
    sdc_model_files_free(mf);
}

/* Out of memory at any point of the forward: SDC_ERR_OOM, and every intermediate is freed again. A
 * backend whose allocator fails on the k-th call stands in for a full device. */
static const struct sdc_backend_i *real_iface;
static long allocs_left = -1, alloc_calls;

static void *failing_alloc(sdc_backend *be, size_t nbytes) {
    alloc_calls++;
    if (allocs_left-- == 0) return NULL;
    return real_iface->alloc(be, nbytes);
}

static void test_oom(void) {
    printf("out of memory during the forward:\n");
    sdc_model_files *mf = test_open_tiny_sd1(SDC_VARIANT_F32, NULL);
    if (!mf) return;
    sdc_unet_config cfg;
    sdc_unet *u = NULL;
    sdc_backend *be = sdc_backend_cpu_new(1, test_logger());
    if (!be || sdc_unet_config_parse(sdc_model_files_config(mf, "unet"), test_logger(), &cfg) != SDC_OK ||
        !test_check(sdc_unet_load(&cfg,
                                  &(sdc_weight_source){mf->index, "unet.", be, test_capture_logger(), 0, 0, NULL, 0},
                                  &u) == SDC_OK,
                    "load")) {
        sdc_backend_free(be);
        sdc_model_files_free(mf);
        return;
    }
    /* fresh random inputs: x [1, Cin, 8, 12], context [1, 7, Cctx] */
    const int64_t xs[4] = {1, cfg.in_channels, 8, 12}, cs[3] = {1, 7, cfg.cross_attention_dim};
    sdc_tensor *x = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 4, xs);
    sdc_tensor *ctx = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 3, cs);
    sdc_tensor *out =
        sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 4, (int64_t[]){1, cfg.out_channels, 8, 12});
    float *hx = malloc(sizeof(float) * (size_t)sdc_tensor_nelem(x));
    float *hc = malloc(sizeof(float) * (size_t)sdc_tensor_nelem(ctx));
    test_fill_normal(hx, (size_t)sdc_tensor_nelem(x), 7, 1.0f);
    test_fill_normal(hc, (size_t)sdc_tensor_nelem(ctx), 8, 1.0f);
    sdc_tensor_set_f32(x, hx);
    sdc_tensor_set_f32(ctx, hc);
    const float t = 421.5f;
    const size_t base = be->stats.cur[SDC_MEM_ACTIVATIONS];
    struct sdc_backend_i failing = *be->iface;
    failing.alloc = failing_alloc;
    real_iface = be->iface;
    be->iface = &failing;
    alloc_calls = 0;
    test_check(sdc_unet_forward(u, x, &t, &(sdc_unet_cond){.context = ctx}, out, NULL, NULL) == SDC_OK,
               "forward without failures");
    const long n_alloc = alloc_calls;
    sdc_log_fn saved = be->log.fn;
    be->log.fn = NULL;   // the backend would log each failed allocation
    int all_oom = 1, all_freed = 1;
    for (long k = 0; k < n_alloc; k++) {
        allocs_left = k;
        sdc_status st = sdc_unet_forward(u, x, &t, &(sdc_unet_cond){.context = ctx}, out, NULL, NULL);
        if (st != SDC_ERR_OOM) printf("    failing allocation %ld gave %s\n", k, sdc_status_str(st));
        all_oom &= st == SDC_ERR_OOM;
        all_freed &= be->stats.cur[SDC_MEM_ACTIVATIONS] == base;
    }
    allocs_left = -1;
    be->iface = real_iface;
    be->log.fn = saved;
    test_check(all_oom, "failing each one of the forward's %ld allocations in turn: SDC_ERR_OOM", n_alloc);
    test_check(all_freed, "after each failure only the caller's %zu activation bytes remain", base);
    test_check(sdc_unet_forward(u, x, &t, &(sdc_unet_cond){.context = ctx}, out, NULL, NULL) == SDC_OK,
               "forward works again afterwards");

    free(hx);
    free(hc);
    sdc_tensor_free(x);
    sdc_tensor_free(ctx);
    sdc_tensor_free(out);
    sdc_unet_free(u);
    sdc_backend_free(be);
    sdc_model_files_free(mf);
}

static sdc_status parse_text(const char *text, const sdc_logger *log, sdc_unet_config *cfg) {
    cJSON *j = cJSON_Parse(text);
    if (!j) return SDC_ERR_FORMAT;
    sdc_status st = sdc_unet_config_parse(j, log, cfg);
    cJSON_Delete(j);
    return st;
}

/* stabilityai/stable-diffusion-2-1's unet/config.json, abridged to the keys that matter. */
static const char *sd2_config =
    "{\"_class_name\": \"UNet2DConditionModel\", \"act_fn\": \"silu\", \"attention_head_dim\": [5, 10, 20, 20],"
    " \"block_out_channels\": [320, 640, 1280, 1280], \"center_input_sample\": false, \"cross_attention_dim\": 1024,"
    " \"down_block_types\": [\"CrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\","
    " \"DownBlock2D\"], \"downsample_padding\": 1, \"dual_cross_attention\": false, \"flip_sin_to_cos\": true,"
    " \"freq_shift\": 0, \"in_channels\": 4, \"layers_per_block\": 2, \"mid_block_scale_factor\": 1,"
    " \"norm_eps\": 1e-05, \"norm_num_groups\": 32, \"num_class_embeds\": null, \"only_cross_attention\": false,"
    " \"out_channels\": 4, \"sample_size\": 96, \"up_block_types\": [\"UpBlock2D\", \"CrossAttnUpBlock2D\","
    " \"CrossAttnUpBlock2D\", \"CrossAttnUpBlock2D\"], \"use_linear_projection\": true, \"upcast_attention\": true}";

static void test_config(void) {
    printf("config parsing:\n");
    sdc_unet_config c;
    sdc_status st = parse_text(sd2_config, test_logger(), &c);
    if (test_check(st == SDC_OK, "SD 2.x config parses: %s", sdc_status_str(st))) {
        static const int heads[4] = {5, 10, 20, 20}, chans[4] = {320, 640, 1280, 1280};
        int ok = c.n_blocks == 4;
        for (int i = 0; ok && i < 4; i++)
            ok = c.heads[i] == heads[i] && c.block_out_channels[i] == chans[i] &&
                c.block_out_channels[i] / c.heads[i] == 64 && c.layers_per_block[i] == 2 &&
                c.transformer_layers[i] == 1;
        test_check(ok, "SD 2.x: heads 5/10/20/20 of 64 channels each, 2 layers, 1 transformer layer");
        test_check(c.down_attn[0] && c.down_attn[2] && !c.down_attn[3] && !c.up_attn[0] && c.up_attn[3],
                   "SD 2.x: attention in down 0-2 and up 1-3");
        test_check(c.use_linear_projection == 1 && c.upcast_attention == 1 && c.cross_attention_dim == 1024,
                   "SD 2.x: linear projection, upcast attention, context 1024");
        test_check(c.time_embed_dim == 1280 && c.flip_sin_to_cos == 1 && c.freq_shift == 0 && c.norm_num_groups == 32,
                   "SD 2.x: time embedding 1280, cos first, 32 groups");
    }

    /* num_attention_heads, when given, wins over attention_head_dim. */
    st = parse_text(
        "{\"block_out_channels\": [64, 128], \"down_block_types\": [\"CrossAttnDownBlock2D\", \"DownBlock2D\"],"
        " \"up_block_types\": [\"UpBlock2D\", \"CrossAttnUpBlock2D\"], \"attention_head_dim\": 8,"
        " \"num_attention_heads\": [2, 4], \"layers_per_block\": 1, \"cross_attention_dim\": 32}",
        test_logger(), &c);
    test_check(st == SDC_OK && c.heads[0] == 2 && c.heads[1] == 4 && c.layers_per_block[1] == 1,
               "num_attention_heads [2, 4] gives heads 2, 4 (%s)", sdc_status_str(st));

    static const struct {
        const char *json, *why;
        sdc_status want;
    } bad[] = {
        {"{\"down_block_types\": [\"CrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\", \"SimpleCrossAttnDownBlock2D\","
         " \"DownBlock2D\"]}",
         "an unknown down block type", SDC_ERR_UNSUPPORTED},
        {"{\"up_block_types\": [\"UpBlock2D\", \"AttnUpBlock2D\", \"CrossAttnUpBlock2D\", \"CrossAttnUpBlock2D\"]}",
         "an unknown up block type", SDC_ERR_UNSUPPORTED},
        {"{\"mid_block_type\": \"UNetMidBlock2DSimpleCrossAttn\"}", "another mid block", SDC_ERR_UNSUPPORTED},
        {"{\"addition_embed_type\": \"text_image\"}", "Kandinsky added conditioning", SDC_ERR_UNSUPPORTED},
        {"{\"addition_embed_type\": \"text_time\"}", "text_time without its widths", SDC_ERR_NOT_FOUND},
        {"{\"class_embed_type\": \"timestep\"}", "class embeddings", SDC_ERR_UNSUPPORTED},
        {"{\"conv_in_kernel\": 7}", "a 7x7 conv_in", SDC_ERR_UNSUPPORTED},
        {"{\"resnet_time_scale_shift\": \"scale_shift\"}", "scale-shift time conditioning", SDC_ERR_UNSUPPORTED},
        {"{\"only_cross_attention\": [true, false, false, false]}", "only cross attention", SDC_ERR_UNSUPPORTED},
        {"{\"transformer_layers_per_block\": [[1, 1], [2, 2], [10, 10], [1, 1]]}", "nested transformer layers",
         SDC_ERR_UNSUPPORTED},
        {"{\"_class_name\": \"UNet2DModel\"}", "another class", SDC_ERR_UNSUPPORTED},
        {"{\"block_out_channels\": [320, 640, 1280, 1280], \"attention_head_dim\": [5, 10, 20]}",
         "3 head counts for 4 blocks", SDC_ERR_FORMAT},
        {"{\"block_out_channels\": [320, 640, 1280, 1280], \"norm_num_groups\": 48}", "groups that do not divide",
         SDC_ERR_UNSUPPORTED},
        {"{\"layers_per_block\": \"two\"}", "a string for layers_per_block", SDC_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        st = parse_text(bad[i].json, test_capture_logger(), &c);
        test_check(st == bad[i].want, "%s: %s (want %s): %s", bad[i].why, sdc_status_str(st),
                   sdc_status_str(bad[i].want), test_last_error());
    }
}

/* The host timestep embedding against the formula in double precision (float32 rounding only). */
static void test_timestep_embedding(void) {
    const float ts[3] = {999.0f, 261.0f, 0.5f};
    const int dim = 320, half = dim / 2;
    float *got = malloc(sizeof(float) * 3 * dim), *want = malloc(sizeof(float) * 3 * dim);
    sdc_unet_timestep_embedding(ts, 3, dim, 1, 1, got);
    for (int b = 0; b < 3; b++)
        for (int j = 0; j < half; j++) {
            double a = ts[b] * exp(-log(10000.0) * j / (half - 1));
            want[b * dim + j] = (float)cos(a);
            want[b * dim + half + j] = (float)sin(a);
        }
    test_check_err("timestep embedding (dim 320, shift 1) vs double formula", "rel err",
                   test_rel_err(got, want, (size_t)3 * dim), 1e-4);
    free(got);
    free(want);
}

int main(void) {
    test_config();
    test_timestep_embedding();
    test_shape_mismatch();
    test_oom();
    run_variant(SDC_VARIANT_F32, "f32", 1e-5, 1e-5);
    run_variant(SDC_VARIANT_FP16, "fp16", 2e-3, 0.25);
    return test_finish();
}
