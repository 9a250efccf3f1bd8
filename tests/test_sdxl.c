/* test_sdxl.c - SDXL against diffusers (tiny-sdxl, tiny-sdxl-golden): both text encoders' hidden
 * states and the second's pooled projection (text_embeds), the text_time UNet block by block (with
 * its add_embedding), and whole StableDiffusionXLPipeline runs (README.json: euler_4,
 * euler_no_negative with the zeroed empty negative, dpmpp2mk_microcond with non-default
 * micro-conditioning at 64x96); the same images under every load policy. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/backend.h"
#include "core/file.h"
#include "io/model_files.h"
#include "model/clip.h"
#include "model/unet.h"
#include "sdc.h"
#include "test_golden.h"
#include "test_model_golden.h"
#include "test_pipeline_util.h"
#include "test_util.h"

#define BOUND 1e-5 /* f32 components against float64 diffusers */

/* Text encoder `part` ("text_encoder" / "text_encoder_2", golden prefix te1 / te2): every hidden state,
 * text_embeds for the second, and SDXL's context input (hidden_states[-2], no final norm) exactly the
 * captured state. */
static void text_encoder(sdc_model_files *mf, sdc_backend *be, sdc_model_index *g, const char *part, const char *te) {
    const sdc_logger *log = test_logger();
    sdc_clip_config cfg;
    sdc_clip *m = NULL;
    char prefix[64], name[64], what[96];
    snprintf(prefix, sizeof prefix, "%s.", part);
    sdc_status st = sdc_clip_config_parse(sdc_model_files_config(mf, part), log, &cfg);
    if (st == SDC_OK) st = sdc_clip_load(&cfg, &(sdc_weight_source){mf->index, prefix, be, log, 0, 0, NULL, 0}, &m);
    if (!test_check(st == SDC_OK, "%s: parse and load: %s (projection_dim %d)", part, sdc_status_str(st),
                    cfg.projection_dim))
        return;
    snprintf(name, sizeof name, "%s.input_ids", te);
    int B = 0, T = 0;
    int32_t *ids = test_golden_ids(g, name, &B, &T);
    const size_t n = (size_t)B * T * cfg.hidden;
    test_hidden_capture cap;
    test_hidden_capture_init(&cap, cfg.n_layers + 1, n);
    float *embeds = cfg.projection_dim ? malloc(sizeof(float) * (size_t)(B * cfg.projection_dim)) : NULL;
    sdc_tensor *out = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 3, (int64_t[]){B, T, cfg.hidden});
    sdc_clip_request req = {0, 1, out, NULL, embeds};
    st = sdc_clip_encode(m, ids, B, T, &req, test_on_hidden, &cap);
    test_check(st == SDC_OK, "%s: encode: %s", part, sdc_status_str(st));
    for (int i = 0; i <= cfg.n_layers; i++) {
        snprintf(name, sizeof name, "%s.hidden_states.%d", te, i);
        snprintf(what, sizeof what, "%s %s", part, name);
        test_golden_compare_f32(g, name, cap.h[i], n, what, BOUND);
    }
    if (embeds) {
        snprintf(name, sizeof name, "%s.text_embeds", te);
        snprintf(what, sizeof what, "%s %s", part, name);
        test_golden_compare_f32(g, name, embeds, (size_t)(B * cfg.projection_dim), what, BOUND);
    }
    /* the state the SDXL pipeline takes: L - 1 layers, no final norm = the captured hidden state */
    float *pen = malloc(sizeof(float) * n);
    req = (sdc_clip_request){cfg.n_layers - 1, 0, out, NULL, NULL};
    st = sdc_clip_encode(m, ids, B, T, &req, NULL, NULL);
    sdc_tensor_get_f32(out, pen);
    test_check(st == SDC_OK && memcmp(pen, cap.h[cfg.n_layers - 1], sizeof(float) * n) == 0,
               "%s: hidden_states[-2] without the final norm is the captured state, bit for bit (%s)", part,
               sdc_status_str(st));
    req = (sdc_clip_request){0, 1, NULL, NULL, embeds};
    if (!embeds)
        test_check(sdc_clip_encode(m, ids, B, T, &req, NULL, NULL) == SDC_OK, "%s: nothing asked is fine", part);
    free(pen);
    free(embeds);
    free(ids);
    test_hidden_capture_free(&cap);
    sdc_tensor_free(out);
    sdc_clip_free(m);
}

/* The text_time UNet on the golden inputs: every top-level block (time_embedding, add_embedding, ...)
 * and the output; wrong added conditioning is SDC_ERR_INVALID_ARG. */
