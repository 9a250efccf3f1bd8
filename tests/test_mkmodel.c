/* test_mkmodel - the random-weight model generator and the streaming safetensors writer.
 *
 * Writer: re-writing reference files tensor by tensor (borrowed bytes and fill callbacks) gives the
 * reference files byte for byte; errors leave nothing behind.
 * Generator (tiny-sd1): folder f32, folder f16 and single file f16 hold exactly the reference
 * bundle's tensor names, shapes and dtypes (the headers are byte-identical); configs parse and agree
 * with the reference configs; same seed -> identical bytes, other seed -> other weights; folder and
 * single file hold the same values; the weights follow the recipe (std within a few % of the target).
 * sd15: counted without writing (parameters per component, file sizes).
 * tiny-sdxl: folder f32 and f16 hold exactly the reference tiny-sdxl's tensors (headers byte-identical),
 * every config key agrees with the reference's and the configs parse to the same structs, the folder
 * opens as an SDXL model; same seed -> identical bytes; the recipe holds for text_encoder_2 too.
 * sdxl: parameter counts of diffusers' / transformers' SDXL base modules, counted without writing;
 * no single file for SDXL (SDC_ERR_UNSUPPORTED). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/file.h"
#include "io/config.h"
#include "io/ldm_names.h"
#include "io/model_files.h"
#include "io/model_index.h"
#include "io/st_writer.h"
#include "mkmodel/mkmodel_internal.h"
#include "model/clip.h"
#include "model/unet.h"
#include "model/vae.h"
#include "test_util.h"

static const char *tmpdir;   // test_make_tmp_dir

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

static sdc_model_index *open_index(const char *path, const char *prefix, sdc_name_map_fn map, void *user) {
    sdc_model_index *idx = sdc_index_new(test_logger());
    if (sdc_index_add_file(idx, path, prefix, map, user) != SDC_OK) {
        sdc_index_free(idx);
        return NULL;
    }
    return idx;
}

/* ------------------------------------------------------------------------------------------------
 * the safetensors writer
 * ---------------------------------------------------------------------------------------------- */

typedef struct src_tensor {
    const uint8_t *bytes;
    size_t esize;
} src_tensor;

/* A fill callback that copies from memory (the elements asked for, in order). */
static sdc_status copy_fill(void *user, void *dst, uint64_t first, uint64_t count) {
    const src_tensor *s = user;
    memcpy(dst, s->bytes + first * s->esize, count * s->esize);
    return SDC_OK;
}

static sdc_status failing_fill(void *user, void *dst, uint64_t first, uint64_t count) {
    (void)user, (void)dst, (void)first, (void)count;
    return SDC_ERR_IO;
}

/* Reads every tensor of a reference file and writes them again, through fill callbacks or
 * borrowed bytes, added in reverse order (the writer sorts). */
static void rewrite_reference(const char *rel, int with_metadata, int use_fill) {
    const char *ref = test_ref_path(rel);
    sdc_model_index *idx = open_index(ref, NULL, NULL, NULL);
    if (!test_check(idx != NULL, "index %s", rel)) return;
    size_t n = sdc_index_count(idx);
    uint8_t **data = calloc(n, sizeof *data);
    src_tensor *src = calloc(n, sizeof *src);
    sdc_st_writer *w = sdc_st_writer_new(test_logger());
    if (with_metadata) sdc_st_writer_set_metadata(w, "format", "pt");
    sdc_status st = SDC_OK;
    for (size_t k = n; k-- > 0 && st == SDC_OK;) {
        const sdc_tensor_info *t = sdc_index_at(idx, k);
        data[k] = malloc(t->nbytes ? t->nbytes : 1);
        st = sdc_index_read_raw(idx, t, data[k]);
        src[k] = (src_tensor){data[k], sdc_dtype_size(t->dtype)};
        if (st == SDC_OK)
            st = use_fill ? sdc_st_writer_add_fill(w, t->name, t->dtype, t->ndim, t->ne, copy_fill, &src[k])
                          : sdc_st_writer_add(w, t->name, t->dtype, t->ndim, t->ne, data[k]);
    }
    const char *out = test_tmp_path("rewrite.safetensors");
    uint64_t planned = sdc_st_writer_file_size(w);
    if (st == SDC_OK) st = sdc_st_writer_write(w, out);
    char *a = NULL;
    size_t na = 0;
    sdc_read_file(out, NULL, &a, &na);
    test_check(st == SDC_OK && same_bytes(out, ref) && planned == na,
               "writer (%s) rewrites %s byte for byte: %s, %zu tensors, %zu bytes (planned %llu)",
               use_fill ? "fill callbacks" : "borrowed bytes", rel, sdc_status_str(st), n, na,
               (unsigned long long)planned);
    free(a);
    unlink(out);
    for (size_t k = 0; k < n; k++) free(data[k]);
    free(data);
    free(src);
    sdc_st_writer_free(w);
    sdc_index_free(idx);
}

