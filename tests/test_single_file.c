/* test_single_file.c - original (CompVis/LDM) single-file checkpoints:
 *   - the tiny fp16 single file, described by --config tiny-sd1, runs every README.json pipeline case
 *     exactly as the fp16 folder variant does (same weights), with the CLIP tokenizer sdc ships;
 *   - without --config it is refused cleanly (its widths are no real model's);
 *   - detection from names and shapes recognises Stable Diffusion 1.5 (its tensors enumerated by
 *     mkmodel, in a sparse full-size file that costs no disk) and rejects SD 2.x / SDXL name sets;
 *   - the shipped tokenizer files are OpenAI's CLIP files, found through $SDC_DATA_DIR or the build. */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/file.h"
#include "family/sd1_detect.h"
#include "pipeline/family.h"
#include "io/ldm_names.h"
#include "io/model_files.h"
#include "model/clip.h"
#include "mkmodel/mkmodel_internal.h"
#include "model/unet.h"
#include "model/vae.h"
#include "sdc.h"
#include "test_golden.h"
#include "test_pipeline_util.h"
#include "test_util.h"

/* ---- a list of (name, shape) in LDM names, from mkmodel's enumeration of an architecture ---- */

typedef struct tlist {
    sdc_tensor_info *t;
    size_t n, cap;
    const sdc_ldm_map *map;
    const char *prefix; /* "unet." while enumerating the UNet, ... */
} tlist;

static void tlist_add(tlist *l, const char *name, int ndim, const int64_t *ne) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->t = realloc(l->t, l->cap * sizeof *l->t);
    }
    sdc_tensor_info *t = &l->t[l->n++];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->dtype = SDC_DTYPE_F16;
    t->ndim = ndim;
    int64_t nel = 1;
    for (int i = 0; i < ndim; i++) nel *= (t->ne[i] = ne[i]);
    t->nbytes = (uint64_t)nel * 2;
}

/* Drops every tensor whose name starts with prefix. */
static void tlist_drop(tlist *l, const char *prefix) {
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (strncmp(l->t[i].name, prefix, strlen(prefix)) == 0)
            free((char *)l->t[i].name);
        else
            l->t[k++] = l->t[i];
    }
    l->n = k;
}

static void tlist_free(tlist *l) {
    for (size_t i = 0; i < l->n; i++) free((char *)l->t[i].name);
    free(l->t);
}

static void enum_cb(void *user, const char *name, int ndim, const int64_t *ne, sdc_mk_init init) {
    (void)init;
    tlist *l = user;
    char full[256], ldm[256];
    snprintf(full, sizeof full, "%s%s", l->prefix, name);
    int conv1x1 = 0;
    const char *out = sdc_diffusers_to_ldm(l->map, full, ldm, sizeof ldm, &conv1x1);
    if (!out) {
        test_check(0, "an LDM name for %s", full);
        return;
    }
    int64_t shape[SDC_INDEX_MAX_DIMS] = {0};
    for (int i = 0; i < ndim; i++) shape[i] = ne[i];
    if (conv1x1) shape[ndim] = shape[ndim + 1] = 1, ndim += 2;
    tlist_add(l, out, ndim, shape);
}

/* The single-file tensors of arch, as a real checkpoint names them, with the extra keys some carry. */
static tlist ldm_tensors(const sdc_mk_arch *a, const sdc_ldm_map *map) {
    tlist l = {NULL, 0, 0, map, NULL};
    for (int c = 0; c < SDC_MK_N_PARTS; c++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "%s.", sdc_mk_part_name((sdc_mk_part)c));
        l.prefix = prefix;
        sdc_mk_enum_component(a, (sdc_mk_part)c, enum_cb, &l);
    }
    tlist_add(&l, "cond_stage_model.transformer.text_model.embeddings.position_ids", 2,
              (int64_t[]){1, a->te.positions});
    tlist_add(&l, "alphas_cumprod", 1, (int64_t[]){1000});
    tlist_add(&l, "model_ema.decay", 0, (int64_t[]){0});
    return l;
}

/* ---- detection on SD 1.5's names and shapes ---- */

