/* test_convert.c - io/gguf_convert.h (what `sdc convert` runs) on the bundle's BFL Flux transformer:
 *   - a sharded component folder (two shards and their index): the same bytes as the single file; a file
 *     with an empty tensor;
 *   - q8_0 and q4_0: every tensor's data equals sdc_quant_row of the source (quantized weights) or the
 *     source itself (1-D, F32), read back with a small GGUF parser of the test's own;
 *   - the same files against the bundle's tiny-flux-schnell-{q8_0,q4_0}.gguf (written by gguf-py from the
 *     same BFL file): names, types, shapes and data equal (and whether the files are byte-identical);
 *   - the type rules (--tensor-type-rules), the fallback for rows that are not whole blocks (q4_k);
 *   - errors: missing input, missing output folder, bad rule, a cancelled run: no output, no temporaries,
 *     an existing output untouched;
 *   - the tiny SD 1.x single file in q8_0 and q4_0, with and without --quantize-convs: the same image as its
 *     values dequantized into an f32 safetensors file (bit-exact); with it, which kernels are stored 2-D
 *     (counted), their bytes and sdc.conv_shape keys, the others kept F16;
 *   - the loader on a kernel stored 2-D [Co, Ci*KH*KW] without its key: loaded as the 4-D Q8_0 kernel, the
 *     same convolution bits as its f32 values, dequantized at load through staging buffers (the path of a
 *     backend that keeps no block types),
 *     counted by the planner's backend; other shape mismatches: SDC_ERR_FORMAT with a message. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend/ops.h"
#include "core/quant.h"
#include "io/gguf.h"
#include "io/gguf_convert.h"
#include "io/gguf_write.h"
#include "io/model_index.h"
#include "io/st_writer.h"
#include "model/weights.h"
#include "sdc.h"
#include "test_util.h"

/* ---- a minimal GGUF reader (v3, the value types a converter writes) ---- */
typedef struct gg_tensor {
    char name[64];
    uint32_t type, ndim;
    uint64_t ne[4], offset;
} gg_tensor;

typedef struct gg_file {
    uint8_t *bytes;
    size_t size, data_start;
    uint64_t n_t, n_kv;
    gg_tensor *t;
    char arch[128];
    uint32_t file_type;
    int n_conv_keys; /* sdc.conv_shape.* pairs */
} gg_file;

static uint8_t *slurp(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(n > 0 ? (size_t)n : 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return p;
}

static uint64_t rd(const gg_file *g, size_t *pos, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n && *pos + (size_t)i < g->size; i++) v |= (uint64_t)g->bytes[*pos + (size_t)i] << (8 * i);
    *pos += (size_t)n;
    return v;
}

/* reads a string into out (truncated to cap) */
static void rd_str(const gg_file *g, size_t *pos, char *out, size_t cap) {
    uint64_t len = rd(g, pos, 8);
    size_t k = len < cap - 1 ? (size_t)len : cap - 1;
    if (*pos + k <= g->size) memcpy(out, g->bytes + *pos, k);
    out[k] = 0;
    *pos += (size_t)len;
}

static int gg_open(const char *path, gg_file *g) {
    memset(g, 0, sizeof *g);
    if (!(g->bytes = slurp(path, &g->size)) || g->size < 24) return -1;
    size_t pos = 0;
    if (rd(g, &pos, 4) != 0x46554747u || rd(g, &pos, 4) != 3) return -1;
    g->n_t = rd(g, &pos, 8);
    g->n_kv = rd(g, &pos, 8);
    if (g->n_t > 100000 || g->n_kv > 1000) return -1;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        char key[256], s[128];
        rd_str(g, &pos, key, sizeof key);
        uint32_t type = (uint32_t)rd(g, &pos, 4);
        if (type == 8) {
            rd_str(g, &pos, s, sizeof s);
            if (!strcmp(key, "general.architecture")) snprintf(g->arch, sizeof g->arch, "%s", s);
            g->n_conv_keys += !strncmp(key, SDC_GGUF_CONV_SHAPE_KEY, strlen(SDC_GGUF_CONV_SHAPE_KEY));
        } else if (type == 4) {
            uint32_t v = (uint32_t)rd(g, &pos, 4);
            if (!strcmp(key, "general.file_type")) g->file_type = v;
        } else {
            return -1; /* the converter writes only strings and u32 */
        }
    }
    g->t = calloc(g->n_t ? g->n_t : 1, sizeof *g->t);
    for (uint64_t i = 0; i < g->n_t; i++) {
        gg_tensor *t = &g->t[i];
        rd_str(g, &pos, t->name, sizeof t->name);
        t->ndim = (uint32_t)rd(g, &pos, 4);
        if (t->ndim < 1 || t->ndim > 4) return -1;
        for (uint32_t d = 0; d < t->ndim; d++) t->ne[d] = rd(g, &pos, 8);
        t->type = (uint32_t)rd(g, &pos, 4);
        t->offset = rd(g, &pos, 8);
    }
    g->data_start = (pos + 31) / 32 * 32;
    return pos <= g->size ? 0 : -1;
}

static void gg_close(gg_file *g) {
    free(g->bytes);
    free(g->t);
}

static size_t gg_nbytes(const gg_tensor *t) {
    sdc_dtype dt;
    if (sdc_dtype_from_ggml(t->type, &dt) != 0) return 0;
    size_t rows = 1;
    for (uint32_t d = 1; d < t->ndim; d++) rows *= (size_t)t->ne[d];
    return sdc_dtype_row_bytes(dt, (int64_t)t->ne[0]) * rows;
}