static void unet(sdc_model_files *mf, sdc_backend *be, sdc_model_index *g) {
    const sdc_logger *log = test_logger();
    sdc_unet_config cfg;
    sdc_unet *u = NULL;
    sdc_status st = sdc_unet_config_parse(sdc_model_files_config(mf, "unet"), log, &cfg);
    if (st == SDC_OK) st = sdc_unet_load(&cfg, &(sdc_weight_source){mf->index, "unet.", be, log, 0, 0, NULL, 0}, &u);
    if (!test_check(st == SDC_OK && cfg.text_time, "unet: parse and load: %s (text_time %d, add_in %d)",
                    sdc_status_str(st), cfg.text_time, cfg.add_in_dim))
        return;
    const sdc_tensor_info *ei, *ii, *oi;
    float *t = test_golden_f32(g, "unet.t", NULL);
    float *embeds = test_golden_f32(g, "unet.text_embeds", &ei);
    float *time_ids = test_golden_f32(g, "unet.time_ids", &ii);
    float *ref = test_golden_f32(g, "unet.out", &oi);
    sdc_tensor *x = test_golden_tensor(be, SDC_DTYPE_F32, g, "unet.x");
    sdc_tensor *ctx = test_golden_tensor(be, SDC_DTYPE_F32, g, "unet.context");
    sdc_tensor *out = x ? sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 4, x->ne) : NULL;
    if (t && embeds && time_ids && ref && out && ctx) {
        sdc_unet_cond cond = {ctx, embeds, (int)ei->ne[1], time_ids, (int)ii->ne[1]};
        test_block_check bc;
        test_block_check_init(&bc, g, "unet.block.", "unet", BOUND, BOUND, 0);
        st = sdc_unet_forward(u, x, t, &cond, out, test_on_block, &bc);
        test_check(st == SDC_OK && bc.n_seen == 5 + 2 * cfg.n_blocks, "unet forward: %s, %d block outputs (want %d)",
                   sdc_status_str(st), bc.n_seen, 5 + 2 * cfg.n_blocks);
        size_t n = (size_t)sdc_tensor_nelem(out);
        float *got = malloc(sizeof(float) * n);
        sdc_tensor_get_f32(out, got);
        test_check_err("unet out", "rel err", test_rel_err(got, ref, n), BOUND);
        free(got);
        cond.n_time_ids = 5; /* add_embedding would take 48 + 5 x 8: not its width */
        test_check(sdc_unet_forward(u, x, t, &cond, out, NULL, NULL) == SDC_ERR_INVALID_ARG,
                   "5 time ids for a UNet whose add_embedding takes 6: SDC_ERR_INVALID_ARG");
        cond = (sdc_unet_cond){ctx, NULL, 0, NULL, 0};
        test_check(sdc_unet_forward(u, x, t, &cond, out, NULL, NULL) == SDC_ERR_INVALID_ARG,
                   "no text_embeds / time_ids for a text_time UNet: SDC_ERR_INVALID_ARG");
    }
    free(t);
    free(embeds);
    free(time_ids);
    free(ref);
    sdc_tensor_free(x);
    sdc_tensor_free(ctx);
    sdc_tensor_free(out);
    sdc_unet_free(u);
}

static void components(void) {
    sdc_model_files *mf = NULL;
    sdc_status st = sdc_model_files_open(test_ref_path("tiny-sdxl"), SDC_VARIANT_F32, test_logger(), &mf);
    if (st == SDC_OK) st = sdc_model_files_use_all(mf, test_logger());
    if (!test_check(st == SDC_OK, "open tiny-sdxl: %s", sdc_status_str(st))) return;
    sdc_backend *be = sdc_backend_cpu_new(2, test_logger());
    sdc_model_index *g = test_golden_open("tiny-sdxl-golden/components.safetensors");
    text_encoder(mf, be, g, "text_encoder", "te1");
    text_encoder(mf, be, g, "text_encoder_2", "te2");
    unet(mf, be, g);
    test_check(be->stats.cur_total == 0, "allocator back to 0 (%zu bytes)", be->stats.cur_total);
    sdc_index_free(g);
    sdc_backend_free(be);
    sdc_model_files_free(mf);
}

/* Every README.json case under `all`, checked against diffusers; then each again under sequential and
 * phased: the same PNG bytes. */
static void pipelines(void) {
    cJSON *readme = test_pipe_readme("tiny-sdxl-golden");
    sdc_model_index *g = test_golden_open("tiny-sdxl-golden/pipeline.safetensors");
    static const sdc_load_policy policies[] = {SDC_LOAD_ALL, SDC_LOAD_SEQUENTIAL, SDC_LOAD_PHASED};
    uint64_t hash[16] = {0};
    for (size_t k = 0; k < sizeof policies / sizeof policies[0]; k++) {
        sdc_ctx_params cp;
        sdc_ctx_params_init(&cp);
        cp.model_path = test_ref_path("tiny-sdxl");
        cp.n_threads = 2;
        cp.log_fn = sdc_log_stderr;
        cp.log_level = SDC_LOG_WARN;
        cp.load_policy = policies[k];
        sdc_ctx *ctx = sdc_ctx_new(&cp);
        const char *pname = sdc_load_policy_name(policies[k]);
        if (!test_check(ctx != NULL, "open tiny-sdxl (%s)", pname)) continue;
        const cJSON *c;
        int i = 0;
        cJSON_ArrayForEach(c, test_pipe_cases(readme)) {
            test_pipe_run r;
            if (test_pipe_run_case(ctx, c, g, pname, &r) && i < 16) {
                char what[200];
                if (k == 0) {
                    snprintf(what, sizeof what, "%s latents_final", r.name);
                    test_check_err(what, "rel err", test_rel_err(r.latents, r.latents_ref, r.n_lat), 1e-4);
                    snprintf(what, sizeof what, "%s image", r.name);
                    test_check_err(what, "max |d|", test_max_abs(r.pixels, r.image_ref, r.n_pix), 1e-3);
                    hash[i] = r.png_hash;
                } else {
                    test_check(r.png_hash == hash[i] && hash[i], "%s under %s: PNG %016llx, under all %016llx", r.name,
                               pname, (unsigned long long)r.png_hash, (unsigned long long)hash[i]);
                }
            }
            test_pipe_run_free(&r);
            i++;
        }
        sdc_ctx_free(ctx);
    }
    cJSON_Delete(readme);
    sdc_index_free(g);
}

