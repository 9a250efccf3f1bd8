/* test_count.c - the counting backend (backend/count) against the real CPU backend, on the tiny-sd1
 * reference model: for every component and several shapes (batch 1/2 as CFG off/on, non-square and odd
 * sizes, short and full prompts), the peaks the counting backend measures for the component's normal
 * forward equal EXACTLY (bound 0) the peaks the CPU backend's allocator counts for the same forward:
 * activations, workspace and weights. Loading onto the counting backend reads no file byte.
 *
 * Not covered here: a real f16 backend. The CPU computes in f32 only, so the f16 case of CUDA (f16
 * weights and activations, its own workspace rules) is checked on a GPU by test_cuda_models (the UNet's
 * counting-backend peaks against the device's). Here a CPU backend that merely *declares* f16 dtypes
 * shows that the counting backend takes its dtypes from the backend it stands in for. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/count/count_backend.h"
#include "io/model_files.h"
#include "model/clip.h"
#include "model/unet.h"
#include "model/vae.h"
#include "test_util.h"

/* Peaks of one run, after the caller's inputs and outputs were allocated (as a planner measures). */
typedef struct peaks {
    size_t act, ws;
    sdc_status st;
} peaks;

static void start(sdc_backend *be) { sdc_mem_stats_reset_peak(&be->stats); }
static peaks finish(sdc_backend *be, sdc_status st) {
    return (peaks){be->stats.peak[SDC_MEM_ACTIVATIONS], be->stats.peak[SDC_MEM_WORKSPACE], st};
}

/* An activation tensor with fresh random values (a no-op upload on the counting backend). */
static sdc_tensor *input(sdc_backend *be, sdc_dtype dt, int ndim, const int64_t *ne, uint64_t seed) {
    sdc_tensor *t = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, dt, ndim, ne);
    if (!t) return NULL;
    size_t n = (size_t)sdc_tensor_nelem(t);
    float *h = malloc(sizeof(float) * (n ? n : 1));
    test_fill_normal(h, n, seed, 1.0f);
    sdc_tensor_set_f32(t, h);
    free(h);
    return t;
}

static void compare(const char *what, peaks real, peaks count) {
    printf("  %s: activations cpu %zu, count %zu; workspace cpu %zu, count %zu\n", what, real.act, count.act, real.ws,
           count.ws);
    test_check(real.st == SDC_OK && count.st == SDC_OK, "%s: both runs succeed (%s, %s)", what, sdc_status_str(real.st),
               sdc_status_str(count.st));
    test_check(count.act == real.act, "%s: activation peak counted %zu == measured %zu (bound 0)", what, count.act,
               real.act);
    test_check(count.ws == real.ws, "%s: workspace peak counted %zu == measured %zu (bound 0)", what, count.ws,
               real.ws);
}

typedef struct model {
    sdc_model_files *mf;
    sdc_clip_config clip;
    sdc_unet_config unet;
    sdc_vae_config vae;
} model;

