/* test_sf_detect.c - single-file detection on full-size name and shape sets (no data): SDXL base 1.0
 * and SD 2.1 (768, v) as their checkpoints name them, with the tensors detection reads. The template
 * fills what shapes cannot tell; the configs it builds must parse to the released models' numbers
 * (heads of 64 channels, per-level transformer depth, text_time widths, the scheduler). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "family/sd1_detect.h"
#include "model/clip.h"
#include "model/unet.h"
#include "model/vae.h"
#include "test_util.h"

typedef struct tlist {
    sdc_tensor_info t[2048];
    size_t n;
} tlist;

__attribute__((format(printf, 4, 5))) static void add(tlist *l, int ndim, const int64_t *ne, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    sdc_tensor_info *t = &l->t[l->n++];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->dtype = SDC_DTYPE_F16;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->ne[i] = ne[i];
}
#define A(...) \
    (const int64_t[]) { __VA_ARGS__ }

/* The UNet tensors detection reads: n levels of channels ch, attention where depth[i] > 0, L = 2, a mid
 * block of depth mid. */
static void add_unet(tlist *l, int n, const int *ch, const int *depth, int mid, int ctx, int add_in) {
    const char *U = "model.diffusion_model.";
    add(l, 4, A(ch[0], 4, 3, 3), "%sinput_blocks.0.0.weight", U);
    add(l, 4, A(4, ch[0], 3, 3), "%sout.2.weight", U);
    add(l, 4, A(ch[n - 1], ch[n - 1], 3, 3), "%smiddle_block.0.in_layers.2.weight", U);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < 2; j++) {
            const int b = 3 * i + 1 + j;
            add(l, 4, A(ch[i], ch[i], 3, 3), "%sinput_blocks.%d.0.out_layers.3.weight", U, b);
            if (!depth[i]) continue;
            add(l, 2, A(ch[i], ch[i]), "%sinput_blocks.%d.1.proj_in.weight", U, b);
            for (int k = 0; k < depth[i]; k++)
                add(l, 2, A(ch[i], ch[i]), "%sinput_blocks.%d.1.transformer_blocks.%d.attn1.to_q.weight", U, b, k);
        }
        if (i < n - 1) add(l, 4, A(ch[i], ch[i], 3, 3), "%sinput_blocks.%d.0.op.weight", U, 3 * i + 3);
    }
    for (int b = 0; b < 3 * n; b++) add(l, 1, A(ch[0]), "%soutput_blocks.%d.0.in_layers.0.weight", U, b);
    add(l, 2, A(ch[n - 1], ch[n - 1]), "%smiddle_block.1.proj_in.weight", U);
    add(l, 2, A(ch[n - 1], ctx), "%smiddle_block.1.transformer_blocks.0.attn2.to_k.weight", U);
    for (int k = 0; k < mid; k++)
        add(l, 2, A(ch[n - 1], ch[n - 1]), "%smiddle_block.1.transformer_blocks.%d.attn1.to_q.weight", U, k);
    if (add_in) add(l, 2, A(4 * ch[0], add_in), "%slabel_emb.0.0.weight", U);
}

/* SD's VAE: 4 blocks (128, 256, 512, 512), 2 resnets each. */
static void add_vae(tlist *l) {
    const char *V = "first_stage_model.";
    static const int ch[4] = {128, 256, 512, 512};
    add(l, 4, A(128, 3, 3, 3), "%sencoder.conv_in.weight", V);
    add(l, 4, A(3, 128, 3, 3), "%sdecoder.conv_out.weight", V);
    add(l, 4, A(512, 4, 3, 3), "%sdecoder.conv_in.weight", V);
    add(l, 4, A(512, 512, 1, 1), "%sencoder.mid.attn_1.q.weight", V);
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 2; j++)
            add(l, 4, A(ch[i], ch[i], 3, 3), "%sencoder.down.%d.block.%d.conv1.weight", V, i, j);
        add(l, 4, A(ch[i], ch[i], 3, 3), "%sencoder.down.%d.block.0.conv2.weight", V, i);
        for (int j = 0; j < 3; j++) add(l, 4, A(ch[i], ch[i], 3, 3), "%sdecoder.up.%d.block.%d.conv1.weight", V, i, j);
    }
    add(l, 4, A(8, 8, 1, 1), "%squant_conv.weight", V);
    add(l, 4, A(4, 4, 1, 1), "%spost_quant_conv.weight", V);
}

