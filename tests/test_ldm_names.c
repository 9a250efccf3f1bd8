/* test_ldm_names - the LDM single-file <-> diffusers name map, on the reference bundle: the tiny
 * single file (written by diffusers' convert_diffusers_to_original_stable_diffusion.py) indexed
 * through the map must hold exactly the tensors of the diffusers folder's fp16 files, with the same
 * shapes (the VAE attention's [C, C, 1, 1] against [C, C] excepted) and identical bytes. The layout
 * comes from the bundle's config.json files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/config.h"
#include "io/ldm_names.h"
#include "io/model_index.h"
#include "test_util.h"

/* The map's layout parameters, from tiny-sd1/unet and vae config.json. */
static int read_layout(sdc_ldm_map *m) {
    cJSON *unet = NULL, *vae = NULL;
    const sdc_logger *lg = test_logger();
    int ok = sdc_json_load(test_ref_path("tiny-sd1/unet/config.json"), lg, &unet) == SDC_OK &&
        sdc_json_load(test_ref_path("tiny-sd1/vae/config.json"), lg, &vae) == SDC_OK;
    const char *types[SDC_LDM_MAX_BLOCKS];
    int n_unet = 0, lpb = 0, vae_ch[SDC_LDM_MAX_BLOCKS], n_vae = 0, vae_lpb = 0, attn[SDC_LDM_MAX_BLOCKS];
    ok = ok &&
        sdc_cfg_string_list(unet, "down_block_types", "unet", lg, types, SDC_LDM_MAX_BLOCKS, &n_unet) == SDC_OK &&
        sdc_cfg_int(unet, "layers_per_block", "unet", lg, &lpb) == SDC_OK &&
        sdc_cfg_int_list(vae, "block_out_channels", "vae", lg, vae_ch, SDC_LDM_MAX_BLOCKS, &n_vae) == SDC_OK &&
        sdc_cfg_int(vae, "layers_per_block", "vae", lg, &vae_lpb) == SDC_OK;
    for (int i = 0; ok && i < n_unet; i++) attn[i] = strcmp(types[i], "CrossAttnDownBlock2D") == 0;
    ok = ok && sdc_ldm_map_init(m, n_unet, lpb, attn, n_vae, vae_lpb) == SDC_OK;
    test_check(ok, "layout from config.json: UNet %d blocks x %d layers, VAE %d blocks x %d layers, %d rules", n_unet,
               lpb, n_vae, vae_lpb, m->n_rules);
    cJSON_Delete(unet);
    cJSON_Delete(vae);
    return ok;
}

static sdc_model_index *open_folder(void) {
    static const char *const files[][2] = {
        {"text_encoder.", "tiny-sd1/text_encoder/model.fp16.safetensors"},
        {"unet.", "tiny-sd1/unet/diffusion_pytorch_model.fp16.safetensors"},
        {"vae.", "tiny-sd1/vae/diffusion_pytorch_model.fp16.safetensors"},
    };
    sdc_model_index *idx = sdc_index_new(test_logger());
    for (int i = 0; i < 3; i++)
        if (sdc_index_add_file(idx, test_ref_path(files[i][1]), files[i][0], NULL, NULL) != SDC_OK) {
            test_check(0, "index %s", files[i][1]);
            sdc_index_free(idx);
            return NULL;
        }
    return idx;
}

static int shape_eq(const sdc_tensor_info *a, const sdc_tensor_info *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->ne[i] != b->ne[i]) return 0;
    return 1;
}

/* a is b with two trailing dimensions of 1 (a 1x1 conv for a linear). */
static int shape_conv1x1_of(const sdc_tensor_info *a, const sdc_tensor_info *b) {
    if (a->ndim != b->ndim + 2 || a->ne[a->ndim - 1] != 1 || a->ne[a->ndim - 2] != 1) return 0;
    for (int i = 0; i < b->ndim; i++)
        if (a->ne[i] != b->ne[i]) return 0;
    return 1;
}

