/* test_vae.c - the VAE (AutoencoderKL) against diffusers (tiny-sd1-golden/vae.safetensors): every
 * decode case (image and each top-level block) and every encode case (mean, logvar), with the f32 and
 * the fp16 weights; the activation estimates against the backend's measured peak; out-of-memory at
 * every allocation; shape errors; configs sdc must refuse. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "io/config.h"
#include "io/model_files.h"
#include "model/vae.h"
#include "test_golden.h"
#include "test_model_golden.h"
#include "test_util.h"

/* snprintf into buf (names are short; a truncated one fails to match, which a check reports). */
static void fmt(char *buf, size_t size, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *buf, size_t size, const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, size, f, ap);
    va_end(ap);
}

static int count_prefix(sdc_model_index *g, const char *prefix) {
    int n = 0;
    for (size_t i = 0; i < sdc_index_count(g); i++) n += strncmp(sdc_index_at(g, i)->name, prefix, strlen(prefix)) == 0;
    return n;
}

/* The planner's number for this peak comes from the counting backend: test_count.c checks it. */
static void print_peak(const char *what, size_t measured) {
    printf("  %s activations: measured peak %zu bytes\n", what, measured);
}

static void decode_case(sdc_vae_decoder *dec, const sdc_vae_config *cfg, sdc_backend *be, sdc_model_index *g,
                        const char *label, const char *c, double bound) {
    char name[128], what[128];
    fmt(name, sizeof name, "vae.decode.%s.z", c);
    sdc_tensor *z = test_golden_tensor(be, sdc_vae_decoder_act_dtype(dec), g, name);   // [B, L, h, w]
    if (!z) return;
    const int64_t f = sdc_vae_downscale(cfg);
    const int64_t ne[4] = {z->ne[0], cfg->out_channels, z->ne[2] * f, z->ne[3] * f};
    sdc_tensor *image = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, sdc_vae_decoder_act_dtype(dec), 4, ne);

    fmt(name, sizeof name, "vae.decode.%s.block.", c);
    fmt(what, sizeof what, "%s decode %s", label, c);
    test_block_check bc;
    test_block_check_init(&bc, g, name, what, bound, bound, 0);
    sdc_mem_stats_reset_peak(&be->stats);
    double t0 = test_now();
    sdc_status st = sdc_vae_decode(dec, z, image, test_on_block, &bc);
    double dt = test_now() - t0;
    test_check(st == SDC_OK, "%s decode %s: %s (%.3f s)", label, c, sdc_status_str(st), dt);
    print_peak(what, be->stats.peak[SDC_MEM_ACTIVATIONS]);

    int n_ref = count_prefix(g, bc.ref_prefix);
    test_check(n_ref > 0 && bc.n_seen == n_ref, "%s decode %s: %d block outputs seen, reference has %d", label, c,
               bc.n_seen, n_ref);
    fmt(name, sizeof name, "vae.decode.%s.image", c);
    fmt(what, sizeof what, "%s decode %s image", label, c);
    test_golden_compare(g, name, image, what, bound);
    sdc_tensor_free(z);
    sdc_tensor_free(image);
}