/* Loads through the normal loader onto be; on a counting backend checks that no file byte was read. */
#define LOAD(m, be, loader, cfg, prefix, out)                                                                     \
    do {                                                                                                          \
        const uint64_t r0 = sdc_index_bytes_read((m)->mf->index);                                                 \
        sdc_status st_ =                                                                                          \
            loader(cfg, &(sdc_weight_source){(m)->mf->index, prefix, be, test_logger(), 0, 0, NULL, 0}, out);     \
        const uint64_t read_ = sdc_index_bytes_read((m)->mf->index) - r0;                                         \
        test_check(st_ == SDC_OK, "%s: %s onto %s: %s", #loader, prefix, (be)->iface->name, sdc_status_str(st_)); \
        if (sdc_backend_is_count(be))                                                                             \
            test_check(read_ == 0, "%s onto the counting backend read %llu file bytes (want 0)", #loader,         \
                       (unsigned long long)read_);                                                                \
    } while (0)

static void check_weights(const char *what, sdc_backend *cpu, sdc_backend *cnt) {
    printf("  %s weights: cpu %zu, count %zu bytes\n", what, cpu->stats.cur[SDC_MEM_WEIGHTS],
           cnt->stats.cur[SDC_MEM_WEIGHTS]);
    test_check(cpu->stats.cur[SDC_MEM_WEIGHTS] == cnt->stats.cur[SDC_MEM_WEIGHTS] &&
                   cpu->stats.cur[SDC_MEM_WEIGHTS] > 0,
               "%s: weight bytes counted == loaded (%zu)", what, cnt->stats.cur[SDC_MEM_WEIGHTS]);
}

/* --- text encoder: ids [B, T] -> out [B, T, C] --- */

static peaks run_clip(sdc_clip *m, sdc_backend *be, int B, int T) {
    const sdc_clip_config *c = sdc_clip_get_config(m);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(B * T));
    for (int i = 0; i < B * T; i++) ids[i] = (int32_t)((i * 7919 + 13) % c->vocab);
    sdc_tensor *out = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, sdc_clip_act_dtype(m), 3, (int64_t[]){B, T, c->hidden});
    float *pooled = malloc(sizeof(float) * (size_t)(B * c->hidden));
    start(be);
    sdc_status st = out ? sdc_clip_forward(m, ids, B, T, 0, out, pooled, NULL, NULL) : SDC_ERR_OOM;
    peaks p = finish(be, st);
    sdc_tensor_free(out);
    free(pooled);
    free(ids);
    return p;
}

static void test_clip(model *md, sdc_backend *cpu, sdc_backend *cnt) {
    printf("text encoder:\n");
    sdc_clip *a = NULL, *b = NULL;
    LOAD(md, cpu, sdc_clip_load, &md->clip, "text_encoder.", &a);
    LOAD(md, cnt, sdc_clip_load, &md->clip, "text_encoder.", &b);
    if (a && b) {
        check_weights("text encoder", cpu, cnt);
        static const int shapes[][2] = {{1, 77}, {2, 77}, {2, 7}, {3, 20}};
        for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
            char what[64];
            snprintf(what, sizeof what, "clip B %d T %d", shapes[i][0], shapes[i][1]);
            compare(what, run_clip(a, cpu, shapes[i][0], shapes[i][1]), run_clip(b, cnt, shapes[i][0], shapes[i][1]));
        }
    }
    sdc_clip_free(a);
    sdc_clip_free(b);
}

/* --- UNet: x [B, 4, h, w], context [B, T, Cctx] -> out --- */

static peaks run_unet(sdc_unet *u, sdc_backend *be, int B, int h, int w, int T) {
    const sdc_unet_config *c = sdc_unet_get_config(u);
    const sdc_dtype dt = sdc_unet_act_dtype(u);
    sdc_tensor *x = input(be, dt, 4, (int64_t[]){B, c->in_channels, h, w}, 1);
    sdc_tensor *ctx = input(be, dt, 3, (int64_t[]){B, T, c->cross_attention_dim}, 2);
    sdc_tensor *out = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, dt, 4, (int64_t[]){B, c->out_channels, h, w});
    const float ts[2] = {981.0f, 981.0f};
    start(be);
    sdc_status st =
        x && ctx && out ? sdc_unet_forward(u, x, ts, &(sdc_unet_cond){.context = ctx}, out, NULL, NULL) : SDC_ERR_OOM;
    peaks p = finish(be, st);
    sdc_tensor_free(x);
    sdc_tensor_free(ctx);
    sdc_tensor_free(out);
    return p;
}

static const int unet_shapes[][4] = {
    // B (2: CFG on), h, w, T
    {1, 8, 8, 77}, {2, 8, 8, 77}, {2, 8, 12, 77}, {1, 12, 6, 77}, {2, 7, 5, 77}, {1, 16, 24, 9},
};

