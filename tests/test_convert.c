/* test_convert.c - io/gguf_convert.h (what `sdc convert` runs) on the bundle's BFL Flux transformer:
 *   - q8_0 and q4_0: every tensor's data equals sdc_quant_row of the source (quantized weights) or the
 *     source itself (1-D, F32), read back with a small GGUF parser of the test's own;
 *   - the same files against the bundle's tiny-flux-schnell-{q8_0,q4_0}.gguf (written by gguf-py from the
 *     same BFL file): names, types, shapes and data equal (and whether the files are byte-identical);
 *   - the type rules (--tensor-type-rules), the fallback for rows that are not whole blocks (q4_k);
 *   - errors: missing input, missing output folder, bad rule, a cancelled run: no output, no temporaries,
 *     an existing output untouched. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/quant.h"
#include "io/gguf_convert.h"
#include "io/model_index.h"
#include "io/st_writer.h"
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
        char key[128], s[128];
        rd_str(g, &pos, key, sizeof key);
        uint32_t type = (uint32_t)rd(g, &pos, 4);
        if (type == 8) {
            rd_str(g, &pos, s, sizeof s);
            if (!strcmp(key, "general.architecture")) snprintf(g->arch, sizeof g->arch, "%s", s);
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

/* An SD 1.x single file (the bundle's, LDM names up to 76 bytes) converted to Q8_0 and Q4_0 opens with its
 * config folder and gives exactly the image of the same weights dequantized into an f32 safetensors file:
 * quantized weights are read, named and widened without any change of value. */
static void check_sd1_end_to_end(void) {
    printf("SD 1.x GGUF end to end\n");
    static const struct {
        const char *name;
        sdc_dtype dt;
    } types[] = {{"sd1-q8_0.gguf", SDC_DTYPE_Q8_0}, {"sd1-q4_0.gguf", SDC_DTYPE_Q4_0}};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        char gguf[512], f32[600];
        snprintf(gguf, sizeof gguf, "%s", test_tmp_path(types[k].name));
        snprintf(f32, sizeof f32, "%s.f32.safetensors", gguf);
        sdc_convert_params p = {test_ref_path("tiny-sd1.safetensors"), gguf, types[k].dt, NULL, NULL, NULL, NULL};
        if (!test_check(sdc_convert_gguf(&p, test_logger()) == SDC_OK, "convert tiny-sd1.safetensors to %s",
                        sdc_dtype_name(types[k].dt)))
            continue;
        sdc_model_index *idx = sdc_index_new(test_logger());
        sdc_st_writer *w = sdc_st_writer_new(test_logger());
        sdc_status st = sdc_index_add_file(idx, gguf, NULL, NULL, NULL);
        size_t n = sdc_index_count(idx), quant = 0;
        float **vals = calloc(n ? n : 1, sizeof *vals);
        for (size_t i = 0; st == SDC_OK && i < n; i++) {
            const sdc_tensor_info *t = sdc_index_at(idx, i);
            quant += sdc_dtype_is_quant(t->dtype);
            if (!(vals[i] = malloc(sizeof(float) * (size_t)sdc_tensor_info_nelem(t) + 1))) st = SDC_ERR_OOM;
            if (st == SDC_OK) st = sdc_index_read_f32(idx, t, vals[i]);
            if (st == SDC_OK) st = sdc_st_writer_add(w, t->name, SDC_DTYPE_F32, t->ndim, t->ne, vals[i]);
        }
        if (st == SDC_OK) st = sdc_st_writer_write(w, f32);
        test_check(st == SDC_OK && quant > 100, "%s: %zu tensors (%zu quantized) dequantized into %s", types[k].name, n,
                   quant, f32);
        for (size_t i = 0; i < n; i++) free(vals[i]);
        free(vals);
        sdc_st_writer_free(w);
        sdc_index_free(idx);
        const char *cfg = test_ref_path("tiny-sd1");
        const uint64_t hq = sd1_png_hash(gguf, cfg), hf = sd1_png_hash(f32, cfg);
        test_check(hq && hq == hf, "%s: image %016llx from the GGUF, %016llx from its dequantized f32 file",
                   types[k].name, (unsigned long long)hq, (unsigned long long)hf);
    }
}

int main(void) {
    char dir[256];
    snprintf(dir, sizeof dir, "%s", test_make_tmp_dir("convert")); /* test_tmp_path's folder */
    check_sd1_end_to_end();
    sdc_model_index *src = sdc_index_new(test_logger());
    if (!test_check(src && sdc_index_add_file(src, source_path(), NULL, NULL, NULL) == SDC_OK, "open the source"))
        return test_finish();
    check_type("q8_0.gguf", SDC_DTYPE_Q8_0, "tiny-flux-schnell-q8_0.gguf", src);
    check_type("q4_0.gguf", SDC_DTYPE_Q4_0, "tiny-flux-schnell-q4_0.gguf", src);
    check_type("q5_1.gguf", SDC_DTYPE_Q5_1, NULL, src);
    check_type("f16.gguf", SDC_DTYPE_F16, NULL, src);
    check_rules_and_fallback();
    check_errors(dir);
    sdc_index_free(src);
    test_rm_tree(dir);
    return test_finish();
}
