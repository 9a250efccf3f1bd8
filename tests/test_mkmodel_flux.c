/* test_mkmodel_flux - the random-weight model generator's Flux architectures.
 *
 * tiny-flux-schnell, tiny-flux-dev: every weight file holds exactly the reference bundle's tensor names
 * and shapes (f32: the safetensors headers are byte-identical; f16: the same names and shapes in F16);
 * every config key agrees with the reference's (model_index.json's tokenizer_2 class is the one
 * documented difference); tokenizer_2/ holds sdc's own small Unigram tokenizer; same seed -> identical bytes,
 * another seed -> other weights; the weights follow the recipe; the plan counts the files on disk.
 * flux-schnell, flux-dev: parameter and tensor counts per component, counted without writing, against
 * diffusers' FluxTransformer2DModel / AutoencoderKL and transformers' T5EncoderModel / CLIPTextModel
 * built from FLUX.1's configs on the meta device. No single file for Flux (SDC_ERR_UNSUPPORTED). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/file.h"
#include "io/config.h"
#include "io/model_files.h"
#include "mkmodel/mkmodel_internal.h"
#include "test_util.h"

static const char *tmpdir;   // test_make_tmp_dir

/* The parts of a Flux folder (text_encoder, text_encoder_2, transformer, vae) and their weight files. */
#define N_FLUX_PARTS 4
static const char *const files_f32[N_FLUX_PARTS] = {
    "text_encoder/model.safetensors", "text_encoder_2/model.safetensors",
    "transformer/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors"};
static const char *const files_f16[N_FLUX_PARTS] = {
    "text_encoder/model.fp16.safetensors", "text_encoder_2/model.fp16.safetensors",
    "transformer/diffusion_pytorch_model.fp16.safetensors", "vae/diffusion_pytorch_model.fp16.safetensors"};
/* the JSON files of a Flux folder */
static const char *const configs[] = {"model_index.json",
                                      "scheduler/scheduler_config.json",
                                      "text_encoder/config.json",
                                      "text_encoder_2/config.json",
                                      "transformer/config.json",
                                      "vae/config.json",
                                      "tokenizer/tokenizer_config.json"};
#define N_CONFIGS ((int)(sizeof configs / sizeof configs[0]))

static const char *join(const char *dir, const char *rel) {
    static char bufs[8][1200];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, rel);
    return b;
}

/* 1 when both files exist with equal bytes. */
static int same_bytes(const char *a, const char *b) {
    char *da = NULL, *db = NULL;
    size_t na = 0, nb = 0;
    int ok = sdc_read_file(a, NULL, &da, &na) == SDC_OK && sdc_read_file(b, NULL, &db, &nb) == SDC_OK && na == nb &&
        memcmp(da, db, na) == 0;
    free(da);
    free(db);
    return ok;
}

static sdc_model_index *open_file(const char *path) {
    sdc_model_index *idx = sdc_index_new(test_logger());
    if (sdc_index_add_file(idx, path, NULL, NULL, NULL) != SDC_OK) {
        sdc_index_free(idx);
        return NULL;
    }
    return idx;
}

/* The 8-byte length and the JSON header of a safetensors file. */
static int same_header(const char *a, const char *b) {
    char *d[2] = {NULL, NULL};
    size_t len[2] = {0, 0}, hl[2] = {0, 0};
    const char *p[2] = {a, b};
    int ok = 1;
    for (int k = 0; k < 2; k++) {
        ok &= sdc_read_file(p[k], NULL, &d[k], &len[k]) == SDC_OK && len[k] >= 8;
        for (int i = 0; ok && i < 8; i++) hl[k] |= (size_t)(uint8_t)d[k][i] << (8 * i);
        ok &= hl[k] + 8 <= len[k];
    }
    ok = ok && hl[0] == hl[1] && memcmp(d[0], d[1], hl[0] + 8) == 0;
    free(d[0]);
    free(d[1]);
    return ok;
}

