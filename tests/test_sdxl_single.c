/* test_sdxl_single.c - SDXL original (SGM) single-file checkpoints:
 *   - index views: the OpenCLIP encoder's fused in_proj split into q/k/v row blocks and its
 *     text_projection read transposed, whole and in element ranges;
 *   - tiny-sdxl.safetensors (fp16) with --config tiny-sdxl indexes every tensor of the f32 folder
 *     under the folder's name and shape, each equal to the folder's tensor rounded to fp16;
 *   - its pipelines (tiny-sdxl-golden's README.json cases, run by test_pipeline_util.c) give the same
 *     latents and pixels as the folder's weights rounded to fp16 (a copy written here), and stay within
 *     the fp16-rounding bound of diffusers' f32 golden runs;
 *   - detection without --config asks for one; a file missing an encoder, and a config that
 *     contradicts the weights' shapes, are refused naming the problem. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dtype.h"
#include "core/file.h"
#include "family/sd1_detect.h"
#include "io/model_files.h"
#include "io/openclip_names.h"
#include "io/st_writer.h"
#include "pipeline/family.h"
#include "sdc.h"
#include "test_golden.h"
#include "test_pipeline_util.h"
#include "test_util.h"

#define SINGLE "tiny-sdxl.safetensors"
#define FOLDER "tiny-sdxl"

/* The single file opened as the pipeline does: facts, the sdxl family's probe, its single-file open. */
static sdc_status open_single(const char *path, const char *config_dir, const sdc_logger *log, sdc_model_files **mf,
                              sd1_sf_configs *cfg) {
    memset(cfg, 0, sizeof *cfg);
    sdc_status st = sdc_model_files_open_ex(path, config_dir, SDC_VARIANT_AUTO, log, mf);
    if (st == SDC_OK && !sdc_family_sdxl.probe(*mf)) {
        test_check(0, "the sdxl family claims %s", path);
        st = SDC_ERR_UNSUPPORTED;
    }
    if (st == SDC_OK && sdc_family_sd1.probe(*mf)) {
        test_check(0, "the sd1 family leaves %s to sdxl", path);
        st = SDC_ERR_UNSUPPORTED;
    }
    if (st == SDC_OK) st = sd1_sf_open(*mf, 1, log, cfg);
    if (st != SDC_OK) {
        sd1_sf_configs_free(cfg);
        sdc_model_files_free(*mf);
        *mf = NULL;
    }
    return st;
}

static float *read_f32(sdc_model_index *idx, const sdc_tensor_info *t) {
    float *x = malloc(sizeof(float) * (size_t)sdc_tensor_info_nelem(t) + 1);
    if (x && sdc_index_read_f32(idx, t, x) != SDC_OK) {
        free(x);
        x = NULL;
    }
    return x;
}

/* ---- views: the OpenCLIP tensors straight from the file against the split / transposed ones ---- */

