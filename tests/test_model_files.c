/* test_model_files.c - opening a diffusers model folder: the weights variant chosen, component
 * prefixes on every indexed name, missing parts reported as SDC_ERR_NOT_FOUND naming the path, and
 * tensor names in the wild (transformers-5 text encoders, old diffusers VAEs) mapped to the
 * canonical diffusers names with the same data. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"
#include "io/config.h"
#include "io/model_files.h"
#include "io/name_map.h"
#include "io/st_writer.h"
#include "test_util.h"

/* The reference model's components, in the order the model files sort them. */
#define N_PARTS 3
static const char *const part_names[N_PARTS] = {"text_encoder", "unet", "vae"};
enum {
    TE,
    UNET,
    VAE
};
static const char *const weight_names[N_PARTS][2] = {
    [TE] = {"model.safetensors", "model.fp16.safetensors"},
    [UNET] = {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"},
    [VAE] = {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"},
};

/* The weights file part c was indexed from (NULL before sdc_model_files_use). */
static const char *weights_of(const sdc_model_files *m, int c) {
    for (int i = 0; i < m->n_parts; i++)
        if (strcmp(m->parts[i].name, part_names[c]) == 0) return m->parts[i].weights_path;
    return NULL;
}

/* Opens path and uses its three components, as the SD family's open does: the first error, or SDC_OK
 * with *out open (else NULL). */
static sdc_status open_used(const char *path, sdc_weight_variant v, const sdc_logger *log, sdc_model_files **out) {
    sdc_status st = sdc_model_files_open(path, v, log, out);
    for (int c = 0; c < N_PARTS && st == SDC_OK; c++) st = sdc_model_files_use(*out, part_names[c], log);
    if (st != SDC_OK) {
        sdc_model_files_free(*out);
        *out = NULL;
    }
    return st;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* root/rel -> the reference model's same entry */
static void link_ref(const char *root, const char *rel) {
    char src[4096], dst[4096];
    snprintf(src, sizeof src, "%s", test_ref_path("tiny-sd1"));
    snprintf(src + strlen(src), sizeof src - strlen(src), "/%s", rel);
    snprintf(dst, sizeof dst, "%s/%s", root, rel);
    if (symlink(src, dst) != 0) test_check(0, "symlink %s", dst);
}

static void make_dir(const char *root, const char *rel) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    mkdir(p, 0755);
}

static char *make_root(void) {
    char *d = strdup("/tmp/sdc_test_mf_XXXXXX");
    if (!mkdtemp(d)) {
        test_check(0, "mkdtemp");
        free(d);
        return NULL;
    }
    return d;
}

/* Opening the reference model with each variant. */
static void test_variants(void) {
    const char *root = test_ref_path("tiny-sd1");
    static const char *const vname[] = {"AUTO", "F32", "FP16"};
    for (int v = SDC_VARIANT_AUTO; v <= SDC_VARIANT_FP16; v++) {
        sdc_model_files *m = NULL;
        sdc_status st = open_used(root, (sdc_weight_variant)v, test_logger(), &m);
        if (!test_check(st == SDC_OK && m, "open tiny-sd1 with %s: %s", vname[v], sdc_status_str(st))) continue;
        int fp16 = v == SDC_VARIANT_FP16;
        int files_ok = 1;
        for (int c = 0; c < N_PARTS; c++) {
            char want[256];
            snprintf(want, sizeof want, "/%s/%s", part_names[c], weight_names[c][fp16]);
            files_ok = files_ok && weights_of(m, c) && ends_with(weights_of(m, c), want) &&
                sdc_model_files_config(m, part_names[c]);
        }
        test_check(files_ok, "%s picks the %s files, every config loaded (unet: %s)", vname[v], fp16 ? ".fp16" : "f32",
                   weights_of(m, UNET));
        test_check(m->model_index && m->scheduler_config && m->tokenizer_dir &&
                       ends_with(m->tokenizer_dir, "/tokenizer"),
                   "model_index.json, scheduler config and tokenizer folder found");

        /* every name is prefixed by its component, which matches the file it came from */
        size_t per[N_PARTS] = {0}, bad = 0;
        for (size_t i = 0; i < sdc_index_count(m->index); i++) {
            const sdc_tensor_info *t = sdc_index_at(m->index, i);
            int found = 0;
            for (int c = 0; c < N_PARTS && !found; c++) {
                const char *cn = part_names[c];
                size_t l = strlen(cn);
                if (strncmp(t->name, cn, l) == 0 && t->name[l] == '.' &&
                    strcmp(sdc_index_file_path(m->index, t->file), weights_of(m, c)) == 0) {
                    per[c]++;
                    found = 1;
                }
            }
            bad += !found;
        }
        /* each component holds as many tensors as its file */
        int counts_ok = 1;
        for (int c = 0; c < N_PARTS; c++) {
            sdc_model_index *one = sdc_index_new(test_logger());
            counts_ok = counts_ok && sdc_index_add_file(one, weights_of(m, c), NULL, NULL, NULL) == SDC_OK &&
                sdc_index_count(one) == per[c] && per[c] > 0;
            sdc_index_free(one);
        }
        test_check(bad == 0 && counts_ok,
                   "%zu names all prefixed by their component (text_encoder %zu, unet %zu, vae %zu), %zu not",
                   sdc_index_count(m->index), per[0], per[1], per[2], bad);
        test_check(sdc_index_find(m->index, "text_encoder.text_model.final_layer_norm.weight") &&
                       sdc_index_find(m->index, "vae.decoder.mid_block.attentions.0.to_q.weight") &&
                       sdc_index_find(m->index, "unet.conv_in.weight"),
                   "canonical names present (text_encoder.text_model.*, vae ...to_q, unet.conv_in)");
        test_check(sdc_index_bytes_read(m->index) == 0, "opening reads no tensor data");
        sdc_model_files_free(m);
    }
    sdc_model_files_free(NULL);
}

/* A copy of tiny-sd1 made of symlinks, without vae/; then variants of broken components. */
static void test_missing(void) {
    char *root = make_root();
    if (!root) return;
    sdc_model_files *m = NULL;
    link_ref(root, "model_index.json");
    link_ref(root, "scheduler");
    link_ref(root, "text_encoder");
    link_ref(root, "unet");
    sdc_status st = open_used(root, SDC_VARIANT_AUTO, test_capture_logger(), &m);
    test_check(st == SDC_ERR_NOT_FOUND && !m && strstr(test_last_error(), "vae"), "missing vae/ folder: %s \"%s\"",
               sdc_status_str(st), test_last_error());

    /* vae/ with weights but no config.json */
    make_dir(root, "vae");
    link_ref(root, "vae/diffusion_pytorch_model.safetensors");
    st = open_used(root, SDC_VARIANT_AUTO, test_capture_logger(), &m);
    test_check(st == SDC_ERR_NOT_FOUND && !m && strstr(test_last_error(), "vae/config.json"),
               "missing vae/config.json: %s \"%s\"", sdc_status_str(st), test_last_error());

    /* config, f32 weights only: AUTO and F32 open, FP16 names the missing file */
    link_ref(root, "vae/config.json");
    st = open_used(root, SDC_VARIANT_AUTO, test_capture_logger(), &m);
    test_check(st == SDC_OK && m && m->tokenizer_dir == NULL && m->scheduler_config,
               "no tokenizer/ is fine (optional): %s", sdc_status_str(st));
    sdc_model_files_free(m);
    m = NULL;
    st = open_used(root, SDC_VARIANT_FP16, test_capture_logger(), &m);
    test_check(st == SDC_ERR_NOT_FOUND && !m &&
                   strstr(test_last_error(), "vae/diffusion_pytorch_model.fp16.safetensors"),
               "FP16 without vae fp16 weights: %s \"%s\"", sdc_status_str(st), test_last_error());

    /* fp16 weights only: AUTO falls back to them, F32 names the missing file */
    char *p = sdc_path_join(root, "vae/diffusion_pytorch_model.safetensors");
    unlink(p);
    free(p);
    link_ref(root, "vae/diffusion_pytorch_model.fp16.safetensors");
    st = open_used(root, SDC_VARIANT_AUTO, test_capture_logger(), &m);
    test_check(st == SDC_OK && m && ends_with(weights_of(m, VAE), "fp16.safetensors") &&
                   ends_with(weights_of(m, UNET), "/unet/diffusion_pytorch_model.safetensors"),
               "AUTO takes .fp16 where no f32 file exists: %s", m ? weights_of(m, VAE) : "-");
    sdc_model_files_free(m);
    m = NULL;
    st = open_used(root, SDC_VARIANT_F32, test_capture_logger(), &m);
    test_check(st == SDC_ERR_NOT_FOUND && !m && strstr(test_last_error(), "vae/diffusion_pytorch_model.safetensors"),
               "F32 without vae f32 weights: %s \"%s\"", sdc_status_str(st), test_last_error());

    /* no weights at all */
    p = sdc_path_join(root, "vae/diffusion_pytorch_model.fp16.safetensors");
    unlink(p);
    free(p);
    st = open_used(root, SDC_VARIANT_AUTO, test_capture_logger(), &m);
    test_check(st == SDC_ERR_NOT_FOUND && !m && strstr(test_last_error(), "vae/diffusion_pytorch_model"),
               "no vae weights at all: %s \"%s\"", sdc_status_str(st), test_last_error());
    link_ref(root, "vae/diffusion_pytorch_model.safetensors");

    /* a broken scheduler config is an error, not silently skipped */
    char *sched = sdc_path_join(root, "scheduler");
    unlink(sched);
    mkdir(sched, 0755);
    char *sc = sdc_path_join(sched, "scheduler_config.json");
    FILE *f = fopen(sc, "wb");
    fputs("{\"num_train_timesteps\": ", f);
    fclose(f);
    st = open_used(root, SDC_VARIANT_AUTO, test_capture_logger(), &m);
    test_check(st == SDC_ERR_FORMAT && !m && strstr(test_last_error(), "scheduler_config.json"),
               "a broken scheduler_config.json: %s \"%s\"", sdc_status_str(st), test_last_error());
    unlink(sc);
    st = open_used(root, SDC_VARIANT_AUTO, test_capture_logger(), &m);
    test_check(st == SDC_OK && m && m->scheduler_config == NULL, "no scheduler config is fine (optional): %s",
               sdc_status_str(st));
    sdc_model_files_free(m);
    m = NULL;
    free(sc);
    free(sched);

    /* no model_index.json; no folder at all */
    p = sdc_path_join(root, "model_index.json");
    unlink(p);
    st = open_used(root, SDC_VARIANT_AUTO, test_capture_logger(), &m);
    test_check(st == SDC_ERR_NOT_FOUND && !m && strstr(test_last_error(), p), "missing model_index.json: %s \"%s\"",
               sdc_status_str(st), test_last_error());
    free(p);
    p = sdc_path_join(root, "nothing_here");
    st = open_used(p, SDC_VARIANT_AUTO, test_capture_logger(), &m);
    test_check(st == SDC_ERR_NOT_FOUND && !m && strstr(test_last_error(), "nothing_here"),
               "missing model folder: %s \"%s\"", sdc_status_str(st), test_last_error());
    free(p);
    test_rm_tree(root);
    free(root);
}

/* The configs loaded by open answer the getters; a missing key names itself. */
static void test_config_keys(void) {
    sdc_model_files *m = NULL;
    if (open_used(test_ref_path("tiny-sd1"), SDC_VARIANT_AUTO, test_logger(), &m) != SDC_OK) {
        test_check(0, "open tiny-sd1");
        return;
    }
    int v = 0, ch[8], n = 0;
    sdc_status st =
        sdc_cfg_int(sdc_model_files_config(m, "unet"), "no_such_key", "unet config", test_capture_logger(), &v);
    test_check(st == SDC_ERR_NOT_FOUND && strstr(test_last_error(), "unet config: missing key 'no_such_key'"),
               "a missing config key: %s \"%s\"", sdc_status_str(st), test_last_error());
    st = sdc_cfg_string(sdc_model_files_config(m, "vae"), "block_out_channels", "vae config", test_capture_logger(),
                        &(const char *){NULL});
    test_check(st == SDC_ERR_FORMAT && strstr(test_last_error(), "block_out_channels"),
               "a key of the wrong type: %s \"%s\"", sdc_status_str(st), test_last_error());
    st = sdc_cfg_int_list(sdc_model_files_config(m, "vae"), "block_out_channels", "vae config", test_logger(), ch, 8,
                          &n);
    int hidden = 0;
    if (st == SDC_OK)
        st = sdc_cfg_int(sdc_model_files_config(m, "text_encoder"), "hidden_size", "te", test_logger(), &hidden);
    const sdc_tensor_info *w = sdc_index_find(m->index, "text_encoder.text_model.final_layer_norm.weight");
    const sdc_tensor_info *c = sdc_index_find(m->index, "vae.encoder.conv_in.weight");
    test_check(st == SDC_OK && n > 0 && w && w->ne[0] == hidden && c && c->ne[0] == ch[0],
               "config numbers agree with the weights: hidden_size %d, vae channels[0] %d", hidden, n ? ch[0] : -1);
    sdc_model_files_free(m);
}

/* Rewrites a reference weights file with renamed tensors (rename(name, out) gives the new name),
 * plus one extra tensor when extra_name is given. */
typedef void (*rename_fn)(const char *name, char *out, size_t size);

static int rewrite(const char *src, const char *dst, rename_fn rename, const char *extra_name, const int64_t *extra_ne,
                   const int64_t *extra_data) {
    sdc_model_index *idx = sdc_index_new(test_logger());
    sdc_st_writer *w = sdc_st_writer_new(test_logger());
    int ok = idx && w && sdc_index_add_file(idx, src, NULL, NULL, NULL) == SDC_OK;
    size_t n = ok ? sdc_index_count(idx) : 0;
    void **data = calloc(n + 1, sizeof *data);
    ok = ok && data;
    for (size_t i = 0; ok && i < n; i++) {
        const sdc_tensor_info *t = sdc_index_at(idx, i);
        char name[512];
        rename(t->name, name, sizeof name);
        data[i] = malloc(t->nbytes + 1);
        ok = data[i] && sdc_index_read_raw(idx, t, data[i]) == SDC_OK &&
            sdc_st_writer_add(w, name, t->dtype, t->ndim, t->ne, data[i]) == SDC_OK;
    }
    if (ok && extra_name) ok = sdc_st_writer_add(w, extra_name, SDC_DTYPE_I64, 2, extra_ne, extra_data) == SDC_OK;
    ok = ok && sdc_st_writer_write(w, dst) == SDC_OK;
    for (size_t i = 0; data && i < n; i++) free(data[i]);
    free(data);
    sdc_st_writer_free(w);
    sdc_index_free(idx);
    return ok ? 0 : -1;
}

static void strip_text_model(const char *name, char *out, size_t size) {
    const char *p = "text_model.";
    snprintf(out, size, "%s", strncmp(name, p, strlen(p)) == 0 ? name + strlen(p) : name);
}

static void old_vae_names(const char *name, char *out, size_t size) {
    static const char *const from[] = {".to_q.", ".to_k.", ".to_v.", ".to_out.0."};
    static const char *const to[] = {".query.", ".key.", ".value.", ".proj_attn."};
    snprintf(out, size, "%s", name);
    if (!strstr(name, "mid_block.attentions.")) return;
    for (int k = 0; k < 4; k++) {
        const char *p = strstr(name, from[k]);
        if (p) snprintf(out, size, "%.*s%s%s", (int)(p - name), name, to[k], p + strlen(from[k]));
    }
}

/* Every tensor under prefix in a has the same shape and bytes in b, and the counts agree. */
static void compare_component(sdc_model_index *a, sdc_model_index *b, const char *prefix, const char *what) {
    size_t na = 0, nb = 0, same = 0, l = strlen(prefix);
    for (size_t i = 0; i < sdc_index_count(b); i++) nb += strncmp(sdc_index_at(b, i)->name, prefix, l) == 0;
    for (size_t i = 0; i < sdc_index_count(a); i++) {
        const sdc_tensor_info *x = sdc_index_at(a, i);
        if (strncmp(x->name, prefix, l) != 0) continue;
        na++;
        const sdc_tensor_info *y = sdc_index_find(b, x->name);
        if (!y || y->dtype != x->dtype || y->ndim != x->ndim || y->nbytes != x->nbytes) continue;
        void *p = malloc(x->nbytes + 1), *q = malloc(y->nbytes + 1);
        if (p && q && sdc_index_read_raw(a, x, p) == SDC_OK && sdc_index_read_raw(b, y, q) == SDC_OK &&
            memcmp(p, q, x->nbytes) == 0 && memcmp(x->ne, y->ne, sizeof x->ne[0] * (size_t)x->ndim) == 0)
            same++;
        free(p);
        free(q);
    }
    test_check(na > 0 && na == nb && same == na, "%s: %zu of %zu canonical tensors found with equal data (%zu indexed)",
               what, same, na, nb);
}

static void test_canonical_names(void) {
    char *root = make_root();
    if (!root) return;
    link_ref(root, "model_index.json");
    link_ref(root, "unet");
    make_dir(root, "text_encoder");
    make_dir(root, "vae");
    link_ref(root, "text_encoder/config.json");
    link_ref(root, "vae/config.json");

    /* text encoder as transformers 5 saves it, plus a position_ids buffer */
    cJSON *tecfg = NULL;
    int npos = 0;
    sdc_json_load(test_ref_path("tiny-sd1/text_encoder/config.json"), test_logger(), &tecfg);
    sdc_status st = sdc_cfg_int(tecfg, "max_position_embeddings", "te", test_logger(), &npos);
    cJSON_Delete(tecfg);
    int64_t *pos = calloc((size_t)(npos > 0 ? npos : 1), sizeof *pos);
    for (int i = 0; i < npos; i++) pos[i] = i;
    char *te = sdc_path_join(root, "text_encoder/model.safetensors");
    char *vae = sdc_path_join(root, "vae/diffusion_pytorch_model.safetensors");
    int ok = st == SDC_OK &&
        rewrite(test_ref_path("tiny-sd1/text_encoder/model.safetensors"), te, strip_text_model,
                "embeddings.position_ids", (int64_t[]){1, npos}, pos) == 0 &&
        rewrite(test_ref_path("tiny-sd1/vae/diffusion_pytorch_model.safetensors"), vae, old_vae_names, NULL, NULL,
                NULL) == 0;
    free(pos);

    /* the rewritten files really use the variant names */
    sdc_model_index *raw = sdc_index_new(test_logger());
    ok = ok && sdc_index_add_file(raw, te, "te.", NULL, NULL) == SDC_OK &&
        sdc_index_add_file(raw, vae, "vae.", NULL, NULL) == SDC_OK;
    test_check(ok && sdc_index_find(raw, "te.encoder.layers.0.self_attn.q_proj.weight") &&
                   !sdc_index_find(raw, "te.text_model.encoder.layers.0.self_attn.q_proj.weight") &&
                   sdc_index_find(raw, "te.embeddings.position_ids") &&
                   sdc_index_find(raw, "vae.decoder.mid_block.attentions.0.query.weight") &&
                   sdc_index_find(raw, "vae.encoder.mid_block.attentions.0.proj_attn.bias") &&
                   !sdc_index_find(raw, "vae.decoder.mid_block.attentions.0.to_q.weight"),
               "temp files written with transformers-5 / old-VAE names");
    sdc_index_free(raw);

    sdc_model_files *ref = NULL, *m = NULL;
    st = open_used(test_ref_path("tiny-sd1"), SDC_VARIANT_F32, test_logger(), &ref);
    sdc_status st2 = ok ? open_used(root, SDC_VARIANT_F32, test_capture_logger(), &m) : SDC_ERR_IO;
    if (test_check(st == SDC_OK && st2 == SDC_OK, "open the renamed copy: %s \"%s\"", sdc_status_str(st2),
                   test_last_error())) {
        compare_component(ref->index, m->index, "text_encoder.", "text encoder without 'text_model.'");
        compare_component(ref->index, m->index, "vae.", "vae with query/key/value/proj_attn");
        test_check(!sdc_index_find(m->index, "text_encoder.text_model.embeddings.position_ids") &&
                       !sdc_index_find(m->index, "text_encoder.embeddings.position_ids"),
                   "position_ids skipped");
        test_check(sdc_index_find(m->index, "vae.decoder.mid_block.attentions.0.to_out.0.weight") &&
                       !sdc_index_find(m->index, "vae.decoder.mid_block.attentions.0.proj_attn.weight"),
                   "proj_attn -> to_out.0");
    }
    sdc_model_files_free(ref);
    sdc_model_files_free(m);
    free(te);
    free(vae);
    test_rm_tree(root);
    free(root);
}

/* The map callbacks on their own, including spellings the temp files do not carry. */
static void test_name_maps(void) {
    static const struct {
        int vae;
        const char *in, *want; /* want NULL: skipped */
    } cases[] = {
        {0, "text_model.encoder.layers.0.mlp.fc1.weight", "text_model.encoder.layers.0.mlp.fc1.weight"},
        {0, "encoder.layers.0.mlp.fc1.weight", "text_model.encoder.layers.0.mlp.fc1.weight"},
        {0, "embeddings.token_embedding.weight", "text_model.embeddings.token_embedding.weight"},
        {0, "final_layer_norm.bias", "text_model.final_layer_norm.bias"},
        {0, "text_model.embeddings.position_ids", NULL},
        {0, "embeddings.position_ids", NULL},
        {0, "text_projection.weight", "text_projection.weight"},
        {1, "decoder.mid_block.attentions.0.query.weight", "decoder.mid_block.attentions.0.to_q.weight"},
        {1, "encoder.mid_block.attentions.0.key.bias", "encoder.mid_block.attentions.0.to_k.bias"},
        {1, "mid_block.attentions.12.value.weight", "mid_block.attentions.12.to_v.weight"},
        {1, "decoder.mid_block.attentions.0.proj_attn.bias", "decoder.mid_block.attentions.0.to_out.0.bias"},
        {1, "decoder.mid_block.attentions.0.to_q.weight", "decoder.mid_block.attentions.0.to_q.weight"},
        {1, "decoder.mid_block.attentions.0.group_norm.weight", "decoder.mid_block.attentions.0.group_norm.weight"},
        {1, "decoder.up_blocks.0.attentions.0.query.weight", "decoder.up_blocks.0.attentions.0.query.weight"},
        {1, "decoder.xmid_block.attentions.0.query.weight", "decoder.xmid_block.attentions.0.query.weight"},
        {1, "decoder.mid_block.attentions.x.query.weight", "decoder.mid_block.attentions.x.query.weight"},
        {1, "decoder.mid_block.attentions.0.queryx.weight", "decoder.mid_block.attentions.0.queryx.weight"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[512];
        const char *got = cases[i].vae ? sdc_name_map_vae(cases[i].in, buf, sizeof buf, NULL)
                                       : sdc_name_map_text_encoder(cases[i].in, buf, sizeof buf, NULL);
        int ok = cases[i].want ? got && strcmp(got, cases[i].want) == 0 : got == NULL;
        test_check(ok, "%s map: %s -> %s", cases[i].vae ? "vae" : "text encoder", cases[i].in, got ? got : "(skip)");
    }
}

/* Issue 13 item 10: a FIFO, /dev/zero, a folder or a symlink loop in place of a config or weights file
 * is named as what it is (not "missing"), and a FIFO never blocks the open. */
static void test_special_files(void) {
    static const struct {
        const char *rel, *kind;
    } cases[] = {
        {"vae/config.json", "a FIFO"},
        {"vae/config.json", "a character device"},
        {"vae/config.json", "a folder"},
        {"vae/config.json", "a symlink loop"},
        {"vae/diffusion_pytorch_model.safetensors", "a FIFO"},
        {"vae/diffusion_pytorch_model.safetensors", "a character device"},
        {"vae/diffusion_pytorch_model.safetensors", "a symlink loop"},
        {"scheduler/scheduler_config.json", "a FIFO"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *root = make_root();
        if (!root) return;
        link_ref(root, "model_index.json");
        link_ref(root, "text_encoder");
        link_ref(root, "unet");
        make_dir(root, "vae");
        make_dir(root, "scheduler");
        int sched = strstr(cases[i].rel, "scheduler") != NULL;
        if (!sched) link_ref(root, "scheduler/scheduler_config.json");
        if (strcmp(cases[i].rel, "vae/config.json") != 0) link_ref(root, "vae/config.json");
        if (strstr(cases[i].rel, "safetensors") == NULL) link_ref(root, "vae/diffusion_pytorch_model.safetensors");
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", root, cases[i].rel);
        const char *k = cases[i].kind;
        int made = strstr(k, "FIFO") ? mkfifo(p, 0644) == 0
            : strstr(k, "device")    ? symlink("/dev/zero", p) == 0
            : strstr(k, "folder")    ? mkdir(p, 0755) == 0
                                     : symlink(p, p) == 0;
        sdc_model_files *m = NULL;
        double t0 = test_now();
        sdc_status st = open_used(root, SDC_VARIANT_AUTO, test_capture_logger(), &m);
        double secs = test_now() - t0;
        test_check(made && st == SDC_ERR_IO && !m && strstr(test_last_error(), k) && secs < 2.0,
                   "%s as %s: %s in %.3f s (bound 2), message '%s'", cases[i].rel, k, sdc_status_str(st), secs,
                   test_last_error());
        sdc_model_files_free(m);
        test_rm_tree(root);
        free(root);
    }
}

/* Issue 13 item 10: an integer tensor among a component's weights is refused when the model is opened
 * (an I16 weight used to be converted to float silently). */
static void test_integer_weights(void) {
    char *root = make_root();
    if (!root) return;
    link_ref(root, "model_index.json");
    link_ref(root, "scheduler");
    link_ref(root, "text_encoder");
    link_ref(root, "unet");
    make_dir(root, "vae");
    link_ref(root, "vae/config.json");
    char p[4096];
    snprintf(p, sizeof p, "%s/vae/diffusion_pytorch_model.safetensors", root);
    sdc_st_writer *w = sdc_st_writer_new(test_logger());
    const int16_t vals[4] = {1, -2, 3, 300};
    sdc_status st = sdc_st_writer_add(w, "encoder.conv_in.bias", SDC_DTYPE_I16, 1, (const int64_t[]){4}, vals);
    if (st == SDC_OK) st = sdc_st_writer_write(w, p);
    sdc_st_writer_free(w);
    sdc_model_files *m = NULL;
    if (st == SDC_OK) st = open_used(root, SDC_VARIANT_AUTO, test_capture_logger(), &m);
    test_check(st == SDC_ERR_UNSUPPORTED && !m && strstr(test_last_error(), "I16") &&
                   strstr(test_last_error(), "encoder.conv_in.bias"),
               "an I16 vae weight is refused: %s, message '%s'", sdc_status_str(st), test_last_error());
    sdc_model_files_free(m);
    test_rm_tree(root);
    free(root);
}

static void write_text(const char *root, const char *rel, const char *text) {
    char *p = sdc_path_join(root, rel);
    FILE *f = p ? fopen(p, "w") : NULL;
    if (!test_check(f && fputs(text, f) >= 0 && fclose(f) == 0, "write %s", rel) && f) fclose(f);
    free(p);
}

/* The UNet as two shards and a diffusers shard index (the hub's layout for large models): the same
 * tensors with the same bytes as the single file; a shard index pointing out of its folder is refused. */
static void test_sharded(void) {
    printf("sharded weights\n");
    char *root = make_root();
    if (!root) return;
    link_ref(root, "model_index.json");
    link_ref(root, "scheduler");
    link_ref(root, "text_encoder");
    link_ref(root, "vae");
    make_dir(root, "unet");
    link_ref(root, "unet/config.json");
    sdc_model_files *ref = NULL, *m = NULL;
    sdc_status st = open_used(test_ref_path("tiny-sd1"), SDC_VARIANT_F32, test_logger(), &ref);
    if (!test_check(st == SDC_OK, "open tiny-sd1: %s", sdc_status_str(st))) return;
    sdc_st_writer *w[2] = {sdc_st_writer_new(test_logger()), sdc_st_writer_new(test_logger())};
    /* JSON weight_map: every unet tensor, alternately in shard 1 and 2 */
    size_t cap = 1 << 20, len = 0, n_unet = 0;
    char *json = malloc(cap);
    void **keep = calloc(sdc_index_count(ref->index), sizeof *keep);
    len += (size_t)snprintf(json, cap, "{\"metadata\": {}, \"weight_map\": {");
    for (size_t i = 0; st == SDC_OK && i < sdc_index_count(ref->index); i++) {
        const sdc_tensor_info *t = sdc_index_at(ref->index, i);
        if (strncmp(t->name, "unet.", 5) != 0) continue;
        void *bytes = keep[n_unet] = malloc(t->nbytes); /* the writer reads it at write time */
        st = sdc_index_read_raw(ref->index, t, bytes);
        const int k = (int)(n_unet++ % 2);
        if (st == SDC_OK) st = sdc_st_writer_add(w[k], t->name + 5, t->dtype, t->ndim, t->ne, bytes);
        len +=
            (size_t)snprintf(json + len, cap - len, "%s\"%s\": \"diffusion_pytorch_model-0000%d-of-00002.safetensors\"",
                             n_unet > 1 ? ", " : "", t->name + 5, k + 1);
    }
    snprintf(json + len, cap - len, "}}");
    char *s1 = sdc_path_join(root, "unet/diffusion_pytorch_model-00001-of-00002.safetensors");
    char *s2 = sdc_path_join(root, "unet/diffusion_pytorch_model-00002-of-00002.safetensors");
    if (st == SDC_OK) st = sdc_st_writer_write(w[0], s1);
    if (st == SDC_OK) st = sdc_st_writer_write(w[1], s2);
    write_text(root, "unet/diffusion_pytorch_model.safetensors.index.json", json);
    if (test_check(st == SDC_OK && n_unet > 100, "wrote %zu unet tensors into two shards", n_unet)) {
        st = open_used(root, SDC_VARIANT_AUTO, test_logger(), &m);
        size_t found = 0, same = 0;
        for (size_t i = 0; st == SDC_OK && i < sdc_index_count(ref->index); i++) {
            const sdc_tensor_info *a = sdc_index_at(ref->index, i), *b = sdc_index_find(m->index, a->name);
            if (strncmp(a->name, "unet.", 5) != 0 || !b) continue;
            found++;
            void *x = malloc(a->nbytes), *y = malloc(b->nbytes);
            same += a->nbytes == b->nbytes && sdc_index_read_raw(ref->index, a, x) == SDC_OK &&
                sdc_index_read_raw(m->index, b, y) == SDC_OK && memcmp(x, y, a->nbytes) == 0;
            free(x), free(y);
        }
        test_check(st == SDC_OK && found == n_unet && same == n_unet,
                   "the sharded unet opens: %zu of %zu tensors found, %zu with the same bytes", found, n_unet, same);
        sdc_model_files_free(m);
        m = NULL;
        write_text(root, "unet/diffusion_pytorch_model.safetensors.index.json",
                   "{\"weight_map\": {\"conv_in.weight\": \"../diffusion_pytorch_model.safetensors\"}}");
        st = open_used(root, SDC_VARIANT_AUTO, test_capture_logger(), &m);
        test_check(st == SDC_ERR_FORMAT && !m && strstr(test_last_error(), "not a file name"),
                   "a shard outside the index's folder is refused: %s \"%s\"", sdc_status_str(st), test_last_error());
        write_text(root, "unet/diffusion_pytorch_model.safetensors.index.json", "{\"weight_map\": {}}");
        st = open_used(root, SDC_VARIANT_AUTO, test_capture_logger(), &m);
        test_check(st == SDC_ERR_FORMAT && !m, "an empty weight_map is refused: %s \"%s\"", sdc_status_str(st),
                   test_last_error());
    }
    sdc_st_writer_free(w[0]);
    sdc_st_writer_free(w[1]);
    for (size_t i = 0; i < n_unet; i++) free(keep[i]);
    sdc_model_files_free(ref);
    free(keep), free(json), free(s1), free(s2);
    test_rm_tree(root);
    free(root);
}

int main(void) {
    printf("test_model_files\n");
    test_sharded();
    test_special_files();
    test_integer_weights();
    test_variants();
    test_missing();
    test_config_keys();
    test_name_maps();
    test_canonical_names();
    return test_finish();
}