static void check_configs_match(const sd1_sf_arch *got, const sdc_mk_arch *a) {
    /* what detection builds must parse to what mkmodel's own SD 1.5 configs parse to */
    cJSON *mine[3] = {sd1_sf_text_encoder_config(got), sd1_sf_unet_config(got), sd1_sf_vae_config(got)};
    cJSON *ref[3] = {sdc_mk_text_encoder_json(&a->te, SDC_DTYPE_F16), sdc_mk_unet_json(a), sdc_mk_vae_json(a)};
    sdc_clip_config c1, c2;
    sdc_unet_config u1, u2;
    sdc_vae_config v1, v2;
    memset(&u1, 0, sizeof u1), memset(&u2, 0, sizeof u2), memset(&v1, 0, sizeof v1), memset(&v2, 0, sizeof v2);
    int ok = sdc_clip_config_parse(mine[0], test_logger(), &c1) == SDC_OK &&
        sdc_clip_config_parse(ref[0], test_logger(), &c2) == SDC_OK &&
        sdc_unet_config_parse(mine[1], test_logger(), &u1) == SDC_OK &&
        sdc_unet_config_parse(ref[1], test_logger(), &u2) == SDC_OK &&
        sdc_vae_config_parse(mine[2], test_logger(), &v1) == SDC_OK &&
        sdc_vae_config_parse(ref[2], test_logger(), &v2) == SDC_OK;
    if (test_check(ok, "detected SD 1.5 configs parse")) {
        /* SD 1.5's own text encoder config says eos 2 (transformers then pools at the largest id); the
         * template says 49407, the largest id: the same position */
        test_check(c1.hidden == c2.hidden && c1.intermediate == c2.intermediate && c1.n_layers == c2.n_layers &&
                       c1.n_heads == c2.n_heads && c1.max_positions == c2.max_positions && c1.vocab == c2.vocab &&
                       c1.eps == c2.eps && c1.act == c2.act && c1.eos_token_id == 49407,
                   "text encoder config = SD 1.5's: %d wide, %d layers, %d heads, eps %g (SD 1.5: %d, %d, %d, %g)",
                   c1.hidden, c1.n_layers, c1.n_heads, (double)c1.eps, c2.hidden, c2.n_layers, c2.n_heads,
                   (double)c2.eps);
        test_check(memcmp(&u1, &u2, sizeof u1) == 0, "UNet config = SD 1.5's (%d blocks from %d channels, %d heads)",
                   u1.n_blocks, u1.block_out_channels[0], u1.heads[0]);
        test_check(memcmp(&v1, &v2, sizeof v1) == 0, "VAE config = SD 1.5's (%d blocks, scaling %g)", v1.n_blocks,
                   (double)v1.scaling_factor);
    }
    /* the scheduler: every key of SD 1.5's scheduler_config.json with its value */
    cJSON *s1 = sd1_sf_scheduler_config(got), *s2 = sdc_mk_scheduler_json(a);
    const cJSON *item;
    int same = s1 && s2, n = 0;
    cJSON_ArrayForEach(item, s2) {
        if (!strcmp(item->string, "_diffusers_version")) continue;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(s1, item->string);
        if (!v || !cJSON_Compare(v, item, 1)) {
            test_check(0, "scheduler config key %s differs from SD 1.5's", item->string);
            same = 0;
        }
        n++;
    }
    test_check(same && n >= 10, "scheduler config = SD 1.5's (%d keys)", n);
    cJSON_Delete(s1);
    cJSON_Delete(s2);
    for (int i = 0; i < 3; i++) cJSON_Delete(mine[i]), cJSON_Delete(ref[i]);
}

/* The family's detection on the io layer's facts of the list. */
static sdc_status detect(const tlist *l, sd1_sf_arch *a) {
    sdc_sf_facts *f = NULL;
    sdc_status st = sdc_sf_facts_new(l->t, l->n, &f);
    if (st == SDC_OK) st = sd1_sf_detect(f, test_capture_logger(), a);
    sdc_sf_facts_free(f);
    return st;
}

/* A single file opened as the pipeline does: the io layer's facts (and a config folder's configs),
 * then the SD family's probe and its single-file open (configs, name map, index). *mf is freed and
 * NULL on failure. */
static sdc_status open_single(const char *path, const char *config_dir, const sdc_logger *log, sdc_model_files **mf,
                              sd1_sf_configs *cfg) {
    memset(cfg, 0, sizeof *cfg);
    sdc_status st = sdc_model_files_open_ex(path, config_dir, SDC_VARIANT_AUTO, log, mf);
    if (st == SDC_OK && !sdc_family_sd1.probe(*mf)) {
        test_check(0, "the SD family claims %s", path);
        st = SDC_ERR_UNSUPPORTED;
    }
    if (st == SDC_OK) st = sd1_sf_open(*mf, 0, log, cfg);
    if (st != SDC_OK) {
        sd1_sf_configs_free(cfg);
        sdc_model_files_free(*mf);
        *mf = NULL;
    }
    return st;
}