static void test_writer(void) {
    rewrite_reference("tiny-sd1/text_encoder/model.safetensors", 1, 1); /* 6 MiB tensor: several chunks */
    rewrite_reference("tiny-sd1/unet/diffusion_pytorch_model.fp16.safetensors", 1, 0);
    rewrite_reference("tiny-sd1.safetensors", 0, 1);

    /* mixed dtypes: widest first, as the Python library orders them; read back by the index */
    float f[6];
    test_fill_normal(f, 6, 1, 1.0f);
    uint16_t h[3] = {0x3c00, 0xc000, 0x7bff};
    int64_t i64[2] = {-5, 1LL << 40};
    sdc_st_writer *w = sdc_st_writer_new(test_logger());
    sdc_st_writer_add(w, "a.half", SDC_DTYPE_F16, 1, (int64_t[]){3}, h);
    sdc_st_writer_add(w, "b.float", SDC_DTYPE_F32, 2, (int64_t[]){2, 3}, f);
    sdc_st_writer_add(w, "c.long", SDC_DTYPE_I64, 1, (int64_t[]){2}, i64);
    sdc_st_writer_add(w, "d.scalar", SDC_DTYPE_F32, 0, NULL, f);
    sdc_st_writer_add(w, "e.empty", SDC_DTYPE_F32, 2, (int64_t[]){0, 4}, f);
    const char *path = test_tmp_path("mixed.safetensors");
    sdc_status st = sdc_st_writer_write(w, path);
    sdc_st_writer_free(w);
    sdc_model_index *idx = st == SDC_OK ? open_index(path, NULL, NULL, NULL) : NULL;
    const sdc_tensor_info *ta = idx ? sdc_index_find(idx, "a.half") : NULL;
    const sdc_tensor_info *tb = idx ? sdc_index_find(idx, "b.float") : NULL;
    const sdc_tensor_info *tc = idx ? sdc_index_find(idx, "c.long") : NULL;
    const sdc_tensor_info *td = idx ? sdc_index_find(idx, "d.scalar") : NULL;
    int ok = ta && tb && tc && td && tc->offset < tb->offset && tb->offset < ta->offset && td->ndim == 0 &&
        tc->offset % 8 == 0 && tb->offset % 4 == 0 && sdc_index_count(idx) == 5;
    float back[6] = {0};
    uint16_t hb[3] = {0};
    ok = ok && sdc_index_read_raw(idx, tb, back) == SDC_OK && memcmp(back, f, sizeof f) == 0 &&
        sdc_index_read_raw(idx, ta, hb) == SDC_OK && memcmp(hb, h, sizeof h) == 0;
    test_check(st == SDC_OK && ok,
               "mixed dtypes, a scalar and an empty tensor: I64 < F32 < F16 in file order, "
               "aligned, read back equal (%s)",
               sdc_status_str(st));
    sdc_index_free(idx);
    unlink(path);

    /* errors: nothing is left behind */
    w = sdc_st_writer_new(test_capture_logger());
    sdc_st_writer_add(w, "x", SDC_DTYPE_F32, 1, (int64_t[]){2}, f);
    sdc_status dup = sdc_st_writer_add(w, "x", SDC_DTYPE_F32, 1, (int64_t[]){2}, f);
    st = sdc_st_writer_write(w, test_tmp_path("dup.safetensors"));
    test_check(dup == SDC_ERR_INVALID_ARG && st == SDC_ERR_INVALID_ARG &&
                   access(test_tmp_path("dup.safetensors"), F_OK),
               "duplicate name: %s, then write %s, no file ('%s')", sdc_status_str(dup), sdc_status_str(st),
               test_last_error());
    sdc_st_writer_free(w);
    w = sdc_st_writer_new(test_capture_logger());
    st = sdc_st_writer_add(w, "neg", SDC_DTYPE_F32, 1, (int64_t[]){-1}, f);
    test_check(st == SDC_ERR_INVALID_ARG, "negative dimension: %s", sdc_status_str(st));
    sdc_st_writer_free(w);
    w = sdc_st_writer_new(test_capture_logger());
    sdc_st_writer_add(w, "ok", SDC_DTYPE_F32, 1, (int64_t[]){6}, f);
    sdc_st_writer_add_fill(w, "fails", SDC_DTYPE_F32, 1, (int64_t[]){1000}, failing_fill, NULL);
    st = sdc_st_writer_write(w, test_tmp_path("fail.safetensors"));
    test_check(st == SDC_ERR_IO && access(test_tmp_path("fail.safetensors"), F_OK) &&
                   test_count_temporaries(tmpdir) == 0,
               "failing fill callback: %s, no file, no temporary ('%s')", sdc_status_str(st), test_last_error());
    st = sdc_st_writer_write(w, "/nonexistent-sdc-dir/x.safetensors");
    test_check(st == SDC_ERR_IO, "unwritable path: %s ('%s')", sdc_status_str(st), test_last_error());
    sdc_st_writer_free(w);
}

/* ------------------------------------------------------------------------------------------------
 * the generator
 * ---------------------------------------------------------------------------------------------- */

/* The weight files of each part (sdc_mk_part order); SD 1.x models have the first SD1_PARTS, SDXL the
 * first XL_PARTS (Flux: test_mkmodel_flux). */
#define SD1_PARTS 3
#define XL_PARTS 4
static const char *const comp_files_f32[SDC_MK_N_PARTS] = {
    "text_encoder/model.safetensors", "unet/diffusion_pytorch_model.safetensors",
    "vae/diffusion_pytorch_model.safetensors", "text_encoder_2/model.safetensors"};
static const char *const comp_files_f16[SDC_MK_N_PARTS] = {
    "text_encoder/model.fp16.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors",
    "vae/diffusion_pytorch_model.fp16.safetensors", "text_encoder_2/model.fp16.safetensors"};

static const char *join(const char *dir, const char *rel) {
    static char bufs[8][1200];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, rel);
    return b;
}

/* Names, shapes and dtypes of two indexes: how many differ. */
static int same_tensors(const char *what, sdc_model_index *gen, sdc_model_index *ref) {
    if (!gen || !ref) return test_check(0, "%s: cannot index both files", what);
    size_t missing = 0, extra = 0, shape = 0, dtype = 0;
    for (size_t i = 0; i < sdc_index_count(ref); i++) {
        const sdc_tensor_info *r = sdc_index_at(ref, i), *g = sdc_index_find(gen, r->name);
        if (!g) {
            if (missing++ < 3) printf("    missing: %s\n", r->name);
            continue;
        }
        int same = g->ndim == r->ndim;
        for (int d = 0; same && d < r->ndim; d++) same = g->ne[d] == r->ne[d];
        if (!same && shape++ < 3) printf("    shape differs: %s\n", r->name);
        dtype += g->dtype != r->dtype;
    }
    for (size_t i = 0; i < sdc_index_count(gen); i++)
        if (!sdc_index_find(ref, sdc_index_at(gen, i)->name) && extra++ < 3)
            printf("    extra: %s\n", sdc_index_at(gen, i)->name);
    return test_check(!missing && !extra && !shape && !dtype,
                      "%s: %zu tensors vs %zu in the reference; missing %zu, extra %zu, shape %zu, dtype %zu", what,
                      sdc_index_count(gen), sdc_index_count(ref), missing, extra, shape, dtype);
}