static void add_openclip(tlist *l, const char *p, int C, int layers, int proj) {
    add(l, 2, A(49408, C), "%stoken_embedding.weight", p);
    add(l, 2, A(77, C), "%spositional_embedding", p);
    add(l, 1, A(C), "%sln_final.weight", p);
    for (int i = 0; i < layers; i++) add(l, 2, A(3 * C, C), "%stransformer.resblocks.%d.attn.in_proj_weight", p, i);
    add(l, 2, A(4 * C, C), "%stransformer.resblocks.0.mlp.c_fc.weight", p);
    if (proj) add(l, 2, A(C, proj), "%stext_projection", p);
}

static void add_clip_l(tlist *l, const char *p) {
    add(l, 2, A(49408, 768), "%sembeddings.token_embedding.weight", p);
    add(l, 2, A(77, 768), "%sembeddings.position_embedding.weight", p);
    add(l, 2, A(3072, 768), "%sencoder.layers.0.mlp.fc1.weight", p);
    add(l, 1, A(768), "%sfinal_layer_norm.weight", p);
    for (int i = 0; i < 12; i++) add(l, 2, A(768, 768), "%sencoder.layers.%d.self_attn.q_proj.weight", p, i);
}

static sdc_status detect(tlist *l, sd1_sf_arch *a) {
    sdc_sf_facts *f = NULL;
    sdc_status st = sdc_sf_facts_new(l->t, l->n, &f);
    if (st == SDC_OK) st = sd1_sf_detect(f, test_capture_logger(), a);
    sdc_sf_facts_free(f);
    for (size_t i = 0; i < l->n; i++) free((char *)l->t[i].name);
    l->n = 0;
    return st;
}

static const char *sched_str(const cJSON *s, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, k);
    return cJSON_IsString(v) ? v->valuestring : "?";
}

static void test_sdxl(tlist *l) {
    static const int ch[3] = {320, 640, 1280}, depth[3] = {0, 2, 10};
    add_clip_l(l, "conditioner.embedders.0.transformer.text_model.");
    add_openclip(l, "conditioner.embedders.1.model.", 1280, 32, 1280);
    add_unet(l, 3, ch, depth, 10, 2048, 2816);
    add_vae(l);
    sd1_sf_arch a;
    sdc_status st = detect(l, &a);
    if (!test_check(st == SDC_OK && !strcmp(a.family, "SDXL"), "detect SDXL base: %s \"%s\"", sdc_status_str(st),
                    st ? test_last_error() : ""))
        return;
    cJSON *j1 = sd1_sf_clip_config(&a.te), *j2 = sd1_sf_clip_config(&a.te2), *ju = sd1_sf_unet_config(&a),
          *jv = sd1_sf_vae_config(&a), *js = sd1_sf_scheduler_config(&a);
    sdc_clip_config c1, c2;
    sdc_unet_config u;
    sdc_vae_config v;
    int ok = sdc_clip_config_parse(j1, test_logger(), &c1) == SDC_OK &&
        sdc_clip_config_parse(j2, test_logger(), &c2) == SDC_OK &&
        sdc_unet_config_parse(ju, test_logger(), &u) == SDC_OK && sdc_vae_config_parse(jv, test_logger(), &v) == SDC_OK;
    if (test_check(ok, "the SDXL configs parse")) {
        test_check(c1.hidden == 768 && c1.n_heads == 12 && c1.n_layers == 12 && c1.projection_dim == 0 &&
                       c2.hidden == 1280 && c2.n_heads == 20 && c2.n_layers == 32 && c2.intermediate == 5120 &&
                       c2.projection_dim == 1280,
                   "text encoders: %d wide x %d heads x %d layers; %d x %d x %d, projection %d (SDXL: 768 x 12 x 12; "
                   "1280 x 20 x 32, 1280)",
                   c1.hidden, c1.n_heads, c1.n_layers, c2.hidden, c2.n_heads, c2.n_layers, c2.projection_dim);
        test_check(u.n_blocks == 3 && u.heads[0] == 5 && u.heads[1] == 10 && u.heads[2] == 20 &&
                       u.transformer_layers[1] == 2 && u.transformer_layers[2] == 10 && !u.down_attn[0] &&
                       u.down_attn[1] && u.use_linear_projection && u.cross_attention_dim == 2048 && u.text_time &&
                       u.addition_time_embed_dim == 256 && u.add_in_dim == 2816,
                   "UNet: heads %d/%d/%d, depth %d/%d, context %d, text_time %d x 6 + 1280 = %d (SDXL: 5/10/20, 2/10, "
                   "2048, 256, 2816)",
                   u.heads[0], u.heads[1], u.heads[2], u.transformer_layers[1], u.transformer_layers[2],
                   u.cross_attention_dim, u.addition_time_embed_dim, u.add_in_dim);
        test_check(v.scaling_factor == 0.13025f && v.force_upcast && v.n_blocks == 4,
                   "VAE: scaling %g, force_upcast %d", (double)v.scaling_factor, v.force_upcast);
        test_check(!strcmp(sched_str(js, "_class_name"), "EulerDiscreteScheduler") &&
                       !strcmp(sched_str(js, "prediction_type"), "epsilon"),
                   "scheduler: %s, %s", sched_str(js, "_class_name"), sched_str(js, "prediction_type"));
    }
    cJSON_Delete(j1), cJSON_Delete(j2), cJSON_Delete(ju), cJSON_Delete(jv), cJSON_Delete(js);
}