/* Names and shapes of a generated file against the reference's; every generated tensor has dtype dt. */
static void same_tensors(const char *what, const char *gen_path, const char *ref_path, sdc_dtype dt) {
    sdc_model_index *gen = open_file(gen_path), *ref = open_file(ref_path);
    size_t missing = 0, extra = 0, shape = 0, dtype = 0;
    for (size_t i = 0; gen && ref && i < sdc_index_count(ref); i++) {
        const sdc_tensor_info *r = sdc_index_at(ref, i), *g = sdc_index_find(gen, r->name);
        if (!g) {
            if (missing++ < 3) printf("    missing: %s\n", r->name);
            continue;
        }
        int same = g->ndim == r->ndim;
        for (int d = 0; same && d < r->ndim; d++) same = g->ne[d] == r->ne[d];
        if (!same && shape++ < 3) printf("    shape differs: %s\n", r->name);
    }
    for (size_t i = 0; gen && ref && i < sdc_index_count(gen); i++) {
        const sdc_tensor_info *g = sdc_index_at(gen, i);
        if (!sdc_index_find(ref, g->name) && extra++ < 3) printf("    extra: %s\n", g->name);
        dtype += g->dtype != dt;
    }
    test_check(gen && ref && !missing && !extra && !shape && !dtype,
               "%s: %zu tensors vs %zu in the reference; missing %zu, extra %zu, shape %zu, not %s %zu", what,
               gen ? sdc_index_count(gen) : 0, ref ? sdc_index_count(ref) : 0, missing, extra, shape,
               sdc_dtype_name(dt), dtype);
    sdc_index_free(gen);
    sdc_index_free(ref);
}

/* Every key of the reference config has the same value in the generated one, and there is no other
 * key; only version stamps and the weights' dtype note may differ, and the keys in allowed. */
static void same_config(const char *gen_path, const char *ref_path, const char *what, const char *allowed) {
    static const char *const free_keys[] = {"_diffusers_version", "transformers_version", "dtype"};
    cJSON *g = NULL, *r = NULL;
    int ok =
        sdc_json_load(gen_path, test_logger(), &g) == SDC_OK && sdc_json_load(ref_path, test_logger(), &r) == SDC_OK;
    int n_diff = 0, n_keys = 0, n_allowed = 0;
    for (int pass = 0; ok && pass < 2; pass++) {
        const cJSON *a = pass ? g : r, *b = pass ? r : g, *item;
        cJSON_ArrayForEach(item, a) {
            int skip = 0;
            for (size_t k = 0; k < sizeof free_keys / sizeof free_keys[0]; k++)
                skip |= !strcmp(item->string, free_keys[k]);
            if (skip) continue;
            n_keys += !pass;
            const cJSON *other = cJSON_GetObjectItemCaseSensitive(b, item->string);
            if (other && cJSON_Compare(item, other, 1)) continue;
            if (other && allowed && !strcmp(item->string, allowed)) {
                n_allowed += !pass;
                continue;
            }
            if (n_diff++ < 5) printf("    %s: key '%s' %s\n", what, item->string, other ? "differs" : "missing");
        }
    }
    test_check(ok && n_diff == 0 && (!allowed || n_allowed == 1),
               "config %s: %d keys agree with the reference, %d differ%s%s", what, n_keys - n_allowed, n_diff,
               allowed ? "; documented difference: " : "", allowed ? allowed : "");
    cJSON_Delete(g);
    cJSON_Delete(r);
}