/* The 8-byte length and the JSON header of a safetensors file. */
static char *header_of(const char *path, size_t *n) {
    char *d = NULL;
    size_t len = 0;
    *n = 0;
    if (sdc_read_file(path, NULL, &d, &len) != SDC_OK || len < 8) {
        free(d);
        return NULL;
    }
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)(uint8_t)d[i] << (8 * i);
    *n = hl + 8 <= len ? (size_t)hl + 8 : len;
    return d;
}

static int same_header(const char *a, const char *b) {
    size_t na, nb;
    char *ha = header_of(a, &na), *hb = header_of(b, &nb);
    int ok = ha && hb && na == nb && memcmp(ha, hb, na) == 0;
    free(ha);
    free(hb);
    return ok;
}

/* Every key of the reference config has the same value in the generated one, and there is no other
 * key; only version stamps and the weights' dtype note may differ. */
static void same_config(const char *gen_path, const char *ref_rel) {
    static const char *const free_keys[] = {"_diffusers_version", "transformers_version", "dtype"};
    cJSON *g = NULL, *r = NULL;
    int ok = sdc_json_load(gen_path, test_logger(), &g) == SDC_OK &&
        sdc_json_load(test_ref_path(ref_rel), test_logger(), &r) == SDC_OK;
    int n_diff = 0, n_keys = 0;
    for (int pass = 0; ok && pass < 2; pass++) {
        const cJSON *a = pass ? g : r, *b = pass ? r : g, *item;
        cJSON_ArrayForEach(item, a) {
            int skip = 0;
            for (size_t k = 0; k < sizeof free_keys / sizeof free_keys[0]; k++)
                skip |= !strcmp(item->string, free_keys[k]);
            if (skip) continue;
            n_keys += !pass;
            const cJSON *other = cJSON_GetObjectItemCaseSensitive(b, item->string);
            if (!other || !cJSON_Compare(item, other, 1)) {
                if (n_diff++ < 5) printf("    %s: key '%s' %s\n", ref_rel, item->string, other ? "differs" : "missing");
            }
        }
    }
    test_check(ok && n_diff == 0, "config %s: %d keys agree with the reference, %d differ", ref_rel, n_keys, n_diff);
    cJSON_Delete(g);
    cJSON_Delete(r);
}

static sdc_status gen(const char *out, int single, sdc_dtype dt, uint64_t seed) {
    return sdc_mkmodel("tiny-sd1", out, single, dt, seed, test_ref_path("clip-tokenizer"), test_logger());
}

static sdc_status map_from_config(const char *folder, sdc_ldm_map *m) {
    cJSON *unet = NULL, *vae = NULL;
    const char *types[SDC_LDM_MAX_BLOCKS];
    int n = 0, lpb = 0, vn = 0, vlpb = 0, ch[SDC_LDM_MAX_BLOCKS], attn[SDC_LDM_MAX_BLOCKS];
    sdc_status st = sdc_json_load(join(folder, "unet/config.json"), test_logger(), &unet);
    if (st == SDC_OK) st = sdc_json_load(join(folder, "vae/config.json"), test_logger(), &vae);
    if (st == SDC_OK) st = sdc_cfg_string_list(unet, "down_block_types", "unet", NULL, types, SDC_LDM_MAX_BLOCKS, &n);
    if (st == SDC_OK) st = sdc_cfg_int(unet, "layers_per_block", "unet", NULL, &lpb);
    if (st == SDC_OK) st = sdc_cfg_int_list(vae, "block_out_channels", "vae", NULL, ch, SDC_LDM_MAX_BLOCKS, &vn);
    if (st == SDC_OK) st = sdc_cfg_int(vae, "layers_per_block", "vae", NULL, &vlpb);
    for (int i = 0; st == SDC_OK && i < n; i++) attn[i] = strcmp(types[i], "CrossAttnDownBlock2D") == 0;
    if (st == SDC_OK) st = sdc_ldm_map_init(m, n, lpb, attn, vn, vlpb);
    cJSON_Delete(unet);
    cJSON_Delete(vae);
    return st;
}

/* The weight files of a folder's first n_parts parts in one index, with their component prefixes. */
static sdc_model_index *open_folder(const char *dir, const char *const *files, int n_parts) {
    static const char *const prefix[SDC_MK_N_PARTS] = {"text_encoder.", "unet.", "vae.", "text_encoder_2."};
    sdc_model_index *idx = sdc_index_new(test_logger());
    for (int c = 0; c < n_parts; c++)
        if (sdc_index_add_file(idx, join(dir, files[c]), prefix[c], NULL, NULL) != SDC_OK) {
            sdc_index_free(idx);
            return NULL;
        }
    return idx;
}