static void test_views(sdc_model_index *idx) {
    sdc_model_index *raw = sdc_index_new(test_logger());
    if (!test_check(raw && sdc_index_add_file(raw, test_ref_path(SINGLE), NULL, NULL, NULL) == SDC_OK, "index %s raw",
                    SINGLE))
        return;
    const sdc_tensor_info *w =
        sdc_index_find(raw, "conditioner.embedders.1.model.transformer.resblocks.1.attn.in_proj_weight");
    const sdc_tensor_info *b =
        sdc_index_find(raw, "conditioner.embedders.1.model.transformer.resblocks.1.attn.in_proj_bias");
    const sdc_tensor_info *p = sdc_index_find(raw, "conditioner.embedders.1.model.text_projection");
    if (test_check(w && b && p && w->ndim == 2 && p->ndim == 2, "the file's fused in_proj and text_projection")) {
        const int64_t C = w->ne[1], P = p->ne[1];   // in_proj [3C, C], text_projection [C, P]
        float *fw = read_f32(raw, w), *fb = read_f32(raw, b), *fp = read_f32(raw, p);
        static const char *const qkv[] = {"q", "k", "v"};
        double max_d = 0;
        int found = 0;
        for (int k = 0; k < 3; k++) {
            char n[160];
            snprintf(n, sizeof n, "text_encoder_2.text_model.encoder.layers.1.self_attn.%s_proj.weight", qkv[k]);
            const sdc_tensor_info *vw = sdc_index_find(idx, n);
            snprintf(n, sizeof n, "text_encoder_2.text_model.encoder.layers.1.self_attn.%s_proj.bias", qkv[k]);
            const sdc_tensor_info *vb = sdc_index_find(idx, n);
            if (!vw || !vb || vw->ne[0] != C || vw->ne[1] != C || vb->ne[0] != C) continue;
            found++;
            float *xw = read_f32(idx, vw), *xb = read_f32(idx, vb);
            for (int64_t i = 0; xw && xb && i < C * C; i++) max_d = fmax(max_d, fabs(xw[i] - fw[k * C * C + i]));
            for (int64_t i = 0; xw && xb && i < C; i++) max_d = fmax(max_d, fabs(xb[i] - fb[k * C + i]));
            free(xw);
            free(xb);
        }
        test_check(found == 3 && max_d == 0,
                   "q/k/v [%lld, %lld] = rows [kC, (k+1)C) of in_proj [%lld, %lld]: %d of 3, "
                   "max |d| %g (bound 0)",
                   (long long)C, (long long)C, (long long)(3 * C), (long long)C, found, max_d);
        test_check(!sdc_index_find(idx, "text_encoder_2.text_model.encoder.layers.1.self_attn.in_proj.weight"),
                   "the fused stand-in is no longer found");
        const sdc_tensor_info *tp = sdc_index_find(idx, "text_encoder_2.text_projection.weight");
        if (test_check(tp && tp->transposed && tp->ne[0] == P && tp->ne[1] == C, "text_projection.weight [%lld, %lld]",
                       (long long)P, (long long)C)) {
            /* whole, and in two element ranges split off the row grid (as the staged loader reads) */
            float *whole = read_f32(idx, tp);
            uint16_t *parts = malloc(2 * (size_t)(P * C));
            const uint64_t cut = (uint64_t)(P * C / 2 + 3) * 2;
            int ok = whole && parts && sdc_index_read_range(idx, tp, 0, cut, parts) == SDC_OK &&
                sdc_index_read_range(idx, tp, cut, tp->nbytes - cut, (char *)parts + cut) == SDC_OK;
            float *ranged = malloc(sizeof(float) * (size_t)(P * C));
            ok = ok && ranged && sdc_convert_to_f32(ranged, parts, SDC_DTYPE_F16, (size_t)(P * C)) == 0;
            double d_whole = 0, d_ranged = 0;
            for (int64_t i = 0; ok && i < P; i++)
                for (int64_t j = 0; j < C; j++) {
                    d_whole = fmax(d_whole, fabs(whole[i * C + j] - fp[j * P + i]));
                    d_ranged = fmax(d_ranged, fabs(ranged[i * C + j] - fp[j * P + i]));
                }
            test_check(ok && d_whole == 0 && d_ranged == 0,
                       "transposed read [P, C] = file [C, P]^T: whole max |d| %g, two ranges max |d| %g (bound 0)",
                       d_whole, d_ranged);
            free(whole);
            free(parts);
            free(ranged);
        }
        free(fw);
        free(fb);
        free(fp);
    }
    sdc_index_free(raw);
    /* misuse is an error, not a crash */
    sdc_model_index *idx2 = sdc_index_new(test_capture_logger());
    sdc_index_add_file(idx2, test_ref_path(SINGLE), NULL, NULL, NULL);
    const char *names[3] = {"a", "b", "c"};
    sdc_status s1 = sdc_index_split_rows(idx2, "conditioner.embedders.1.model.ln_final.weight", 5, names);
    sdc_status s2 = sdc_index_transpose(idx2, "conditioner.embedders.1.model.ln_final.weight");
    sdc_status s3 = sdc_index_transpose(idx2, "no.such.tensor");
    test_check(s1 == SDC_ERR_FORMAT && s2 == SDC_ERR_FORMAT && s3 == SDC_ERR_NOT_FOUND,
               "split 64 rows in 5: %s; transpose a 1-D tensor: %s; a missing one: %s", sdc_status_str(s1),
               sdc_status_str(s2), sdc_status_str(s3));
    sdc_index_free(idx2);
}

/* ---- every tensor of the folder, from the single file ---- */

static float f16_round(float x) {
    uint16_t h;
    float y;
    sdc_convert_from_f32(&h, SDC_DTYPE_F16, &x, 1);
    sdc_convert_to_f32(&y, &h, SDC_DTYPE_F16, 1);
    return y;
}

