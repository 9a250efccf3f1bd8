/* gguf.c - the GGUF header: parse and validate it (gguf.h); gguf_meta.c answers metadata queries.
 *
 * The header is read through a small buffered cursor over a read callback (a file's pread, or memory for
 * the fuzzer). The cursor never reads past min(file size, MAX_HEADER_BYTES): every count and length is
 * checked against what is left of that before anything is allocated for it, and variable-length lists
 * (tensor infos, metadata pairs, string arrays) grow as their entries are read, so the memory a header
 * costs is bounded by the bytes it really holds. The first error sticks in the cursor. */
#include "io/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/quant.h"
#include "io/gguf_internal.h"

/* Metadata and tensor infos together: llama.cpp's largest tokenizers take tens of MB; more is a lie. */
#define MAX_HEADER_BYTES (256ull << 20)
/* Nested arrays deeper than this are refused (the format allows them; no model uses more than one level). */
#define MAX_ARRAY_DEPTH 4
/* Tensor names and keys are user data: quote at most this many bytes of one in a message. */
#define SHOWN 200
/* The smallest encodings: a metadata pair (key length, type, a 1-byte value), a tensor info (name length,
 * n_dims, type, offset), an array element that is itself an array (type, count). */
#define MIN_KV_BYTES 13u
#define MIN_TENSOR_BYTES 24u
#define MIN_ARRAY_BYTES 12u

typedef struct cursor {
    sdc_gguf_read_fn read;
    void *user;
    uint64_t size;  /* the file's */
    uint64_t limit; /* min(size, MAX_HEADER_BYTES): the header must end before it */
    uint64_t pos;   /* the next byte to read */
    const char *what;
    const sdc_logger *log;
    sdc_status st; /* the first error */
    uint64_t buf_off;
    size_t buf_len;
    unsigned char buf[1 << 15];
} cursor;

static void fail_truncated(cursor *c, uint64_t need, const char *field) {
    if (c->st != SDC_OK) return;
    if (c->limit < c->size)
        SDC_LOGE(c->log, "gguf: %s: %s at byte %llu (%llu bytes) goes past the %llu byte header limit", c->what, field,
                 (unsigned long long)c->pos, (unsigned long long)need, (unsigned long long)c->limit);
    else
        SDC_LOGE(c->log, "gguf: %s: truncated file: %s at byte %llu needs %llu bytes, the file has %llu", c->what,
                 field, (unsigned long long)c->pos, (unsigned long long)need, (unsigned long long)c->size);
    c->st = SDC_ERR_FORMAT;
}

/* Bytes left before the limit. */
static uint64_t left(const cursor *c) { return c->limit - c->pos; }

/* n bytes at the cursor into dst (field names them for messages); 0, or -1 with c->st set. */
static int get(cursor *c, void *dst, uint64_t n, const char *field) {
    if (c->st != SDC_OK) return -1;
    if (n > left(c)) {
        fail_truncated(c, n, field);
        return -1;
    }
    unsigned char *d = dst;
    while (n) {
        if (c->pos < c->buf_off || c->pos >= c->buf_off + c->buf_len) {
            c->buf_off = c->pos;
            c->buf_len = left(c) < sizeof c->buf ? (size_t)left(c) : sizeof c->buf;
            if (c->read(c->user, c->buf_off, c->buf, c->buf_len) != 0) {
                SDC_LOGE(c->log, "gguf: %s: cannot read %zu bytes at byte %llu", c->what, c->buf_len,
                         (unsigned long long)c->buf_off);
                c->buf_len = 0;
                c->st = SDC_ERR_IO;
                return -1;
            }
        }
        const uint64_t in = c->buf_off + c->buf_len - c->pos;
        const size_t m = (size_t)(n < in ? n : in);
        memcpy(d, c->buf + (c->pos - c->buf_off), m);
        d += m, c->pos += m, n -= m;
    }
    return 0;
}