static void test_layout(const char *f32, const char *f16, const char *single) {
    for (int c = 0; c < SD1_PARTS; c++) {
        sdc_model_index *g = open_index(join(f32, comp_files_f32[c]), NULL, NULL, NULL);
        sdc_model_index *r = open_index(test_ref_path(join("tiny-sd1", comp_files_f32[c])), NULL, NULL, NULL);
        same_tensors(comp_files_f32[c], g, r);
        sdc_index_free(g);
        sdc_index_free(r);
        g = open_index(join(f16, comp_files_f16[c]), NULL, NULL, NULL);
        r = open_index(test_ref_path(join("tiny-sd1", comp_files_f16[c])), NULL, NULL, NULL);
        same_tensors(comp_files_f16[c], g, r);
        sdc_index_free(g);
        sdc_index_free(r);
        int h32 = same_header(join(f32, comp_files_f32[c]), test_ref_path(join("tiny-sd1", comp_files_f32[c])));
        int h16 = same_header(join(f16, comp_files_f16[c]), test_ref_path(join("tiny-sd1", comp_files_f16[c])));
        test_check(h32 && h16, "%s: safetensors headers byte-identical to the reference (f32 %s, f16 %s)",
                   sdc_mk_part_name((sdc_mk_part)c), h32 ? "yes" : "no", h16 ? "yes" : "no");
    }
    sdc_model_index *g = open_index(single, NULL, NULL, NULL);
    sdc_model_index *r = open_index(test_ref_path("tiny-sd1.safetensors"), NULL, NULL, NULL);
    same_tensors("single file f16 vs tiny-sd1.safetensors", g, r);
    test_check(same_header(single, test_ref_path("tiny-sd1.safetensors")),
               "single file: header byte-identical to tiny-sd1.safetensors");
    sdc_index_free(g);
    sdc_index_free(r);

    same_config(join(f32, "model_index.json"), "tiny-sd1/model_index.json");
    same_config(join(f32, "scheduler/scheduler_config.json"), "tiny-sd1/scheduler/scheduler_config.json");
    same_config(join(f32, "text_encoder/config.json"), "tiny-sd1/text_encoder/config.json");
    same_config(join(f32, "unet/config.json"), "tiny-sd1/unet/config.json");
    same_config(join(f32, "vae/config.json"), "tiny-sd1/vae/config.json");
    same_config(join(f32, "tokenizer/tokenizer_config.json"), "tiny-sd1/tokenizer/tokenizer_config.json");
    test_check(same_bytes(join(f32, "tokenizer/vocab.json"), test_ref_path("clip-tokenizer/vocab.json")) &&
                   same_bytes(join(f32, "tokenizer/merges.txt"), test_ref_path("clip-tokenizer/merges.txt")),
               "tokenizer vocab.json and merges.txt copied");

    sdc_model_index *all = open_folder(f16, comp_files_f16, SD1_PARTS);
    sdc_model_files *mf = NULL;
    sdc_status st = sdc_model_files_open(f16, SDC_VARIANT_AUTO, test_logger(), &mf);
    if (st == SDC_OK) st = sdc_model_files_use_all(mf, test_logger());
    size_t want = all ? sdc_index_count(all) : 0, got = mf ? sdc_index_count(mf->index) : 0;
    test_check(st == SDC_OK && mf->tokenizer_dir && got == want && want > 0,
               "the generated f16 folder opens as a model (sdc_model_files_open): %s, %zu of %zu tensors",
               sdc_status_str(st), got, want);
    sdc_model_files_free(mf);
    sdc_index_free(all);
}

static const char *const folder_files[] = {
    "model_index.json",
    "scheduler/scheduler_config.json",
    "text_encoder/config.json",
    "text_encoder/model.fp16.safetensors",
    "unet/config.json",
    "unet/diffusion_pytorch_model.fp16.safetensors",
    "vae/config.json",
    "vae/diffusion_pytorch_model.fp16.safetensors",
    "tokenizer/tokenizer_config.json",
    "tokenizer/vocab.json",
    "tokenizer/merges.txt",
};

/* Another seed: every tensor of the first n_parts differs, the layout does not. */
static void seeds_differ(const char *what, const char *f16, const char *f16_seed2, int n_parts) {
    sdc_model_index *a = open_folder(f16, comp_files_f16, n_parts),
                    *b = open_folder(f16_seed2, comp_files_f16, n_parts);
    size_t n_t = a && b ? sdc_index_count(a) : 0, differ = 0;
    for (size_t i = 0; i < n_t; i++) {
        const sdc_tensor_info *ta = sdc_index_at(a, i), *tb = sdc_index_find(b, ta->name);
        if (!tb || tb->nbytes != ta->nbytes) continue;
        char *da = malloc(ta->nbytes), *db = malloc(tb->nbytes);
        if (sdc_index_read_raw(a, ta, da) == SDC_OK && sdc_index_read_raw(b, tb, db) == SDC_OK &&
            memcmp(da, db, ta->nbytes) != 0)
            differ++;
        free(da);
        free(db);
    }
    test_check(n_t > 0 && differ == n_t, "%s: %zu of %zu tensors differ", what, differ, n_t);
    sdc_index_free(a);
    sdc_index_free(b);
}

static void test_determinism(const char *f16, const char *f16_again, const char *f16_seed2, const char *single,
                             const char *single_again) {
    size_t n = sizeof folder_files / sizeof folder_files[0], same = 0;
    for (size_t i = 0; i < n; i++) {
        int s = same_bytes(join(f16, folder_files[i]), join(f16_again, folder_files[i]));
        if (!s) printf("    differs: %s\n", folder_files[i]);
        same += s;
    }
    test_check(same == n && same_bytes(single, single_again),
               "same seed: %zu of %zu folder files and the single file byte-identical", same, n);

    seeds_differ("another seed", f16, f16_seed2, SD1_PARTS);
}

