#include "io/st_writer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"

#define ST_MAX_DIMS 8
#define ST_CHUNK_BYTES ((size_t)4 << 20) /* the fill buffer */

typedef struct st_item {
    char *name;
    sdc_dtype dtype;
    int ndim;
    int64_t ne[ST_MAX_DIMS];
    uint64_t nbytes;
    const void *data; /* or */
    sdc_st_fill_fn fill;
    void *user;
} st_item;

struct sdc_st_writer {
    sdc_logger log;
    st_item *items;
    size_t n, cap;
    char **meta; /* key, value, key, value, ... */
    size_t n_meta;
    sdc_status status; /* first error */
};

/* ---- a growable string ---- */

typedef struct strbuf {
    char *s;
    size_t n, cap;
    int oom;
} strbuf;

static void sb_put(strbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1) cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void sb_str(strbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

__attribute__((format(printf, 2, 3))) static void sb_printf(strbuf *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A JSON string literal: quotes, backslashes and control characters escaped, UTF-8 passed through. */
static void sb_json_string(strbuf *b, const char *s) {
    sb_str(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            sb_put(b, e, 2);
        } else if (*p < 0x20) {
            sb_printf(b, "\\u%04x", *p);
        } else {
            sb_put(b, (const char *)p, 1);
        }
    }
    sb_str(b, "\"");
}

/* ---- collecting ---- */

static sdc_status fail(sdc_st_writer *w, sdc_status st) {
    if (w->status == SDC_OK) w->status = st;
    return st;
}

sdc_st_writer *sdc_st_writer_new(const sdc_logger *log) {
    sdc_st_writer *w = calloc(1, sizeof *w);
    if (w && log) w->log = *log;
    return w;
}

void sdc_st_writer_free(sdc_st_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) free(w->items[i].name);
    for (size_t i = 0; i < 2 * w->n_meta; i++) free(w->meta[i]);
    free(w->items);
    free(w->meta);
    free(w);
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

sdc_status sdc_st_writer_set_metadata(sdc_st_writer *w, const char *key, const char *value) {
    char **meta = realloc(w->meta, 2 * (w->n_meta + 1) * sizeof *meta);
    if (!meta) return fail(w, SDC_ERR_OOM);
    w->meta = meta;
    meta[2 * w->n_meta] = dup_str(key);
    meta[2 * w->n_meta + 1] = dup_str(value);
    if (!meta[2 * w->n_meta] || !meta[2 * w->n_meta + 1]) {
        free(meta[2 * w->n_meta]);
        free(meta[2 * w->n_meta + 1]);
        return fail(w, SDC_ERR_OOM);
    }
    w->n_meta++;
    return SDC_OK;
}

static sdc_status add_item(sdc_st_writer *w, const char *name, sdc_dtype dtype, int ndim, const int64_t *ne,
                           const void *data, sdc_st_fill_fn fill, void *user) {
    size_t esize = sdc_dtype_size(dtype);
    if (!name || !*name || strcmp(name, "__metadata__") == 0 || esize == 0 || ndim < 0 || ndim > ST_MAX_DIMS ||
        (ndim > 0 && !ne) || (!data && !fill)) {
        SDC_LOGE(&w->log, "st_writer: bad tensor '%s' (dtype %d, ndim %d)", name ? name : "(null)", (int)dtype, ndim);
        return fail(w, SDC_ERR_INVALID_ARG);
    }
    uint64_t nelem = 1;
    for (int i = 0; i < ndim; i++) {
        if (ne[i] < 0 || (ne[i] > 0 && nelem > UINT64_MAX / 16 / (uint64_t)ne[i])) {
            SDC_LOGE(&w->log, "st_writer: tensor '%s' has a bad dimension %lld", name, (long long)ne[i]);
            return fail(w, SDC_ERR_INVALID_ARG);
        }
        nelem *= (uint64_t)ne[i];
    }
    for (size_t i = 0; i < w->n; i++) {
        if (strcmp(w->items[i].name, name) == 0) {
            SDC_LOGE(&w->log, "st_writer: duplicate tensor name '%s'", name);
            return fail(w, SDC_ERR_INVALID_ARG);
        }
    }
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 256;
        st_item *items = realloc(w->items, cap * sizeof *items);
        if (!items) return fail(w, SDC_ERR_OOM);
        w->items = items;
        w->cap = cap;
    }
    st_item *it = &w->items[w->n];
    memset(it, 0, sizeof *it);
    if (!(it->name = dup_str(name))) return fail(w, SDC_ERR_OOM);
    it->dtype = dtype;
    it->ndim = ndim;
    for (int i = 0; i < ndim; i++) it->ne[i] = ne[i];
    it->nbytes = nelem * esize;
    it->data = data;
    it->fill = fill;
    it->user = user;
    w->n++;
    return SDC_OK;
}

sdc_status sdc_st_writer_add(sdc_st_writer *w, const char *name, sdc_dtype dtype, int ndim, const int64_t *ne,
                             const void *data) {
    if (!data) {
        SDC_LOGE(&w->log, "st_writer: tensor '%s' has no data", name ? name : "(null)");
        return fail(w, SDC_ERR_INVALID_ARG);
    }
    return add_item(w, name, dtype, ndim, ne, data, NULL, NULL);
}

sdc_status sdc_st_writer_add_fill(sdc_st_writer *w, const char *name, sdc_dtype dtype, int ndim, const int64_t *ne,
                                  sdc_st_fill_fn fill, void *user) {
    if (!fill) {
        SDC_LOGE(&w->log, "st_writer: tensor '%s' has no fill callback", name ? name : "(null)");
        return fail(w, SDC_ERR_INVALID_ARG);
    }
    return add_item(w, name, dtype, ndim, ne, NULL, fill, user);
}

