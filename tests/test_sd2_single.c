/* test_sd2_single.c - SD 2.x single files (cond_stage_model.model.*: OpenCLIP with fused q/k/v),
 * on tests/data/tiny-sd2 (tools/make_tiny_sd2.py: a random SD 2.x-architecture model made with
 * diffusers, converted by diffusers' convert_diffusers_to_original_stable_diffusion.py v2 functions,
 * plus the 24th-layer resblock, text_projection and logit_scale a real SD 2.x file carries):
 *   - with --config, every tensor diffusers saved for the folder is indexed from the single file under
 *     its name, bit for bit; the extra resblock, text_projection and logit_scale are skipped;
 *   - the single file's pipeline = a folder of diffusers' tensors (max |d| 0), and matches diffusers'
 *     StableDiffusionPipeline (DDIM v_prediction, f32) within float rounding;
 *   - without a scheduler config the prediction type is detected as diffusers does (v_prediction for
 *     SD 2.x), and --prediction-type epsilon overrides it (diffusers' epsilon run);
 *   - without --config the tiny widths are refused, asking for one. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dtype.h"
#include "core/file.h"
#include "family/sd1_detect.h"
#include "io/model_files.h"
#include "io/st_writer.h"
#include "pipeline/family.h"
#include "sdc.h"
#include "test_util.h"

static char dir_fixture[1024], single[1100], check_path[1100];

static sdc_model_index *open_index(const char *path) {
    sdc_model_index *idx = sdc_index_new(test_logger());
    if (idx && sdc_index_add_file(idx, path, NULL, NULL, NULL) != SDC_OK) {
        sdc_index_free(idx);
        idx = NULL;
    }
    return idx;
}

static void *read_raw(sdc_model_index *idx, const sdc_tensor_info *t) {
    void *x = malloc(t->nbytes + 1);
    if (x && sdc_index_read_raw(idx, t, x) != SDC_OK) {
        free(x);
        x = NULL;
    }
    return x;
}

static float *read_f32(sdc_model_index *idx, const char *name, size_t *n) {
    const sdc_tensor_info *t = sdc_index_find(idx, name);
    float *x = t ? malloc(sizeof(float) * (size_t)sdc_tensor_info_nelem(t)) : NULL;
    if (x && sdc_index_read_f32(idx, t, x) != SDC_OK) {
        free(x);
        x = NULL;
    }
    if (n) *n = t ? (size_t)sdc_tensor_info_nelem(t) : 0;
    test_check(x != NULL, "read %s", name);
    return x;
}

/* ---- the index against diffusers' tensors ---- */

#define TOKEN_EMB "text_encoder.text_model.embeddings.token_embedding.weight"

static void test_index(sdc_model_index *idx, sdc_model_index *check) {
    size_t same = 0, n = 0;
    for (size_t i = 0; i < sdc_index_count(check); i++) {
        const sdc_tensor_info *d = sdc_index_at(check, i);
        if (strncmp(d->name, "diffusers.", 10)) continue;
        n++;
        const sdc_tensor_info *s = sdc_index_find(idx, d->name + 10);
        if (!s || sdc_tensor_info_nelem(s) != sdc_tensor_info_nelem(d) || s->dtype != d->dtype) {
            test_check(0, "%s: %s in the single file", d->name + 10, s ? "another size" : "missing");
            continue;
        }
        void *a = read_raw(check, d), *b = read_raw(idx, s);
        if (a && b && !memcmp(a, b, d->nbytes)) same++;
        free(a);
        free(b);
    }
    /* + the token embedding, which the check file leaves to the single file */
    test_check(n > 100 && same == n && sdc_index_count(idx) == n + 1 && sdc_index_find(idx, TOKEN_EMB),
               "%zu of %zu diffusers tensors bit-identical in the single file's index (%zu indexed = %zu + the token "
               "embedding)",
               same, n, sdc_index_count(idx), n);
    test_check(!sdc_index_find(idx, "text_encoder.text_model.encoder.layers.2.self_attn.q_proj.weight") &&
                   !sdc_index_find(idx, "text_encoder.text_projection.weight"),
               "the resblock SD 2.x does not run and text_projection are not indexed");
}

/* ---- a diffusers folder of the check file's tensors ---- */

static int link_to(const char *from_dir, const char *rel, const char *to_dir) {
    char *a = sdc_path_join(from_dir, rel), *b = sdc_path_join(to_dir, rel);
    const int ok = a && b && symlink(a, b) == 0;
    free(a);
    free(b);
    return ok;
}

