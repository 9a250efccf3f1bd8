/* gguf_convert.c - see gguf_convert.h. */
#include "io/gguf_convert.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/quant.h"
#include "io/gguf.h"
#include "io/gguf_format.h"
#include "io/gguf_write.h"
#include "io/model_index.h"
#include "io/shard_index.h"

#define MAX_RULES 32
#define CHUNK_ELEMS ((int64_t)1 << 22) /* elements converted per piece: 16 MiB of f32 */

static const struct {
    const char *name;
    sdc_dtype dt;
    uint32_t file_type; /* llama.cpp's LlamaFileType (the "S" variant for the K-quants) */
} types[] = {
    {"f32", SDC_DTYPE_F32, 0},    {"f16", SDC_DTYPE_F16, 1},    {"bf16", SDC_DTYPE_BF16, 32},
    {"q8_0", SDC_DTYPE_Q8_0, 7},  {"q4_0", SDC_DTYPE_Q4_0, 2},  {"q4_1", SDC_DTYPE_Q4_1, 3},
    {"q5_0", SDC_DTYPE_Q5_0, 8},  {"q5_1", SDC_DTYPE_Q5_1, 9},  {"q2_k", SDC_DTYPE_Q2_K, 10},
    {"q3_k", SDC_DTYPE_Q3_K, 11}, {"q4_k", SDC_DTYPE_Q4_K, 14}, {"q5_k", SDC_DTYPE_Q5_K, 16},
    {"q6_k", SDC_DTYPE_Q6_K, 18},
};
#define N_TYPES (sizeof types / sizeof types[0])

int sdc_convert_type_from_name(const char *name, sdc_dtype *out) {
    for (size_t i = 0; i < N_TYPES; i++) {
        if (!strcasecmp(name, types[i].name)) {
            *out = types[i].dt;
            return 0;
        }
    }
    return -1;
}

static uint32_t file_type_of(sdc_dtype dt) {
    for (size_t i = 0; i < N_TYPES; i++)
        if (types[i].dt == dt) return types[i].file_type;
    return 0;
}

typedef struct rule {
    regex_t re;
    sdc_dtype dt;
} rule;

typedef struct rules {
    rule r[MAX_RULES];
    int n;
} rules;

static void rules_free(rules *rs) {
    for (int i = 0; i < rs->n; i++) regfree(&rs->r[i].re);
    rs->n = 0;
}

/* "REGEX=TYPE,REGEX=TYPE": each item split at its last '='. */
static sdc_status rules_parse(const char *text, rules *rs, const sdc_logger *log) {
    rs->n = 0;
    if (!text) return SDC_OK;
    char *copy = strdup(text), *save = NULL;
    if (!copy) return SDC_ERR_OOM;
    sdc_status st = SDC_OK;
    for (char *item = strtok_r(copy, ",", &save); item && st == SDC_OK; item = strtok_r(NULL, ",", &save)) {
        char *eq = strrchr(item, '=');
        sdc_dtype dt;
        if (!eq || eq == item || sdc_convert_type_from_name(eq + 1, &dt) != 0) {
            SDC_LOGE(log,
                     "sdc_convert_gguf: bad tensor type rule '%s' (want REGEX=TYPE, TYPE one of f32, f16, "
                     "bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k ... q6_k)",
                     item);
            st = SDC_ERR_INVALID_ARG;
        } else if (rs->n == MAX_RULES) {
            SDC_LOGE(log, "sdc_convert_gguf: more than %d tensor type rules", MAX_RULES);
            st = SDC_ERR_INVALID_ARG;
        } else {
            *eq = '\0';
            int rc = regcomp(&rs->r[rs->n].re, item, REG_EXTENDED | REG_NOSUB);
            if (rc != 0) {
                char msg[128];
                regerror(rc, &rs->r[rs->n].re, msg, sizeof msg);
                SDC_LOGE(log, "sdc_convert_gguf: bad regular expression '%s': %s", item, msg);
                st = SDC_ERR_INVALID_ARG;
            } else {
                rs->r[rs->n++].dt = dt;
            }
        }
    }
    free(copy);
    if (st != SDC_OK) rules_free(rs);
    return st;
}