static void test_index_vs_folder(sdc_model_index *single, sdc_model_files *folder) {
    size_t same = 0, n = sdc_index_count(folder->index), bad = 0;
    double max_d = 0;
    for (size_t i = 0; i < n; i++) {
        const sdc_tensor_info *a = sdc_index_at(folder->index, i), *b = sdc_index_find(single, a->name);
        int shape = b && a->ndim == b->ndim;
        for (int k = 0; shape && k < a->ndim; k++) shape = a->ne[k] == b->ne[k];
        /* the VAE's mid attention: [C, C] in the folder, [C, C, 1, 1] in the file */
        if (b && !shape && sdc_tensor_info_nelem(a) == sdc_tensor_info_nelem(b) && b->ndim == 4 && b->ne[2] == 1)
            shape = 1;
        if (!shape) {
            if (bad++ < 5) test_check(0, "%s: %s in the single file", a->name, b ? "another shape" : "missing");
            continue;
        }
        float *x = read_f32(folder->index, a), *y = read_f32(single, b);
        double d = 0;
        for (int64_t k = 0; x && y && k < sdc_tensor_info_nelem(a); k++) d = fmax(d, fabs(f16_round(x[k]) - y[k]));
        if (x && y && d == 0) same++;
        max_d = fmax(max_d, d);
        free(x);
        free(y);
    }
    test_check(
        n > 1000 && same == n && sdc_index_count(single) == n,
        "%zu of %zu folder tensors = the single file's (%zu indexed) after rounding to fp16: max |d| %g (bound 0)",
        same, n, sdc_index_count(single), max_d);
}

/* ---- the folder's weights rounded to fp16, as a diffusers folder ---- */

static sdc_status write_f16(sdc_model_index *idx, const char *part, const char *path) {
    sdc_st_writer *w = sdc_st_writer_new(test_logger());
    size_t plen = strlen(part), n = 0;
    void **bufs = calloc(sdc_index_count(idx), sizeof *bufs);
    sdc_status st = w && bufs ? SDC_OK : SDC_ERR_OOM;
    for (size_t i = 0; st == SDC_OK && i < sdc_index_count(idx); i++) {
        const sdc_tensor_info *t = sdc_index_at(idx, i);
        if (strncmp(t->name, part, plen) || t->name[plen] != '.') continue;
        float *x = read_f32(idx, t);
        const size_t ne = (size_t)sdc_tensor_info_nelem(t);
        bufs[n] = malloc(2 * ne + 2);
        st = x && bufs[n] ? SDC_OK : SDC_ERR_OOM;
        if (st == SDC_OK) sdc_convert_from_f32(bufs[n], SDC_DTYPE_F16, x, ne);
        if (st == SDC_OK) st = sdc_st_writer_add(w, t->name + plen + 1, SDC_DTYPE_F16, t->ndim, t->ne, bufs[n]);
        n++;
        free(x);
    }
    if (st == SDC_OK) st = sdc_st_writer_write(w, path);
    for (size_t i = 0; bufs && i < n; i++) free(bufs[i]);
    free(bufs);
    sdc_st_writer_free(w);
    return st;
}

/* dir/: links to the folder's JSON and tokenizers, and every component's weights rounded to fp16. */
static int make_fp16_folder(sdc_model_files *folder, const char *dir) {
    static const char *const links[] = {"model_index.json", "scheduler", "tokenizer", "tokenizer_2"};
    char a[4096], b[4096];
    int ok = 1;
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        snprintf(a, sizeof a, "%s/%s", test_ref_path(FOLDER), links[i]);
        snprintf(b, sizeof b, "%s/%s", dir, links[i]);
        ok = ok && symlink(a, b) == 0;
    }
    for (int i = 0; ok && i < folder->n_parts; i++) {
        const sdc_model_part *p = &folder->parts[i];
        const char *file = strrchr(p->weights_path, '/');
        snprintf(b, sizeof b, "%s/%s", dir, p->name);
        ok = mkdir(b, 0755) == 0;
        snprintf(a, sizeof a, "%s/%s/config.json", test_ref_path(FOLDER), p->name);
        snprintf(b, sizeof b, "%s/%s/config.json", dir, p->name);
        ok = ok && symlink(a, b) == 0;
        snprintf(b, sizeof b, "%s/%s%s", dir, p->name, file);
        ok = ok && write_f16(folder->index, p->name, b) == SDC_OK;
    }
    return ok;
}

/* ---- pipelines (test_pipeline_util.c runs the README.json cases) ---- */

