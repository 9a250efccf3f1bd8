/* test_flux.c - FluxTransformer2DModel against diffusers (tiny-flux-golden/components.safetensors): both
 * variants (schnell; dev with its guidance embedding), every top-level block and the output, f32 on the
 * CPU, with the weights read from the diffusers folder and from the BFL single file (in CUDA builds also on
 * the GPU, f32, f16 and bf16 (Flux's default there), from the BFL file); the RoPE tables
 * against float64 recomputation; bad configs and shapes refused with clear errors. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "io/bfl_names.h"
#include "io/config.h"
#include "io/model_index.h"
#include "model/flux.h"
#include "test_golden.h"
#include "test_model_golden.h"
#include "test_util.h"

#define BOUND 1e-5           /* f32 CPU vs diffusers' float64 reference, relative */
#define CUDA_F32_BOUND 1e-5  /* the same on the GPU in f32 (no TF32) */
#define CUDA_F16_BOUND 1e-2  /* f16 weights and activations, f32 accumulation */
#define CUDA_BF16_BOUND 3e-2 /* bf16: 8-bit mantissas, 8x f16's rounding */

static const char *const variants[] = {"schnell", "dev"};

/* The config of a bundle folder's transformer. */
static int load_config(const char *variant, sdc_flux_config *cfg) {
    char rel[128];
    snprintf(rel, sizeof rel, "tiny-flux-%s/transformer/config.json", variant);
    cJSON *j = NULL;
    sdc_status st = sdc_json_load(test_ref_path(rel), test_logger(), &j);
    if (st == SDC_OK) st = sdc_flux_config_parse(j, test_logger(), cfg);
    cJSON_Delete(j);
    return test_check(st == SDC_OK, "%s: parse transformer/config.json: %s", variant, sdc_status_str(st));
}

/* The index of the transformer's weights under "transformer.": the folder's file, or the BFL file
 * through its name map. */
static sdc_model_index *open_weights(const char *variant, int bfl) {
    char rel[128];
    if (bfl)
        snprintf(rel, sizeof rel, "tiny-flux-%s-bfl.safetensors", variant);
    else
        snprintf(rel, sizeof rel, "tiny-flux-%s/transformer/diffusion_pytorch_model.safetensors", variant);
    sdc_model_index *idx = sdc_index_new(test_logger());
    sdc_status st = idx ? SDC_OK : SDC_ERR_OOM;
    if (st == SDC_OK && bfl) st = sdc_bfl_flux_index(idx, test_ref_path(rel), "transformer.", test_logger());
    if (st == SDC_OK && !bfl) st = sdc_index_add_file(idx, test_ref_path(rel), "transformer.", NULL, NULL);
    if (!test_check(st == SDC_OK, "index %s: %s", rel, sdc_status_str(st))) {
        sdc_index_free(idx);
        return NULL;
    }
    return idx;
}

/* The golden tensor transformer.<v>.<what> as host floats; NULL after a recorded failure. */
static float *golden(sdc_model_index *g, const char *v, const char *what, const sdc_tensor_info **info) {
    char name[128];
    snprintf(name, sizeof name, "transformer.%s.%s", v, what);
    return test_golden_f32(g, name, info);
}

/* Where a variant runs: the CPU (f32), and in CUDA builds the GPU in f32, f16 and bf16. */
typedef struct run_on {
    sdc_device dev;
    sdc_prec prec;   // the component's precision
    double bound;    // relative, every block and the output
} run_on;