static int has_prefix_tensor(const sdc_model_index *idx, const char *needle) {
    for (size_t i = 0; i < sdc_index_count(idx); i++)
        if (strstr(sdc_index_at(idx, i)->name, needle)) return 1;
    return 0;
}

static const char *guess_arch(const sdc_model_index *idx) {
    if (has_prefix_tensor(idx, "double_blocks.")) return "flux";
    if (has_prefix_tensor(idx, "input_blocks.")) return has_prefix_tensor(idx, "label_emb.") ? "sdxl" : "sd1";
    return "unknown";
}

static sdc_dtype keep_precision(sdc_dtype src) {
    return src == SDC_DTYPE_F16 || src == SDC_DTYPE_BF16 ? src : SDC_DTYPE_F32;
}

/* Whether t is a 4-D convolution kernel [Co, Ci, KH, KW] stored flattened as [Co, Ci*KH*KW] in block type dt
 * (gguf_convert.h: quantize_convs). */
static int flattens(const sdc_tensor_info *t, const sdc_convert_params *p, sdc_dtype dt) {
    return p->quantize_convs && t->ndim == 4 && sdc_dtype_is_quant(dt) &&
        (t->ne[1] * t->ne[2] * t->ne[3]) % sdc_dtype_block(dt) == 0;
}

/* The type tensor t is stored as (gguf_convert.h's rules); -1 when it cannot be stored. */
static int out_type(const sdc_tensor_info *t, const sdc_convert_params *p, const rules *rs, sdc_dtype *out) {
    switch (t->dtype) {
    case SDC_DTYPE_I8:
    case SDC_DTYPE_I16:
    case SDC_DTYPE_I32:
    case SDC_DTYPE_I64: *out = t->dtype; return 0;
    case SDC_DTYPE_F32:
    case SDC_DTYPE_F16:
    case SDC_DTYPE_BF16:
    case SDC_DTYPE_F64: break;
    default: return -1;
    }
    sdc_dtype dt = t->ndim >= 2 ? p->type : SDC_DTYPE_F32;
    for (int i = 0; i < rs->n; i++) {
        if (regexec(&rs->r[i].re, t->name, 0, NULL, 0) == 0) {
            dt = rs->r[i].dt;
            break;
        }
    }
    int64_t row = t->ndim ? t->ne[t->ndim - 1] : 1;
    if (sdc_dtype_is_quant(dt) && (t->ndim < 2 || row % sdc_dtype_block(dt) != 0) && !flattens(t, p, dt))
        dt = keep_precision(t->dtype);
    *out = dt;
    return 0;
}

/* The shape t is stored with as dt: its own, or [Co, Ci*KH*KW] for a flattened convolution kernel. Returns
 * the number of dims written to ne. */
static int out_shape(const sdc_tensor_info *t, const sdc_convert_params *p, sdc_dtype dt, int64_t *ne) {
    if (flattens(t, p, dt)) {
        ne[0] = t->ne[0];
        ne[1] = t->ne[1] * t->ne[2] * t->ne[3];
        return 2;
    }
    if (!t->ndim) {
        ne[0] = 1;
        return 1;
    }
    for (int d = 0; d < t->ndim; d++) ne[d] = t->ne[d];
    return t->ndim;
}

/* *files = a list of path alone (free with sdc_shard_list_free): 1, or -1 when out of memory. */
static int one_file(const char *path, char ***files) {
    if ((*files = malloc(sizeof **files)) && ((*files)[0] = strdup(path))) return 1;
    free(*files);
    *files = NULL;
    return -1;
}