static void test_pipelines(const char *fp16_dir) {
    cJSON *readme = test_pipe_readme("tiny-sdxl-golden");
    sdc_model_index *g = test_golden_open("tiny-sdxl-golden/pipeline.safetensors");
    sdc_ctx *sf = test_pipe_open(test_ref_path(SINGLE), test_ref_path(FOLDER), NULL, 0, 2);
    sdc_ctx *fp16 = test_pipe_open(fp16_dir, NULL, NULL, 0, 2);
    const cJSON *c;
    int n = 0;
    if (test_check(sf && fp16, "open the single file (--config %s) and the fp16-rounded folder", FOLDER)) {
        cJSON_ArrayForEach(c, test_pipe_cases(readme)) {
            test_pipe_run s = {0}, f = {0};
            if (test_pipe_run_case(sf, c, g, "single file", &s) && test_pipe_run_case(fp16, c, g, "fp16 folder", &f)) {
                char what[160];
                snprintf(what, sizeof what, "%s: single file vs fp16-rounded folder latents", s.name);
                test_check_err(what, "max |d|", test_max_abs(s.latents, f.latents, s.n_lat), 0);
                snprintf(what, sizeof what, "%s: single file vs fp16-rounded folder pixels", s.name);
                test_check_err(what, "max |d|", test_max_abs(s.pixels, f.pixels, s.n_pix), 0);
                /* diffusers with the f32 weights: the weights' fp16 rounding bounds the difference */
                if (test_check(s.latents_ref && s.image_ref, "%s: golden latents and image", s.name)) {
                    snprintf(what, sizeof what, "%s: single file (fp16 weights) vs diffusers f32 latents", s.name);
                    test_check_err(what, "rel err", test_rel_err(s.latents, s.latents_ref, s.n_lat), 5e-3);
                    snprintf(what, sizeof what, "%s: single file (fp16 weights) vs diffusers f32 pixels", s.name);
                    test_check_err(what, "max |d|", test_max_abs(s.pixels, s.image_ref, s.n_pix), 2.0 / 255);
                }
                n++;
            }
            test_pipe_run_free(&s);
            test_pipe_run_free(&f);
        }
    }
    test_check(n == 3, "%d of 3 pipeline cases ran", n);
    sdc_ctx_free(sf);
    sdc_ctx_free(fp16);
    sdc_index_free(g);
    cJSON_Delete(readme);
}

/* ---- refusals ---- */

/* A copy of the single file without the tensors under `drop`, at path. */
static int write_without(const char *path, const char *drop) {
    sdc_model_index *raw = sdc_index_new(test_logger());
    sdc_st_writer *w = sdc_st_writer_new(test_logger());
    int ok = raw && w && sdc_index_add_file(raw, test_ref_path(SINGLE), NULL, NULL, NULL) == SDC_OK;
    const size_t n = ok ? sdc_index_count(raw) : 0;
    void **bufs = calloc(n + 1, sizeof *bufs);
    for (size_t i = 0; ok && i < n; i++) {
        const sdc_tensor_info *t = sdc_index_at(raw, i);
        if (!strncmp(t->name, drop, strlen(drop))) continue;
        ok = (bufs[i] = malloc(t->nbytes + 1)) && sdc_index_read_raw(raw, t, bufs[i]) == SDC_OK &&
            sdc_st_writer_add(w, t->name, t->dtype, t->ndim, t->ne, bufs[i]) == SDC_OK;
    }
    ok = ok && sdc_st_writer_write(w, path) == SDC_OK;
    for (size_t i = 0; i < n; i++) free(bufs[i]);
    free(bufs);
    sdc_st_writer_free(w);
    sdc_index_free(raw);
    return ok;
}

/* dir/: the tiny-sdxl configs with unet/config.json's transformer depth of block 2 changed. */
static int write_bad_config(const char *dir) {
    static const char *const parts[] = {"text_encoder", "text_encoder_2", "vae", "scheduler"};
    char a[4096], b[4096];
    int ok = 1;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        snprintf(a, sizeof a, "%s/%s", test_ref_path(FOLDER), parts[i]);
        snprintf(b, sizeof b, "%s/%s", dir, parts[i]);
        ok = ok && symlink(a, b) == 0;
    }
    char *text = NULL;
    size_t len = 0;
    snprintf(a, sizeof a, "%s/unet/config.json", test_ref_path(FOLDER));
    cJSON *u = ok && sdc_read_file(a, test_logger(), &text, &len) == SDC_OK ? cJSON_Parse(text) : NULL;
    free(text);
    cJSON *depth = cJSON_GetObjectItemCaseSensitive(u, "transformer_layers_per_block");
    ok = ok && cJSON_GetArraySize(depth) == 3;
    if (ok) cJSON_ReplaceItemInArray(depth, 2, cJSON_CreateNumber(2));
    snprintf(b, sizeof b, "%s/unet", dir);
    char *out = ok ? cJSON_Print(u) : NULL;
    FILE *f = ok && mkdir(b, 0755) == 0 ? fopen(strcat(b, "/config.json"), "w") : NULL;
    ok = f && out && fputs(out, f) >= 0;
    if (f) fclose(f);
    free(out);
    cJSON_Delete(u);
    return ok;
}