static void test_detect_sd15(const sdc_ldm_map *map) {
    const sdc_mk_arch *a = sdc_mk_arch_find("sd15");
    tlist l = ldm_tensors(a, map);
    sd1_sf_arch got;
    sdc_status st = detect(&l, &got);
    if (test_check(st == SDC_OK, "detect SD 1.5 from %zu names and shapes: %s \"%s\"", l.n, sdc_status_str(st),
                   st ? test_last_error() : "")) {
        int ch_ok = got.unet_blocks == a->unet_blocks && got.vae_blocks == a->vae_blocks;
        for (int i = 0; ch_ok && i < a->unet_blocks; i++)
            ch_ok = got.unet_channels[i] == a->unet_channels[i] && got.unet_attn[i] == a->unet_attn[i];
        for (int i = 0; ch_ok && i < a->vae_blocks; i++) ch_ok = got.vae_channels[i] == a->vae_channels[i];
        test_check(!strcmp(got.family, "SD 1.x") && got.te.heads == a->te.heads && got.te.layers == a->te.layers &&
                       got.te.hidden == a->te.hidden && got.te.vocab == a->te.vocab &&
                       got.te.positions == a->te.positions && !strcmp(got.te.act, a->te.act),
                   "CLIP-L: %d wide, %d layers, %d heads, vocab %d, %d positions, %s", got.te.hidden, got.te.layers,
                   got.te.heads, got.te.vocab, got.te.positions, got.te.act);
        test_check(ch_ok && got.unet_layers == a->unet_layers && got.unet_heads == a->unet_heads[0] &&
                       got.unet_cross_dim == a->unet_cross_dim && got.unet_in == a->unet_in &&
                       got.unet_transformer_layers == 1 && !got.unet_linear_proj,
                   "UNet: %d blocks x %d layers, channels %d..%d, %d heads, context %d, conv proj_in", got.unet_blocks,
                   got.unet_layers, got.unet_channels[0], got.unet_channels[got.unet_blocks - 1], got.unet_heads,
                   got.unet_cross_dim);
        test_check(ch_ok && got.vae_layers == a->vae_layers && got.vae_latent == a->vae_latent &&
                       got.vae_scaling == a->vae_scaling && got.vae_quant_conv && got.vae_post_quant_conv,
                   "VAE: %d blocks x %d layers, latent %d, scaling %g", got.vae_blocks, got.vae_layers, got.vae_latent,
                   got.vae_scaling);
        check_configs_match(&got, a);
    }

    /* a file without the VAE, or missing one tensor: NOT_FOUND naming it */
    tlist_drop(&l, "first_stage_model.");
    st = detect(&l, &got);
    test_check(st == SDC_ERR_NOT_FOUND && strstr(test_last_error(), "VAE"), "no VAE: %s \"%s\"", sdc_status_str(st),
               test_last_error());
    tlist_free(&l);
    l = ldm_tensors(a, map);
    tlist_drop(&l, "model.diffusion_model.out.2.weight");
    st = detect(&l, &got);
    test_check(st == SDC_ERR_NOT_FOUND && strstr(test_last_error(), "model.diffusion_model.out.2.weight"),
               "no UNet conv_out: %s \"%s\"", sdc_status_str(st), test_last_error());
    tlist_free(&l);
}

/* SD 2.x (OpenCLIP ViT-H under cond_stage_model.model.*) and SDXL (two text encoders under
 * conditioner.embedders.*) name sets that lack parts: refused, naming what is missing. */