/* The weights files of a component folder: its single weights file, else the shards its index names
 * (shard_index.h). Returns the count (>= 1) with *files malloc'd (free with sdc_shard_list_free), 0 (logged)
 * when there are none, -1 when out of memory. */
static int component_files(const char *dir, char ***files, const sdc_logger *log) {
    static const char *const names[] = {"diffusion_pytorch_model.safetensors", "model.safetensors",
                                        "diffusion_pytorch_model.fp16.safetensors", "model.fp16.safetensors"};
    struct stat st;
    char path[4096];
    *files = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) return one_file(path, files);
    }
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s.index.json", dir, names[i]);
        if (stat(path, &st) != 0) continue;
        int n = 0;
        return sdc_shard_list(path, log, files, &n) == SDC_OK ? n : 0; /* a bad index is logged */
    }
    snprintf(path, sizeof path, "%s/model_index.json", dir);
    if (stat(path, &st) == 0)
        SDC_LOGE(log,
                 "sdc_convert_gguf: %s is a whole diffusers model: give one component's folder (e.g. "
                 "%s/transformer) or weights file",
                 dir, dir);
    else
        SDC_LOGE(log,
                 "sdc_convert_gguf: %s holds no weights file (diffusion_pytorch_model.safetensors or "
                 "model.safetensors, or a shard index beside its shards)",
                 dir);
    return 0;
}

typedef struct buffers {
    uint8_t *src, *dst;
    float *f32;
} buffers;

/* Writes tensor t's data as dt in rows of row elements (its stored shape's), CHUNK_ELEMS (whole rows) at a
 * time. */
static sdc_status write_tensor(sdc_model_index *idx, const sdc_tensor_info *t, sdc_dtype dt, int64_t row,
                               sdc_gguf_writer *w, buffers *b) {
    const int64_t nelem = sdc_tensor_info_nelem(t);
    const size_t esize = sdc_dtype_size(t->dtype);
    if (nelem == 0) return SDC_OK; /* an empty tensor (rows of 0 elements included): no data */
    const int64_t rows_per = row >= CHUNK_ELEMS ? 1 : CHUNK_ELEMS / row;
    for (int64_t e = 0; e < nelem; e += rows_per * row) {
        int64_t n = nelem - e < rows_per * row ? nelem - e : rows_per * row;
        sdc_status st = sdc_index_read_range(idx, t, (uint64_t)e * esize, (uint64_t)n * esize, b->src);
        if (st != SDC_OK) return st;
        if (dt == t->dtype) {
            st = sdc_gguf_writer_write(w, b->src, (size_t)n * esize);
        } else {
            /* row by row (a piece is whole rows), each on its own: the same bytes for any thread count */
            int bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad) if (n > row)
            for (int64_t e0 = 0; e0 < n; e0 += row)
                bad |= sdc_convert_to_f32(b->f32 + e0, b->src + (size_t)e0 * esize, t->dtype, (size_t)row) != 0 ||
                    sdc_quant_row(dt, b->f32 + e0, b->dst + sdc_dtype_row_bytes(dt, e0), row) != 0;
            if (bad) return SDC_ERR_UNSUPPORTED; /* out_type only picks convertible pairs */
            st = sdc_gguf_writer_write(w, b->dst, sdc_dtype_row_bytes(dt, n));
        }
        if (st != SDC_OK) return st;
    }
    return SDC_OK;
}