/* ---- checks ---- */
static const char *source_path(void) { return test_ref_path("tiny-flux-schnell-bfl.safetensors"); }

static sdc_status convert(const char *out, sdc_dtype type, const char *rules) {
    sdc_convert_params p = {.input = source_path(), .output = out, .type = type, .rules = rules};
    return sdc_convert_gguf(&p, test_logger());
}

/* Every tensor of g against the source: its name, its type (quantized when 2-D, else F32) and its data
 * (sdc_quant_row of the source, or the source's bytes). */
static void check_against_source(const gg_file *g, sdc_dtype type, sdc_model_index *src) {
    long bad_tensors = 0, checked = 0;
    double worst = 0.0;
    for (uint64_t i = 0; i < g->n_t; i++) {
        const gg_tensor *t = &g->t[i];
        const sdc_tensor_info *s = sdc_index_find(src, t->name);
        sdc_dtype got;
        if (!s || sdc_dtype_from_ggml(t->type, &got) != 0 || (uint32_t)s->ndim != t->ndim) {
            bad_tensors++;
            continue;
        }
        const int64_t n = sdc_tensor_info_nelem(s);
        sdc_dtype want = s->ndim >= 2 ? type : SDC_DTYPE_F32;
        float *x = malloc((size_t)n * 4), *y = malloc((size_t)n * 4);
        size_t nb = sdc_dtype_row_bytes(want, n);
        uint8_t *q = malloc(nb);
        int ok = got == want && gg_nbytes(t) == nb && g->data_start + t->offset + nb <= g->size &&
            sdc_index_read_f32(src, s, x) == SDC_OK && sdc_quant_row(want, x, q, n) == 0 &&
            memcmp(q, g->bytes + g->data_start + t->offset, nb) == 0;
        if (ok && sdc_dequant_row(want, q, y, n) == 0) {
            double e = test_rel_err(y, x, (size_t)n);
            worst = e > worst ? e : worst;
        }
        bad_tensors += !ok;
        checked++;
        free(x);
        free(y);
        free(q);
    }
    char what[96];
    snprintf(what, sizeof what, "%s: %llu tensors vs sdc_quant_row of the source", sdc_dtype_name(type),
             (unsigned long long)g->n_t);
    test_check_err(what, "mismatching tensors", checked == (long)sdc_index_count(src) ? (double)bad_tensors : INFINITY,
                   0);
    snprintf(what, sizeof what, "%s: worst tensor's dequantized weights vs the source", sdc_dtype_name(type));
    test_check_err(what, "rel err", worst, sdc_dtype_is_quant(type) ? 0.12 : 5e-4);
}

/* Against the bundle's GGUF made by gguf-py from the same file. */
static void check_against_reference(const gg_file *g, const char *ref_rel) {
    gg_file r;
    if (!test_check(gg_open(test_ref_path(ref_rel), &r) == 0, "parse %s", ref_rel)) {
        gg_close(&r);
        return;
    }
    long bad = r.n_t != g->n_t || strcmp(r.arch, g->arch) != 0 || r.file_type != g->file_type;
    long bad_bytes = 0;
    for (uint64_t i = 0; i < r.n_t && i < g->n_t; i++) {
        const gg_tensor *a = &r.t[i], *b = &g->t[i];
        int same = !strcmp(a->name, b->name) && a->type == b->type && a->ndim == b->ndim &&
            !memcmp(a->ne, b->ne, sizeof a->ne) && a->offset == b->offset;
        size_t nb = gg_nbytes(a);
        if (same && r.data_start + a->offset + nb <= r.size && g->data_start + b->offset + nb <= g->size) {
            const uint8_t *pa = r.bytes + r.data_start + a->offset, *pb = g->bytes + g->data_start + b->offset;
            for (size_t k = 0; k < nb; k++) bad_bytes += pa[k] != pb[k];
        }
        bad += !same;
    }
    char what[128];
    snprintf(what, sizeof what, "vs %s: names, types, shapes, offsets, metadata", ref_rel);
    test_check_err(what, "mismatching tensors", (double)bad, 0);
    snprintf(what, sizeof what, "vs %s: tensor data", ref_rel);
    test_check_err(what, "mismatching bytes", (double)bad_bytes, 0);
    int identical = r.size == g->size && memcmp(r.bytes, g->bytes, r.size) == 0;
    test_check(identical, "the converted file is byte-identical to %s (%zu bytes)", ref_rel, r.size);
    gg_close(&r);
}

static void check_type(const char *rel, sdc_dtype type, const char *ref_rel, sdc_model_index *src) {
    const char *out = test_tmp_path(rel);
    if (!test_check(convert(out, type, NULL) == SDC_OK, "convert to %s", sdc_dtype_name(type))) return;
    gg_file g;
    if (test_check(gg_open(out, &g) == 0, "parse the converted %s", rel)) {
        check_against_source(&g, type, src);
        if (ref_rel) check_against_reference(&g, ref_rel);
    }
    gg_close(&g);
}

static const gg_tensor *find(const gg_file *g, const char *name) {
    for (uint64_t i = 0; i < g->n_t; i++)
        if (!strcmp(g->t[i].name, name)) return &g->t[i];
    return NULL;
}