static void test_sd21(tlist *l) {
    static const int ch[4] = {320, 640, 1280, 1280}, depth[4] = {1, 1, 1, 0};
    add_openclip(l, "cond_stage_model.model.", 1024, 24, 1024);
    add_unet(l, 4, ch, depth, 1, 1024, 0);
    add_vae(l);
    sd1_sf_arch a;
    sdc_status st = detect(l, &a);
    if (!test_check(st == SDC_OK && !strcmp(a.family, "SD 2.x"), "detect SD 2.1: %s \"%s\"", sdc_status_str(st),
                    st ? test_last_error() : ""))
        return;
    cJSON *jt = sd1_sf_text_encoder_config(&a), *ju = sd1_sf_unet_config(&a), *js = sd1_sf_scheduler_config(&a);
    sdc_clip_config c;
    sdc_unet_config u;
    int ok = sdc_clip_config_parse(jt, test_logger(), &c) == SDC_OK &&
        sdc_unet_config_parse(ju, test_logger(), &u) == SDC_OK;
    if (test_check(ok, "the SD 2.1 configs parse")) {
        test_check(c.hidden == 1024 && c.n_heads == 16 && c.n_layers == 23 && c.projection_dim == 0 &&
                       c.act == SDC_UNARY_GELU,
                   "text encoder: %d wide x %d heads x %d layers of the file's 24, gelu %d (SD 2.1: 1024 x 16 x 23)",
                   c.hidden, c.n_heads, c.n_layers, c.act == SDC_UNARY_GELU);
        test_check(u.n_blocks == 4 && u.heads[0] == 5 && u.heads[1] == 10 && u.heads[2] == 20 && u.heads[3] == 20 &&
                       u.use_linear_projection && u.cross_attention_dim == 1024 && !u.text_time,
                   "UNet: heads %d/%d/%d/%d, linear proj %d, context %d (SD 2.1: 5/10/20/20, 1, 1024)", u.heads[0],
                   u.heads[1], u.heads[2], u.heads[3], u.use_linear_projection, u.cross_attention_dim);
        test_check(!strcmp(sched_str(js, "_class_name"), "DDIMScheduler") &&
                       !strcmp(sched_str(js, "prediction_type"), "v_prediction"),
                   "scheduler: %s, %s (diffusers' single-file rule: SD 2.x without global_step is v_prediction)",
                   sched_str(js, "_class_name"), sched_str(js, "prediction_type"));
    }
    cJSON_Delete(jt), cJSON_Delete(ju), cJSON_Delete(js);
}

int main(void) {
    tlist *l = calloc(1, sizeof *l);
    test_sdxl(l);
    test_sd21(l);
    free(l);
    return test_finish();
}