static void test_detect_rejects(const sdc_ldm_map *map) {
    const sdc_mk_arch *a = sdc_mk_arch_find("sd15");
    tlist l = ldm_tensors(a, map);
    tlist_drop(&l, "cond_stage_model.");
    tlist_add(&l, "cond_stage_model.model.token_embedding.weight", 2, (int64_t[]){49408, 1024});
    tlist_add(&l, "cond_stage_model.model.positional_embedding", 2, (int64_t[]){77, 1024});
    tlist_add(&l, "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight", 2, (int64_t[]){3072, 1024});
    tlist_add(&l, "cond_stage_model.model.ln_final.weight", 1, (int64_t[]){1024});
    sd1_sf_arch got;
    sdc_status st = detect(&l, &got);
    test_check(st == SDC_ERR_NOT_FOUND &&
                   strstr(test_last_error(), "cond_stage_model.model.transformer.resblocks.0.mlp"),
               "SD 2.x names without the OpenCLIP MLP: %s \"%s\"", sdc_status_str(st), test_last_error());
    tlist_free(&l);

    l = ldm_tensors(a, map);
    tlist_drop(&l, "cond_stage_model.");
    tlist_drop(&l, "first_stage_model.");
    tlist_add(&l, "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight", 2,
              (int64_t[]){49408, 768});
    tlist_add(&l, "conditioner.embedders.1.model.token_embedding.weight", 2, (int64_t[]){49408, 1280});
    st = detect(&l, &got);
    test_check(st == SDC_ERR_NOT_FOUND && strstr(test_last_error(), "VAE"), "SDXL names without a VAE: %s \"%s\"",
               sdc_status_str(st), test_last_error());
    tlist_free(&l);

    l = (tlist){0};
    tlist_add(&l, "conv_in.weight", 4, (int64_t[]){320, 4, 3, 3});
    st = detect(&l, &got);
    test_check(st == SDC_ERR_UNSUPPORTED && strstr(test_last_error(), "conv_in.weight"),
               "a diffusers UNet file: %s \"%s\"", sdc_status_str(st), test_last_error());
    /* the family's probe reads the facts: no LDM / SGM key group, not an SD single file */
    sdc_sf_facts *f = NULL;
    int claimed = sdc_sf_facts_new(l.t, l.n, &f) == SDC_OK ? sd1_sf_probe(f, 0) : -1;
    test_check(claimed == 0, "the SD family does not claim a file of no LDM key group (probe %d)", claimed);
    sdc_sf_facts_free(f);
    tlist_free(&l);
}

/* ---- a full-size SD 1.5 single file, sparse: header of real names and shapes, data all holes ---- */

static int write_sparse_safetensors(const char *path, const tlist *l) {
    cJSON *h = cJSON_CreateObject();
    uint64_t off = 0;
    for (size_t i = 0; i < l->n; i++) {
        const sdc_tensor_info *t = &l->t[i];
        cJSON *e = cJSON_AddObjectToObject(h, t->name);
        cJSON_AddStringToObject(e, "dtype", "F16");
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        for (int k = 0; k < t->ndim; k++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->ne[k]));
        cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + t->nbytes)));
        off += t->nbytes;
    }
    char *json = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    size_t len = strlen(json), padded = (len + 7) / 8 * 8;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644), ok = fd >= 0;
    ok = ok && write(fd, len8, 8) == 8 && write(fd, json, len) == (ssize_t)len;
    for (size_t i = len; ok && i < padded; i++) ok = write(fd, " ", 1) == 1;
    ok = ok && ftruncate(fd, (off_t)(8 + padded + off)) == 0;
    if (fd >= 0) close(fd);
    free(json);
    return ok;
}