static void run_variant(sdc_model_index *g, const char *v, int bfl, run_on on) {
    char label[64];
    snprintf(label, sizeof label, "%s%s", bfl ? "bfl file" : "folder",
             on.dev == SDC_DEVICE_CPU       ? ""
                 : on.prec == SDC_PREC_F32  ? " cuda f32"
                 : on.prec == SDC_PREC_BF16 ? " cuda bf16"
                                            : " cuda f16");
    sdc_flux_config cfg;
    if (!load_config(v, &cfg)) return;
    sdc_model_index *idx = open_weights(v, bfl);
    sdc_backend *be = sdc_backend_new(on.dev, 0, test_logger());
    sdc_flux *m = NULL;
    sdc_status st = SDC_ERR_INVALID_ARG;
    if (idx && be)
        st = sdc_flux_load(&cfg, &(sdc_weight_source){idx, "transformer.", be, test_logger(), on.prec, 0, NULL, 0}, &m);
    sdc_index_free(idx);
    if (!test_check(st == SDC_OK, "%s %s: load: %s", v, label, sdc_status_str(st))) {
        sdc_backend_free(be);
        return;
    }
    const sdc_tensor_info *ti, *oi;
    char name[128], what[128];
    float *pooled = golden(g, v, "pooled_projections", NULL), *t = golden(g, v, "timestep", &ti);
    float *img_ids = golden(g, v, "img_ids", NULL), *txt_ids = golden(g, v, "txt_ids", NULL);
    float *guidance = cfg.guidance_embeds ? golden(g, v, "guidance", NULL) : NULL;
    float *ref = golden(g, v, "out", &oi);
    snprintf(name, sizeof name, "transformer.%s.hidden_states", v);
    sdc_tensor *x = test_golden_tensor(be, SDC_DTYPE_F32, g, name);   // [B, N, 64]
    snprintf(name, sizeof name, "transformer.%s.encoder_hidden_states", v);
    sdc_tensor *ctx = test_golden_tensor(be, SDC_DTYPE_F32, g, name);   // [B, T, joint]
    sdc_tensor *out = oi ? sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, oi->ndim, oi->ne) : NULL;
    if (pooled && t && img_ids && txt_ids && ref && x && ctx && out && (guidance || !cfg.guidance_embeds)) {
        sdc_flux_cond cond = {ctx, pooled, t, guidance, img_ids, txt_ids};
        test_block_check bc;
        snprintf(name, sizeof name, "transformer.%s.block.", v);
        snprintf(what, sizeof what, "%s %s", v, label);
        test_block_check_init(&bc, g, name, what, on.bound, on.bound, 0);
        st = sdc_flux_forward(m, x, &cond, out, test_on_block, &bc);
        test_check(st == SDC_OK, "%s %s: forward: %s", v, label, sdc_status_str(st));
        const int want = 5 + 2 * cfg.n_layers + 2 * cfg.n_single_layers;
        test_check(bc.n_seen == want, "%s %s: %d block outputs compared (expected %d)", v, label, bc.n_seen, want);
        const size_t n = (size_t)sdc_tensor_nelem(out);
        float *o = malloc(sizeof(float) * n);
        sdc_tensor_get_f32(out, o);
        snprintf(what, sizeof what, "%s %s out", v, label);
        test_check_err(what, "rel err", test_rel_err(o, ref, n), on.bound);
        printf("    %s max |diff| %.3g\n", what, test_max_abs(o, ref, n));
        free(o);

        /* the caller's mistakes are errors, not crashes */
        sdc_flux_cond bad = cond;
        bad.guidance = cfg.guidance_embeds ? NULL : t;
        st = sdc_flux_forward(m, x, &bad, out, NULL, NULL);
        test_check(st == SDC_ERR_INVALID_ARG, "%s %s: guidance %s: %s", v, label,
                   cfg.guidance_embeds ? "missing" : "given to a model without", sdc_status_str(st));
        sdc_tensor xv = sdc_tensor_view(x, 3, (int64_t[]){x->ne[0], x->ne[1] * 2, x->ne[2] / 2});
        st = sdc_flux_forward(m, &xv, &cond, out, NULL, NULL);
        test_check(st == SDC_ERR_INVALID_ARG, "%s %s: x of 32 channels: %s", v, label, sdc_status_str(st));
        test_check(be->stats.cur[SDC_MEM_ACTIVATIONS] == x->nbytes + ctx->nbytes + out->nbytes,
                   "%s %s: only the caller's tensors stay allocated", v, label);
    }
    free(pooled), free(t), free(img_ids), free(txt_ids), free(guidance), free(ref);
    sdc_tensor_free(x);
    sdc_tensor_free(ctx);
    sdc_tensor_free(out);
    sdc_flux_free(m);
    /* weights and activations all freed; a GPU backend may keep its grow-only workspace (not the model's) */
    test_check(be->stats.cur[SDC_MEM_WEIGHTS] == 0 && be->stats.cur[SDC_MEM_ACTIVATIONS] == 0,
               "%s %s: every weight and activation byte freed (workspace kept by the backend: %zu bytes)", v, label,
               be->stats.cur[SDC_MEM_WORKSPACE]);
    sdc_backend_free(be);
}

