/* test_flux_files.c - the Flux formats users have give identical images: for schnell and dev, the README
 * case of the diffusers folder run from
 *   (a) -m FOLDER
 *   (b) -m FOLDER-bfl.safetensors --config FOLDER                       (BFL single file)
 *   (c) -m FOLDER --diffusion-model FOLDER-bfl.safetensors --vae tiny-flux-ae.safetensors
 *   (d) -m FOLDER --clip_l text_encoder/model.safetensors --t5xxl text_encoder_2/model.safetensors
 *   (e) --diffusion-model BFL --clip_l --t5xxl --vae --config FOLDER    (every part a file, no -m)
 *   (f) (b) with the BFL names under "model.diffusion_model." (a copy written here)
 * must give bit-identical final latents and pixels (the files hold the same f32 values), and the same
 * PNG file where the model is named the same (-m FOLDER; the PNG's parameters text names the model). Bad input: a BFL
 * file with double_blocks.1 removed, a T5 file of another width, a T5 file as the diffusion model, a
 * BFL file without --config, a VAE file for SD 1.x: each a clear error at open (printed), no model. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/model_index.h"
#include "io/st_writer.h"
#include "sdc.h"
#include "test_golden.h"
#include "test_pipeline_util.h"
#include "test_util.h"

/* The first error logged while opening, for printing. */
static char first_error[1024];
static void keep_error(sdc_log_level level, const char *msg, void *user) {
    (void)user;
    if (level >= SDC_LOG_ERROR && !first_error[0]) snprintf(first_error, sizeof first_error, "%s", msg);
}

typedef struct files {
    const char *model, *config, *diffusion_model, *clip_l, *t5xxl, *vae;
} files;

static sdc_ctx *open_files(const files *f, int quiet) {
    sdc_ctx_params cp;
    sdc_ctx_params_init(&cp);
    cp.model_path = f->model;
    cp.config_dir = f->config;
    cp.diffusion_model_path = f->diffusion_model;
    cp.clip_l_path = f->clip_l;
    cp.t5xxl_path = f->t5xxl;
    cp.vae_path = f->vae;
    cp.n_threads = 2;
    cp.log_fn = quiet ? keep_error : sdc_log_stderr;
    cp.log_level = SDC_LOG_WARN;
    first_error[0] = 0;
    return sdc_ctx_new(&cp);
}

/* How a copy renames or reshapes a tensor: returns 0 to drop it; may rewrite name (size 256) and ne. */
typedef int (*copy_fn)(char *name, int ndim, int64_t *ne);

/* Writes a copy of src at dst through fn; a reshaped tensor is written as zeros. */
static int write_copy(const char *src, const char *dst, copy_fn fn) {
    sdc_model_index *idx = sdc_index_new(test_logger());
    sdc_st_writer *w = sdc_st_writer_new(test_logger());
    sdc_status st = idx && w ? sdc_index_add_file(idx, src, "", NULL, NULL) : SDC_ERR_OOM;
    const size_t n = st == SDC_OK ? sdc_index_count(idx) : 0;
    void **bufs = calloc(n + 1, sizeof *bufs);
    for (size_t i = 0; st == SDC_OK && i < n; i++) {
        const sdc_tensor_info *t = sdc_index_at(idx, i);
        char name[256];
        int64_t ne[SDC_INDEX_MAX_DIMS];
        snprintf(name, sizeof name, "%s", t->name);
        memcpy(ne, t->ne, sizeof ne);
        if (!fn(name, t->ndim, ne)) continue;
        const int same = !memcmp(ne, t->ne, sizeof(int64_t) * (size_t)t->ndim);
        int64_t nel = 1;
        for (int d = 0; d < t->ndim; d++) nel *= ne[d];
        bufs[i] = calloc((size_t)nel + 1, sdc_dtype_size(t->dtype));
        if (!bufs[i]) st = SDC_ERR_OOM;
        if (st == SDC_OK && same) st = sdc_index_read_raw(idx, t, bufs[i]);
        if (st == SDC_OK) st = sdc_st_writer_add(w, name, t->dtype, t->ndim, ne, bufs[i]);
    }
    if (st == SDC_OK) st = sdc_st_writer_write(w, dst);
    for (size_t i = 0; i < n; i++) free(bufs[i]);
    free(bufs);
    sdc_st_writer_free(w);
    sdc_index_free(idx);
    return test_check(st == SDC_OK, "write %s", dst);
}