/* q4_k: Flux-tiny rows (32 ... 128) are not whole 256-blocks, so every weight keeps F32; the rules. */
static void check_rules_and_fallback(void) {
    const char *out = test_tmp_path("rules.gguf");
    test_check(convert(out, SDC_DTYPE_Q4_K, "^img_in\\.=q8_0,^final_layer\\.linear\\.weight$=f16,bias$=bf16") == SDC_OK,
               "convert to q4_k with rules");
    gg_file g;
    if (test_check(gg_open(out, &g) == 0, "parse rules.gguf")) {
        const gg_tensor *a = find(&g, "img_in.weight"), *b = find(&g, "final_layer.linear.weight"),
                        *c = find(&g, "double_blocks.0.img_mlp.0.weight"), *d = find(&g, "img_in.bias"),
                        *e = find(&g, "double_blocks.0.img_attn.proj.bias");
        test_check(a && a->type == 8, "rule ^img_in\\.=q8_0: img_in.weight is Q8_0");
        test_check(b && b->type == 1, "rule final_layer.linear.weight=f16: F16");
        test_check(c && c->type == 0, "q4_k on rows of 32 (not whole 256-blocks): the source's F32 is kept");
        test_check(d && d->type == 0 && e && e->type == 30,
                   "first matching rule wins (img_in.bias: q8_0 -> 1-D keeps F32); bias$=bf16 gives BF16");
        test_check(g.file_type == 14 && !strcmp(g.arch, "flux"), "general.file_type 14 (Q4_K_S), arch flux");
    }
    gg_close(&g);
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static int cancel_at_10(int done, int total, uint64_t bytes, void *user) {
    (void)total;
    (void)bytes;
    (void)user;
    return done == 10;
}

static void check_errors(const char *dir) {
    sdc_convert_params p = {
        .input = test_ref_path("no-such-file.safetensors"), .output = test_tmp_path("e1.gguf"), .type = SDC_DTYPE_Q8_0};
    test_check(sdc_convert_gguf(&p, test_capture_logger()) == SDC_ERR_NOT_FOUND && !exists(p.output),
               "missing input: SDC_ERR_NOT_FOUND, no output (%s)", test_last_error());
    p.input = source_path();
    p.output = test_tmp_path("missing-folder/out.gguf");
    test_check(sdc_convert_gguf(&p, test_capture_logger()) == SDC_ERR_IO, "output in a missing folder: SDC_ERR_IO (%s)",
               test_last_error());
    p.output = test_tmp_path("e2.gguf");
    p.rules = "img_in=q9_9";
    test_check(sdc_convert_gguf(&p, test_capture_logger()) == SDC_ERR_INVALID_ARG && !exists(p.output),
               "bad rule: SDC_ERR_INVALID_ARG (%s)", test_last_error());
    p.rules = "([=f32";
    test_check(sdc_convert_gguf(&p, test_capture_logger()) == SDC_ERR_INVALID_ARG,
               "bad regex: SDC_ERR_INVALID_ARG (%s)", test_last_error());
    p.rules = NULL;
    p.input = test_reference_dir(); /* a folder with no weights file */
    test_check(sdc_convert_gguf(&p, test_capture_logger()) == SDC_ERR_NOT_FOUND,
               "a folder without a weights file: SDC_ERR_NOT_FOUND (%s)", test_last_error());
    p.input = test_ref_path("tiny-flux-schnell-q8_0.gguf");
    test_check(sdc_convert_gguf(&p, test_capture_logger()) == SDC_ERR_FORMAT, "a GGUF as input: SDC_ERR_FORMAT (%s)",
               test_last_error());

    /* a cancelled run leaves an existing output as it was */
    p.input = source_path();
    p.output = test_tmp_path("keep.gguf");
    FILE *f = fopen(p.output, "wb");
    fputs("old", f);
    fclose(f);
    p.progress = cancel_at_10;
    test_check(sdc_convert_gguf(&p, test_capture_logger()) == SDC_ERR_CANCELLED, "cancelled at tensor 10");
    size_t n = 0;
    uint8_t *old = slurp(p.output, &n);
    test_check(old && n == 3 && !memcmp(old, "old", 3), "the existing output is untouched");
    free(old);
    test_check(test_count_temporaries(dir) == 0, "no temporary files left in %s", dir);
}

/* One 64x64 image of m (config folder cfg) through the public API; a hash of its pixels, 0 on failure. */
static uint64_t sd1_png_hash(const char *m, const char *cfg) {
    sdc_ctx_params cp;
    sdc_ctx_params_init(&cp);
    cp.model_path = m;
    cp.config_dir = cfg;
    cp.n_threads = 2;
    cp.log_fn = sdc_log_stderr;
    cp.log_level = SDC_LOG_WARN;
    sdc_ctx *ctx = sdc_ctx_new(&cp);
    sdc_gen_params p;
    sdc_gen_params_init(&p);
    p.prompt = "a red circle";
    p.width = p.height = 64;
    p.steps = 3;
    sdc_image *im = NULL;
    int n = 0;
    uint64_t h = 0;
    if (ctx && sdc_generate(ctx, &p, &im, &n) == SDC_OK && n == 1) {
        h = 1469598103934665603ull; /* FNV-1a of the pixels */
        for (size_t i = 0; i < (size_t)im[0].width * im[0].height * im[0].channels; i++)
            h = (h ^ im[0].data[i]) * 1099511628211ull;
    }
    sdc_image_free(im, n);
    sdc_ctx_free(ctx);
    return h;
}

/* --quantize-convs on the SD 1.x single file (fp16): every 4-D kernel whose Ci*KH*KW is whole blocks of the
 * type is stored 2-D [Co, Ci*KH*KW] in the type, its bytes those sdc_quant_row makes of the source's values
 * in row-major order, with its sdc.conv_shape key; every other kernel keeps the source's F16, 4-D, bytes
 * unchanged. Indexed again, the file gives every kernel back with the source's shape. */
static void check_quantized_convs(const char *gguf, sdc_dtype type, sdc_model_index *src) {
    gg_file g;
    if (!test_check(gg_open(gguf, &g) == 0, "parse %s", gguf)) {
        gg_close(&g);
        return;
    }
    sdc_model_index *idx = sdc_index_new(test_logger());
    const int ok_idx = idx && sdc_index_add_file(idx, gguf, NULL, NULL, NULL) == SDC_OK;
    const char *const parts[2] = {"model.diffusion_model.", "first_stage_model."};
    int flat[2] = {0}, kept[2] = {0}, want_flat[2] = {0}, kernels[2] = {0}, bad = 0, bad_shape = 0;
    for (size_t i = 0; i < sdc_index_count(src); i++) {
        const sdc_tensor_info *s = sdc_index_at(src, i);
        if (s->ndim != 4) continue;
        const int part = strncmp(s->name, parts[0], strlen(parts[0])) == 0 ? 0 : 1;
        const int64_t K = s->ne[1] * s->ne[2] * s->ne[3], n = sdc_tensor_info_nelem(s);
        const int fits = K % sdc_dtype_block(type) == 0;
        kernels[part]++;
        want_flat[part] += fits;
        const gg_tensor *t = find(&g, s->name);
        const sdc_tensor_info *r = ok_idx ? sdc_index_find(idx, s->name) : NULL;
        bad_shape += !r || r->ndim != 4 || memcmp(r->ne, s->ne, sizeof(int64_t) * 4) != 0 ||
            r->dtype != (fits ? type : s->dtype);
        sdc_dtype got;
        if (!t || sdc_dtype_from_ggml(t->type, &got) != 0 || g.data_start + t->offset + gg_nbytes(t) > g.size) {
            bad++;
            continue;
        }
        const uint8_t *data = g.bytes + g.data_start + t->offset;
        if (fits) {
            float *x = malloc(sizeof(float) * (size_t)n);
            const size_t nb = sdc_dtype_row_bytes(type, n);
            uint8_t *q = malloc(nb);
            const int ok = got == type && t->ndim == 2 && t->ne[0] == (uint64_t)K && t->ne[1] == (uint64_t)s->ne[0] &&
                gg_nbytes(t) == nb && x && q && sdc_index_read_f32(src, s, x) == SDC_OK &&
                sdc_quant_row(type, x, q, n) == 0 && !memcmp(q, data, nb);
            flat[part] += ok;
            bad += !ok;
            free(x);
            free(q);
        } else {
            uint8_t *raw = malloc(s->nbytes);
            const int ok = got == s->dtype && t->ndim == 4 && gg_nbytes(t) == s->nbytes && raw &&
                sdc_index_read_raw(src, s, raw) == SDC_OK && !memcmp(raw, data, s->nbytes);
            kept[part] += ok;
            bad += !ok;
            free(raw);
        }
    }
    const char *tn = sdc_dtype_name(type);
    test_check(kernels[0] > 0 && flat[0] == want_flat[0] && kept[0] == kernels[0] - want_flat[0],
               "%s: UNet: %d of %d conv kernels quantized as 2-D (expected %d: Ci*KH*KW whole blocks), %d kept F16 4-D",
               tn, flat[0], kernels[0], want_flat[0], kept[0]);
    test_check(kernels[1] > 0 && flat[1] == want_flat[1] && kept[1] == kernels[1] - want_flat[1],
               "%s: VAE: %d of %d conv kernels quantized as 2-D (expected %d), %d kept F16 4-D", tn, flat[1],
               kernels[1], want_flat[1], kept[1]);
    test_check_err("quantized kernels' bytes = sdc_quant_row of the source (row-major), kept ones = the source's",
                   "mismatching kernels", (double)bad, 0);
    test_check(g.n_conv_keys == flat[0] + flat[1], "%s: %d sdc.conv_shape keys for %d quantized kernels", tn,
               g.n_conv_keys, flat[0] + flat[1]);
    test_check_err("indexed again: kernels with the source's 4-D shape", "mismatching kernels",
                   ok_idx ? (double)bad_shape : INFINITY, 0);
    sdc_index_free(idx);
    gg_close(&g);
}

/* A model's GGUF (the tiny SD 1.x single file converted to dt, convolution kernels too when qconvs) opens with
 * its config folder and gives exactly the image of the same weights dequantized into an f32 safetensors file:
 * quantized weights are read, named and widened without any change of value. */
static void check_sd1_gguf_vs_f32(const char *name, sdc_dtype dt, int qconvs, sdc_model_index *src) {
    char gguf[512], f32[600];
    snprintf(gguf, sizeof gguf, "%s", test_tmp_path(name));
    snprintf(f32, sizeof f32, "%s.f32.safetensors", gguf);
    sdc_convert_params p = {
        .input = test_ref_path("tiny-sd1.safetensors"), .output = gguf, .type = dt, .quantize_convs = qconvs};
    if (!test_check(sdc_convert_gguf(&p, test_logger()) == SDC_OK, "convert tiny-sd1.safetensors to %s%s",
                    sdc_dtype_name(dt), qconvs ? " --quantize-convs" : ""))
        return;
    if (qconvs) check_quantized_convs(gguf, dt, src);
    sdc_model_index *idx = sdc_index_new(test_logger());
    sdc_st_writer *w = sdc_st_writer_new(test_logger());
    sdc_status st = sdc_index_add_file(idx, gguf, NULL, NULL, NULL);
    size_t n = sdc_index_count(idx), quant = 0, quant4 = 0;
    float **vals = calloc(n ? n : 1, sizeof *vals);
    for (size_t i = 0; st == SDC_OK && i < n; i++) {
        const sdc_tensor_info *t = sdc_index_at(idx, i);
        quant += sdc_dtype_is_quant(t->dtype);
        quant4 += sdc_dtype_is_quant(t->dtype) && t->ndim == 4;
        if (!(vals[i] = malloc(sizeof(float) * (size_t)sdc_tensor_info_nelem(t) + 1))) st = SDC_ERR_OOM;
        if (st == SDC_OK) st = sdc_index_read_f32(idx, t, vals[i]);
        if (st == SDC_OK) st = sdc_st_writer_add(w, t->name, SDC_DTYPE_F32, t->ndim, t->ne, vals[i]);
    }
    if (st == SDC_OK) st = sdc_st_writer_write(w, f32);
    test_check(st == SDC_OK && quant > 100 && (quant4 > 100) == (qconvs != 0),
               "%s: %zu tensors (%zu quantized, %zu of them 4-D kernels) dequantized into %s", name, n, quant, quant4,
               f32);
    for (size_t i = 0; i < n; i++) free(vals[i]);
    free(vals);
    sdc_st_writer_free(w);
    sdc_index_free(idx);
    const char *cfg = test_ref_path("tiny-sd1");
    const uint64_t hq = sd1_png_hash(gguf, cfg), hf = sd1_png_hash(f32, cfg);
    test_check(hq && hq == hf, "%s: image %016llx from the GGUF, %016llx from its dequantized f32 file", name,
               (unsigned long long)hq, (unsigned long long)hf);
}

static void check_sd1_end_to_end(void) {
    printf("SD 1.x GGUF end to end\n");
    sdc_model_index *src = sdc_index_new(test_logger());
    if (!test_check(src && sdc_index_add_file(src, test_ref_path("tiny-sd1.safetensors"), NULL, NULL, NULL) == SDC_OK,
                    "open tiny-sd1.safetensors")) {
        sdc_index_free(src);
        return;
    }
    check_sd1_gguf_vs_f32("sd1-q8_0.gguf", SDC_DTYPE_Q8_0, 0, src);
    check_sd1_gguf_vs_f32("sd1-q4_0.gguf", SDC_DTYPE_Q4_0, 0, src);
    check_sd1_gguf_vs_f32("sd1-q8_0-convs.gguf", SDC_DTYPE_Q8_0, 1, src);
    check_sd1_gguf_vs_f32("sd1-q4_0-convs.gguf", SDC_DTYPE_Q4_0, 1, src);
    sdc_index_free(src);
}

/* A diffusers-style sharded component folder (two shards and their "*.safetensors.index.json") made from the
 * source's tensors, split in its order: converting the folder gives the same bytes as converting the single
 * file (q8_0.gguf, made before); an index naming a missing shard fails with no output. */
static void check_sharded_folder(sdc_model_index *src) {
    printf("sharded component folder\n");
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s", test_tmp_path("sharded"));
    mkdir(dir, 0755);
    const size_t n = sdc_index_count(src), half = n / 2;
    uint8_t **raw = calloc(n, sizeof *raw);
    sdc_st_writer *w[2] = {sdc_st_writer_new(test_logger()), sdc_st_writer_new(test_logger())};
    sdc_status st = raw && w[0] && w[1] ? SDC_OK : SDC_ERR_OOM;
    FILE *f = NULL;
    if (st == SDC_OK) {
        snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors.index.json", dir);
        f = fopen(path, "w");
        if (f) fputs("{\"metadata\": {}, \"weight_map\": {", f);
    }
    for (size_t i = 0; i < n && st == SDC_OK && f; i++) {
        const sdc_tensor_info *t = sdc_index_at(src, i);
        const int k = i >= half;
        if (!(raw[i] = malloc(t->nbytes + 1))) st = SDC_ERR_OOM;
        if (st == SDC_OK) st = sdc_index_read_raw(src, t, raw[i]);
        if (st == SDC_OK) st = sdc_st_writer_add(w[k], t->name, t->dtype, t->ndim, t->ne, raw[i]);
        fprintf(f, "%s\"%s\": \"diffusion_pytorch_model-0000%d-of-00002.safetensors\"", i ? ", " : "", t->name, k + 1);
    }
    if (f) fputs("}}\n", f);
    int closed = f && fclose(f) == 0;
    for (int k = 0; k < 2 && st == SDC_OK; k++) {
        snprintf(path, sizeof path, "%s/diffusion_pytorch_model-0000%d-of-00002.safetensors", dir, k + 1);
        st = sdc_st_writer_write(w[k], path);
    }
    if (test_check(st == SDC_OK && closed, "wrote %zu + %zu tensors as two shards and their index", half, n - half)) {
        sdc_convert_params p = {.input = dir, .output = test_tmp_path("sharded.gguf"), .type = SDC_DTYPE_Q8_0};
        size_t na = 0, nb = 0;
        uint8_t *a = NULL, *b = NULL;
        if (test_check(sdc_convert_gguf(&p, test_logger()) == SDC_OK, "convert the sharded folder to q8_0")) {
            a = slurp(p.output, &na);
            b = slurp(test_tmp_path("q8_0.gguf"), &nb);
        }
        test_check(a && b && na == nb && !memcmp(a, b, na),
                   "the sharded folder's GGUF is byte-identical to the single file's (%zu and %zu bytes)", na, nb);
        free(a);
        free(b);
        snprintf(path, sizeof path, "%s/diffusion_pytorch_model-00002-of-00002.safetensors", dir);
        remove(path);
        p.output = test_tmp_path("sharded-missing.gguf");
        test_check(sdc_convert_gguf(&p, test_capture_logger()) != SDC_OK && !exists(p.output),
                   "a shard missing: an error, no output (%s)", test_last_error());
    }
    for (size_t i = 0; raw && i < n; i++) free(raw[i]);
    free(raw);
    sdc_st_writer_free(w[0]);
    sdc_st_writer_free(w[1]);
}

/* A file with an empty tensor ([4, 0]: rows of no element) beside a weight converts: the empty one is
 * declared with its shape and no data, the weight quantized (it crashed with SIGFPE dividing by the row). */
static void check_empty_tensor(void) {
    float v[2 * 32];
    test_fill_normal(v, 2 * 32, 5, 1.0f);
    sdc_st_writer *w = sdc_st_writer_new(test_logger());
    sdc_st_writer_add(w, "e.weight", SDC_DTYPE_F32, 2, (int64_t[]){4, 0}, v);
    sdc_st_writer_add(w, "w.weight", SDC_DTYPE_F32, 2, (int64_t[]){2, 32}, v);
    sdc_convert_params p = {
        .input = test_tmp_path("empty.safetensors"), .output = test_tmp_path("empty.gguf"), .type = SDC_DTYPE_Q8_0};
    const int made = sdc_st_writer_write(w, p.input) == SDC_OK;
    const sdc_status st = made ? sdc_convert_gguf(&p, test_logger()) : SDC_ERR_IO;
    gg_file g;
    const int parsed = st == SDC_OK && gg_open(p.output, &g) == 0;
    const gg_tensor *e = parsed ? find(&g, "e.weight") : NULL, *q = parsed ? find(&g, "w.weight") : NULL;
    test_check(e && q && q->type == 8 && gg_nbytes(q) == sdc_dtype_row_bytes(SDC_DTYPE_Q8_0, 64),
               "a [4, 0] tensor beside a weight: converted (%s), the weight Q8_0", sdc_status_str(st));
    if (parsed) gg_close(&g);
    sdc_st_writer_free(w);
}

/* ---- the loader on a kernel stored 2-D without its shape key ---- */
enum {
    CO = 8,
    CI = 32,
    KS = 3,
    KF = CI * KS * KS
};

/* A GGUF of three tensors and no metadata but the architecture: "k.weight" Q8_0 [CO, KF] (the kernel
 * [CO, CI, 3, 3] flattened), "short.weight" Q8_0 [CO, 256] and "h.weight" F16 [CO, KF]; w: the kernel's
 * values as f32. */
static const char *write_flat_gguf(float *w) {
    const char *path = test_tmp_path("flat-kernel.gguf");
    float *h = malloc(sizeof(float) * CO * KF);
    uint8_t *q = malloc(sdc_dtype_row_bytes(SDC_DTYPE_Q8_0, CO * KF)),
            *q2 = malloc(sdc_dtype_row_bytes(SDC_DTYPE_Q8_0, CO * 256));
    uint16_t *f16 = malloc(sizeof(uint16_t) * CO * KF);
    test_fill_normal(w, CO * KF, 11, 0.2f);
    test_fill_normal(h, CO * KF, 12, 0.2f);
    sdc_gguf_writer *gw = sdc_gguf_writer_new(test_logger());
    int ok = h && q && q2 && f16 && gw && sdc_quant_row(SDC_DTYPE_Q8_0, w, q, CO * KF) == 0 &&
        sdc_dequant_row(SDC_DTYPE_Q8_0, q, w, CO * KF) == 0 && sdc_quant_row(SDC_DTYPE_Q8_0, h, q2, CO * 256) == 0 &&
        sdc_convert_from_f32(f16, SDC_DTYPE_F16, h, CO * KF) == 0;
    ok = ok && sdc_gguf_writer_kv_str(gw, "general.architecture", "test") == SDC_OK &&
        sdc_gguf_writer_add_tensor(gw, "k.weight", SDC_DTYPE_Q8_0, 2, (int64_t[]){CO, KF}) == SDC_OK &&
        sdc_gguf_writer_add_tensor(gw, "short.weight", SDC_DTYPE_Q8_0, 2, (int64_t[]){CO, 256}) == SDC_OK &&
        sdc_gguf_writer_add_tensor(gw, "h.weight", SDC_DTYPE_F16, 2, (int64_t[]){CO, KF}) == SDC_OK &&
        sdc_gguf_writer_begin(gw, path) == SDC_OK &&
        sdc_gguf_writer_write(gw, q, sdc_dtype_row_bytes(SDC_DTYPE_Q8_0, CO * KF)) == SDC_OK &&
        sdc_gguf_writer_write(gw, q2, sdc_dtype_row_bytes(SDC_DTYPE_Q8_0, CO * 256)) == SDC_OK &&
        sdc_gguf_writer_write(gw, f16, sizeof(uint16_t) * CO * KF) == SDC_OK && sdc_gguf_writer_finish(gw) == SDC_OK;
    sdc_gguf_writer_free(gw);
    free(h);
    free(q);
    free(q2);
    free(f16);
    return ok ? path : NULL;
}

/* y = conv2d(x, w), 3x3, stride 1, pad 1, x [1, CI, 6, 5]: into out (CO * 30 floats). */
static void conv(sdc_backend *be, const sdc_tensor *w, float *out) {
    float x[CI * 30];
    test_fill_normal(x, CI * 30, 13, 1.0f);
    sdc_tensor *tx = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 4, (int64_t[]){1, CI, 6, 5});
    sdc_tensor *ty = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 4, (int64_t[]){1, CO, 6, 5});
    if (tx && ty && sdc_tensor_set_f32(tx, x) == SDC_OK) {
        sdc_conv2d(ty, tx, w, NULL, 1, 1);
        if (sdc_backend_sync(be) != SDC_OK || sdc_tensor_get_f32(ty, out) != SDC_OK)
            memset(out, 0xff, sizeof(float) * CO * 30);
    }
    sdc_tensor_free(tx);
    sdc_tensor_free(ty);
}