/* Declares every tensor with its type (dts) and stored row length (rows). */
static sdc_status declare_tensors(sdc_model_index *idx, const sdc_convert_params *p, const rules *rs,
                                  sdc_gguf_writer *w, sdc_dtype *dts, int64_t *rows, int64_t *max_row,
                                  const sdc_logger *log) {
    *max_row = 1;
    for (size_t i = 0; i < sdc_index_count(idx); i++) {
        const sdc_tensor_info *t = sdc_index_at(idx, i);
        if (t->ndim > SDC_GGUF_MAX_DIMS || strlen(t->name) > SDC_GGUF_MAX_NAME || out_type(t, p, rs, &dts[i]) != 0) {
            SDC_LOGE(log, "sdc_convert_gguf: tensor %s (%s, %d dims) cannot be stored in a GGUF file", t->name,
                     sdc_dtype_name(t->dtype), t->ndim);
            return SDC_ERR_UNSUPPORTED;
        }
        int64_t ne[SDC_GGUF_MAX_DIMS];
        const int nd = out_shape(t, p, dts[i], ne);
        sdc_status st = sdc_gguf_writer_add_tensor(w, t->name, dts[i], nd, ne);
        if (st == SDC_OK && flattens(t, p, dts[i])) { /* the kernel's shape, for sdc's reader (io/gguf.h) */
            char key[SDC_GGUF_MAX_NAME + sizeof SDC_GGUF_CONV_SHAPE_KEY], shape[96];
            snprintf(key, sizeof key, "%s%s", SDC_GGUF_CONV_SHAPE_KEY, t->name);
            snprintf(shape, sizeof shape, "%lld,%lld,%lld,%lld", (long long)t->ne[0], (long long)t->ne[1],
                     (long long)t->ne[2], (long long)t->ne[3]);
            st = sdc_gguf_writer_kv_str(w, key, shape);
        }
        if (st != SDC_OK) return st;
        rows[i] = ne[nd - 1];
        *max_row = rows[i] > *max_row ? rows[i] : *max_row;
    }
    return SDC_OK;
}

static void log_summary(const sdc_convert_params *p, const sdc_model_index *idx, const sdc_dtype *dts, uint64_t bytes,
                        const sdc_logger *log) {
    char text[512] = "";
    size_t len = 0;
    for (int dt = 0; dt < SDC_DTYPE_COUNT; dt++) {
        int count = 0;
        for (size_t i = 0; i < sdc_index_count(idx); i++) count += dts[i] == (sdc_dtype)dt;
        if (count && len < sizeof text)
            len += (size_t)snprintf(text + len, sizeof text - len, "%s%d %s", len ? ", " : "", count,
                                    sdc_dtype_name((sdc_dtype)dt));
    }
    int flat = 0, convs = 0;
    for (size_t i = 0; i < sdc_index_count(idx); i++) {
        flat += flattens(sdc_index_at(idx, i), p, dts[i]);
        convs += sdc_index_at(idx, i)->ndim == 4;
    }
    if (p->quantize_convs && len < sizeof text)
        snprintf(text + len, sizeof text - len, "; %d of %d 4-D kernels quantized as 2-D", flat, convs);
    SDC_LOGI(log, "sdc_convert_gguf: wrote %s: %zu tensors (%s), %.1f MiB", p->output, sdc_index_count(idx), text,
             (double)bytes / (1 << 20));
}