static int write_part(sdc_model_index *check, sdc_model_index *idx, const char *part, const char *path) {
    sdc_st_writer *w = sdc_st_writer_new(test_logger());
    void **bufs = calloc(sdc_index_count(check) + 1, sizeof *bufs);
    char prefix[64];
    const int plen = snprintf(prefix, sizeof prefix, "diffusers.%s.", part);
    int ok = w && bufs;
    size_t nb = 0;
    for (size_t i = 0; ok && i < sdc_index_count(check); i++) {
        const sdc_tensor_info *t = sdc_index_at(check, i);
        if (strncmp(t->name, prefix, (size_t)plen)) continue;
        ok = (bufs[nb] = read_raw(check, t)) &&
            sdc_st_writer_add(w, t->name + plen, t->dtype, t->ndim, t->ne, bufs[nb]) == SDC_OK;
        nb++;
    }
    const sdc_tensor_info *emb = sdc_index_find(idx, TOKEN_EMB);
    if (ok && !strcmp(part, "text_encoder"))
        ok = emb && (bufs[nb] = read_raw(idx, emb)) &&
            sdc_st_writer_add(w, &TOKEN_EMB[strlen("text_encoder.")], emb->dtype, emb->ndim, emb->ne, bufs[nb++]) ==
                SDC_OK;
    ok = ok && sdc_st_writer_write(w, path) == SDC_OK;
    for (size_t i = 0; i < nb; i++) free(bufs[i]);
    free(bufs);
    sdc_st_writer_free(w);
    return ok;
}

static int make_folder(sdc_model_index *check, sdc_model_index *idx, const char *dir) {
    static const char *const parts[][2] = {{"text_encoder", "model.safetensors"},
                                           {"unet", "diffusion_pytorch_model.safetensors"},
                                           {"vae", "diffusion_pytorch_model.safetensors"}};
    char p[2048];
    int ok = link_to(dir_fixture, "model_index.json", dir) && link_to(dir_fixture, "scheduler", dir);
    for (int i = 0; ok && i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, parts[i][0]);
        ok = mkdir(p, 0755) == 0;
        snprintf(p, sizeof p, "%s/config.json", parts[i][0]);
        ok = ok && link_to(dir_fixture, p, dir);
        snprintf(p, sizeof p, "%s/%s/%s", dir, parts[i][0], parts[i][1]);
        ok = ok && write_part(check, idx, parts[i][0], p);
    }
    /* SD 2.x's tokenizer: OpenAI's CLIP files, padding with "!" */
    snprintf(p, sizeof p, "%s/tokenizer", dir);
    ok = ok && mkdir(p, 0755) == 0 && link_to(SDC_SOURCE_DIR "/data/clip-tokenizer", "vocab.json", p) &&
        link_to(SDC_SOURCE_DIR "/data/clip-tokenizer", "merges.txt", p);
    snprintf(p, sizeof p, "%s/tokenizer/tokenizer_config.json", dir);
    FILE *f = ok ? fopen(p, "w") : NULL;
    ok = f &&
        fputs("{\"bos_token\": \"<|startoftext|>\", \"eos_token\": \"<|endoftext|>\", \"unk_token\": "
              "\"<|endoftext|>\", \"pad_token\": \"!\", \"model_max_length\": 77}\n",
              f) >= 0;
    if (f) fclose(f);
    return ok;
}

/* ---- pipelines ---- */

static const char *meta_or(const char *v, const char *def) { return v ? v : def; }

typedef struct run {
    float *lat, *pix;
    size_t n_lat, n_pix;
} run;

static int run_once(const char *model, const char *config, const char *prediction, sdc_model_index *check, run *r) {
    sdc_ctx_params cp;
    sdc_ctx_params_init(&cp);
    cp.model_path = model;
    cp.config_dir = config;
    cp.prediction_type = prediction;
    cp.n_threads = 2;
    cp.log_fn = sdc_log_stderr;
    cp.log_level = SDC_LOG_WARN;
    sdc_ctx *ctx = sdc_ctx_new(&cp);
    sdc_gen_params p;
    sdc_gen_params_init(&p);
    p.prompt = "a red fox in the snow"; /* tools/make_tiny_sd2.py's run */
    p.negative_prompt = "blurry";
    p.steps = 3;
    p.cfg_scale = 5.0f;
    p.width = p.height = 32;
    p.sampler = SDC_SAMPLER_DDIM;
    float *in = read_f32(check, "golden.latents_in", &r->n_lat);
    r->n_pix = (size_t)(3 * p.width * p.height);
    r->lat = malloc(sizeof(float) * r->n_lat);
    r->pix = malloc(sizeof(float) * r->n_pix);
    p.latents_in = in;
    p.latents_out = r->lat;
    p.pixels_out = r->pix;
    sdc_image *img = NULL;
    int n = 0;
    sdc_status st = ctx && in ? sdc_generate(ctx, &p, &img, &n) : SDC_ERR_INVALID_ARG;
    sdc_image_free(img, n);
    sdc_ctx_free(ctx);
    free(in);
    return test_check(st == SDC_OK && n == 1, "generate on %s (config %s, prediction %s): %s", model,
                      meta_or(config, "none"), meta_or(prediction, "the model's"), sdc_status_str(st));
}

static void compare_golden(const run *r, sdc_model_index *check, const char *key, const char *what) {
    char name[64], w[200];
    snprintf(name, sizeof name, "golden.%s.latents_final", key);
    float *lat = read_f32(check, name, NULL);
    snprintf(name, sizeof name, "golden.%s.image", key);
    float *img = read_f32(check, name, NULL);
    if (lat && img) {
        snprintf(w, sizeof w, "%s vs diffusers (%s) latents", what, key);
        test_check_err(w, "rel err", test_rel_err(r->lat, lat, r->n_lat), 1e-4);
        snprintf(w, sizeof w, "%s vs diffusers (%s) pixels", what, key);
        test_check_err(w, "max |d|", test_max_abs(r->pix, img, r->n_pix), 1e-3);
    }
    free(lat);
    free(img);
}