static void encode_case(sdc_vae_encoder *enc, const sdc_vae_config *cfg, sdc_backend *be, sdc_model_index *g,
                        const char *label, const char *c, double bound) {
    char name[128], what[128];
    fmt(name, sizeof name, "vae.encode.%s.image", c);
    sdc_tensor *image = test_golden_tensor(be, sdc_vae_encoder_act_dtype(enc), g, name);   // [B, 3, H, W]
    if (!image) return;
    int64_t h, w;
    sdc_vae_encode_latent_size(cfg, image->ne[2], image->ne[3], &h, &w);
    const int64_t ne[4] = {image->ne[0], cfg->latent_channels, h, w};
    sdc_tensor *mean = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, sdc_vae_encoder_act_dtype(enc), 4, ne);
    sdc_tensor *logvar = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, sdc_vae_encoder_act_dtype(enc), 4, ne);

    sdc_mem_stats_reset_peak(&be->stats);
    double t0 = test_now();
    sdc_status st = sdc_vae_encode(enc, image, mean, logvar);
    double dt = test_now() - t0;
    test_check(st == SDC_OK, "%s encode %s: %s (%.3f s)", label, c, sdc_status_str(st), dt);
    fmt(what, sizeof what, "%s encode %s", label, c);
    print_peak(what, be->stats.peak[SDC_MEM_ACTIVATIONS]);
    fmt(name, sizeof name, "vae.encode.%s.mean", c);
    fmt(what, sizeof what, "%s encode %s mean", label, c);
    test_golden_compare(g, name, mean, what, bound);
    fmt(name, sizeof name, "vae.encode.%s.logvar", c);
    fmt(what, sizeof what, "%s encode %s logvar", label, c);
    test_golden_compare(g, name, logvar, what, bound);
    sdc_tensor_free(image);
    sdc_tensor_free(mean);
    sdc_tensor_free(logvar);
}

/* --- out of memory: a backend whose tensor allocations fail after a countdown --- */

static struct sdc_backend_i failing_iface;
static void *(*real_alloc)(sdc_backend *be, size_t nbytes);
static long alloc_countdown = -1; /* allocations left before one fails; < 0: never */
static long alloc_calls;          /* tensor allocations asked for (the backend's own scratch is not) */

static void *failing_alloc(sdc_backend *be, size_t nbytes) {
    alloc_calls++;
    if (alloc_countdown == 0) return NULL;
    if (alloc_countdown > 0) alloc_countdown--;
    return real_alloc(be, nbytes);
}

typedef sdc_status (*run_fn)(void *model, sdc_tensor **io);
static sdc_status run_decode(void *model, sdc_tensor **io) { return sdc_vae_decode(model, io[0], io[1], NULL, NULL); }
static sdc_status run_encode(void *model, sdc_tensor **io) { return sdc_vae_encode(model, io[0], io[1], io[2]); }

/* Makes allocation k fail, for every k of one call: each must return SDC_ERR_OOM with no activation
 * left behind; then the call succeeds again. */
static void check_oom(const char *what, sdc_backend *be, run_fn run, void *model, sdc_tensor **io) {
    const struct sdc_backend_i *saved = be->iface;
    failing_iface = *saved;
    real_alloc = saved->alloc;
    failing_iface.alloc = failing_alloc;
    be->iface = &failing_iface;
    const sdc_logger saved_log = be->log;
    be->log = *test_capture_logger();

    const size_t live = be->stats.cur[SDC_MEM_ACTIVATIONS];
    alloc_countdown = -1;
    alloc_calls = 0;
    sdc_status st = run(model, io);
    const long n = alloc_calls;
    int all_oom = st == SDC_OK && n > 0, all_clean = 1;
    for (long k = 0; k < n; k++) {
        alloc_countdown = k;
        st = run(model, io);
        all_oom &= st == SDC_ERR_OOM;
        all_clean &= be->stats.cur[SDC_MEM_ACTIVATIONS] == live;
    }
    alloc_countdown = -1;
    test_check(all_oom, "%s: each of its %ld allocations failing gives SDC_ERR_OOM (last message: %s)", what, n,
               test_last_error());
    test_check(all_clean, "%s: nothing stays allocated after an out-of-memory failure", what);
    st = run(model, io);
    test_check(st == SDC_OK, "%s: runs again after the failures: %s", what, sdc_status_str(st));
    be->iface = saved;
    be->log = saved_log;
}

static sdc_tensor *act4(sdc_backend *be, int64_t a, int64_t b, int64_t c, int64_t d) {
    return sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 4, (int64_t[]){a, b, c, d});   // the CPU's dtype
}