static sdc_status convert_index(sdc_model_index *idx, const sdc_convert_params *p, const rules *rs,
                                const sdc_logger *log) {
    const size_t n = sdc_index_count(idx);
    sdc_dtype *dts = calloc(n ? n : 1, sizeof *dts);
    int64_t *rows = calloc(n ? n : 1, sizeof *rows);
    sdc_gguf_writer *w = sdc_gguf_writer_new(log);
    buffers b = {0};
    int64_t max_row = 1;
    sdc_status st = dts && rows && w ? SDC_OK : SDC_ERR_OOM;
    if (st == SDC_OK) st = sdc_gguf_writer_kv_str(w, "general.architecture", p->arch ? p->arch : guess_arch(idx));
    if (st == SDC_OK) st = sdc_gguf_writer_kv_u32(w, "general.quantization_version", 2);
    if (st == SDC_OK) st = sdc_gguf_writer_kv_u32(w, "general.file_type", file_type_of(p->type));
    if (st == SDC_OK) st = declare_tensors(idx, p, rs, w, dts, rows, &max_row, log);
    if (st == SDC_OK) {
        int64_t chunk = max_row > CHUNK_ELEMS ? max_row : CHUNK_ELEMS;
        b.src = malloc((size_t)chunk * 8);
        b.f32 = malloc((size_t)chunk * sizeof(float));
        b.dst = malloc((size_t)chunk * 4);
        if (!b.src || !b.f32 || !b.dst) st = SDC_ERR_OOM;
    }
    if (st == SDC_OK) st = sdc_gguf_writer_begin(w, p->output);
    uint64_t bytes = 0;
    for (size_t i = 0; i < n && st == SDC_OK; i++) {
        const sdc_tensor_info *t = sdc_index_at(idx, i);
        SDC_LOGD(log, "sdc_convert_gguf: %s %s -> %s%s", t->name, sdc_dtype_name(t->dtype), sdc_dtype_name(dts[i]),
                 flattens(t, p, dts[i]) ? " (flattened to 2-D)" : "");
        st = write_tensor(idx, t, dts[i], rows[i], w, &b);
        bytes += sdc_gguf_writer_tensor_bytes(w, i);
        if (st == SDC_OK && p->progress && p->progress((int)i + 1, (int)n, bytes, p->user)) st = SDC_ERR_CANCELLED;
    }
    if (st == SDC_OK) st = sdc_gguf_writer_finish(w);
    if (st == SDC_OK) log_summary(p, idx, dts, bytes, log);
    sdc_gguf_writer_free(w); /* deletes the temporary file after any failure */
    free(b.src);
    free(b.f32);
    free(b.dst);
    free(rows);
    free(dts);
    return st;
}

static int is_gguf(const char *path) {
    unsigned char m[4] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(m, 1, 4, f);
    fclose(f);
    return n == 4 &&
        ((uint32_t)m[0] | (uint32_t)m[1] << 8 | (uint32_t)m[2] << 16 | (uint32_t)m[3] << 24) == SDC_GGUF_MAGIC;
}

sdc_status sdc_convert_gguf(const sdc_convert_params *p, const sdc_logger *log) {
    if (!p->input || !p->output || !sdc_quant_can_write(p->type)) {
        SDC_LOGE(log, "sdc_convert_gguf: needs an input, an output and a type sdc writes");
        return SDC_ERR_INVALID_ARG;
    }
    struct stat sb;
    if (stat(p->input, &sb) != 0) {
        SDC_LOGE(log, "sdc_convert_gguf: %s does not exist", p->input);
        return SDC_ERR_NOT_FOUND;
    }
    char **files = NULL;
    const int n_files = S_ISDIR(sb.st_mode) ? component_files(p->input, &files, log) : one_file(p->input, &files);
    if (n_files <= 0) return n_files ? SDC_ERR_OOM : SDC_ERR_NOT_FOUND;
    sdc_status st = SDC_OK;
    for (int i = 0; i < n_files && st == SDC_OK; i++) {
        if (is_gguf(files[i])) {
            SDC_LOGE(log, "sdc_convert_gguf: %s is a GGUF file already (convert reads safetensors files)", files[i]);
            st = SDC_ERR_FORMAT;
        }
    }
    rules rs = {.n = 0};
    if (st == SDC_OK) st = rules_parse(p->rules, &rs, log);
    sdc_model_index *idx = st == SDC_OK ? sdc_index_new(log) : NULL;
    if (st == SDC_OK && !idx) st = SDC_ERR_OOM;
    for (int i = 0; i < n_files && st == SDC_OK; i++) st = sdc_index_add_file(idx, files[i], NULL, NULL, NULL);
    if (st == SDC_OK) st = convert_index(idx, p, &rs, log);
    sdc_index_free(idx);
    rules_free(&rs);
    sdc_shard_list_free(files, n_files);
    return st;
}