/* A backend that dequantizes block types at load (as CUDA does for now: weight_dtype the compute dtype), through
 * staging buffers of 1 KiB (as CUDA's, smaller): the CPU backend with these. */
static sdc_dtype weight_f32(sdc_backend *be, sdc_dtype file_dtype, sdc_prec prec, int matrix) { return SDC_DTYPE_F32; }
static unsigned char stage[2][1024];
static int n_staged;
static size_t staging_size(sdc_backend *be) { return sizeof stage[0]; }
static void *staging_acquire(sdc_backend *be, size_t nbytes) {
    return nbytes <= sizeof stage[0] ? stage[n_staged % 2] : NULL;
}
static void staging_upload(sdc_backend *be, void *dst, const void *src, size_t nbytes) {
    be->iface->upload(be, dst, src, nbytes);
    n_staged++;
}
static void staging_flush(sdc_backend *be) {}

/* A kernel [CO, CI, 3, 3] stored as the 2-D Q8_0 [CO, CI*9] with no sdc.conv_shape key (a file of another
 * writer): asked for as the 4-D kernel it loads as a Q8_0 [CO, CI, 3, 3] of the file's bytes, and the
 * convolution on it equals, bit for bit, the one on its values as an f32 kernel; a backend that converts
 * at load gets those values. The counting backend (the planner's) counts its bytes. Every other shape
 * mismatch is SDC_ERR_FORMAT with a message: another element count (a 2-D Q8_0 [CO, 256] for [CO, CI, 3, 3]),
 * another Co, a 2-D F16 (only block types are stored flattened). */