/* Wrong shapes are the caller's error (SDC_ERR_INVALID_ARG); allocation failures SDC_ERR_OOM. */
static void check_errors(const sdc_vae_config *cfg, sdc_model_files *mf, sdc_backend *be) {
    const sdc_logger *cap = test_capture_logger();
    sdc_vae_decoder *dec = NULL;
    sdc_vae_encoder *enc = NULL;
    const sdc_weight_source src = {mf->index, "vae.", be, cap, 0, 0, NULL, 0};
    if (!test_check(sdc_vae_decoder_load(cfg, &src, &dec) == SDC_OK && sdc_vae_encoder_load(cfg, &src, &enc) == SDC_OK,
                    "load decoder and encoder with a capturing logger")) {
        sdc_vae_decoder_free(dec);
        sdc_vae_encoder_free(enc);
        return;
    }
    const int64_t f = sdc_vae_downscale(cfg), L = cfg->latent_channels, h = 3, w = 2;
    sdc_tensor *z = act4(be, 1, L, h, w), *image = act4(be, 1, cfg->out_channels, h * f, w * f);
    sdc_tensor *bad_z = act4(be, 1, L + 1, h, w), *bad_image = act4(be, 1, cfg->out_channels, h * f, w * f + 1);
    sdc_tensor *mean = act4(be, 1, L, h, w), *logvar = act4(be, 1, L, h, w);
    sdc_tensor *in = act4(be, 1, cfg->in_channels, h * f, w * f);
    sdc_tensor *wide_in = act4(be, 1, cfg->in_channels, h * f, (w + 1) * f);
    float *x = malloc(sizeof(float) * (size_t)sdc_tensor_nelem(in));
    test_fill_normal(x, (size_t)sdc_tensor_nelem(z), 11, 1.0f);
    sdc_tensor_set_f32(z, x);
    test_fill_uniform(x, (size_t)sdc_tensor_nelem(in), 12, -1.0f, 1.0f);
    sdc_tensor_set_f32(in, x);
    free(x);

    sdc_status st = sdc_vae_decode(dec, bad_z, image, NULL, NULL);
    test_check(st == SDC_ERR_INVALID_ARG, "decode with %lld latent channels: %s (%s)", (long long)(L + 1),
               sdc_status_str(st), test_last_error());
    st = sdc_vae_decode(dec, z, bad_image, NULL, NULL);
    test_check(st == SDC_ERR_INVALID_ARG, "decode into an image one column too wide: %s", sdc_status_str(st));
    st = sdc_vae_encode(enc, in, mean, bad_z);
    test_check(st == SDC_ERR_INVALID_ARG, "encode into a logvar of the wrong shape: %s", sdc_status_str(st));
    st = sdc_vae_encode(enc, wide_in, mean, logvar);
    test_check(st == SDC_ERR_INVALID_ARG, "encode an image %lld pixels wider: %s", (long long)f, sdc_status_str(st));

    check_oom("decode (random z)", be, run_decode, dec, (sdc_tensor *[]){z, image});
    check_oom("encode (random image)", be, run_encode, enc, (sdc_tensor *[]){in, mean, logvar});

    sdc_tensor *all[] = {z, image, bad_z, bad_image, mean, logvar, in, wide_in};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) sdc_tensor_free(all[i]);
    sdc_vae_decoder_free(dec);
    sdc_vae_encoder_free(enc);
}