static void test_unet(model *md, sdc_backend *cpu, sdc_backend *cnt) {
    printf("unet:\n");
    sdc_unet *a = NULL, *b = NULL;
    LOAD(md, cpu, sdc_unet_load, &md->unet, "unet.", &a);
    LOAD(md, cnt, sdc_unet_load, &md->unet, "unet.", &b);
    if (a && b) {
        check_weights("unet", cpu, cnt);
        for (size_t i = 0; i < sizeof unet_shapes / sizeof *unet_shapes; i++) {
            const int *s = unet_shapes[i];
            char what[64];
            snprintf(what, sizeof what, "unet B %d %dx%d T %d", s[0], s[1], s[2], s[3]);
            compare(what, run_unet(a, cpu, s[0], s[1], s[2], s[3]), run_unet(b, cnt, s[0], s[1], s[2], s[3]));
        }
    }
    sdc_unet_free(a);
    sdc_unet_free(b);
}

/* --- VAE: decode z [B, L, h, w] -> image; encode image [B, 3, H, W] -> mean, logvar --- */

static peaks run_decode(sdc_vae_decoder *d, const sdc_vae_config *c, sdc_backend *be, int B, int h, int w) {
    const sdc_dtype dt = sdc_vae_decoder_act_dtype(d);
    const int64_t f = sdc_vae_downscale(c);
    sdc_tensor *z = input(be, dt, 4, (int64_t[]){B, c->latent_channels, h, w}, 3);
    sdc_tensor *img = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, dt, 4, (int64_t[]){B, c->out_channels, h * f, w * f});
    start(be);
    sdc_status st = z && img ? sdc_vae_decode(d, z, img, NULL, NULL) : SDC_ERR_OOM;
    peaks p = finish(be, st);
    sdc_tensor_free(z);
    sdc_tensor_free(img);
    return p;
}

static peaks run_encode(sdc_vae_encoder *e, const sdc_vae_config *c, sdc_backend *be, int B, int H, int W) {
    const sdc_dtype dt = sdc_vae_encoder_act_dtype(e);
    int64_t h, w;
    sdc_vae_encode_latent_size(c, H, W, &h, &w);
    const int64_t ls[4] = {B, c->latent_channels, h, w};
    sdc_tensor *img = input(be, dt, 4, (int64_t[]){B, c->in_channels, H, W}, 4);
    sdc_tensor *mean = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, dt, 4, ls);
    sdc_tensor *logvar = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, dt, 4, ls);
    start(be);
    sdc_status st = img && mean && logvar ? sdc_vae_encode(e, img, mean, logvar) : SDC_ERR_OOM;
    peaks p = finish(be, st);
    sdc_tensor_free(img);
    sdc_tensor_free(mean);
    sdc_tensor_free(logvar);
    return p;
}

static void test_vae(model *md, sdc_backend *cpu, sdc_backend *cnt) {
    printf("vae:\n");
    const sdc_vae_config *c = &md->vae;
    sdc_vae_decoder *da = NULL, *db = NULL;
    LOAD(md, cpu, sdc_vae_decoder_load, c, "vae.", &da);
    LOAD(md, cnt, sdc_vae_decoder_load, c, "vae.", &db);
    if (da && db) {
        check_weights("vae decoder", cpu, cnt);
        static const int shapes[][3] = {{1, 8, 8}, {2, 8, 8}, {1, 6, 10}, {2, 5, 3}};   // B, h, w
        for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
            char what[64];
            snprintf(what, sizeof what, "decode B %d %dx%d", shapes[i][0], shapes[i][1], shapes[i][2]);
            compare(what, run_decode(da, c, cpu, shapes[i][0], shapes[i][1], shapes[i][2]),
                    run_decode(db, c, cnt, shapes[i][0], shapes[i][1], shapes[i][2]));
        }
    }
    sdc_vae_decoder_free(da);
    sdc_vae_decoder_free(db);
    sdc_vae_encoder *ea = NULL, *eb = NULL;
    LOAD(md, cpu, sdc_vae_encoder_load, c, "vae.", &ea);
    LOAD(md, cnt, sdc_vae_encoder_load, c, "vae.", &eb);
    if (ea && eb) {
        check_weights("vae encoder", cpu, cnt);
        static const int shapes[][3] = {{1, 64, 64}, {2, 64, 64}, {1, 48, 80}, {1, 44, 36}};   // B, H, W
        for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
            char what[64];
            snprintf(what, sizeof what, "encode B %d %dx%d", shapes[i][0], shapes[i][1], shapes[i][2]);
            compare(what, run_encode(ea, c, cpu, shapes[i][0], shapes[i][1], shapes[i][2]),
                    run_encode(eb, c, cnt, shapes[i][0], shapes[i][1], shapes[i][2]));
        }
    }
    sdc_vae_encoder_free(ea);
    sdc_vae_encoder_free(eb);
}