static uint64_t le(const unsigned char *b, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

static int get_u32(cursor *c, uint32_t *v, const char *field) {
    unsigned char b[4];
    if (get(c, b, 4, field)) return -1;
    *v = (uint32_t)le(b, 4);
    return 0;
}

static int get_u64(cursor *c, uint64_t *v, const char *field) {
    unsigned char b[8];
    if (get(c, b, 8, field)) return -1;
    *v = le(b, 8);
    return 0;
}

/* A length-prefixed string, malloc'd and NUL-terminated; *len its byte count. no_nul: a NUL byte inside
 * is an error (keys and tensor names are C strings). NULL with c->st set on error. */
static char *get_str(cursor *c, const char *field, int no_nul, uint64_t *len) {
    uint64_t n;
    if (get_u64(c, &n, field)) return NULL;
    if (n > left(c)) {
        fail_truncated(c, n, field);
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s) {
        SDC_LOGE(c->log, "gguf: %s: out of memory for a %s of %llu bytes", c->what, field, (unsigned long long)n);
        c->st = SDC_ERR_OOM;
        return NULL;
    }
    if (get(c, s, n, field)) {
        free(s);
        return NULL;
    }
    s[n] = 0;
    if (no_nul && strlen(s) != n) {
        SDC_LOGE(c->log, "gguf: %s: the %s '%.*s' at byte %llu holds a NUL byte", c->what, field, SHOWN, s,
                 (unsigned long long)(c->pos - n));
        c->st = SDC_ERR_FORMAT;
        free(s);
        return NULL;
    }
    if (len) *len = n;
    return s;
}

/* Bytes of one element of a fixed-size type; 0 for STRING and ARRAY; -1 for an unknown type. */
static int value_size(uint32_t type) {
    static const signed char sizes[SDC_GGUF_VALUE_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return type < SDC_GGUF_VALUE_TYPE_COUNT ? sizes[type] : -1;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t cap2 = *cap ? *cap : 16;
    while (cap2 < need) cap2 *= 2;
    void *np = realloc(*p, cap2 * elem);
    if (!np) return -1;
    *p = np;
    *cap = cap2;
    return 0;
}

static int oom(cursor *c, const char *what) {
    if (c->st == SDC_OK) SDC_LOGE(c->log, "gguf: %s: out of memory reading %s", c->what, what);
    c->st = SDC_ERR_OOM;
    return -1;
}

/* An array's elements after its type and count: checked, and kept in kv unless depth > 0. */
static int get_array(cursor *c, gguf_kv *kv, uint32_t elem, uint64_t n, int depth);

/* The string elements of an array, grown as they are read (each takes at least 8 file bytes). */
static int get_str_array(cursor *c, gguf_kv *kv, uint64_t n, int keep) {
    size_t cap_off = 0, cap_blob = 0, used = 0;
    for (uint64_t k = 0; k < n; k++) {
        uint64_t len;
        char *s = get_str(c, "string array element", 0, &len);
        if (!s) return -1;
        if (keep &&
            (grow((void **)&kv->str_off, &cap_off, (size_t)k + 1, sizeof *kv->str_off) ||
             grow((void **)&kv->blob, &cap_blob, used + (size_t)len + 1, 1))) {
            free(s);
            return oom(c, "a string array");
        }
        if (keep) {
            kv->str_off[k] = used;
            memcpy(kv->blob + used, s, (size_t)len + 1);
            used += (size_t)len + 1;
        }
        free(s);
    }
    return 0;
}

static int get_array(cursor *c, gguf_kv *kv, uint32_t elem, uint64_t n, int depth) {
    const int es = value_size(elem);
    if (es < 0) {
        SDC_LOGE(c->log, "gguf: %s: array of unknown value type %u at byte %llu", c->what, elem,
                 (unsigned long long)c->pos);
        c->st = SDC_ERR_FORMAT;
        return -1;
    }
    const uint64_t min_bytes = es > 0 ? (uint64_t)es : elem == SDC_GGUF_STRING ? 8u : MIN_ARRAY_BYTES;
    if (n > left(c) / min_bytes) {
        SDC_LOGE(c->log, "gguf: %s: an array of %llu elements at byte %llu cannot fit in the %llu bytes left%s",
                 c->what, (unsigned long long)n, (unsigned long long)c->pos, (unsigned long long)left(c),
                 c->limit < c->size ? " of the header limit" : " in the file");
        c->st = SDC_ERR_FORMAT;
        return -1;
    }
    if (es > 0) {
        if (depth > 0) { /* nested: checked above to lie before the limit, skipped */
            c->pos += n * (uint64_t)es;
            return 0;
        }
        kv->raw = malloc(n ? (size_t)(n * (uint64_t)es) : 1);
        if (!kv->raw) return oom(c, "a numeric array");
        return get(c, kv->raw, n * (uint64_t)es, "array");
    }
    if (elem == SDC_GGUF_STRING) return get_str_array(c, kv, n, depth == 0);
    if (depth + 1 > MAX_ARRAY_DEPTH) {
        SDC_LOGE(c->log, "gguf: %s: arrays nested deeper than %d at byte %llu", c->what, MAX_ARRAY_DEPTH,
                 (unsigned long long)c->pos);
        c->st = SDC_ERR_FORMAT;
        return -1;
    }
    for (uint64_t k = 0; k < n; k++) { /* arrays of arrays: checked, not kept */
        uint32_t t;
        uint64_t m;
        if (get_u32(c, &t, "nested array type") || get_u64(c, &m, "nested array count") ||
            get_array(c, kv, t, m, depth + 1))
            return -1;
    }
    return 0;
}

/* One metadata value of type type into kv. */
static int get_value(cursor *c, gguf_kv *kv, uint32_t type) {
    kv->type = (sdc_gguf_value_type)type;
    const int es = value_size(type);
    if (es < 0) {
        SDC_LOGE(c->log, "gguf: %s: key '%.*s' has unknown value type %u", c->what, SHOWN, kv->key, type);
        c->st = SDC_ERR_FORMAT;
        return -1;
    }
    if (type == SDC_GGUF_STRING) return (kv->str = get_str(c, "string value", 0, NULL)) ? 0 : -1;
    if (type == SDC_GGUF_ARRAY) {
        uint32_t elem;
        if (get_u32(c, &elem, "array type") || get_u64(c, &kv->n, "array count")) return -1;
        kv->elem = (sdc_gguf_value_type)elem;
        return get_array(c, kv, elem, kv->n, 0);
    }
    unsigned char b[8];
    if (get(c, b, (uint64_t)es, "value")) return -1;
    memcpy(kv->scalar, b, (size_t)es);
    return 0;
}

static int cmp_kv(const void *a, const void *b) {
    return strcmp((*(const gguf_kv *const *)a)->key, (*(const gguf_kv *const *)b)->key);
}

static int get_metadata(cursor *c, sdc_gguf *g, uint64_t n_kv) {
    if (n_kv > left(c) / MIN_KV_BYTES) {
        SDC_LOGE(c->log, "gguf: %s: %llu metadata pairs cannot fit in the %llu bytes left", c->what,
                 (unsigned long long)n_kv, (unsigned long long)left(c));
        c->st = SDC_ERR_FORMAT;
        return -1;
    }
    size_t cap = 0;
    for (uint64_t i = 0; i < n_kv; i++) {
        if (grow((void **)&g->kv, &cap, g->n_kv + 1, sizeof *g->kv)) return oom(c, "metadata");
        gguf_kv *kv = &g->kv[g->n_kv];
        memset(kv, 0, sizeof *kv);
        uint32_t type;
        if (!(kv->key = get_str(c, "metadata key", 1, NULL))) return -1;
        g->n_kv++;
        if (get_u32(c, &type, "metadata value type") || get_value(c, kv, type)) return -1;
    }
    /* duplicate keys: which one counts would be the reader's choice */
    gguf_kv **p = malloc(sizeof *p * (g->n_kv ? g->n_kv : 1));
    if (!p) return oom(c, "metadata");
    for (size_t i = 0; i < g->n_kv; i++) p[i] = &g->kv[i];
    qsort(p, g->n_kv, sizeof *p, cmp_kv);
    for (size_t i = 1; i < g->n_kv && c->st == SDC_OK; i++)
        if (strcmp(p[i - 1]->key, p[i]->key) == 0) {
            SDC_LOGE(c->log, "gguf: %s: metadata key '%.*s' appears twice", c->what, SHOWN, p[i]->key);
            c->st = SDC_ERR_FORMAT;
        }
    free(p);
    return c->st == SDC_OK ? 0 : -1;
}

/* general.alignment, when present: a UINT32 power of two. */
static int get_alignment(cursor *c, sdc_gguf *g) {
    g->alignment = SDC_GGUF_DEFAULT_ALIGNMENT;
    const int64_t k = sdc_gguf_find(g, "general.alignment");
    if (k < 0) return 0;
    const gguf_kv *kv = &g->kv[k];
    const uint32_t a = (uint32_t)le(kv->scalar, 4);
    if (kv->type != SDC_GGUF_UINT32 || a == 0 || (a & (a - 1))) {
        SDC_LOGE(c->log, "gguf: %s: general.alignment must be a UINT32 power of two (type %d, value %u)", c->what,
                 (int)kv->type, kv->type == SDC_GGUF_UINT32 ? a : 0);
        c->st = SDC_ERR_FORMAT;
        return -1;
    }
    g->alignment = a;
    return 0;
}

/* One tensor info into t: name, shape (reversed to torch order), type, offset (relative for now). */
static int get_tensor(cursor *c, sdc_tensor_info *t) {
    uint32_t n_dims, type;
    if (!(t->name = get_str(c, "tensor name", 1, NULL)) || get_u32(c, &n_dims, "tensor n_dims")) return -1;
    if (n_dims > SDC_GGUF_MAX_DIMS) {
        SDC_LOGE(c->log, "gguf: %s: tensor '%.*s' has %u dimensions (at most %d)", c->what, SHOWN, t->name, n_dims,
                 SDC_GGUF_MAX_DIMS);
        c->st = SDC_ERR_FORMAT;
        return -1;
    }
    t->ndim = (int)n_dims;
    int64_t span = 1; /* the product of the nonzero dimensions, so that the product of the dimensions in any
                       * order (sdc_tensor_info_nelem) cannot overflow */
    for (uint32_t d = 0; d < n_dims; d++) {
        uint64_t ne;
        if (get_u64(c, &ne, "tensor dimension")) return -1;
        if (ne > (uint64_t)INT64_MAX || (ne && (uint64_t)span > (uint64_t)INT64_MAX / ne)) {
            SDC_LOGE(c->log, "gguf: %s: tensor '%.*s' has a dimension of %llu: too many elements", c->what, SHOWN,
                     t->name, (unsigned long long)ne);
            c->st = SDC_ERR_FORMAT;
            return -1;
        }
        if (ne) span *= (int64_t)ne;
        t->ne[n_dims - 1 - d] = (int64_t)ne; /* innermost first in the file, last in torch order */
    }
    if (get_u32(c, &type, "tensor type") || get_u64(c, &t->offset, "tensor offset")) return -1;
    if (sdc_dtype_from_ggml(type, &t->dtype) != 0) {
        SDC_LOGE(c->log, "gguf: %s: tensor '%.*s' has ggml type %u, which sdc does not read", c->what, SHOWN, t->name,
                 type);
        c->st = SDC_ERR_FORMAT;
        return -1;
    }
    const int64_t row = n_dims ? t->ne[n_dims - 1] : 1, block = sdc_dtype_block(t->dtype);
    if (row % block) {
        SDC_LOGE(c->log,
                 "gguf: %s: tensor '%.*s' is %s but its rows of %lld elements are not whole %lld-element blocks",
                 c->what, SHOWN, t->name, sdc_dtype_name(t->dtype), (long long)row, (long long)block);
        c->st = SDC_ERR_FORMAT;
        return -1;
    }
    const uint64_t rows = row ? (uint64_t)(sdc_tensor_info_nelem(t) / row) : 0;
    const uint64_t row_bytes = sdc_dtype_row_bytes(t->dtype, row);
    if (rows && row_bytes > UINT64_MAX / rows) {
        SDC_LOGE(c->log, "gguf: %s: tensor '%.*s' is too large", c->what, SHOWN, t->name);
        c->st = SDC_ERR_FORMAT;
        return -1;
    }
    t->nbytes = rows * row_bytes;
    return 0;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(const sdc_tensor_info *const *)a)->name, (*(const sdc_tensor_info *const *)b)->name);
}