/* The folder f16 and the single file hold the same values; f16 is f32 rounded; all finite. */
static void test_same_values(const char *f32, const char *f16, const char *single) {
    sdc_ldm_map *map = malloc(sizeof *map);
    sdc_status st = map_from_config(f16, map);
    sdc_model_index *i32 = open_folder(f32, comp_files_f32, SD1_PARTS),
                    *i16 = open_folder(f16, comp_files_f16, SD1_PARTS);
    sdc_model_index *is = st == SDC_OK ? open_index(single, NULL, sdc_ldm_name_map, map) : NULL;
    if (!test_check(i32 && i16 && is, "index the generated folders and the single file through the LDM map")) goto done;
    size_t n = sdc_index_count(i16), same_single = 0, rounded = 0, finite = 0;
    for (size_t i = 0; i < n; i++) {
        const sdc_tensor_info *t16 = sdc_index_at(i16, i), *ts = sdc_index_find(is, t16->name),
                              *t32 = sdc_index_find(i32, t16->name);
        size_t ne = (size_t)sdc_tensor_info_nelem(t16);
        uint16_t *h = malloc(2 * ne + 2), *hs = malloc(2 * ne + 2), *h32 = malloc(2 * ne + 2);
        float *x = malloc(4 * ne + 4);
        if (sdc_index_read_raw(i16, t16, h) == SDC_OK && ts && ts->nbytes == t16->nbytes &&
            sdc_index_read_raw(is, ts, hs) == SDC_OK && memcmp(h, hs, t16->nbytes) == 0)
            same_single++;
        if (t32 && t32->nbytes == 2 * t16->nbytes && sdc_index_read_raw(i32, t32, x) == SDC_OK) {
            sdc_convert_from_f32(h32, SDC_DTYPE_F16, x, ne);
            rounded += memcmp(h32, h, t16->nbytes) == 0;
        }
        size_t ok = 0;
        for (size_t k = 0; k < ne; k++) ok += isfinite(sdc_f16_to_f32(h[k]));
        finite += ok == ne;
        free(h);
        free(hs);
        free(h32);
        free(x);
    }
    test_check(same_single == n, "single file and folder (f16): %zu of %zu tensors hold the same bytes", same_single,
               n);
    test_check(rounded == n, "f16 folder = f32 folder rounded to f16: %zu of %zu tensors", rounded, n);
    test_check(finite == n, "f16 weights finite: %zu of %zu tensors", finite, n);
done:
    sdc_index_free(i32);
    sdc_index_free(i16);
    sdc_index_free(is);
    free(map);
}

/* The recipe, classified from name and shape alone (as the reference README states it). */
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
    if (t->ndim >= 2) return strstr(t->name, "embedding.weight") ? K_EMBEDDING : K_FAN_IN;
    return n > 7 && strcmp(t->name + n - 7, ".weight") == 0 ? K_NORM : K_VECTOR;
}

static void test_statistics(const char *f32, int n_parts) {
    sdc_model_index *idx = open_folder(f32, comp_files_f32, n_parts);
    if (!test_check(idx != NULL, "index the f32 folder")) return;
    double s1[K_COUNT] = {0}, s2[K_COUNT] = {0}, in1[K_COUNT] = {0}, cnt[K_COUNT] = {0};
    const sdc_tensor_info *biggest = NULL;
    double big_std = 0, big_target = 0;
    for (size_t i = 0; i < sdc_index_count(idx); i++) {
        const sdc_tensor_info *t = sdc_index_at(idx, i);
        size_t ne = (size_t)sdc_tensor_info_nelem(t);
        float *x = malloc(4 * ne + 4);
        if (sdc_index_read_f32(idx, t, x) != SDC_OK) {
            free(x);
            continue;
        }
        int k = kind_of(t);
        double fan_in = 1;
        for (int d = 1; d < t->ndim; d++) fan_in *= (double)t->ne[d];
        double shift = k == K_NORM ? 1.0 : 0.0;
        double scale = k == K_FAN_IN ? 1.0 / sqrt(fan_in) : k == K_EMBEDDING ? 0.5 : k == K_NORM ? 0.1 : 0.05;
        double ts1 = 0, ts2 = 0;
        for (size_t j = 0; j < ne; j++) {
            double z = (x[j] - shift) / scale;
            ts1 += z;
            ts2 += z * z;
            in1[k] += fabs(z) < 1.0;
        }
        s1[k] += ts1;
        s2[k] += ts2;
        cnt[k] += (double)ne;
        if (k == K_FAN_IN && (!biggest || ne > (size_t)sdc_tensor_info_nelem(biggest))) {
            biggest = t;
            big_std = sqrt(ts2 / ne - (ts1 / ne) * (ts1 / ne)) * scale;
            big_target = scale;
        }
        free(x);
    }
    for (int k = 0; k < K_COUNT; k++) {
        double n = cnt[k], mean = s1[k] / n, sd = sqrt(s2[k] / n - mean * mean);
        char what[128];
        snprintf(what, sizeof what, "%s over %.0f values", kind_name[k], n);
        /* bounds: 5 standard errors, and never tighter than 2% on the std */
        test_check_err(what, "|mean of z|", fabs(mean), 5.0 / sqrt(n));
        test_check_err(what, "|std of z - 1|", fabs(sd - 1.0), fmax(0.02, 5.0 / sqrt(2 * n)));
        test_check_err(what, "|P(|z|<1) - 0.6827|", fabs(in1[k] / n - 0.682689), fmax(0.005, 5 * 0.466 / sqrt(n)));
    }
    if (biggest) {
        char what[300];
        snprintf(what, sizeof what, "largest matrix %s (%lld values): std %.5f vs 1/sqrt(fan_in) %.5f", biggest->name,
                 (long long)sdc_tensor_info_nelem(biggest), big_std, big_target);
        test_check_err(what, "relative error", fabs(big_std / big_target - 1), 0.03);
    }
    sdc_index_free(idx);
}

/* Sizes of what sdc_mkmodel writes, counted without writing, against the generated files. */
static uint64_t file_size(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n > 0 ? (uint64_t)n : 0;
}