/* --- a backend that declares f16: the counting backend counts in its dtypes --- */

static sdc_dtype f16_weight(sdc_backend *be, sdc_dtype file_dtype, sdc_prec f32, int matrix) {
    return f32 ? SDC_DTYPE_F32 : SDC_DTYPE_F16;
}
static sdc_dtype f16_act(sdc_backend *be, sdc_prec f32) { return f32 ? SDC_DTYPE_F32 : SDC_DTYPE_F16; }

static void test_like_dtypes(model *md, sdc_backend *cpu) {
    printf("dtypes of the backend stood in for:\n");
    struct sdc_backend_i iface = *cpu->iface;
    iface.weight_dtype = f16_weight;
    iface.act_dtype = f16_act;
    sdc_backend fake = *cpu;   // never runs an op: it only answers dtype and workspace questions
    memset(&fake.stats, 0, sizeof fake.stats);
    fake.iface = &iface;
    sdc_backend *c16 = sdc_backend_count_new(&fake), *c32 = sdc_backend_count_new(cpu);
    sdc_unet *u16 = NULL, *u32 = NULL;
    LOAD(md, c16, sdc_unet_load, &md->unet, "unet.", &u16);
    LOAD(md, c32, sdc_unet_load, &md->unet, "unet.", &u32);
    if (u16 && u32) {
        test_check(sdc_unet_act_dtype(u16) == SDC_DTYPE_F16 && sdc_unet_act_dtype(u32) == SDC_DTYPE_F32,
                   "the UNet's act dtype is the like backend's: f16 / f32");
        test_check(2 * c16->stats.cur[SDC_MEM_WEIGHTS] == c32->stats.cur[SDC_MEM_WEIGHTS],
                   "f16 weights counted at half the f32 bytes: %zu vs %zu", c16->stats.cur[SDC_MEM_WEIGHTS],
                   c32->stats.cur[SDC_MEM_WEIGHTS]);
        peaks p16 = run_unet(u16, c16, 2, 8, 12, 77), p32 = run_unet(u32, c32, 2, 8, 12, 77);
        test_check(p16.st == SDC_OK && 2 * p16.act == p32.act,
                   "f16 activations counted at half the f32 bytes: %zu vs %zu", p16.act, p32.act);
    }
    sdc_unet_free(u16);
    sdc_unet_free(u32);
    /* a component that asks for f32 on the f16 backend is counted in f32 */
    sdc_unet *uf = NULL;
    sdc_status st =
        sdc_unet_load(&md->unet, &(sdc_weight_source){md->mf->index, "unet.", c16, test_logger(), 1, 0, NULL, 0}, &uf);
    test_check(st == SDC_OK && sdc_unet_act_dtype(uf) == SDC_DTYPE_F32 &&
                   c16->stats.cur[SDC_MEM_WEIGHTS] == c32->stats.peak[SDC_MEM_WEIGHTS],
               "f32 asked for on an f16 backend: f32 activations and weights (%zu bytes)",
               c16->stats.cur[SDC_MEM_WEIGHTS]);
    sdc_unet_free(uf);
    sdc_backend_free(c16);
    sdc_backend_free(c32);
}

/* --- the counting backend itself --- */