size_t sdc_st_writer_count(const sdc_st_writer *w) { return w->n; }

/* ---- the file layout ---- */

/* The position of a dtype in the safetensors library's Dtype enum (BOOL, U8, I8, F8_E5M2, F8_E4M3,
 * I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64); the library writes higher ranks first. */
static int dtype_rank(sdc_dtype dt) {
    switch (dt) {
    case SDC_DTYPE_BOOL: return 0;
    case SDC_DTYPE_U8: return 1;
    case SDC_DTYPE_I8: return 2;
    case SDC_DTYPE_F8_E5M2: return 3;
    case SDC_DTYPE_F8_E4M3: return 4;
    case SDC_DTYPE_I16: return 5;
    case SDC_DTYPE_F16: return 7;
    case SDC_DTYPE_BF16: return 8;
    case SDC_DTYPE_I32: return 9;
    case SDC_DTYPE_F32: return 11;
    case SDC_DTYPE_F64: return 12;
    case SDC_DTYPE_I64: return 13;
    default: return -1;
    }
}

static int item_cmp(const void *pa, const void *pb) {
    const st_item *a = pa, *b = pb;
    int ra = dtype_rank(a->dtype), rb = dtype_rank(b->dtype);
    if (ra != rb) return rb - ra;
    return strcmp(a->name, b->name);
}

/* Sorts the items into file order and builds the header, padded to a multiple of 8 bytes. */
static sdc_status build_header(sdc_st_writer *w, strbuf *b) {
    qsort(w->items, w->n, sizeof *w->items, item_cmp);
    memset(b, 0, sizeof *b);
    sb_str(b, "{");
    if (w->n_meta) {
        sb_str(b, "\"__metadata__\":{");
        for (size_t i = 0; i < w->n_meta; i++) {
            if (i) sb_str(b, ",");
            sb_json_string(b, w->meta[2 * i]);
            sb_str(b, ":");
            sb_json_string(b, w->meta[2 * i + 1]);
        }
        sb_str(b, "}");
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        const st_item *it = &w->items[i];
        if (i || w->n_meta) sb_str(b, ",");
        sb_json_string(b, it->name);
        sb_printf(b, ":{\"dtype\":\"%s\",\"shape\":[", sdc_dtype_name(it->dtype));
        for (int d = 0; d < it->ndim; d++) sb_printf(b, d ? ",%lld" : "%lld", (long long)it->ne[d]);
        sb_printf(b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                  (unsigned long long)(off + it->nbytes));
        off += it->nbytes;
    }
    sb_str(b, "}");
    while (b->n % 8) sb_str(b, " ");
    if (b->oom) {
        free(b->s);
        memset(b, 0, sizeof *b);
        SDC_LOGE(&w->log, "st_writer: out of memory building the header");
        return SDC_ERR_OOM;
    }
    return SDC_OK;
}

uint64_t sdc_st_writer_file_size(sdc_st_writer *w) {
    strbuf b;
    if (build_header(w, &b) != SDC_OK) return 0;
    uint64_t size = 8 + b.n;
    for (size_t i = 0; i < w->n; i++) size += w->items[i].nbytes;
    free(b.s);
    return size;
}

static sdc_status write_item(sdc_st_writer *w, const st_item *it, FILE *f, void **buf, const char *path) {
    if (it->data) {
        if (it->nbytes && fwrite(it->data, 1, it->nbytes, f) != it->nbytes) {
            SDC_LOGE(&w->log, "st_writer: write error on %s", path);
            return SDC_ERR_IO;
        }
        return SDC_OK;
    }
    if (!*buf && !(*buf = malloc(ST_CHUNK_BYTES))) {
        SDC_LOGE(&w->log, "st_writer: out of memory");
        return SDC_ERR_OOM;
    }
    size_t esize = sdc_dtype_size(it->dtype);
    uint64_t nelem = it->nbytes / esize, chunk = ST_CHUNK_BYTES / esize;
    for (uint64_t first = 0; first < nelem; first += chunk) {
        uint64_t count = nelem - first < chunk ? nelem - first : chunk;
        sdc_status st = it->fill(it->user, *buf, first, count);
        if (st != SDC_OK) {
            SDC_LOGE(&w->log, "st_writer: producing '%s' failed: %s", it->name, sdc_status_str(st));
            return st;
        }
        if (fwrite(*buf, esize, count, f) != count) {
            SDC_LOGE(&w->log, "st_writer: write error on %s", path);
            return SDC_ERR_IO;
        }
    }
    return SDC_OK;
}

sdc_status sdc_st_writer_write(sdc_st_writer *w, const char *path) {
    if (w->status != SDC_OK) {
        SDC_LOGE(&w->log, "st_writer: not writing %s after an earlier error (%s)", path, sdc_status_str(w->status));
        return w->status;
    }
    strbuf hdr;
    sdc_status st = build_header(w, &hdr);
    if (st != SDC_OK) return st;
    sdc_atomic_file af;
    st = sdc_atomic_open(&af, path, "st_writer", &w->log);
    if (st != SDC_OK) {
        free(hdr.s);
        return st;
    }
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)hdr.n >> (8 * i));
    if (fwrite(len, 1, 8, af.f) != 8 || fwrite(hdr.s, 1, hdr.n, af.f) != hdr.n) {
        SDC_LOGE(&w->log, "st_writer: write error on %s", path);
        st = SDC_ERR_IO;
    }
    free(hdr.s);
    void *buf = NULL;
    for (size_t i = 0; i < w->n && st == SDC_OK; i++) st = write_item(w, &w->items[i], af.f, &buf, path);
    free(buf);
    if (st != SDC_OK) {
        sdc_atomic_abort(&af);
        return st;
    }
    return sdc_atomic_commit(&af, "st_writer", &w->log);
}