static void test_sparse_sd15(const sdc_ldm_map *map) {
    const sdc_mk_arch *a = sdc_mk_arch_find("sd15");
    tlist l = ldm_tensors(a, map);
    char dir[] = "/tmp/sdc_test_sf_XXXXXX";
    if (!test_check(mkdtemp(dir) != NULL, "mkdtemp")) return;
    char *path = sdc_path_join(dir, "sd15-fake.safetensors");
    if (test_check(write_sparse_safetensors(path, &l), "write a sparse SD 1.5 single file")) {
        /* the io layer reports what the file holds, and decides nothing */
        sdc_model_files *mf = NULL;
        sdc_status st = sdc_model_files_open_ex(path, NULL, SDC_VARIANT_AUTO, test_logger(), &mf);
        if (test_check(st == SDC_OK && mf->single && mf->n_parts == 0 && sdc_index_count(mf->index) == 0,
                       "io: facts only, no configs, nothing indexed: %s", sdc_status_str(st))) {
            const size_t nu = sdc_sf_count_prefix(mf->single, "model.diffusion_model.");
            const size_t nv = sdc_sf_count_prefix(mf->single, "first_stage_model.");
            const size_t nt = sdc_sf_count_prefix(mf->single, "cond_stage_model.transformer.");
            const sdc_tensor_info *k = sdc_sf_find(mf->single, "model.diffusion_model.%s", "out.2.weight");
            char groups[512];
            sdc_sf_groups(mf->single, groups, sizeof groups);
            test_check(sdc_sf_count(mf->single) == l.n && nu + nv + nt + 2 == l.n && nu > 600 && nv > 200 && nt > 190 &&
                           k && k->ndim == 4 && k->ne[0] == 4 && k->ne[1] == 320 &&
                           strstr(groups, "model.diffusion_model. (") && strstr(groups, "first_stage_model.") &&
                           strstr(groups, "cond_stage_model.transformer.") && strstr(groups, "model_ema.decay (1)"),
                       "facts: %zu tensors (%zu UNet, %zu VAE, %zu text encoder + position_ids, 2 others), conv_out "
                       "[%lld, %lld, ...]; %s",
                       sdc_sf_count(mf->single), nu, nv, nt, k ? (long long)k->ne[0] : -1LL,
                       k ? (long long)k->ne[1] : -1LL, groups);
        }
        sdc_model_files_free(mf);
        mf = NULL;
        sd1_sf_configs cfg;
        st = open_single(path, NULL, test_logger(), &mf, &cfg);
        if (test_check(st == SDC_OK, "open a full-size SD 1.5 single file without --config: %s", sdc_status_str(st))) {
            /* every tensor SD 1.5's modules have, under its canonical name with its elements */
            size_t found = 0, want = 0;
            for (size_t i = 0; i < l.n; i++) {
                char canon[256];
                if (!sdc_ldm_to_diffusers(map, l.t[i].name, canon, sizeof canon)) continue;
                want++;
                const sdc_tensor_info *t = sdc_index_find(mf->index, canon);
                if (t && sdc_tensor_info_nelem(t) * 2 == (int64_t)l.t[i].nbytes)
                    found++;
                else if (found + 5 > want)
                    test_check(0, "missing or misshapen %s", canon);
            }
            test_check(found == want && want == sdc_index_count(mf->index) && want + 3 == l.n,
                       "index: %zu of %zu weights under canonical names (%zu indexed, %zu in the file)", found, want,
                       sdc_index_count(mf->index), l.n);
            const cJSON *cls = cJSON_GetObjectItemCaseSensitive(cfg.scheduler_config, "_class_name");
            test_check(cJSON_IsString(cls) && !strcmp(cls->valuestring, "PNDMScheduler") && cfg.config[SD1_PART_UNET] &&
                           cfg.config[SD1_PART_VAE] && cfg.config[SD1_PART_TEXT_ENCODER],
                       "the family built the three configs and the scheduler's (PNDMScheduler)");
            test_check(mf->single_file && mf->tokenizer_dir && !strcmp(mf->root, path), "single file, tokenizer %s",
                       mf->tokenizer_dir ? mf->tokenizer_dir : "(none)");
        }
        sd1_sf_configs_free(&cfg);
        sdc_model_files_free(mf);
    }
    unlink(path);
    /* a safetensors file of no LDM key group: no family claims it; sdc_model_open refuses it */
    tlist u = {0};
    tlist_add(&u, "conv_in.weight", 4, (int64_t[]){320, 4, 3, 3});
    if (test_check(write_sparse_safetensors(path, &u), "write a one-tensor diffusers-named file")) {
        sdc_component_path paths[] = {{"model", path}};
        sdc_model_params mp;
        sdc_model_params_init(&mp);
        mp.paths = paths;
        mp.n_paths = 1;
        const sdc_logger *cl = test_capture_logger();
        mp.log_fn = cl->fn;
        mp.log_user = cl->user;
        sdc_model *m = sdc_model_open(&mp);
        test_check(!m && strstr(test_last_error(), "not a model of any family") && strstr(test_last_error(), path),
                   "a diffusers UNet file as a single file: \"%s\"", test_last_error());
        sdc_model_free(m);
    }
    tlist_free(&u);
    unlink(path);
    rmdir(dir);
    free(path);
    tlist_free(&l);
}

/* ---- files that must be refused cleanly ---- */