static int under_ldm_prefix(char *name, int ndim, int64_t *ne) {
    (void)ndim;
    (void)ne;
    char tmp[300];
    const int n = snprintf(tmp, sizeof tmp, "model.diffusion_model.%s", name);
    if (n < 0 || n >= 256) return 0;
    memcpy(name, tmp, (size_t)n + 1);
    return 1;
}
static int without_block_1(char *name, int ndim, int64_t *ne) {
    (void)ndim;
    (void)ne;
    return strncmp(name, "double_blocks.1.", 16) != 0;
}
static int width_48(char *name, int ndim, int64_t *ne) { /* T5: every 32 (d_model, d_kv x heads) becomes 48 */
    (void)name;
    for (int d = 0; d < ndim; d++)
        if (ne[d] == 32) ne[d] = 48;
    return 1;
}

static int latents_equal(const test_pipe_run *a, const test_pipe_run *b) {
    return a->n_lat == b->n_lat && !memcmp(a->latents, b->latents, sizeof(float) * a->n_lat) && a->n_pix == b->n_pix &&
        !memcmp(a->pixels, b->pixels, sizeof(float) * a->n_pix);
}

static void identity(const char *v, const cJSON *c, sdc_model_index *g) {
    char folder[512], bfl[512], te[512], te2[512], ae[512], prefixed[512], bfl_rel[64], rel[96];
    snprintf(folder, sizeof folder, "%s", test_ref_path(v));
    snprintf(bfl_rel, sizeof bfl_rel, "%s-bfl.safetensors", v);
    snprintf(bfl, sizeof bfl, "%s", test_ref_path(bfl_rel));
    snprintf(rel, sizeof rel, "%s/text_encoder/model.safetensors", v);
    snprintf(te, sizeof te, "%s", test_ref_path(rel));
    snprintf(rel, sizeof rel, "%s/text_encoder_2/model.safetensors", v);
    snprintf(te2, sizeof te2, "%s", test_ref_path(rel));
    snprintf(ae, sizeof ae, "%s", test_ref_path("tiny-flux-ae.safetensors"));
    snprintf(rel, sizeof rel, "%s-prefixed.safetensors", v);
    snprintf(prefixed, sizeof prefixed, "%s", test_tmp_path(rel));
    write_copy(bfl, prefixed, under_ldm_prefix);
    const struct {
        const char *label;
        files f;
    } ways[] = {
        {"(a) -m folder", {folder, NULL, NULL, NULL, NULL, NULL}},
        {"(b) -m bfl --config folder", {bfl, folder, NULL, NULL, NULL, NULL}},
        {"(c) -m folder --diffusion-model bfl --vae ae", {folder, NULL, bfl, NULL, NULL, ae}},
        {"(d) -m folder --clip_l --t5xxl", {folder, NULL, NULL, te, te2, NULL}},
        {"(e) --diffusion-model bfl --clip_l --t5xxl --vae --config folder", {NULL, folder, bfl, te, te2, ae}},
        {"(f) -m bfl under model.diffusion_model. --config folder", {prefixed, folder, NULL, NULL, NULL, NULL}},
    };
    test_pipe_run r0;
    memset(&r0, 0, sizeof r0);
    for (size_t k = 0; k < sizeof ways / sizeof ways[0]; k++) {
        sdc_ctx *ctx = open_files(&ways[k].f, 0);
        if (!test_check(ctx && !strcmp(sdc_ctx_family(ctx), "flux"), "%s %s: opens as flux", v, ways[k].label)) {
            sdc_ctx_free(ctx);
            continue;
        }
        test_pipe_run r;
        memset(&r, 0, sizeof r);
        if (test_pipe_run_case(ctx, c, g, ways[k].label, &r)) {
            if (k == 0) {
                r0 = r;
                memset(&r, 0, sizeof r);
                printf("    %s %s: %s, PNG %016llx, latents rel err to the golden %.3e\n", v, ways[k].label, r0.name,
                       (unsigned long long)r0.png_hash, test_rel_err(r0.latents, r0.latents_ref, r0.n_lat));
            } else {
                test_check(r0.latents && latents_equal(&r, &r0), "%s %s: final latents and pixels bit-identical to (a)",
                           v, ways[k].label);
                /* the PNG's parameters text names the model (-m, else --diffusion-model): the same name,
                   the same file */
                if (ways[k].f.model && !strcmp(ways[k].f.model, folder))
                    test_check(r.png_hash == r0.png_hash, "%s %s: PNG %016llx = (a)'s %016llx", v, ways[k].label,
                               (unsigned long long)r.png_hash, (unsigned long long)r0.png_hash);
                else
                    printf("    %s %s: PNG %016llx (its parameters text names the file)\n", v, ways[k].label,
                           (unsigned long long)r.png_hash);
            }
        }
        test_pipe_run_free(&r);
        sdc_ctx_free(ctx);
    }
    test_pipe_run_free(&r0);
}

static void refused(const char *what, const files *f, const char *want) {
    sdc_ctx *ctx = open_files(f, 1);
    test_check(!ctx && strstr(first_error, want), "%s: refused at open, the message names '%s'", what, want);
    printf("    %s: %s\n", what, first_error);
    sdc_ctx_free(ctx);
}