static void test_basics(sdc_backend *cpu) {
    printf("basics:\n");
    sdc_backend *cnt = sdc_backend_count_new(cpu);
    const int64_t ne[2] = {3, 5};
    sdc_tensor *a = sdc_tensor_new(cnt, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 2, ne);
    sdc_tensor *b = sdc_tensor_new(cnt, SDC_MEM_WORKSPACE, SDC_DTYPE_F32, 2, ne);
    test_check(a && b && a->data && b->data && a->data != b->data, "allocations give distinct non-NULL handles");
    test_check(cnt->stats.cur[SDC_MEM_ACTIVATIONS] == 60 && cnt->stats.cur[SDC_MEM_WORKSPACE] == 60,
               "allocations counted by kind (%zu, %zu bytes)", cnt->stats.cur[SDC_MEM_ACTIVATIONS],
               cnt->stats.cur[SDC_MEM_WORKSPACE]);
    float host[15];
    for (int i = 0; i < 15; i++) host[i] = (float)i + 1.0f;
    sdc_tensor_set_f32(a, host);
    sdc_tensor_get_f32(a, host);
    int zeros = 1;
    for (int i = 0; i < 15; i++) zeros &= host[i] == 0.0f;
    test_check(zeros, "download writes zeros");
    sdc_tensor_free(a);
    sdc_tensor_free(b);
    test_check(cnt->stats.cur_total == 0 && cnt->stats.peak_total == 120, "freed: 0 bytes left, peak 120 (%zu)",
               cnt->stats.peak_total);
    cnt->mem_limit = 100;
    sdc_logger saved = cnt->log;
    cnt->log = *test_capture_logger();
    a = sdc_tensor_new(cnt, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 2, (int64_t[]){5, 6});
    test_check(a == NULL, "mem_limit: a 120-byte tensor over a 100-byte limit fails (%s)", test_last_error());
    cnt->log = saved;
    test_check(sdc_backend_is_count(cnt) && !sdc_backend_is_count(cpu) && sdc_backend_count_like(cnt) == cpu,
               "sdc_backend_is_count / sdc_backend_count_like");
    sdc_backend_free(cnt);
}

/* The component checks on tiny-sd1's f32 or fp16 files (fp16: the CPU keeps matrix weights f16 and
 * widens them per tile, in workspace the counting backend must count too). */
static int test_variant(sdc_weight_variant variant, const char *name, sdc_backend *cpu) {
    printf("tiny-sd1, %s files:\n", name);
    model md = {0};
    const sdc_logger *log = test_logger();
    if (!test_check(sdc_model_files_open(test_ref_path("tiny-sd1"), variant, log, &md.mf) == SDC_OK &&
                        sdc_model_files_use_all(md.mf, log) == SDC_OK,
                    "open tiny-sd1 (%s)", name))
        return 0;
    sdc_status st = sdc_clip_config_parse(sdc_model_files_config(md.mf, "text_encoder"), log, &md.clip);
    if (st == SDC_OK) st = sdc_unet_config_parse(sdc_model_files_config(md.mf, "unet"), log, &md.unet);
    if (st == SDC_OK) st = sdc_vae_config_parse(sdc_model_files_config(md.mf, "vae"), log, &md.vae);
    sdc_backend *cnt = sdc_backend_count_new(cpu);
    if (test_check(st == SDC_OK && cnt, "configs parsed, counting backend made: %s", sdc_status_str(st))) {
        test_clip(&md, cpu, cnt);
        test_unet(&md, cpu, cnt);
        test_vae(&md, cpu, cnt);
        if (variant == SDC_VARIANT_F32) test_like_dtypes(&md, cpu);
        test_check(cpu->stats.cur_total == 0 && cnt->stats.cur_total == 0, "everything freed on both backends");
    }
    sdc_backend_free(cnt);
    sdc_model_files_free(md.mf);
    return 1;
}

int main(void) {
    sdc_backend *cpu = sdc_backend_cpu_new(2, test_logger());
    if (!test_check(cpu != NULL, "cpu backend made")) return test_finish();
    test_basics(cpu);
    if (test_variant(SDC_VARIANT_F32, "f32", cpu)) test_variant(SDC_VARIANT_FP16, "fp16", cpu);
    sdc_backend_free(cpu);
    return test_finish();
}