static void test_refusals(void) {
    const char *single = test_ref_path("tiny-sd1.safetensors"), *folder = test_ref_path("tiny-sd1");
    sdc_model_files *mf = NULL;
    sd1_sf_configs cfg;
    sdc_status st = open_single(single, NULL, test_capture_logger(), &mf, &cfg);
    test_check(st == SDC_ERR_UNSUPPORTED && !mf && strstr(test_last_error(), "768") &&
                   strstr(test_last_error(), "--config"),
               "tiny single file without --config: %s \"%s\"", sdc_status_str(st), test_last_error());
    sdc_ctx_params cp;
    sdc_ctx_params_init(&cp);
    cp.model_path = single;
    sdc_ctx *ctx = sdc_ctx_new(&cp);
    test_check(ctx == NULL, "sdc_ctx_new on the tiny single file without a config dir returns NULL");
    sdc_ctx_free(ctx);

    st = sdc_model_files_open_ex(folder, folder, SDC_VARIANT_AUTO, test_capture_logger(), &mf);
    test_check(st == SDC_ERR_INVALID_ARG && !mf, "a folder with a config dir: %s \"%s\"", sdc_status_str(st),
               test_last_error());
    sd1_sf_configs no_cfg;
    st = open_single(single, test_ref_path("tiny-sd1/unet"), test_capture_logger(), &mf, &no_cfg);
    test_check(st == SDC_ERR_NOT_FOUND && !mf && strstr(test_last_error(), "text_encoder/config.json"),
               "a config dir without text_encoder/config.json: %s \"%s\"", sdc_status_str(st), test_last_error());

    char dir[] = "/tmp/sdc_test_sf_XXXXXX";
    if (!test_check(mkdtemp(dir) != NULL, "mkdtemp")) return;
    char *ckpt = sdc_path_join(dir, "model.ckpt"), *junk = sdc_path_join(dir, "junk.safetensors");
    FILE *f = fopen(ckpt, "wb");
    if (f) fputs("PK\3\4 not really a zip", f), fclose(f);
    f = fopen(junk, "wb"); /* a header length beyond the end of the file */
    if (f) fwrite("\x40\0\0\0\0\0\0\0{\"a\":", 1, 13, f), fclose(f);
    st = sdc_model_files_open_ex(ckpt, NULL, SDC_VARIANT_AUTO, test_capture_logger(), &mf);
    test_check(st == SDC_ERR_UNSUPPORTED && !mf && strstr(test_last_error(), "safetensors"), "a .ckpt: %s \"%s\"",
               sdc_status_str(st), test_last_error());
    st = sdc_model_files_open_ex(junk, NULL, SDC_VARIANT_AUTO, test_capture_logger(), &mf);
    test_check(st == SDC_ERR_FORMAT && !mf && strstr(test_last_error(), "junk.safetensors"), "a broken file: %s \"%s\"",
               sdc_status_str(st), test_last_error());
    unlink(ckpt);
    unlink(junk);
    rmdir(dir);
    free(ckpt);
    free(junk);
    char gone[64];
    snprintf(gone, sizeof gone, "%s-gone.safetensors", dir);
    st = sdc_model_files_open_ex(gone, NULL, SDC_VARIANT_AUTO, test_capture_logger(), &mf);
    test_check(st == SDC_ERR_NOT_FOUND && !mf && strstr(test_last_error(), "-gone"), "a missing file: %s \"%s\"",
               sdc_status_str(st), test_last_error());
}

/* ---- the tokenizer sdc ships ---- */

static int same_file(const char *a, const char *b) {
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    int same = sdc_read_file(a, test_logger(), &x, &nx) == SDC_OK &&
        sdc_read_file(b, test_logger(), &y, &ny) == SDC_OK && nx == ny && memcmp(x, y, nx) == 0;
    free(x);
    free(y);
    return same;
}

static void test_shipped_tokenizer(void) {
    static const char *const files[] = {"vocab.json", "merges.txt"};
    for (int i = 0; i < 2; i++) {
        char shipped[4096], ref[256];
        snprintf(shipped, sizeof shipped, "%s/data/clip-tokenizer/%s", SDC_SOURCE_DIR, files[i]);
        snprintf(ref, sizeof ref, "clip-tokenizer/%s", files[i]);
        test_check(same_file(shipped, test_ref_path(ref)), "data/clip-tokenizer/%s = the reference's", files[i]);
    }
    char *p = sdc_data_path("clip-tokenizer");
    test_check(p && sdc_dir_exists(p), "sdc_data_path(clip-tokenizer) = %s", p ? p : "(none)");
    free(p);

    /* $SDC_DATA_DIR comes first when it has the file, and is passed over when it does not */
    char dir[] = "/tmp/sdc_test_sf_XXXXXX";
    if (!test_check(mkdtemp(dir) != NULL, "mkdtemp")) return;
    char *link = sdc_path_join(dir, "clip-tokenizer");
    int linked = symlink(test_ref_path("clip-tokenizer"), link) == 0;
    setenv("SDC_DATA_DIR", dir, 1);
    p = sdc_data_path("clip-tokenizer");
    test_check(linked && p && !strcmp(p, link), "$SDC_DATA_DIR first: %s", p ? p : "(none)");
    free(p);
    unlink(link);
    p = sdc_data_path("clip-tokenizer");
    test_check(p && strncmp(p, dir, strlen(dir)) != 0, "$SDC_DATA_DIR without it: %s", p ? p : "(none)");
    free(p);
    unsetenv("SDC_DATA_DIR");
    rmdir(dir);
    free(link);
}