static void run_variant(sdc_weight_variant variant, const char *label, double bound) {
    printf("%s weights:\n", label);
    const sdc_logger *log = test_logger();
    sdc_model_files *mf = test_open_tiny_sd1(variant, label);
    if (!mf) return;
    sdc_vae_config cfg;
    sdc_status st = sdc_vae_config_parse(sdc_model_files_config(mf, "vae"), log, &cfg);
    if (!test_check(st == SDC_OK, "parse vae config: %s", sdc_status_str(st))) {
        sdc_model_files_free(mf);
        return;
    }
    sdc_backend *be = sdc_backend_cpu_new(0, log);
    sdc_vae_decoder *dec = NULL;
    sdc_vae_encoder *enc = NULL;
    double t0 = test_now();
    const sdc_weight_source src = {mf->index, "vae.", be, log, 0, 0, NULL, 0};
    st = sdc_vae_decoder_load(&cfg, &src, &dec);
    test_check(st == SDC_OK, "load decoder: %s (%zu bytes, %.3f s)", sdc_status_str(st),
               dec ? sdc_vae_decoder_weight_bytes(dec) : 0, test_now() - t0);
    t0 = test_now();
    sdc_status st2 = sdc_vae_encoder_load(&cfg, &src, &enc);
    test_check(st2 == SDC_OK, "load encoder: %s (%zu bytes, %.3f s)", sdc_status_str(st2),
               enc ? sdc_vae_encoder_weight_bytes(enc) : 0, test_now() - t0);

    sdc_model_index *g = test_golden_open("tiny-sd1-golden/vae.safetensors");
    char cases[TEST_GOLDEN_MAX_CASES][64];
    if (dec) {
        int n = test_golden_cases(g, "vae.decode.", ".z", cases);
        test_check(n > 0, "reference has %d decode cases", n);
        for (int i = 0; i < n; i++) decode_case(dec, &cfg, be, g, label, cases[i], bound);
    }
    if (enc) {
        int n = test_golden_cases(g, "vae.encode.", ".image", cases);
        test_check(n > 0, "reference has %d encode cases", n);
        for (int i = 0; i < n; i++) encode_case(enc, &cfg, be, g, label, cases[i], bound);
    }
    if (variant == SDC_VARIANT_F32) check_errors(&cfg, mf, be);

    /* the encoder and the decoder free independently, and give back every weight byte */
    sdc_vae_decoder_free(dec);
    test_check(!enc || be->stats.cur[SDC_MEM_WEIGHTS] == sdc_vae_encoder_weight_bytes(enc),
               "after freeing the decoder, only the encoder's weights remain");
    sdc_vae_encoder_free(enc);
    test_check(be->stats.cur[SDC_MEM_WEIGHTS] == 0 && be->stats.cur[SDC_MEM_ACTIVATIONS] == 0,
               "nothing stays allocated (%zu weight, %zu activation bytes)", be->stats.cur[SDC_MEM_WEIGHTS],
               be->stats.cur[SDC_MEM_ACTIVATIONS]);
    sdc_index_free(g);
    sdc_backend_free(be);
    sdc_model_files_free(mf);
}

/* --- configs sdc must refuse --- */

static void set(cJSON *j, const char *key, cJSON *value) {
    if (cJSON_GetObjectItemCaseSensitive(j, key))
        cJSON_ReplaceItemInObjectCaseSensitive(j, key, value);
    else
        cJSON_AddItemToObject(j, key, value);
}

static void expect(const cJSON *base, const char *what, void (*edit)(cJSON *j, const sdc_vae_config *c),
                   const sdc_vae_config *good, sdc_status want) {
    cJSON *j = cJSON_Duplicate(base, 1);
    edit(j, good);
    sdc_vae_config cfg;
    sdc_status st = sdc_vae_config_parse(j, test_capture_logger(), &cfg);
    test_check(st == want, "config with %s: %s, want %s (%s)", what, sdc_status_str(st), sdc_status_str(want),
               test_last_error());
    cJSON_Delete(j);
}