static void test_refusals(const char *tmp) {
    sdc_model_files *mf = NULL;
    sd1_sf_configs cfg;
    sdc_status st = open_single(test_ref_path(SINGLE), NULL, test_capture_logger(), &mf, &cfg);
    test_check(st == SDC_ERR_UNSUPPORTED && strstr(test_last_error(), "32 + 64") &&
                   strstr(test_last_error(), "--config"),
               "tiny SDXL file without --config: %s \"%s\"", sdc_status_str(st), test_last_error());
    static const struct {
        const char *drop, *says;
    } missing[] = {
        {"conditioner.embedders.1.", "conditioner.embedders.1.model."},
        {"conditioner.embedders.0.", "conditioner.embedders.0.transformer."},
        {"first_stage_model.", "VAE"},
    };
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/missing-%zu.safetensors", tmp, i);
        if (!test_check(write_without(path, missing[i].drop), "write %s without %s*", path, missing[i].drop)) continue;
        st = open_single(path, test_ref_path(FOLDER), test_capture_logger(), &mf, &cfg);
        test_check(st == SDC_ERR_NOT_FOUND && !mf && strstr(test_last_error(), missing[i].says),
                   "without %s*: %s \"%s\"", missing[i].drop, sdc_status_str(st), test_last_error());
        unlink(path);
    }
    char dir[512];
    snprintf(dir, sizeof dir, "%s/bad-config", tmp);
    if (test_check(mkdir(dir, 0755) == 0 && write_bad_config(dir), "write a contradicting config folder")) {
        st = open_single(test_ref_path(SINGLE), dir, test_capture_logger(), &mf, &cfg);
        test_check(st == SDC_ERR_FORMAT && !mf && strstr(test_last_error(), "transformer_layers_per_block[2]") &&
                       strstr(test_last_error(), "unet/config.json"),
                   "a config whose depth contradicts the shapes: %s \"%s\"", sdc_status_str(st), test_last_error());
        /* through the public API: NULL and the reason */
        sdc_ctx_params cp;
        sdc_ctx_params_init(&cp);
        cp.model_path = test_ref_path(SINGLE);
        cp.config_dir = dir;
        sdc_ctx *ctx = sdc_ctx_new(&cp);
        test_check(!ctx, "sdc_ctx_new with the contradicting config returns NULL");
        sdc_ctx_free(ctx);
    }
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

int main(void) {
    const char *tmp = test_make_tmp_dir("sdxl_single");
    sdc_model_files *mf = NULL, *folder = NULL;
    sd1_sf_configs cfg;
    sdc_status st = open_single(test_ref_path(SINGLE), test_ref_path(FOLDER), test_logger(), &mf, &cfg);
    sdc_status fs = sdc_model_files_open(test_ref_path(FOLDER), SDC_VARIANT_AUTO, test_logger(), &folder);
    if (fs == SDC_OK) fs = sdc_model_files_use_all(folder, test_logger());
    if (test_check(st == SDC_OK && fs == SDC_OK, "open %s with --config %s: %s; the folder: %s", SINGLE, FOLDER,
                   sdc_status_str(st), sdc_status_str(fs))) {
        test_views(mf->index);
        test_index_vs_folder(mf->index, folder);
        char dir[512];
        snprintf(dir, sizeof dir, "%s/fp16", tmp);
        if (test_check(mkdir(dir, 0755) == 0 && make_fp16_folder(folder, dir), "write the fp16-rounded folder"))
            test_pipelines(dir);
    }
    sd1_sf_configs_free(&cfg);
    sdc_model_files_free(mf);
    sdc_model_files_free(folder);
    test_refusals(tmp);
    nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return test_finish();
}