static void test_layout(const char *name, const char *f32, const char *f16) {
    char ref[600];
    snprintf(ref, sizeof ref, "%s", test_ref_path(name));
    for (int c = 0; c < N_FLUX_PARTS; c++) {
        char what[200];
        snprintf(what, sizeof what, "%s %s f32", name, files_f32[c]);
        same_tensors(what, join(f32, files_f32[c]), join(ref, files_f32[c]), SDC_DTYPE_F32);
        snprintf(what, sizeof what, "%s %s", name, files_f16[c]);
        same_tensors(what, join(f16, files_f16[c]), join(ref, files_f32[c]), SDC_DTYPE_F16);
        test_check(same_header(join(f32, files_f32[c]), join(ref, files_f32[c])),
                   "%s %s: safetensors header byte-identical to the reference", name, files_f32[c]);
    }
    for (int i = 0; i < N_CONFIGS; i++) {
        char what[200];
        snprintf(what, sizeof what, "%s/%s", name, configs[i]);
        /* FLUX.1's folders name T5TokenizerFast; transformers 5 saved the reference's as TokenizersBackend */
        same_config(join(f32, configs[i]), join(ref, configs[i]), what, i == 0 ? "tokenizer_2" : NULL);
    }
    cJSON *mi = NULL;
    sdc_json_load(join(f32, "model_index.json"), test_logger(), &mi);
    const cJSON *tok2 = mi ? cJSON_GetObjectItemCaseSensitive(mi, "tokenizer_2") : NULL;
    const cJSON *cls = cJSON_IsArray(tok2) ? cJSON_GetArrayItem(tok2, 1) : NULL;
    test_check(cJSON_IsString(cls) && !strcmp(cls->valuestring, "T5TokenizerFast"),
               "%s model_index.json: tokenizer_2 is T5TokenizerFast", name);
    cJSON_Delete(mi);
    /* tokenizer_2/: sdc's own small Unigram tokenizer (no real T5 vocabulary is available) */
    cJSON *tj = NULL;
    sdc_json_load(join(f32, "tokenizer_2/tokenizer.json"), test_logger(), &tj);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(tj, "model");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(tj, "pre_tokenizer"), "type");
    const int nv = cJSON_GetArraySize(vocab);
    const cJSON *v1 = cJSON_GetArrayItem(cJSON_GetArrayItem(vocab, 1), 0);
    test_check(cJSON_IsString(type) && !strcmp(type->valuestring, "Unigram") && cJSON_IsString(pre) &&
                   !strcmp(pre->valuestring, "Metaspace") && nv > 200 && nv < 1000 && cJSON_IsString(v1) &&
                   !strcmp(v1->valuestring, "</s>") &&
                   same_bytes(join(f32, "tokenizer_2/tokenizer.json"), join(f16, "tokenizer_2/tokenizer.json")),
               "%s tokenizer_2/tokenizer.json: a Unigram tokenizer (Metaspace, %d pieces, </s> = 1), the same in both "
               "folders",
               name, nv);
    cJSON_Delete(tj);
    test_check(same_bytes(join(f32, "tokenizer/vocab.json"), test_ref_path("clip-tokenizer/vocab.json")) &&
                   same_bytes(join(f32, "tokenizer/merges.txt"), test_ref_path("clip-tokenizer/merges.txt")),
               "%s tokenizer/: CLIP vocab.json and merges.txt copied", name);
}

/* Same seed: every file byte-identical; another seed: every weight tensor differs. */
static void test_determinism(const char *f16, const char *f16_again, const char *f16_seed2) {
    int same = 0, n = 0;
    for (int c = 0; c < N_FLUX_PARTS; c++, n++)
        same += same_bytes(join(f16, files_f16[c]), join(f16_again, files_f16[c]));
    for (int i = 0; i < N_CONFIGS; i++, n++) same += same_bytes(join(f16, configs[i]), join(f16_again, configs[i]));
    test_check(same == n, "tiny-flux-schnell, same seed: %d of %d files byte-identical", same, n);
    size_t n_t = 0, differ = 0;
    for (int c = 0; c < N_FLUX_PARTS; c++) {
        sdc_model_index *a = open_file(join(f16, files_f16[c])), *b = open_file(join(f16_seed2, files_f16[c]));
        for (size_t i = 0; a && b && i < sdc_index_count(a); i++, n_t++) {
            const sdc_tensor_info *ta = sdc_index_at(a, i), *tb = sdc_index_find(b, ta->name);
            char *da = malloc(ta->nbytes), *db = malloc(ta->nbytes);
            differ += tb && tb->nbytes == ta->nbytes && sdc_index_read_raw(a, ta, da) == SDC_OK &&
                sdc_index_read_raw(b, tb, db) == SDC_OK && memcmp(da, db, ta->nbytes) != 0;
            free(da);
            free(db);
        }
        sdc_index_free(a);
        sdc_index_free(b);
    }
    test_check(n_t > 0 && differ == n_t, "tiny-flux-schnell, another seed: %zu of %zu tensors differ", differ, n_t);
}

/* The recipe (mkmodel.h), pooled over the tensors of each kind as their names and ranks say. */
enum {
    K_FAN_IN,
    K_EMBEDDING,
    K_NORM,
    K_VECTOR,
    K_COUNT
};
static const char *const kind_name[K_COUNT] = {"rank>=2 N(0,1/fan_in)", "embeddings N(0,0.25)", "norm scales 1+0.1N",
                                               "other vectors 0.05N"};

static int kind_of(const sdc_tensor_info *t) {
    size_t n = strlen(t->name);
    if (t->ndim >= 2)
        return strstr(t->name, "embedding.weight") || strstr(t->name, "relative_attention_bias") ? K_EMBEDDING
                                                                                                 : K_FAN_IN;
    return n > 7 && strcmp(t->name + n - 7, ".weight") == 0 ? K_NORM : K_VECTOR;
}