static int cmp_offset(const void *a, const void *b) {
    const sdc_tensor_info *x = *(const sdc_tensor_info *const *)a, *y = *(const sdc_tensor_info *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Offsets aligned and inside the data section (made absolute), no overlaps, no duplicate names. */
static int check_tensors(cursor *c, sdc_gguf *g) {
    const uint64_t data_bytes = c->size - g->data_start;
    for (size_t i = 0; i < g->n_t; i++) {
        sdc_tensor_info *t = &g->t[i];
        if (t->offset % g->alignment) {
            SDC_LOGE(c->log, "gguf: %s: tensor '%.*s' is at data offset %llu, not a multiple of the alignment %u",
                     c->what, SHOWN, t->name, (unsigned long long)t->offset, g->alignment);
            c->st = SDC_ERR_FORMAT;
            return -1;
        }
        if (t->offset > data_bytes || t->nbytes > data_bytes - t->offset) {
            SDC_LOGE(c->log,
                     "gguf: %s: tensor '%.*s' (%llu bytes at data offset %llu) runs past the end of the file "
                     "(%llu data bytes)",
                     c->what, SHOWN, t->name, (unsigned long long)t->nbytes, (unsigned long long)t->offset,
                     (unsigned long long)data_bytes);
            c->st = SDC_ERR_FORMAT;
            return -1;
        }
        t->offset += g->data_start;
    }
    sdc_tensor_info **p = malloc(sizeof *p * (g->n_t ? g->n_t : 1));
    if (!p) return oom(c, "tensor infos");
    for (size_t i = 0; i < g->n_t; i++) p[i] = &g->t[i];
    qsort(p, g->n_t, sizeof *p, cmp_name);
    for (size_t i = 1; i < g->n_t && c->st == SDC_OK; i++)
        if (strcmp(p[i - 1]->name, p[i]->name) == 0) {
            SDC_LOGE(c->log, "gguf: %s: two tensors are named '%.*s'", c->what, SHOWN, p[i]->name);
            c->st = SDC_ERR_FORMAT;
        }
    qsort(p, g->n_t, sizeof *p, cmp_offset);
    for (size_t i = 1; i < g->n_t && c->st == SDC_OK; i++)
        if (p[i - 1]->offset + p[i - 1]->nbytes > p[i]->offset) {
            SDC_LOGE(c->log, "gguf: %s: tensors '%.*s' and '%.*s' overlap", c->what, SHOWN, p[i - 1]->name, SHOWN,
                     p[i]->name);
            c->st = SDC_ERR_FORMAT;
        }
    free(p);
    return c->st == SDC_OK ? 0 : -1;
}

static int get_tensors(cursor *c, sdc_gguf *g, uint64_t n_t) {
    if (n_t > left(c) / MIN_TENSOR_BYTES) {
        SDC_LOGE(c->log, "gguf: %s: %llu tensor infos cannot fit in the %llu bytes left", c->what,
                 (unsigned long long)n_t, (unsigned long long)left(c));
        c->st = SDC_ERR_FORMAT;
        return -1;
    }
    size_t cap = 0;
    for (uint64_t i = 0; i < n_t; i++) {
        if (grow((void **)&g->t, &cap, g->n_t + 1, sizeof *g->t)) return oom(c, "tensor infos");
        sdc_tensor_info *t = &g->t[g->n_t++];
        memset(t, 0, sizeof *t);
        if (get_tensor(c, t)) return -1;
    }
    const uint64_t a = g->alignment, pad = (a - c->pos % a) % a;
    g->data_start = c->pos + pad; /* pos <= 256 MiB: no overflow */
    if (g->n_t && g->data_start > c->size) {
        SDC_LOGE(c->log, "gguf: %s: truncated file: the data section would start at byte %llu, past its end (%llu)",
                 c->what, (unsigned long long)g->data_start, (unsigned long long)c->size);
        c->st = SDC_ERR_FORMAT;
        return -1;
    }
    return check_tensors(c, g);
}

/* "Co,Ci,KH,KW" (decimal, each 1 .. 2^31 - 1) into ne; 0, or -1 for anything else. */
static int parse_conv_shape(const char *s, int64_t ne[4]) {
    for (int d = 0; d < 4; d++) {
        if (d && *s++ != ',') return -1;
        int64_t v = 0;
        const char *start = s;
        for (; *s >= '0' && *s <= '9'; s++) {
            v = v * 10 + (*s - '0');
            if (v > INT32_MAX) return -1;
        }
        if (s == start || v == 0) return -1;
        ne[d] = v;
    }
    return *s ? -1 : 0;
}

static int cmp_name_key(const void *key, const void *elem) {
    return strcmp(key, (*(const sdc_tensor_info *const *)elem)->name);
}

/* sdc.conv_shape.NAME = "Co,Ci,KH,KW" (gguf.h): the 2-D tensor NAME [Co, Ci*KH*KW] is indexed as the kernel
 * [Co, Ci, KH, KW] (same bytes, same nbytes). A key naming no tensor, a value that is not such a string, or a
 * tensor whose shape disagrees is SDC_ERR_FORMAT. */
static int restore_conv_shapes(cursor *c, sdc_gguf *g) {
    static const char prefix[] = SDC_GGUF_CONV_SHAPE_KEY;
    const size_t plen = sizeof prefix - 1;
    sdc_tensor_info **p = NULL;
    for (size_t k = 0; k < g->n_kv && c->st == SDC_OK; k++) {
        const gguf_kv *kv = &g->kv[k];
        if (strncmp(kv->key, prefix, plen) != 0) continue;
        if (!p) { /* the tensors by name, once */
            if (!(p = malloc(sizeof *p * (g->n_t ? g->n_t : 1)))) return oom(c, "tensor infos");
            for (size_t i = 0; i < g->n_t; i++) p[i] = &g->t[i];
            qsort(p, g->n_t, sizeof *p, cmp_name);
        }
        const char *name = kv->key + plen;
        sdc_tensor_info **hit = bsearch(name, p, g->n_t, sizeof *p, cmp_name_key);
        sdc_tensor_info *t = hit ? *hit : NULL;
        int64_t ne[4];
        if (kv->type != SDC_GGUF_STRING || parse_conv_shape(kv->str, ne) != 0) {
            SDC_LOGE(c->log, "gguf: %s: metadata '%.*s' is not a STRING \"Co,Ci,KH,KW\"", c->what, SHOWN, kv->key);
            c->st = SDC_ERR_FORMAT;
        } else if (!t) {
            SDC_LOGE(c->log, "gguf: %s: metadata '%.*s' names no tensor", c->what, SHOWN, kv->key);
            c->st = SDC_ERR_FORMAT;
        } else if (t->ndim != 2 || t->ne[0] != ne[0] || t->ne[1] % (ne[2] * ne[3]) ||
                   t->ne[1] / (ne[2] * ne[3]) != ne[1]) {
            char got[96] = "";
            for (int d = 0, n = 0; d < t->ndim && n < (int)sizeof got; d++)
                n += snprintf(got + n, sizeof got - (size_t)n, d ? ", %lld" : "%lld", (long long)t->ne[d]);
            SDC_LOGE(c->log,
                     "gguf: %s: metadata '%.*s' says the kernel [%lld, %lld, %lld, %lld], but the tensor is %d-D "
                     "[%s]: not that kernel as [Co, Ci*KH*KW]",
                     c->what, SHOWN, kv->key, (long long)ne[0], (long long)ne[1], (long long)ne[2], (long long)ne[3],
                     t->ndim, got);
            c->st = SDC_ERR_FORMAT;
        } else {
            t->ndim = 4;
            memcpy(t->ne, ne, sizeof ne);
        }
    }
    free(p);
    return c->st == SDC_OK ? 0 : -1;
}

int sdc_gguf_has_magic(const void *head, size_t n) { return n >= 4 && le(head, 4) == SDC_GGUF_MAGIC; }

static int get_preamble(cursor *c, sdc_gguf *g, uint64_t *n_t, uint64_t *n_kv) {
    unsigned char magic[4];
    if (get(c, magic, 4, "magic")) return -1;
    if (!sdc_gguf_has_magic(magic, 4)) {
        SDC_LOGE(c->log, "gguf: %s: not a GGUF file (no GGUF magic)", c->what);
        c->st = SDC_ERR_FORMAT;
        return -1;
    }
    if (get_u32(c, &g->version, "version")) return -1;
    if (g->version != 2 && g->version != 3) {
        const int swapped = g->version == 0x02000000u || g->version == 0x03000000u;
        SDC_LOGE(c->log, "gguf: %s: %s%u (sdc reads versions 2 and 3, little-endian)", c->what,
                 swapped ? "a big-endian file, version " : "version ", swapped ? g->version >> 24 : g->version);
        c->st = SDC_ERR_FORMAT;
        return -1;
    }
    return get_u64(c, n_t, "tensor count") || get_u64(c, n_kv, "metadata count") ? -1 : 0;
}

sdc_status sdc_gguf_parse(sdc_gguf_read_fn read, void *user, uint64_t file_size, const char *what,
                          const sdc_logger *log, sdc_gguf **out) {
    *out = NULL;
    cursor *c = malloc(sizeof *c);
    sdc_gguf *g = calloc(1, sizeof *g);
    if (!c || !g) {
        free(c);
        free(g);
        SDC_LOGE(log, "gguf: %s: out of memory", what);
        return SDC_ERR_OOM;
    }
    *c = (cursor){.read = read,
                  .user = user,
                  .size = file_size,
                  .limit = file_size < MAX_HEADER_BYTES ? file_size : MAX_HEADER_BYTES,
                  .what = what,
                  .log = log};
    uint64_t n_t = 0, n_kv = 0;
    if (get_preamble(c, g, &n_t, &n_kv) == 0 && get_metadata(c, g, n_kv) == 0 && get_alignment(c, g) == 0 &&
        get_tensors(c, g, n_t) == 0)
        restore_conv_shapes(c, g);
    sdc_status st = c->st;
    free(c);
    if (st != SDC_OK) {
        sdc_gguf_free(g);
        return st;
    }
    *out = g;
    return SDC_OK;
}

typedef struct mem_src {
    const unsigned char *data;
    size_t size;
} mem_src;

static int read_mem(void *user, uint64_t off, void *dst, size_t n) {
    const mem_src *m = user;
    if (off > m->size || n > m->size - off) return -1;
    if (n) memcpy(dst, m->data + off, n);
    return 0;
}

sdc_status sdc_gguf_parse_mem(const void *data, size_t size, const char *what, const sdc_logger *log, sdc_gguf **out) {
    mem_src m = {data, size};
    return sdc_gguf_parse(read_mem, &m, size, what, log, out);
}

static int read_fd(void *user, uint64_t off, void *dst, size_t n) {
    const int fd = *(const int *)user;
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (char *)dst + done, n - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        done += (size_t)r;
    }
    return 0;
}

sdc_status sdc_gguf_parse_fd(int fd, uint64_t file_size, const char *what, const sdc_logger *log, sdc_gguf **out) {
    return sdc_gguf_parse(read_fd, &fd, file_size, what, log, out);
}

sdc_status sdc_gguf_read_file(const char *path, const sdc_logger *log, sdc_gguf **out) {
    *out = NULL;
    const int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        const int e = errno;
        SDC_LOGE(log, "gguf: cannot open %s: %s", path, strerror(e));
        return e == ENOENT ? SDC_ERR_NOT_FOUND : SDC_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        SDC_LOGE(log, "gguf: %s is not a regular file", path);
        close(fd);
        return SDC_ERR_IO;
    }
    sdc_status s = sdc_gguf_parse_fd(fd, (uint64_t)st.st_size, path, log, out);
    close(fd);
    return s;
}