/* ---- the tiny single file runs exactly as the fp16 folder ---- */

static void compare_runs(const test_pipe_run *s, const test_pipe_run *f, const char *what) {
    char w[200];
    if (s->latents_ref) {
        snprintf(w, sizeof w, "%s %s latents", what, s->name);
        test_check_err(w, "rel err", test_rel_err(s->latents, f->latents, s->n_lat), 1e-6);
    }
    snprintf(w, sizeof w, "%s %s pixels", what, s->name);
    test_check_err(w, "rel err", test_rel_err(s->pixels, f->pixels, s->n_pix), 1e-6);
}

static void test_pipelines(void) {
    cJSON *readme = test_pipe_readme("tiny-sd1-golden");
    const cJSON *cases = test_pipe_cases(readme);
    sdc_model_index *g = test_golden_open("tiny-sd1-golden/pipeline.safetensors");
    const char *single = test_ref_path("tiny-sd1.safetensors"), *folder = test_ref_path("tiny-sd1");
    sdc_ctx *sf = test_pipe_open(single, folder, NULL, 0, 2);
    sdc_ctx *fp16 = test_pipe_open(folder, NULL, NULL, 1, 2);
    sdc_ctx *tok = test_pipe_open(single, folder, test_ref_path("clip-tokenizer"), 0, 2);
    if (test_check(sf && fp16 && tok,
                   "open the single file (--config, shipped tokenizer), the fp16 folder, and the "
                   "single file with --tokenizer")) {
        const cJSON *c, *shortest = NULL;
        cJSON_ArrayForEach(c, cases) {
            test_pipe_run s = {0}, f = {0};
            if (test_pipe_run_case(sf, c, g, "single file", &s) && test_pipe_run_case(fp16, c, g, "fp16 folder", &f)) {
                compare_runs(&s, &f, "single file vs fp16 folder");
                if (s.latents_ref)
                    printf("  info %s: fp16 weights vs diffusers f32: latents rel err %.3e, image max |d| %.3e\n",
                           s.name, test_rel_err(s.latents, s.latents_ref, s.n_lat),
                           test_max_abs(s.pixels, s.image_ref, s.n_pix));
                const cJSON *st = cJSON_GetObjectItemCaseSensitive(c, "steps");
                const cJSON *sh = shortest ? cJSON_GetObjectItemCaseSensitive(shortest, "steps") : NULL;
                if (!s.img2img && cJSON_IsNumber(st) && (!sh || st->valuedouble < sh->valuedouble)) shortest = c;
            }
            test_pipe_run_free(&s);
            test_pipe_run_free(&f);
        }
        /* --tokenizer with the reference's copy of the CLIP files gives the same */
        test_pipe_run s = {0}, t = {0};
        if (test_check(shortest != NULL, "a txt2img case") && test_pipe_run_case(sf, shortest, g, "single file", &s) &&
            test_pipe_run_case(tok, shortest, g, "single file --tokenizer", &t))
            compare_runs(&t, &s, "--tokenizer vs shipped tokenizer");
        test_pipe_run_free(&s);
        test_pipe_run_free(&t);
    }
    sdc_ctx_free(sf);
    sdc_ctx_free(fp16);
    sdc_ctx_free(tok);
    sdc_index_free(g);
    cJSON_Delete(readme);
}

int main(void) {
    sdc_ldm_map *map = malloc(sizeof *map);
    sdc_ldm_map_init_sd1(map);
    test_shipped_tokenizer();
    test_refusals();
    test_detect_sd15(map);
    test_detect_rejects(map);
    test_sparse_sd15(map);
    free(map);
    test_pipelines();
    return test_finish();
}