/* The rolled norm_out.linear.weight read in pieces of 7 elements (as a staged upload reads it), some
 * crossing the wrap between the file's halves: the same bytes as the folder's tensor. */
static void test_rolled_ranges(sdc_model_index *dir, sdc_model_index *bfl, const char *v) {
    const sdc_tensor_info *a = sdc_index_find(dir, "transformer.norm_out.linear.weight");
    const sdc_tensor_info *b = sdc_index_find(bfl, "transformer.norm_out.linear.weight");
    if (!test_check(a && b && b->roll_rows == b->ne[0] / 2, "%s: norm_out.linear.weight rolled by half", v)) return;
    char *want = malloc(a->nbytes), *got = malloc(b->nbytes);
    sdc_status st = sdc_index_read_raw(dir, a, want);
    for (uint64_t off = 0; st == SDC_OK && off < b->nbytes; off += 28)
        st = sdc_index_read_range(bfl, b, off, b->nbytes - off < 28 ? b->nbytes - off : 28, got + off);
    test_check(st == SDC_OK && memcmp(want, got, a->nbytes) == 0, "%s: rolled tensor read in 28-byte ranges is exact",
               v);
    free(want);
    free(got);
}

/* Views the index refuses, with the reason logged. */
static void test_view_errors(sdc_model_index *idx, const char *v) {
    const char *names[2] = {"transformer.a", "transformer.b"};
    const int64_t rows[2] = {32, 31};
    const char *w = "transformer.proj_out.weight"; /* [64, 32] */
    test_check(sdc_index_split_rows_sized(idx, w, 2, rows, names) == SDC_ERR_FORMAT,
               "%s: a split whose blocks do not sum to the rows is refused", v);
    test_check(sdc_index_roll_rows(idx, w, 64) == SDC_ERR_FORMAT, "%s: a roll by all the rows is refused", v);
    test_check(sdc_index_roll_rows(idx, "transformer.norm_out.linear.bias", 32) == SDC_ERR_FORMAT,
               "%s: rolling a rolled tensor again is refused", v);
    test_check(sdc_index_transpose(idx, "transformer.norm_out.linear.weight") == SDC_ERR_FORMAT,
               "%s: transposing a rolled tensor is refused", v);
    test_check(sdc_index_roll_rows(idx, "transformer.nope", 1) == SDC_ERR_NOT_FOUND, "%s: rolling a missing tensor", v);
}

/* Every tensor of the folder read through the BFL map: same names, shapes and bytes. */
static void test_bfl_tensors(const char *v) {
    sdc_model_index *dir = open_weights(v, 0), *bfl = open_weights(v, 1);
    if (!dir || !bfl) goto done;
    test_check(sdc_index_count(dir) == sdc_index_count(bfl), "%s: %zu folder tensors, %zu through the BFL map", v,
               sdc_index_count(dir), sdc_index_count(bfl));
    size_t same = 0, n = sdc_index_count(dir);
    for (size_t i = 0; i < n; i++) {
        const sdc_tensor_info *a = sdc_index_at(dir, i), *b = sdc_index_find(bfl, a->name);
        int ok = b && a->ndim == b->ndim && a->dtype == b->dtype && a->nbytes == b->nbytes;
        for (int d = 0; ok && d < a->ndim; d++) ok = a->ne[d] == b->ne[d];
        char *da = malloc(a->nbytes + 1), *db = malloc(a->nbytes + 1);
        ok = ok && sdc_index_read_raw(dir, a, da) == SDC_OK && sdc_index_read_raw(bfl, b, db) == SDC_OK &&
            memcmp(da, db, a->nbytes) == 0;
        if (!ok) printf("    differs: %s\n", a->name);
        same += (size_t)ok;
        free(da);
        free(db);
    }
    test_check(n > 0 && same == n, "%s: %zu of %zu tensors read through the BFL map equal the folder's exactly", v,
               same, n);
    test_rolled_ranges(dir, bfl, v);
    test_view_errors(bfl, v);
done:
    sdc_index_free(dir);
    sdc_index_free(bfl);
}

