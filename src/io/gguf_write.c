/* gguf_write.c - see gguf_write.h. */
#include "io/gguf_write.h"

#include <stdlib.h>
#include <string.h>

#include "core/quant.h"
#include "io/atomic_file.h"
#include "io/gguf_format.h"

typedef struct gguf_kv {
    char *key;
    sdc_gguf_value_type type; /* UINT32 or STRING */
    uint32_t u32;
    char *str;
} gguf_kv;

typedef struct gguf_tensor {
    char *name;
    sdc_dtype dtype;
    int ndim;
    int64_t ne[SDC_GGUF_MAX_DIMS]; /* innermost first, as GGUF stores it */
    uint64_t nbytes, offset;       /* offset from the data section's start */
} gguf_tensor;

struct sdc_gguf_writer {
    sdc_logger log;
    gguf_kv *kv;
    size_t n_kv, cap_kv;
    gguf_tensor *t;
    size_t n_t, cap_t;
    uint64_t data_bytes; /* the data section's size so far (aligned) */
    sdc_atomic_file af;
    int open, failed;
    size_t cur;        /* the tensor being written */
    uint64_t cur_done; /* its bytes written */
};

static const char *const WHAT = "gguf_write";

sdc_gguf_writer *sdc_gguf_writer_new(const sdc_logger *log) {
    sdc_gguf_writer *w = calloc(1, sizeof *w);
    if (w && log) w->log = *log;
    return w;
}

void sdc_gguf_writer_free(sdc_gguf_writer *w) {
    if (!w) return;
    if (w->open) sdc_atomic_abort(&w->af);
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].str);
    }
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w);
}

static int grow(void **p, size_t *cap, size_t n, size_t elem) {
    if (n < *cap) return 0;
    size_t c = *cap ? *cap * 2 : 16;
    void *q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static sdc_status add_kv(sdc_gguf_writer *w, const char *key, sdc_gguf_value_type type, uint32_t u32, const char *str) {
    if (w->open) return SDC_ERR_INVALID_ARG;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (!strcmp(w->kv[i].key, key)) {
            SDC_LOGE(&w->log, "%s: metadata key %s given twice", WHAT, key);
            return SDC_ERR_INVALID_ARG;
        }
    }
    if (grow((void **)&w->kv, &w->cap_kv, w->n_kv, sizeof *w->kv)) return SDC_ERR_OOM;
    gguf_kv kv = {strdup(key), type, u32, str ? strdup(str) : NULL};
    if (!kv.key || (str && !kv.str)) {
        free(kv.key);
        free(kv.str);
        return SDC_ERR_OOM;
    }
    w->kv[w->n_kv++] = kv;
    return SDC_OK;
}

sdc_status sdc_gguf_writer_kv_u32(sdc_gguf_writer *w, const char *key, uint32_t v) {
    return add_kv(w, key, SDC_GGUF_UINT32, v, NULL);
}

sdc_status sdc_gguf_writer_kv_str(sdc_gguf_writer *w, const char *key, const char *v) {
    return add_kv(w, key, SDC_GGUF_STRING, 0, v);
}

static uint64_t align_up(uint64_t x) {
    const uint64_t a = SDC_GGUF_DEFAULT_ALIGNMENT;
    return (x + a - 1) / a * a;
}

sdc_status sdc_gguf_writer_add_tensor(sdc_gguf_writer *w, const char *name, sdc_dtype dtype, int ndim,
                                      const int64_t *shape) {
    uint32_t ggml_type;
    if (w->open) return SDC_ERR_INVALID_ARG;
    if (strlen(name) == 0 || strlen(name) > SDC_GGUF_MAX_NAME) {
        SDC_LOGE(&w->log, "%s: tensor name '%s' is empty or longer than %d bytes", WHAT, name, SDC_GGUF_MAX_NAME);
        return SDC_ERR_INVALID_ARG;
    }
    if (ndim < 1 || ndim > SDC_GGUF_MAX_DIMS || sdc_dtype_to_ggml(dtype, &ggml_type) != 0) {
        SDC_LOGE(&w->log, "%s: %s: %d dims of %s cannot be stored", WHAT, name, ndim, sdc_dtype_name(dtype));
        return SDC_ERR_INVALID_ARG;
    }
    for (size_t i = 0; i < w->n_t; i++) {
        if (!strcmp(w->t[i].name, name)) {
            SDC_LOGE(&w->log, "%s: tensor %s given twice", WHAT, name);
            return SDC_ERR_INVALID_ARG;
        }
    }
    gguf_tensor t = {.dtype = dtype, .ndim = ndim};
    int64_t rows = 1;
    for (int d = 0; d < ndim; d++) {
        t.ne[d] = shape[ndim - 1 - d];
        if (t.ne[d] < 0 || (t.ne[d] > 0 && rows > INT64_MAX / t.ne[d])) {
            SDC_LOGE(&w->log, "%s: %s: bad shape", WHAT, name);
            return SDC_ERR_INVALID_ARG;
        }
        if (d > 0) rows *= t.ne[d];
    }
    uint64_t row_bytes = sdc_dtype_row_bytes(dtype, t.ne[0]);
    if (t.ne[0] % sdc_dtype_block(dtype) != 0) {
        SDC_LOGE(&w->log, "%s: %s: rows of %lld are not whole %s blocks of %d", WHAT, name, (long long)t.ne[0],
                 sdc_dtype_name(dtype), sdc_dtype_block(dtype));
        return SDC_ERR_INVALID_ARG;
    }
    t.nbytes = row_bytes * (uint64_t)rows;
    t.offset = w->data_bytes;
    if (grow((void **)&w->t, &w->cap_t, w->n_t, sizeof *w->t)) return SDC_ERR_OOM;
    if (!(t.name = strdup(name))) return SDC_ERR_OOM;
    w->t[w->n_t++] = t;
    w->data_bytes = align_up(t.offset + t.nbytes);
    return SDC_OK;
}