static void test_plan(const char *f32, const char *single) {
    sdc_mkmodel_info tiny32, tiny_single;
    sdc_status st = sdc_mkmodel_plan("tiny-sd1", 0, SDC_DTYPE_F32, &tiny32, test_logger());
    sdc_status st2 = sdc_mkmodel_plan("tiny-sd1", 1, SDC_DTYPE_F16, &tiny_single, test_logger());
    uint64_t on_disk = 0;
    for (int c = 0; c < SD1_PARTS; c++) on_disk += file_size(join(f32, comp_files_f32[c]));
    test_check(st == SDC_OK && st2 == SDC_OK && tiny32.weight_file_bytes == on_disk &&
                   tiny_single.weight_file_bytes == file_size(single),
               "tiny-sd1 plan: folder f32 %llu bytes (on disk %llu), single f16 %llu (on disk %llu)",
               (unsigned long long)tiny32.weight_file_bytes, (unsigned long long)on_disk,
               (unsigned long long)tiny_single.weight_file_bytes, (unsigned long long)file_size(single));

    /* sd15: the parameter counts of diffusers' / transformers' SD 1.5 modules */
    static const uint64_t sd15_params[SD1_PARTS] = {123060480, 859520964, 83653863};
    sdc_mkmodel_info f16, f32i, one;
    double t0 = test_now();
    st = sdc_mkmodel_plan("sd15", 0, SDC_DTYPE_F16, &f16, test_logger());
    if (st == SDC_OK) st = sdc_mkmodel_plan("sd15", 0, SDC_DTYPE_F32, &f32i, test_logger());
    if (st == SDC_OK) st = sdc_mkmodel_plan("sd15", 1, SDC_DTYPE_F16, &one, test_logger());
    if (!test_check(st == SDC_OK, "sd15 plan: %s in %.2f s", sdc_status_str(st), test_now() - t0)) return;
    uint64_t total = 0;
    for (int c = 0; c < SD1_PARTS; c++) {
        total += f16.n_params[c];
        test_check(f16.n_params[c] == sd15_params[c] && one.n_params[c] == f16.n_params[c],
                   "sd15 %s: %llu parameters in %llu tensors (diffusers/transformers: %llu)",
                   sdc_mk_part_name((sdc_mk_part)c), (unsigned long long)f16.n_params[c],
                   (unsigned long long)f16.n_tensors[c], (unsigned long long)sd15_params[c]);
    }
    uint64_t hdr16 = f16.weight_file_bytes - 2 * total, hdr32 = f32i.weight_file_bytes - 4 * total,
             hdr1 = one.weight_file_bytes - 2 * total;
    test_check(f16.weight_file_bytes > 2 * total && hdr16 < (1 << 20) && hdr32 < (1 << 20) && hdr1 < (1 << 20),
               "sd15 files: folder f16 %.1f MiB, folder f32 %.1f MiB, single file f16 %.1f MiB "
               "(%llu parameters; headers %llu / %llu / %llu bytes)",
               f16.weight_file_bytes / 1048576.0, f32i.weight_file_bytes / 1048576.0, one.weight_file_bytes / 1048576.0,
               (unsigned long long)total, (unsigned long long)hdr16, (unsigned long long)hdr32,
               (unsigned long long)hdr1);
}

/* ------------------------------------------------------------------------------------------------
 * SDXL
 * ---------------------------------------------------------------------------------------------- */

static const char *const xl_configs[] = {
    "model_index.json",
    "scheduler/scheduler_config.json",
    "text_encoder/config.json",
    "text_encoder_2/config.json",
    "unet/config.json",
    "vae/config.json",
    "tokenizer/tokenizer_config.json",
    "tokenizer_2/tokenizer_config.json",
};

static cJSON *load_json(const char *path) {
    cJSON *j = NULL;
    return sdc_json_load(path, test_logger(), &j) == SDC_OK ? j : NULL;
}

/* The generated configs parse (with sdc's own parsers) to exactly what the reference's parse to. */
static void xl_configs_parse(const char *dir) {
    const char *te[2] = {"text_encoder/config.json", "text_encoder_2/config.json"};
    for (int k = 0; k < 2; k++) {
        cJSON *g = load_json(join(dir, te[k])), *r = load_json(test_ref_path(join("tiny-sdxl", te[k])));
        sdc_clip_config cg, cr;
        memset(&cg, 0, sizeof cg), memset(&cr, 0, sizeof cr);
        int ok = g && r && sdc_clip_config_parse(g, test_logger(), &cg) == SDC_OK &&
            sdc_clip_config_parse(r, test_logger(), &cr) == SDC_OK;
        test_check(ok && memcmp(&cg, &cr, sizeof cg) == 0,
                   "%s parses as the reference's: %d wide, %d layers, %d heads, MLP %d, projection %d", te[k],
                   cg.hidden, cg.n_layers, cg.n_heads, cg.intermediate, cg.projection_dim);
        cJSON_Delete(g);
        cJSON_Delete(r);
    }
    cJSON *g = load_json(join(dir, "unet/config.json")), *r = load_json(test_ref_path("tiny-sdxl/unet/config.json"));
    sdc_unet_config ug, ur;
    memset(&ug, 0, sizeof ug), memset(&ur, 0, sizeof ur);
    int ok = g && r && sdc_unet_config_parse(g, test_logger(), &ug) == SDC_OK &&
        sdc_unet_config_parse(r, test_logger(), &ur) == SDC_OK;
    test_check(ok && memcmp(&ug, &ur, sizeof ug) == 0 && ug.text_time,
               "unet/config.json parses as the reference's: %d blocks, context %d, text_time %d (%d inputs)",
               ug.n_blocks, ug.cross_attention_dim, ug.text_time, ug.add_in_dim);
    cJSON_Delete(g);
    cJSON_Delete(r);
    g = load_json(join(dir, "vae/config.json")), r = load_json(test_ref_path("tiny-sdxl/vae/config.json"));
    sdc_vae_config vg, vr;
    memset(&vg, 0, sizeof vg), memset(&vr, 0, sizeof vr);
    ok = g && r && sdc_vae_config_parse(g, test_logger(), &vg) == SDC_OK &&
        sdc_vae_config_parse(r, test_logger(), &vr) == SDC_OK;
    test_check(ok && memcmp(&vg, &vr, sizeof vg) == 0, "vae/config.json parses as the reference's: scaling %g",
               (double)vg.scaling_factor);
    cJSON_Delete(g);
    cJSON_Delete(r);
}