static void test_statistics(const char *f32) {
    double s1[K_COUNT] = {0}, s2[K_COUNT] = {0}, cnt[K_COUNT] = {0};
    int rms_norms = 0;
    for (int c = 0; c < N_FLUX_PARTS; c++) {
        sdc_model_index *idx = open_file(join(f32, files_f32[c]));
        for (size_t i = 0; idx && i < sdc_index_count(idx); i++) {
            const sdc_tensor_info *t = sdc_index_at(idx, i);
            size_t ne = (size_t)sdc_tensor_info_nelem(t);
            float *x = malloc(4 * ne + 4);
            if (sdc_index_read_f32(idx, t, x) != SDC_OK) {
                free(x);
                continue;
            }
            int k = kind_of(t);
            rms_norms += k == K_NORM && (strstr(t->name, "norm_q") || strstr(t->name, "layer_norm"));
            double fan_in = 1;
            for (int d = 1; d < t->ndim; d++) fan_in *= (double)t->ne[d];
            double shift = k == K_NORM ? 1.0 : 0.0;
            double scale = k == K_FAN_IN ? 1.0 / sqrt(fan_in) : k == K_EMBEDDING ? 0.5 : k == K_NORM ? 0.1 : 0.05;
            for (size_t j = 0; j < ne; j++) {
                double z = (x[j] - shift) / scale;
                s1[k] += z;
                s2[k] += z * z;
            }
            cnt[k] += (double)ne;
            free(x);
        }
        sdc_index_free(idx);
    }
    test_check(rms_norms > 0, "tiny-flux-dev: %d RMS norm scales (norm_q, T5 layer_norm) drawn as norm scales",
               rms_norms);
    for (int k = 0; k < K_COUNT; k++) {
        double n = cnt[k], mean = s1[k] / n, sd = sqrt(s2[k] / n - mean * mean);
        char what[128];
        snprintf(what, sizeof what, "tiny-flux-dev %s over %.0f values", kind_name[k], n);
        test_check_err(what, "|mean of z|", fabs(mean), 5.0 / sqrt(n));
        test_check_err(what, "|std of z - 1|", fabs(sd - 1.0), fmax(0.02, 5.0 / sqrt(2 * n)));
    }
}

static uint64_t file_size(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n > 0 ? (uint64_t)n : 0;
}

/* FLUX.1 built from its configs by diffusers 0.42.1 / transformers 5.25.0 on the meta device:
 * FluxTransformer2DModel(guidance_embeds = 0 / 1), T5EncoderModel (t5-v1_1-xxl; its state dict has 220
 * entries with the tied encoder.embed_tokens.weight, which the saved file leaves out), CLIPTextModel,
 * AutoencoderKL (use_quant_conv = use_post_quant_conv = False). Counts in sdc_mk_part order. */
static const uint64_t flux_params[2][SDC_MK_N_PARTS] = {
    {123060480, 0, 83819683, 4762310656, 11891178560},
    {123060480, 0, 83819683, 4762310656, 11901408320},
};
static const uint64_t flux_tensors[2][SDC_MK_N_PARTS] = {{196, 0, 244, 219, 1156}, {196, 0, 244, 219, 1160}};

static void test_plan(const char *schnell_f32) {
    sdc_mkmodel_info tiny;
    sdc_status st = sdc_mkmodel_plan("tiny-flux-schnell", 0, SDC_DTYPE_F32, &tiny, test_logger());
    uint64_t on_disk = 0;
    for (int c = 0; c < N_FLUX_PARTS; c++) on_disk += file_size(join(schnell_f32, files_f32[c]));
    test_check(st == SDC_OK && tiny.weight_file_bytes == on_disk,
               "tiny-flux-schnell plan: folder f32 %llu bytes (on disk %llu)",
               (unsigned long long)tiny.weight_file_bytes, (unsigned long long)on_disk);

    static const char *const full[2] = {"flux-schnell", "flux-dev"};
    for (int v = 0; v < 2; v++) {
        sdc_mkmodel_info f16;
        double t0 = test_now();
        st = sdc_mkmodel_plan(full[v], 0, SDC_DTYPE_F16, &f16, test_logger());
        if (!test_check(st == SDC_OK, "%s plan: %s in %.2f s", full[v], sdc_status_str(st), test_now() - t0)) continue;
        uint64_t total = 0;
        for (int c = 0; c < SDC_MK_N_PARTS; c++) {
            total += f16.n_params[c];
            test_check(f16.n_params[c] == flux_params[v][c] && f16.n_tensors[c] == flux_tensors[v][c],
                       "%s %s: %llu parameters in %llu tensors (diffusers/transformers: %llu in %llu)", full[v],
                       sdc_mk_part_name((sdc_mk_part)c), (unsigned long long)f16.n_params[c],
                       (unsigned long long)f16.n_tensors[c], (unsigned long long)flux_params[v][c],
                       (unsigned long long)flux_tensors[v][c]);
        }
        uint64_t hdr = f16.weight_file_bytes - 2 * total;
        test_check(f16.weight_file_bytes > 2 * total && hdr < (1 << 20),
                   "%s folder f16: %.2f GB (%llu parameters; headers %llu bytes)", full[v], f16.weight_file_bytes / 1e9,
                   (unsigned long long)total, (unsigned long long)hdr);
    }
}