static void run_free(run *r) {
    free(r->lat);
    free(r->pix);
}

static void test_pipelines(sdc_model_index *check, const char *folder, const char *no_sched) {
    run s = {0}, f = {0}, d = {0}, e = {0}, fe = {0};
    if (run_once(single, dir_fixture, NULL, check, &s) && run_once(folder, NULL, NULL, check, &f)) {
        test_check_err("single file vs diffusers-tensor folder latents", "max |d|", test_max_abs(s.lat, f.lat, s.n_lat),
                       0);
        test_check_err("single file vs diffusers-tensor folder pixels", "max |d|", test_max_abs(s.pix, f.pix, s.n_pix),
                       0);
        compare_golden(&s, check, "v", "single file (scheduler config: v_prediction)");
    }
    /* no scheduler config: the family's SD 2.x default (DDIM, v_prediction detected), then overridden */
    if (run_once(single, no_sched, NULL, check, &d))
        compare_golden(&d, check, "v", "single file, detected v_prediction");
    if (run_once(single, no_sched, "epsilon", check, &e))
        compare_golden(&e, check, "eps", "single file, --prediction-type epsilon");
    if (run_once(folder, NULL, "epsilon", check, &fe))
        compare_golden(&fe, check, "eps", "folder (config: v_prediction), --prediction-type epsilon");
    run_free(&s), run_free(&f), run_free(&d), run_free(&e), run_free(&fe);
}

/* ---- detection ---- */

static void test_detection(void) {
    sdc_model_files *mf = NULL;
    sdc_status st = sdc_model_files_open_ex(single, NULL, SDC_VARIANT_AUTO, test_logger(), &mf);
    if (!test_check(st == SDC_OK && sdc_family_sd1.probe(mf) && !sdc_family_sdxl.probe(mf),
                    "the sd1 family claims the SD 2.x file, sdxl does not"))
        return;
    sd1_sf_arch a;
    st = sd1_sf_measure(mf->single, test_logger(), &a);
    test_check(st == SDC_OK && a.layout == SD1_SF_LDM_OPENCLIP && a.te.hidden == 4 && a.te.file_layers == 3 &&
                   a.unet_linear_proj && !strcmp(a.prediction, "v_prediction") && a.te.projection_dim == 0,
               "measured: OpenCLIP %d wide, %d resblocks, linear proj_in %d, prediction %s", a.te.hidden,
               a.te.file_layers, a.unet_linear_proj, a.prediction ? a.prediction : "?");
    sd1_sf_configs cfg;
    st = sd1_sf_open(mf, 0, test_capture_logger(), &cfg);
    test_check(st == SDC_ERR_UNSUPPORTED && strstr(test_last_error(), "SD 2.x") &&
                   strstr(test_last_error(), "--config"),
               "tiny SD 2.x file without --config: %s \"%s\"", sdc_status_str(st), test_last_error());
    sd1_sf_configs_free(&cfg);
    sdc_model_files_free(mf);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

int main(void) {
    snprintf(dir_fixture, sizeof dir_fixture, "%s/tests/data/tiny-sd2", SDC_SOURCE_DIR);
    snprintf(single, sizeof single, "%s/tiny-sd2.safetensors", dir_fixture);
    snprintf(check_path, sizeof check_path, "%s/check.safetensors", dir_fixture);
    const char *tmp = test_make_tmp_dir("sd2_single");
    sdc_model_index *check = open_index(check_path);
    sdc_model_files *mf = NULL;
    sdc_status st =
        check ? sdc_model_files_open_ex(single, dir_fixture, SDC_VARIANT_AUTO, test_logger(), &mf) : SDC_ERR_NOT_FOUND;
    sd1_sf_configs cfg = {0};
    if (st == SDC_OK) st = sd1_sf_open(mf, 0, test_logger(), &cfg);
    if (test_check(st == SDC_OK, "open %s with --config: %s", single, sdc_status_str(st))) {
        test_index(mf->index, check);
        char folder[1100], no_sched[1100];
        snprintf(folder, sizeof folder, "%s/folder", tmp);
        snprintf(no_sched, sizeof no_sched, "%s/config-no-scheduler", tmp);
        int ok = mkdir(folder, 0755) == 0 && make_folder(check, mf->index, folder) && mkdir(no_sched, 0755) == 0 &&
            link_to(dir_fixture, "text_encoder", no_sched) && link_to(dir_fixture, "unet", no_sched) &&
            link_to(dir_fixture, "vae", no_sched);
        if (test_check(ok, "write a folder of diffusers' tensors and a config folder without scheduler/"))
            test_pipelines(check, folder, no_sched);
    }
    sd1_sf_configs_free(&cfg);
    sdc_model_files_free(mf);
    test_detection();
    sdc_index_free(check);
    nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return test_finish();
}