/* The reference has f32 weights only: the f16 folder must hold the same names and shapes. */
static void test_xl_layout(const char *f32, const char *f16) {
    for (int c = 0; c < XL_PARTS; c++) {
        const char *ref = test_ref_path(join("tiny-sdxl", comp_files_f32[c]));
        sdc_model_index *g = open_index(join(f32, comp_files_f32[c]), NULL, NULL, NULL);
        sdc_model_index *r = open_index(ref, NULL, NULL, NULL);
        char what[128];
        snprintf(what, sizeof what, "tiny-sdxl %s", comp_files_f32[c]);
        same_tensors(what, g, r);
        sdc_index_free(g);
        test_check(same_header(join(f32, comp_files_f32[c]), ref), "tiny-sdxl %s: safetensors header byte-identical",
                   comp_files_f32[c]);
        g = open_index(join(f16, comp_files_f16[c]), NULL, NULL, NULL);
        size_t n = g && r ? sdc_index_count(r) : 0, same = 0;
        for (size_t i = 0; i < n; i++) {
            const sdc_tensor_info *t = sdc_index_at(r, i), *u = sdc_index_find(g, t->name);
            int ok = u && u->ndim == t->ndim && u->dtype == SDC_DTYPE_F16;
            for (int d = 0; ok && d < t->ndim; d++) ok = u->ne[d] == t->ne[d];
            same += ok;
        }
        test_check(n > 0 && same == n && sdc_index_count(g) == n,
                   "tiny-sdxl %s: %zu of %zu tensors as the reference's, F16", comp_files_f16[c], same, n);
        sdc_index_free(g);
        sdc_index_free(r);
    }
    for (size_t i = 0; i < sizeof xl_configs / sizeof xl_configs[0]; i++) {
        char ref[128];
        snprintf(ref, sizeof ref, "tiny-sdxl/%s", xl_configs[i]);
        same_config(join(f32, xl_configs[i]), ref);
    }
    xl_configs_parse(f32);
    int tok = 1;
    for (int k = 0; k < 2; k++) {
        const char *d = k ? "tokenizer_2" : "tokenizer";
        char v[64], m[64];
        snprintf(v, sizeof v, "%s/vocab.json", d);
        snprintf(m, sizeof m, "%s/merges.txt", d);
        tok &= same_bytes(join(f16, v), test_ref_path("clip-tokenizer/vocab.json")) &&
            same_bytes(join(f16, m), test_ref_path("clip-tokenizer/merges.txt"));
    }
    test_check(tok, "tokenizer/ and tokenizer_2/: vocab.json and merges.txt copied");

    /* sdc opens it as SDXL: the encoders' widths fit the UNet's context and add_embedding */
    sdc_model_params p;
    sdc_model_params_init(&p);
    const sdc_component_path path = {"model", f16};
    p.paths = &path;
    p.n_paths = 1;
    p.n_threads = 1;
    p.prefer_fp16 = 1;
    p.log_fn = test_logger()->fn;
    p.log_user = test_logger()->user;
    p.log_level = SDC_LOG_WARN;
    sdc_model *m = sdc_model_open(&p);
    const char *fam = m ? sdc_model_family(m) : "(not opened)";
    test_check(m && !strcmp(fam, "sdxl"), "the generated tiny-sdxl f16 folder opens as a model: family %s", fam);
    sdc_model_free(m);
}

static void test_xl_determinism(const char *f16, const char *f16_again, const char *f16_seed2) {
    size_t n = 0, same = 0;
    for (int c = 0; c < XL_PARTS; c++, n++)
        same += same_bytes(join(f16, comp_files_f16[c]), join(f16_again, comp_files_f16[c]));
    for (size_t i = 0; i < sizeof xl_configs / sizeof xl_configs[0]; i++, n++)
        same += same_bytes(join(f16, xl_configs[i]), join(f16_again, xl_configs[i]));
    test_check(same == n, "tiny-sdxl, same seed: %zu of %zu files byte-identical", same, n);
    seeds_differ("tiny-sdxl, another seed", f16, f16_seed2, XL_PARTS);
}

static void test_xl_plan(const char *f32) {
    sdc_mkmodel_info tiny;
    sdc_status st = sdc_mkmodel_plan("tiny-sdxl", 0, SDC_DTYPE_F32, &tiny, test_logger());
    uint64_t on_disk = 0;
    for (int c = 0; c < XL_PARTS; c++) on_disk += file_size(join(f32, comp_files_f32[c]));
    test_check(st == SDC_OK && tiny.weight_file_bytes == on_disk,
               "tiny-sdxl plan: folder f32 %llu bytes (on disk %llu)", (unsigned long long)tiny.weight_file_bytes,
               (unsigned long long)on_disk);

    /* SDXL base 1.0: UNet2DConditionModel, CLIPTextModel, AutoencoderKL, CLIPTextModelWithProjection built
     * from its configs (diffusers 0.42 / transformers 5.25 on the meta device) */
    static const uint64_t sdxl_params[SDC_MK_N_PARTS] = {123060480, 2567463684, 83653863, 694659840};
    static const uint64_t sdxl_tensors[SDC_MK_N_PARTS] = {196, 1680, 248, 517};
    sdc_mkmodel_info f16;
    double t0 = test_now();
    st = sdc_mkmodel_plan("sdxl", 0, SDC_DTYPE_F16, &f16, test_logger());
    if (!test_check(st == SDC_OK, "sdxl plan: %s in %.2f s", sdc_status_str(st), test_now() - t0)) return;
    uint64_t total = 0;
    for (int c = 0; c < XL_PARTS; c++) {
        total += f16.n_params[c];
        test_check(f16.n_params[c] == sdxl_params[c] && f16.n_tensors[c] == sdxl_tensors[c],
                   "sdxl %s: %llu parameters in %llu tensors (diffusers/transformers: %llu in %llu)",
                   sdc_mk_part_name((sdc_mk_part)c), (unsigned long long)f16.n_params[c],
                   (unsigned long long)f16.n_tensors[c], (unsigned long long)sdxl_params[c],
                   (unsigned long long)sdxl_tensors[c]);
    }
    uint64_t hdr = f16.weight_file_bytes - 2 * total;
    test_check(f16.weight_file_bytes > 2 * total && hdr < (1 << 20),
               "sdxl folder f16: %.2f GB (%llu parameters; headers %llu bytes)", f16.weight_file_bytes / 1e9,
               (unsigned long long)total, (unsigned long long)hdr);

    sdc_mkmodel_info one;
    st = sdc_mkmodel_plan("sdxl", 1, SDC_DTYPE_F16, &one, test_capture_logger());
    test_check(st == SDC_ERR_UNSUPPORTED, "sdxl single-file plan: %s ('%s')", sdc_status_str(st), test_last_error());
    st = sdc_mkmodel("tiny-sdxl", test_tmp_path("xl.safetensors"), 1, SDC_DTYPE_F16, 1, NULL, test_capture_logger());
    test_check(st == SDC_ERR_UNSUPPORTED && access(test_tmp_path("xl.safetensors"), F_OK) != 0,
               "tiny-sdxl single file: %s, no file ('%s')", sdc_status_str(st), test_last_error());
}