uint64_t sdc_gguf_writer_tensor_bytes(const sdc_gguf_writer *w, size_t i) { return i < w->n_t ? w->t[i].nbytes : 0; }

/* Little-endian writers; errors are caught by the FILE's error flag at commit and below. */
static void put(sdc_gguf_writer *w, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, w->af.f) != n) w->failed = 1;
}

static void put_u32(sdc_gguf_writer *w, uint32_t v) {
    uint8_t b[4];
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
    put(w, b, 4);
}

static void put_u64(sdc_gguf_writer *w, uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    put(w, b, 8);
}

static void put_str(sdc_gguf_writer *w, const char *s) {
    put_u64(w, strlen(s));
    put(w, s, strlen(s));
}

static void put_zeros(sdc_gguf_writer *w, uint64_t n) {
    static const uint8_t zeros[SDC_GGUF_DEFAULT_ALIGNMENT];
    put(w, zeros, (size_t)n);
}

static sdc_status fail(sdc_gguf_writer *w, const char *why) {
    SDC_LOGE(&w->log, "%s: writing %s failed: %s", WHAT, w->af.path ? w->af.path : "?", why);
    sdc_atomic_abort(&w->af);
    w->open = 0;
    return SDC_ERR_IO;
}

sdc_status sdc_gguf_writer_begin(sdc_gguf_writer *w, const char *path) {
    if (w->open) return SDC_ERR_INVALID_ARG;
    sdc_status st = sdc_atomic_open(&w->af, path, WHAT, &w->log);
    if (st != SDC_OK) return st;
    w->open = 1;
    uint64_t pos = 4 + 4 + 8 + 8;
    put_u32(w, SDC_GGUF_MAGIC);
    put_u32(w, 3);
    put_u64(w, w->n_t);
    put_u64(w, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        const gguf_kv *kv = &w->kv[i];
        put_str(w, kv->key);
        put_u32(w, (uint32_t)kv->type);
        pos += 8 + strlen(kv->key) + 4;
        if (kv->type == SDC_GGUF_STRING) {
            put_str(w, kv->str);
            pos += 8 + strlen(kv->str);
        } else {
            put_u32(w, kv->u32);
            pos += 4;
        }
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const gguf_tensor *t = &w->t[i];
        uint32_t ggml_type = 0;
        sdc_dtype_to_ggml(t->dtype, &ggml_type);
        put_str(w, t->name);
        put_u32(w, (uint32_t)t->ndim);
        for (int d = 0; d < t->ndim; d++) put_u64(w, (uint64_t)t->ne[d]);
        put_u32(w, ggml_type);
        put_u64(w, t->offset);
        pos += 8 + strlen(t->name) + 4 + 8 * (uint64_t)t->ndim + 4 + 8;
    }
    put_zeros(w, align_up(pos) - pos);
    w->cur = 0;
    w->cur_done = 0;
    return w->failed ? fail(w, "short write") : SDC_OK;
}

sdc_status sdc_gguf_writer_write(sdc_gguf_writer *w, const void *data, size_t nbytes) {
    if (!w->open) return SDC_ERR_INVALID_ARG;
    const uint8_t *p = data;
    while (nbytes > 0) {
        if (w->cur >= w->n_t) {
            SDC_LOGE(&w->log, "%s: more data than the tensors declared", WHAT);
            fail(w, "too much data");
            return SDC_ERR_INVALID_ARG;
        }
        const gguf_tensor *t = &w->t[w->cur];
        uint64_t left = t->nbytes - w->cur_done;
        size_t n = nbytes < left ? nbytes : (size_t)left;
        put(w, p, n);
        p += n;
        nbytes -= n;
        w->cur_done += n;
        if (w->cur_done == t->nbytes) {
            put_zeros(w, align_up(t->offset + t->nbytes) - (t->offset + t->nbytes));
            w->cur++;
            w->cur_done = 0;
        }
    }
    /* zero-byte tensors complete without a call */
    while (w->cur < w->n_t && w->t[w->cur].nbytes == 0) w->cur++;
    return w->failed ? fail(w, "short write (disk full?)") : SDC_OK;
}

sdc_status sdc_gguf_writer_finish(sdc_gguf_writer *w) {
    if (!w->open) return SDC_ERR_INVALID_ARG;
    while (w->cur < w->n_t && w->t[w->cur].nbytes == 0) w->cur++;
    if (w->cur < w->n_t) {
        SDC_LOGE(&w->log, "%s: %zu of %zu tensors written", WHAT, w->cur, w->n_t);
        fail(w, "missing tensor data");
        return SDC_ERR_INVALID_ARG;
    }
    if (w->failed) return fail(w, "short write");
    w->open = 0;
    return sdc_atomic_commit(&w->af, WHAT, &w->log);
}