/* The tables against a float64 recomputation of diffusers' formula, and their layout. */
static void test_rope_tables(void) {
    sdc_flux_config cfg = {.head_dim = 16, .n_axes = 3, .axes_dims = {4, 6, 6}, .theta = 10000.0};
    const float ids[2 * 3] = {0, 0, 0, 7, 3, 5};
    float c[2 * 8], s[2 * 8];
    int ok = sdc_flux_rope_tables(&cfg, ids, 2, c, s);
    for (int j = 0; j < 8; j++) ok &= c[j] == 1.0f && s[j] == 0.0f;   // position (0, 0, 0)
    /* position (7, 3, 5): axis 1 (width 6) pair 1 is column 2 + 1, angle 3 * 10000^(-2/6) */
    const double a = 3.0 / pow(10000.0, 2.0 / 6.0);
    ok &= c[8 + 3] == (float)cos(a) && s[8 + 3] == (float)sin(a);
    ok &= c[8 + 0] == (float)cos(7.0) && s[8 + 7] == (float)sin(5.0 / pow(10000.0, 4.0 / 6.0));
    test_check(ok, "rope tables: identity at 0, per-axis frequencies theta^(-2j/d) in float64");

    /* Integral positions in [0, 1024) come from a per-axis cache: every value equals its own computation,
     * for repeated, fractional, negative and large positions alike. */
    const float many[7 * 3] = {0, 0, 0, 0, 3, 5, 1, 3, 5, 0, 2.5f, -1, 0, 1500, 3, 0, 3, 5, 0, 1023, 1024};
    float mc[7 * 8], ms[7 * 8];
    int same = sdc_flux_rope_tables(&cfg, many, 7, mc, ms);
    for (int p = 0; p < 7; p++)
        for (int ax = 0, col = 0; ax < 3; ax++)
            for (int j = 0; j < cfg.axes_dims[ax] / 2; j++, col++) {
                const double angle = many[p * 3 + ax] * (1.0 / pow(10000.0, (double)(2 * j) / cfg.axes_dims[ax]));
                same &= mc[p * 8 + col] == (float)cos(angle) && ms[p * 8 + col] == (float)sin(angle);
            }
    test_check(same, "rope tables: cached integral positions give each value's own computation (7 rows, bit for bit)");
}

static sdc_status parse_text(const char *text, sdc_flux_config *cfg) {
    cJSON *j = cJSON_Parse(text);
    if (!j) return SDC_ERR_FORMAT;
    sdc_status st = sdc_flux_config_parse(j, test_capture_logger(), cfg);
    cJSON_Delete(j);
    return st;
}