/* A copy of tiny-sdxl made of symlinks, with `part`/config.json replaced by the reference's with
 * `from` replaced by `to` in its text; opened and run: the error it must end in. */
static void bad_config(const char *part, const char *from, const char *to, sdc_status want, const char *pattern) {
    char root[512];
    snprintf(root, sizeof root, "%.500s", test_make_tmp_dir("sdxl_bad"));
    static const char *const entries[] = {"model_index.json", "scheduler",   "text_encoder", "text_encoder_2",
                                          "tokenizer",        "tokenizer_2", "unet",         "vae"};
    char src[1024], dst[1024], weights[4096] = "";
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
        snprintf(src, sizeof src, "%.960s/%s", test_ref_path("tiny-sdxl"), entries[i]);
        snprintf(dst, sizeof dst, "%s/%s", root, entries[i]);
        if (strcmp(entries[i], part) != 0) {
            test_check(symlink(src, dst) == 0, "symlink %s", dst);
            continue;
        }
        mkdir(dst, 0755);
        char *text = NULL, file[2048];
        size_t len = 0;
        snprintf(file, sizeof file, "%s/config.json", src);
        sdc_read_file(file, NULL, &text, &len);
        char *at = text ? strstr(text, from) : NULL;
        test_check(at != NULL, "%s/config.json has '%s'", part, from);
        snprintf(file, sizeof file, "%s/config.json", dst);
        FILE *f = fopen(file, "wb");
        if (f && at) fprintf(f, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
        if (f) fclose(f);
        free(text);
        snprintf(file, sizeof file, "%s/diffusion_pytorch_model.safetensors", src);
        if (strncmp(part, "text_encoder", 12) == 0) snprintf(file, sizeof file, "%s/model.safetensors", src);
        char link[4096];
        snprintf(link, sizeof link, "%s/%s", dst, strrchr(file, '/') + 1);
        test_check(symlink(file, link) == 0, "symlink %s", link);
        snprintf(weights, sizeof weights, "%s", link);
    }
    sdc_model_params mp;
    sdc_model_params_init(&mp);
    sdc_component_path paths[] = {{"model", root}};
    mp.paths = paths;
    mp.n_paths = 1;
    mp.log_fn = test_capture_logger()->fn;
    sdc_model *m = sdc_model_open(&mp);
    sdc_status st = SDC_OK; /* SDC_OK with m NULL: refused at open (sdc_model_open has no status) */
    if (m) {
        sdc_gen_params p;
        sdc_gen_params_init(&p);
        p.width = p.height = 64;
        p.steps = 1;
        sdc_job *j = sdc_job_new(m, &p);
        st = j ? sdc_job_run(j) : SDC_ERR_INVALID_ARG;
        sdc_job_free(j);
        sdc_model_free(m);
    }
    test_check((m ? st == want : want == SDC_OK) && strstr(test_last_error(), pattern),
               "%s with '%s': %s %s \"%s\" (want %s, '%s')", part, to, m ? "run:" : "open: NULL",
               m ? sdc_status_str(st) : "", test_last_error(), want == SDC_OK ? "open refused" : sdc_status_str(want),
               pattern);
    /* the copy: symlinks, and the part's folder with its config and weights link */
    unlink(weights);
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
        snprintf(dst, sizeof dst, "%s/%s", root, entries[i]);
        if (strcmp(entries[i], part) == 0) {
            char cfg[1100];
            snprintf(cfg, sizeof cfg, "%s/config.json", dst);
            unlink(cfg);
            rmdir(dst);
        } else {
            unlink(dst);
        }
    }
    rmdir(root);
}

int main(void) {
    components();
    pipelines();
    /* configs that contradict the weights or each other: refused at open (SDC_OK here), or at load */
    bad_config("text_encoder_2", "\"hidden_size\": 64", "\"hidden_size\": 48", SDC_OK, "do not fit the UNet");
    bad_config("text_encoder_2", "\"intermediate_size\": 96", "\"intermediate_size\": 80", SDC_ERR_FORMAT, "fc1");
    bad_config("text_encoder_2", "CLIPTextModelWithProjection", "CLIPTextModel", SDC_OK, "text_projection");
    bad_config("unet", "\"projection_class_embeddings_input_dim\": 96", "\"projection_class_embeddings_input_dim\": 90",
               SDC_OK, "add_embedding");
    return test_finish();
}