static void test_single_file_equals_folder(const sdc_ldm_map *map) {
    sdc_model_index *folder = open_folder();
    sdc_model_index *single = sdc_index_new(test_logger());
    sdc_model_index *raw = sdc_index_new(test_logger()); /* the single file under its own names */
    const char *path = test_ref_path("tiny-sd1.safetensors");
    sdc_status st = sdc_index_add_file(single, path, NULL, sdc_ldm_name_map, (void *)map);
    sdc_status st2 = sdc_index_add_file(raw, path, NULL, NULL, NULL);
    if (!test_check(folder && st == SDC_OK && st2 == SDC_OK, "index the single file through the map: %s",
                    sdc_status_str(st)))
        goto done;
    size_t nf = sdc_index_count(folder), ns = sdc_index_count(single);

    /* names, both ways */
    size_t missing = 0, extra = 0;
    for (size_t i = 0; i < nf; i++)
        if (!sdc_index_find(single, sdc_index_at(folder, i)->name)) {
            if (missing++ < 5) printf("    not in the mapped single file: %s\n", sdc_index_at(folder, i)->name);
        }
    for (size_t i = 0; i < ns; i++)
        if (!sdc_index_find(folder, sdc_index_at(single, i)->name)) {
            if (extra++ < 5) printf("    not in the folder: %s\n", sdc_index_at(single, i)->name);
        }
    test_check(missing == 0 && extra == 0 && nf == ns && ns == sdc_index_count(raw),
               "name sets equal: folder %zu, single file %zu (%zu keys), %zu missing, %zu extra", nf, ns,
               sdc_index_count(raw), missing, extra);

    /* shapes, dtypes and bytes */
    size_t bad_shape = 0, conv1x1 = 0, bad_bytes = 0, bad_inverse = 0, n_cmp = 0;
    uint64_t bytes = 0;
    for (size_t i = 0; i < nf; i++) {
        const sdc_tensor_info *a = sdc_index_at(folder, i), *b = sdc_index_find(single, a->name);
        if (!b) continue;
        char ldm[256];
        int is_conv = 0;
        const char *back = sdc_diffusers_to_ldm(map, a->name, ldm, sizeof ldm, &is_conv);
        const sdc_tensor_info *r = back ? sdc_index_find(raw, back) : NULL;
        if (!r || r->offset != b->offset) {
            if (bad_inverse++ < 5) printf("    inverse of %s: %s\n", a->name, back ? back : "(null)");
        }
        if (is_conv ? !shape_conv1x1_of(b, a) : !shape_eq(a, b)) {
            if (bad_shape++ < 5) printf("    shape differs: %s\n", a->name);
        }
        conv1x1 += is_conv;
        if (a->dtype != b->dtype || a->nbytes != b->nbytes) {
            bad_bytes++;
            continue;
        }
        void *da = malloc(a->nbytes), *db = malloc(b->nbytes);
        if (sdc_index_read_raw(folder, a, da) != SDC_OK || sdc_index_read_raw(single, b, db) != SDC_OK ||
            memcmp(da, db, a->nbytes) != 0) {
            if (bad_bytes++ < 5) printf("    bytes differ: %s\n", a->name);
        }
        bytes += a->nbytes;
        n_cmp++;
        free(da);
        free(db);
    }
    test_check(bad_shape == 0 && conv1x1 > 0, "shapes equal; %zu VAE attention weights [C,C,1,1] vs [C,C]; %zu differ",
               conv1x1, bad_shape);
    test_check(bad_bytes == 0 && n_cmp == nf, "fp16 bytes identical for %zu tensors (%.1f MiB); %zu differ", n_cmp,
               bytes / 1048576.0, bad_bytes);
    test_check(bad_inverse == 0, "diffusers -> LDM inverse gives each single-file key back: %zu wrong", bad_inverse);

    /* LDM -> diffusers -> LDM is the identity on every key of the file */
    size_t bad_round = 0;
    for (size_t i = 0; i < sdc_index_count(raw); i++) {
        const char *k = sdc_index_at(raw, i)->name;
        char d[256], l[256];
        const char *dn = sdc_ldm_to_diffusers(map, k, d, sizeof d);
        const char *ln = dn ? sdc_diffusers_to_ldm(map, dn, l, sizeof l, NULL) : NULL;
        if (!ln || strcmp(ln, k) != 0) bad_round++;
    }
    test_check(bad_round == 0, "LDM -> diffusers -> LDM round trip over %zu keys: %zu wrong", sdc_index_count(raw),
               bad_round);
done:
    sdc_index_free(folder);
    sdc_index_free(single);
    sdc_index_free(raw);
}

/* Keys found in downloaded checkpoints that are not weights, and older spellings. */
static void test_special_keys(const sdc_ldm_map *map) {
    static const char *const skipped[] = {
        "model_ema.diffusion_modelinput_blocks00weight",
        "model_ema.num_updates",
        "alphas_cumprod",
        "betas",
        "sqrt_one_minus_alphas_cumprod",
        "posterior_log_variance_clipped",
        "logvar",
        "cond_stage_model.transformer.text_model.embeddings.position_ids",
        "cond_stage_model.transformer.embeddings.position_ids",
        "first_stage_model.loss.discriminator.main.0.weight",
    };
    char out[256];
    int n_wrong = 0;
    for (size_t i = 0; i < sizeof skipped / sizeof skipped[0]; i++) {
        const char *r = sdc_ldm_to_diffusers(map, skipped[i], out, sizeof out);
        if (r) {
            printf("    %s -> %s (want skipped)\n", skipped[i], r);
            n_wrong++;
        }
    }
    test_check(n_wrong == 0, "%zu non-weight keys skipped", sizeof skipped / sizeof skipped[0]);

    const char *old = "cond_stage_model.transformer.encoder.layers.0.mlp.fc1.weight";
    const char *r = sdc_ldm_to_diffusers(map, old, out, sizeof out);
    test_check(r && strcmp(r, "text_encoder.text_model.encoder.layers.0.mlp.fc1.weight") == 0,
               "CLIP key without text_model. (old transformers): -> %s", r ? r : "(null)");
    char tiny[8];
    r = sdc_ldm_to_diffusers(map, "model.diffusion_model.out.2.weight", tiny, sizeof tiny);
    test_check(r == NULL, "an output buffer too small gives NULL, not a cut name");

    sdc_ldm_map sd1;
    sdc_ldm_map_init_sd1(&sd1);
    int same = sd1.n_rules == map->n_rules;
    for (int i = 0; same && i < sd1.n_rules; i++)
        same = strcmp(sd1.rules[i].ldm, map->rules[i].ldm) == 0 &&
            strcmp(sd1.rules[i].diffusers, map->rules[i].diffusers) == 0 && sd1.rules[i].kind == map->rules[i].kind;
    test_check(same, "the SD 1.x default layout equals the tiny model's (names do not depend on widths)");

    int attn[1] = {1};
    sdc_ldm_map bad;
    test_check(sdc_ldm_map_init(&bad, 0, 2, attn, 4, 2) == SDC_ERR_INVALID_ARG &&
                   sdc_ldm_map_init(&bad, 4, SDC_LDM_MAX_LAYERS + 1, attn, 4, 2) == SDC_ERR_INVALID_ARG,
               "layouts beyond the table's limits are rejected");
}

int main(void) {
    sdc_ldm_map *map = malloc(sizeof *map);
    if (read_layout(map)) {
        test_single_file_equals_folder(map);
        test_special_keys(map);
    }
    free(map);
    return test_finish();
}