static void test_config(void) {
    sdc_flux_config c;
    /* black-forest-labs/FLUX.1-dev's transformer/config.json */
    sdc_status st = parse_text("{\"_class_name\": \"FluxTransformer2DModel\", \"attention_head_dim\": 128,"
                               " \"axes_dims_rope\": [16, 56, 56], \"guidance_embeds\": true, \"in_channels\": 64,"
                               " \"joint_attention_dim\": 4096, \"num_attention_heads\": 24, \"num_layers\": 19,"
                               " \"num_single_layers\": 38, \"patch_size\": 1, \"pooled_projection_dim\": 768}",
                               &c);
    test_check(st == SDC_OK && c.n_heads * c.head_dim == 3072 && c.out_channels == 64 && c.guidance_embeds &&
                   c.n_layers == 19 && c.n_single_layers == 38 && c.n_axes == 3 && c.axes_dims[1] == 56,
               "FLUX.1-dev config: hidden 3072, 19 + 38 blocks, out 64, guidance: %s", sdc_status_str(st));
    static const struct {
        const char *json;
        sdc_status want;
        const char *what;
    } bad[] = {
        {"{\"patch_size\": 2}", SDC_ERR_UNSUPPORTED, "patch_size 2"},
        {"{\"_class_name\": \"SD3Transformer2DModel\"}", SDC_ERR_UNSUPPORTED, "another class"},
        {"{\"axes_dims_rope\": [16, 56, 54]}", SDC_ERR_FORMAT, "axes not summing to the head width"},
        {"{\"attention_head_dim\": 14, \"axes_dims_rope\": [4, 5, 5]}", SDC_ERR_FORMAT, "an odd axis"},
        {"{\"num_attention_heads\": 0}", SDC_ERR_FORMAT, "no heads"},
        {"{\"num_attention_heads\": 4096}", SDC_ERR_UNSUPPORTED, "hidden width beyond the bound"},
        {"{\"num_layers\": 100000}", SDC_ERR_UNSUPPORTED, "too many blocks"},
        {"{\"in_channels\": \"64\"}", SDC_ERR_FORMAT, "a string for in_channels"},
        {"{\"axes_dims_rope\": [8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8]}", SDC_ERR_UNSUPPORTED, "16 axes"},
        {"[]", SDC_ERR_FORMAT, "not an object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        st = parse_text(bad[i].json, &c);
        test_check(st == bad[i].want, "config with %s: %s, want %s (%s)", bad[i].what, sdc_status_str(st),
                   sdc_status_str(bad[i].want), test_last_error());
    }
}

/* A config that disagrees with the file's shapes fails cleanly, leaving nothing allocated. */
static void test_shape_mismatch(void) {
    sdc_flux_config cfg;
    if (!load_config("dev", &cfg)) return;
    sdc_model_index *idx = open_weights("dev", 0);
    sdc_backend *be = sdc_backend_cpu_new(1, test_logger());
    const struct {
        int joint, guidance;
        sdc_status want;
        const char *what;
    } cases[] = {{cfg.joint_dim + 8, 1, SDC_ERR_FORMAT, "joint_attention_dim + 8"},
                 {cfg.joint_dim, 0, SDC_OK, "dev weights without guidance_embeds (extra tensors unused)"}};
    for (size_t i = 0; idx && be && i < sizeof cases / sizeof cases[0]; i++) {
        sdc_flux_config c = cfg;
        c.joint_dim = cases[i].joint;
        c.guidance_embeds = cases[i].guidance;
        sdc_flux *m = NULL;
        sdc_status st =
            sdc_flux_load(&c, &(sdc_weight_source){idx, "transformer.", be, test_capture_logger(), 0, 0, NULL, 0}, &m);
        test_check(st == cases[i].want, "load with %s: %s (%s)", cases[i].what, sdc_status_str(st),
                   st ? test_last_error() : "");
        sdc_flux_free(m);
        test_check(be->stats.cur[SDC_MEM_WEIGHTS] == 0, "nothing left after it");
    }
    sdc_flux_config c = cfg;
    c.n_layers = 3;
    sdc_flux *m = NULL;
    sdc_status st = idx && be
        ? sdc_flux_load(&c, &(sdc_weight_source){idx, "transformer.", be, test_capture_logger(), 0, 0, NULL, 0}, &m)
        : SDC_ERR_INVALID_ARG;
    test_check(st == SDC_ERR_NOT_FOUND && !m, "a third double block that the file lacks: %s (%s)", sdc_status_str(st),
               test_last_error());
    sdc_backend_free(be);
    sdc_index_free(idx);
}

int main(void) {
    test_rope_tables();
    test_config();
    sdc_model_index *g = test_golden_open("tiny-flux-golden/components.safetensors");
    for (int v = 0; v < 2; v++) {
        printf("%s:\n", variants[v]);
        run_variant(g, variants[v], 0, (run_on){SDC_DEVICE_CPU, SDC_PREC_AUTO, BOUND});
        run_variant(g, variants[v], 1, (run_on){SDC_DEVICE_CPU, SDC_PREC_AUTO, BOUND});
        if (sdc_device_available(SDC_DEVICE_CUDA)) {
            run_variant(g, variants[v], 1, (run_on){SDC_DEVICE_CUDA, SDC_PREC_F32, CUDA_F32_BOUND});
            run_variant(g, variants[v], 1, (run_on){SDC_DEVICE_CUDA, SDC_PREC_AUTO, CUDA_F16_BOUND});
            run_variant(g, variants[v], 1, (run_on){SDC_DEVICE_CUDA, SDC_PREC_BF16, CUDA_BF16_BOUND});
        }
        test_bfl_tensors(variants[v]);
    }
    sdc_index_free(g);
    test_shape_mismatch();
    return test_finish();
}