static void test_errors(void) {
    sdc_mkmodel_info info;
    sdc_status st = sdc_mkmodel_plan("flux-dev", 1, SDC_DTYPE_F16, &info, test_capture_logger());
    test_check(st == SDC_ERR_UNSUPPORTED && strstr(test_last_error(), "Flux"), "flux-dev single-file plan: %s ('%s')",
               sdc_status_str(st), test_last_error());
    const char *out = test_tmp_path("flux.safetensors");
    st = sdc_mkmodel("tiny-flux-schnell", out, 1, SDC_DTYPE_F16, 1, NULL, test_capture_logger());
    test_check(st == SDC_ERR_UNSUPPORTED && access(out, F_OK) != 0 && strstr(test_last_error(), "Flux"),
               "tiny-flux-schnell single file: %s, no file ('%s')", sdc_status_str(st), test_last_error());
    test_check(!sdc_mk_arch_find("flux-dev") && !sdc_mk_flux_arch_find("sd15") && sdc_mk_flux_arch_find("flux-dev") &&
                   !sdc_mk_has_part(sdc_mk_arch_find("sdxl"), SDC_MK_TRANSFORMER) &&
                   !sdc_mk_flux_has_part(sdc_mk_flux_arch_find("flux-dev"), SDC_MK_UNET),
               "Flux and SD names and parts are disjoint");
    st = sdc_mkmodel_flux_folder(sdc_mk_flux_arch_find("tiny-flux-dev"), test_tmp_path("notok"), SDC_DTYPE_F16, 1,
                                 test_ref_path("clip-tokenizer"), test_tmp_path("no-such-tokenizer"),
                                 test_capture_logger());
    test_check(st == SDC_ERR_NOT_FOUND && access(join(test_tmp_path("notok"), "model_index.json"), F_OK) != 0,
               "missing T5 tokenizer files: %s, no model_index.json written ('%s')", sdc_status_str(st),
               test_last_error());
}

int main(void) {
    tmpdir = test_make_tmp_dir("test-mkmodel-flux");
    enum {
        S32,
        S16,
        S16_AGAIN,
        S16_SEED2,
        D32,
        D16,
        N_GEN
    };
    static const char *const arch[N_GEN] = {"tiny-flux-schnell", "tiny-flux-schnell", "tiny-flux-schnell",
                                            "tiny-flux-schnell", "tiny-flux-dev",     "tiny-flux-dev"};
    static const char *const dir[N_GEN] = {"s32", "s16", "s16-again", "s16-seed2", "d32", "d16"};
    static const sdc_dtype dt[N_GEN] = {SDC_DTYPE_F32, SDC_DTYPE_F16, SDC_DTYPE_F16,
                                        SDC_DTYPE_F16, SDC_DTYPE_F32, SDC_DTYPE_F16};
    static const uint64_t seed[N_GEN] = {42, 42, 42, 43, 42, 42};
    char path[N_GEN][600];
    int ok = 1;
    double t0 = test_now();
    for (int i = 0; i < N_GEN; i++) {
        snprintf(path[i], sizeof path[i], "%s", test_tmp_path(dir[i]));
        ok &=
            sdc_mkmodel(arch[i], path[i], 0, dt[i], seed[i], test_ref_path("clip-tokenizer"), test_logger()) == SDC_OK;
    }
    if (test_check(ok, "generate tiny-flux-schnell four times and tiny-flux-dev twice in %.2f s", test_now() - t0)) {
        test_layout("tiny-flux-schnell", path[S32], path[S16]);
        test_layout("tiny-flux-dev", path[D32], path[D16]);
        test_determinism(path[S16], path[S16_AGAIN], path[S16_SEED2]);
        test_statistics(path[D32]);
        test_plan(path[S32]);
    }
    test_errors();
    test_check(test_count_temporaries(tmpdir) == 0, "no temporary files left");
    test_rm_tree(tmpdir);
    return test_finish();
}