static void e_down_type(cJSON *j, const sdc_vae_config *c) {
    cJSON_ReplaceItemInArray(cJSON_GetObjectItemCaseSensitive(j, "down_block_types"), c->n_blocks - 1,
                             cJSON_CreateString("AttnDownEncoderBlock2D"));
}
static void e_up_type(cJSON *j, const sdc_vae_config *c) {
    (void)c;
    cJSON_ReplaceItemInArray(cJSON_GetObjectItemCaseSensitive(j, "up_block_types"), 0, cJSON_CreateString("UpBlock2D"));
}
static void e_act(cJSON *j, const sdc_vae_config *c) {
    (void)c;
    set(j, "act_fn", cJSON_CreateString("gelu"));
}
static void e_class(cJSON *j, const sdc_vae_config *c) {
    (void)c;
    set(j, "_class_name", cJSON_CreateString("AutoencoderTiny"));
}
static void e_groups(cJSON *j, const sdc_vae_config *c) {
    set(j, "norm_num_groups", cJSON_CreateNumber(c->block_out_channels[0] + 1));
}
static void e_latents_mean(cJSON *j, const sdc_vae_config *c) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < c->latent_channels; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(0.1 * i));
    set(j, "latents_mean", a);
}
static void e_channels_type(cJSON *j, const sdc_vae_config *c) {
    (void)c;
    set(j, "block_out_channels", cJSON_CreateString("wide"));
}
static void e_fewer_types(cJSON *j, const sdc_vae_config *c) {
    cJSON_DeleteItemFromArray(cJSON_GetObjectItemCaseSensitive(j, "up_block_types"), c->n_blocks - 1);
}
static void e_too_many_blocks(cJSON *j, const sdc_vae_config *c) {
    cJSON *ch = cJSON_CreateArray(), *down = cJSON_CreateArray(), *up = cJSON_CreateArray();
    for (int i = 0; i <= SDC_VAE_MAX_BLOCKS; i++) {
        cJSON_AddItemToArray(ch, cJSON_CreateNumber(c->block_out_channels[0]));
        cJSON_AddItemToArray(down, cJSON_CreateString("DownEncoderBlock2D"));
        cJSON_AddItemToArray(up, cJSON_CreateString("UpDecoderBlock2D"));
    }
    set(j, "block_out_channels", ch);
    set(j, "down_block_types", down);
    set(j, "up_block_types", up);
}

static void check_configs(void) {
    printf("configs:\n");
    sdc_model_files *mf = test_open_tiny_sd1(SDC_VARIANT_F32, NULL);
    if (!mf) return;
    const cJSON *base = sdc_model_files_config(mf, "vae");
    sdc_vae_config good;
    sdc_status st = sdc_vae_config_parse(base, test_logger(), &good);
    const cJSON *boc = cJSON_GetObjectItemCaseSensitive(base, "block_out_channels");
    const cJSON *sf = cJSON_GetObjectItemCaseSensitive(base, "scaling_factor");
    test_check(st == SDC_OK && good.n_blocks == cJSON_GetArraySize(boc) &&
                   good.block_out_channels[good.n_blocks - 1] == cJSON_GetArrayItem(boc, good.n_blocks - 1)->valueint &&
                   fabs(good.scaling_factor - sf->valuedouble) < 1e-7 && good.norm_eps == 1e-6f,
               "tiny-sd1 config parses: %d blocks, top %d channels, scaling %g", good.n_blocks,
               good.block_out_channels[good.n_blocks - 1], (double)good.scaling_factor);
    if (st == SDC_OK) {
        expect(base, "an attention down block", e_down_type, &good, SDC_ERR_UNSUPPORTED);
        expect(base, "a UNet up block", e_up_type, &good, SDC_ERR_UNSUPPORTED);
        expect(base, "act_fn gelu", e_act, &good, SDC_ERR_UNSUPPORTED);
        expect(base, "another autoencoder class", e_class, &good, SDC_ERR_UNSUPPORTED);
        expect(base, "groups that do not divide the channels", e_groups, &good, SDC_ERR_UNSUPPORTED);
        expect(base, "latents_mean", e_latents_mean, &good, SDC_ERR_UNSUPPORTED);
        expect(base, "too many blocks", e_too_many_blocks, &good, SDC_ERR_UNSUPPORTED);
        expect(base, "block_out_channels a string", e_channels_type, &good, SDC_ERR_FORMAT);
        expect(base, "one up block type missing", e_fewer_types, &good, SDC_ERR_FORMAT);
    }
    sdc_model_files_free(mf);
}

int main(void) {
    check_configs();
    run_variant(SDC_VARIANT_F32, "f32", 1e-5);
    run_variant(SDC_VARIANT_FP16, "fp16", 2e-3);
    return test_finish();
}