static void test_xl(void) {
    char f32[600], f16[600], f16b[600], f16c[600];
    snprintf(f32, sizeof f32, "%s", test_tmp_path("xl-f32"));
    snprintf(f16, sizeof f16, "%s", test_tmp_path("xl-f16"));
    snprintf(f16b, sizeof f16b, "%s", test_tmp_path("xl-f16-again"));
    snprintf(f16c, sizeof f16c, "%s", test_tmp_path("xl-f16-seed2"));
    const char *tok = test_ref_path("clip-tokenizer");
    double t0 = test_now();
    sdc_status st[4] = {sdc_mkmodel("tiny-sdxl", f32, 0, SDC_DTYPE_F32, 42, tok, test_logger()),
                        sdc_mkmodel("tiny-sdxl", f16, 0, SDC_DTYPE_F16, 42, tok, test_logger()),
                        sdc_mkmodel("tiny-sdxl", f16b, 0, SDC_DTYPE_F16, 42, tok, test_logger()),
                        sdc_mkmodel("tiny-sdxl", f16c, 0, SDC_DTYPE_F16, 43, tok, test_logger())};
    int ok = 1;
    for (int i = 0; i < 4; i++) ok &= st[i] == SDC_OK;
    if (test_check(ok, "generate tiny-sdxl four times (folder f32, 3x folder f16) in %.2f s", test_now() - t0)) {
        test_xl_layout(f32, f16);
        test_xl_determinism(f16, f16b, f16c);
        test_statistics(f32, XL_PARTS);
    }
    test_xl_plan(f32);
}

static void test_errors(void) {
    sdc_status st = sdc_mkmodel("sd3", test_tmp_path("x"), 0, SDC_DTYPE_F16, 1, NULL, test_capture_logger());
    test_check(st == SDC_ERR_INVALID_ARG, "unknown architecture: %s ('%s')", sdc_status_str(st), test_last_error());
    st = sdc_mkmodel("tiny-sd1", test_tmp_path("x"), 0, SDC_DTYPE_BF16, 1, NULL, test_capture_logger());
    test_check(st == SDC_ERR_INVALID_ARG, "bf16: %s ('%s')", sdc_status_str(st), test_last_error());
    st = sdc_mkmodel("tiny-sd1", "/nonexistent-sdc-dir/model", 0, SDC_DTYPE_F16, 1, NULL, test_capture_logger());
    test_check(st == SDC_ERR_IO, "folder in a missing directory: %s ('%s')", sdc_status_str(st), test_last_error());
    st =
        sdc_mkmodel("tiny-sd1", "/nonexistent-sdc-dir/m.safetensors", 1, SDC_DTYPE_F16, 1, NULL, test_capture_logger());
    test_check(st == SDC_ERR_IO, "single file in a missing directory: %s ('%s')", sdc_status_str(st),
               test_last_error());
    st = sdc_mkmodel("tiny-sd1", test_tmp_path("notok"), 0, SDC_DTYPE_F16, 1, test_tmp_path("no-such-tokenizer"),
                     test_capture_logger());
    test_check(st == SDC_ERR_NOT_FOUND && access(join(test_tmp_path("notok"), "model_index.json"), F_OK) != 0,
               "missing tokenizer files: %s, no model_index.json written ('%s')", sdc_status_str(st),
               test_last_error());
}

int main(void) {
    tmpdir = test_make_tmp_dir("test-mkmodel");
    test_writer();

    char f32[600], f16[600], f16b[600], f16c[600], single[600], single_b[600];
    snprintf(f32, sizeof f32, "%s", test_tmp_path("f32"));
    snprintf(f16, sizeof f16, "%s", test_tmp_path("f16"));
    snprintf(f16b, sizeof f16b, "%s", test_tmp_path("f16-again"));
    snprintf(f16c, sizeof f16c, "%s", test_tmp_path("f16-seed2"));
    snprintf(single, sizeof single, "%s", test_tmp_path("single.safetensors"));
    snprintf(single_b, sizeof single_b, "%s", test_tmp_path("single-again.safetensors"));
    double t0 = test_now();
    sdc_status st[6] = {gen(f32, 0, SDC_DTYPE_F32, 42),    gen(f16, 0, SDC_DTYPE_F16, 42),
                        gen(f16b, 0, SDC_DTYPE_F16, 42),   gen(f16c, 0, SDC_DTYPE_F16, 43),
                        gen(single, 1, SDC_DTYPE_F16, 42), gen(single_b, 1, SDC_DTYPE_F16, 42)};
    int ok = 1;
    for (int i = 0; i < 6; i++) ok &= st[i] == SDC_OK;
    if (test_check(ok, "generate tiny-sd1 six times (folder f32, 3x folder f16, 2x single f16) in %.2f s",
                   test_now() - t0)) {
        test_layout(f32, f16, single);
        test_determinism(f16, f16b, f16c, single, single_b);
        test_same_values(f32, f16, single);
        test_statistics(f32, SD1_PARTS);
        test_plan(f32, single);
    }
    test_xl();
    test_errors();
    test_check(test_count_temporaries(tmpdir) == 0 && test_count_temporaries(f16) == 0, "no temporary files left");
    test_rm_tree(tmpdir);
    return test_finish();
}