static void check_flat_kernel_loader(void) {
    printf("a kernel stored 2-D without its shape key\n");
    float *w = malloc(sizeof(float) * CO * KF), *y_q = malloc(sizeof(float) * CO * 30),
          *y_f = malloc(sizeof(float) * CO * 30);
    const char *path = w ? write_flat_gguf(w) : NULL;
    sdc_model_index *idx = sdc_index_new(test_logger());
    if (!test_check(path && y_q && y_f && idx && sdc_index_add_file(idx, path, NULL, NULL, NULL) == SDC_OK,
                    "write and index a GGUF with a Q8_0 [%d, %d]", CO, KF)) {
        sdc_index_free(idx);
        free(w);
        free(y_q);
        free(y_f);
        return;
    }
    const sdc_tensor_info *info = sdc_index_find(idx, "k.weight");
    test_check(info && info->ndim == 2, "without the key the file's tensor is indexed 2-D [%lld, %lld]",
               info ? (long long)info->ne[0] : 0LL, info ? (long long)info->ne[1] : 0LL);
    const int64_t kernel[4] = {CO, CI, KS, KS};
    sdc_backend *be = sdc_backend_cpu_new(1, test_logger());
    sdc_weight_set ws;
    sdc_weights_begin(&ws, &(sdc_weight_source){idx, "", be, test_logger(), 0, 0, NULL, 0}, NULL);
    sdc_tensor *t = sdc_weights_matrix(&ws, 4, kernel, "k.weight");
    uint8_t *raw = info ? malloc(info->nbytes) : NULL;
    const int same_bytes = t && raw && sdc_index_read_raw(idx, info, raw) == SDC_OK && t->nbytes == info->nbytes &&
        !memcmp(t->data, raw, t->nbytes);
    free(raw);
    const sdc_status st_k = sdc_weights_end(&ws);
    if (st_k != SDC_OK) t = NULL; /* freed */
    test_check(st_k == SDC_OK && t && t->dtype == SDC_DTYPE_Q8_0 && t->ndim == 4 &&
                   !memcmp(t->ne, kernel, sizeof kernel) && same_bytes,
               "asked for as [%d, %d, 3, 3]: a Q8_0 [%lld, %lld, %lld, %lld] of the file's %zu bytes", CO, CI,
               t ? (long long)t->ne[0] : 0LL, t ? (long long)t->ne[1] : 0LL, t ? (long long)t->ne[2] : 0LL,
               t ? (long long)t->ne[3] : 0LL, t ? t->nbytes : 0);
    sdc_tensor *wf = sdc_tensor_new(be, SDC_MEM_WEIGHTS, SDC_DTYPE_F32, 4, kernel);
    if (t && wf && sdc_tensor_set_f32(wf, w) == SDC_OK) {
        conv(be, t, y_q);
        conv(be, wf, y_f);
        test_check_err("conv2d on the Q8_0 kernel vs on its values in f32", "max abs diff",
                       test_max_abs(y_q, y_f, CO * 30), 0);
    }
    sdc_tensor_free(wf);
    sdc_weights_free(&ws);

    /* a backend that converts block types at load (weight_dtype f32), through staging buffers as CUDA */
    struct sdc_backend_i iface = *be->iface;
    const struct sdc_backend_i *orig = be->iface;
    iface.weight_dtype = weight_f32;
    iface.staging_size = staging_size;
    iface.staging_acquire = staging_acquire;
    iface.staging_upload = staging_upload;
    iface.staging_flush = staging_flush;
    be->iface = &iface;
    sdc_weights_begin(&ws, &(sdc_weight_source){idx, "", be, test_logger(), 0, 0, NULL, 0}, NULL);
    t = sdc_weights_matrix(&ws, 4, kernel, "k.weight");
    float *got = calloc(CO * KF, sizeof(float));
    const int loaded = sdc_weights_end(&ws) == SDC_OK && t && t->dtype == SDC_DTYPE_F32 && t->ndim == 4 && got &&
        sdc_tensor_get_f32(t, got) == SDC_OK;
    const double diff = loaded ? test_max_abs(got, w, CO * KF) : INFINITY;
    test_check(loaded && diff == 0 && n_staged > 1,
               "a backend that converts at load: an f32 [%d, %d, 3, 3] of the dequantized values through %d staged "
               "uploads (max abs diff %g, bound 0)",
               CO, CI, n_staged, diff);
    free(got);
    sdc_weights_free(&ws);
    be->iface = orig;

    /* the planner's counting backend */
    sdc_backend *cnt = sdc_backend_count_new(be);
    sdc_weights_begin(&ws, &(sdc_weight_source){idx, "", cnt, test_logger(), 0, 0, NULL, 0}, NULL);
    t = sdc_weights_matrix(&ws, 4, kernel, "k.weight");
    const sdc_status st_c = sdc_weights_end(&ws);
    test_check(st_c == SDC_OK && t && ws.bytes_resident == info->nbytes,
               "counted: %llu resident bytes (the file's %llu)", (unsigned long long)ws.bytes_resident,
               (unsigned long long)info->nbytes);
    sdc_weights_free(&ws);
    sdc_backend_free(cnt);

    static const struct {
        const char *name;
        int64_t ne[4];
        const char *needle;
    } bad[] = {
        {"short.weight",
         {CO, CI, KS, KS},
         "has shape [8, 256], the config needs [8, 32, 3, 3] (as a flattened Q8_0 kernel it would be [8, 288])"},
        {"k.weight", {CO, 30, KS, KS}, "has shape [8, 288], the config needs [8, 30, 3, 3]"},
        {"k.weight", {CO + 1, CI, KS, KS}, "has shape [8, 288], the config needs [9, 32, 3, 3]"},
        {"h.weight", {CO, CI, KS, KS}, "has shape [8, 288], the config needs [8, 32, 3, 3]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sdc_weights_begin(&ws, &(sdc_weight_source){idx, "", be, test_capture_logger(), 0, 0, NULL, 0}, NULL);
        t = sdc_weights_matrix(&ws, 4, bad[i].ne, "%s", bad[i].name);
        const sdc_status st = sdc_weights_end(&ws);
        test_check(!t && st == SDC_ERR_FORMAT && strstr(test_last_error(), bad[i].needle),
                   "%s as [%lld, %lld, 3, 3]: SDC_ERR_FORMAT (%s): '%s'", bad[i].name, (long long)bad[i].ne[0],
                   (long long)bad[i].ne[1], sdc_status_str(st), test_last_error());
    }
    sdc_backend_free(be);
    sdc_index_free(idx);
    free(w);
    free(y_q);
    free(y_f);
}

int main(void) {
    char dir[256];
    snprintf(dir, sizeof dir, "%s", test_make_tmp_dir("convert")); /* test_tmp_path's folder */
    check_sd1_end_to_end();
    check_flat_kernel_loader();
    sdc_model_index *src = sdc_index_new(test_logger());
    if (!test_check(src && sdc_index_add_file(src, source_path(), NULL, NULL, NULL) == SDC_OK, "open the source"))
        return test_finish();
    check_type("q8_0.gguf", SDC_DTYPE_Q8_0, "tiny-flux-schnell-q8_0.gguf", src);
    check_type("q4_0.gguf", SDC_DTYPE_Q4_0, "tiny-flux-schnell-q4_0.gguf", src);
    check_type("q5_1.gguf", SDC_DTYPE_Q5_1, NULL, src);
    check_type("f16.gguf", SDC_DTYPE_F16, NULL, src);
    check_rules_and_fallback();
    check_sharded_folder(src);
    check_empty_tensor();
    check_errors(dir);
    sdc_index_free(src);
    test_rm_tree(dir);
    return test_finish();
}