int main(void) {
    test_make_tmp_dir("flux-files");
    cJSON *readme = test_pipe_readme("tiny-flux-golden");
    sdc_model_index *g = test_golden_open("tiny-flux-golden/pipeline.safetensors");
    static const char *const variants[] = {"tiny-flux-schnell", "tiny-flux-dev"};
    for (size_t v = 0; v < 2; v++) {
        const cJSON *c, *found = NULL;
        cJSON_ArrayForEach(c, test_pipe_cases(readme)) {
            const char *model = cJSON_GetObjectItemCaseSensitive(c, "model")->valuestring;
            if (!found && !strcmp(model, variants[v])) found = c;
        }
        if (test_check(found != NULL, "README.json has a case on %s", variants[v])) identity(variants[v], found, g);
    }

    /* every part a file, a config folder holding only the tokenizers: the configs are inferred from the
       shapes (the tiny model's CLIP heads and rotary axes are not FLUX.1's, so its image is not (a)'s;
       it must open and run; that inference agrees with the folder's configs is checked in (c) - (e)) */
    static const char *const toks[] = {"tokenizer", "tokenizer_2"};
    const char *tokdir = test_tmp_path("tokenizers-only");
    int made = mkdir(tokdir, 0755) == 0;
    for (int t = 0; made && t < 2; t++) {
        char link[600], rel[64];
        snprintf(link, sizeof link, "%s/%s", tokdir, toks[t]);
        snprintf(rel, sizeof rel, "tiny-flux-dev/%s", toks[t]);
        made = symlink(test_ref_path(rel), link) == 0;
    }
    if (test_check(made, "make %s with links to the tokenizers", tokdir)) {
        files f = {NULL,
                   tokdir,
                   test_ref_path("tiny-flux-dev-bfl.safetensors"),
                   test_ref_path("tiny-flux-dev/text_encoder/model.safetensors"),
                   test_ref_path("tiny-flux-dev/text_encoder_2/model.safetensors"),
                   test_ref_path("tiny-flux-ae.safetensors")};
        sdc_ctx *ctx = open_files(&f, 0);
        sdc_gen_params p;
        sdc_gen_params_init(&p);
        p.prompt = "a red cube";
        p.width = p.height = 64;
        p.steps = 2;
        p.t5_max_length = 32;
        p.guidance = 3.5f;
        sdc_image *im = NULL;
        int n = 0;
        const sdc_status st = ctx ? sdc_generate(ctx, &p, &im, &n) : SDC_ERR_INVALID_ARG;
        test_check(ctx && st == SDC_OK && n == 1 && im[0].width == 64,
                   "every part a file, configs inferred from shapes: generates (%s)", sdc_status_str(st));
        sdc_image_free(im, n);
        sdc_ctx_free(ctx);
    }

    /* bad input: clear errors at open, no model */
    char folder[512], bfl[512], te2[512];
    snprintf(folder, sizeof folder, "%s", test_ref_path("tiny-flux-schnell"));
    snprintf(bfl, sizeof bfl, "%s", test_ref_path("tiny-flux-schnell-bfl.safetensors"));
    snprintf(te2, sizeof te2, "%s", test_ref_path("tiny-flux-schnell/text_encoder_2/model.safetensors"));
    const char *missing = test_tmp_path("bfl-no-block-1.safetensors");
    const char *wide_t5 = test_tmp_path("t5-width-48.safetensors");
    if (write_copy(bfl, missing, without_block_1)) {
        refused("BFL file without double_blocks.1, -m FILE --config", &(files){missing, folder, NULL, NULL, NULL, NULL},
                "double blocks");
        refused("BFL file without double_blocks.1 as --diffusion-model",
                &(files){folder, NULL, missing, NULL, NULL, NULL}, "double blocks");
    }
    if (write_copy(te2, wide_t5, width_48))
        refused("T5 file of width 48 (config: 32)", &(files){folder, NULL, NULL, NULL, wide_t5, NULL}, "d_model 48");
    refused("a T5 file as --diffusion-model", &(files){folder, NULL, te2, NULL, NULL, NULL}, "not a Flux transformer");
    refused("BFL file without --config", &(files){bfl, NULL, NULL, NULL, NULL, NULL}, "--config");
    refused("a Flux VAE file for SD 1.x",
            &(files){test_ref_path("tiny-sd1"), NULL, NULL, NULL, NULL, test_ref_path("tiny-flux-ae.safetensors")},
            "takes no separate vae file");
    refused("a --vae file that does not exist", &(files){folder, NULL, NULL, NULL, NULL, "/nonexistent/ae.safetensors"},
            "ae.safetensors");
    cJSON_Delete(readme);
    sdc_index_free(g);
    return test_finish();
}
