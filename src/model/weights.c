#include "model/weights.h"

#include "backend/count/count_backend.h"
#include "core/quant.h"
#include "model/host_image.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Threads a load reads a file range with (sdc_index_read_range_par; at most one per processor): one copy
 * out of the page cache runs at a fraction of what the memory system takes. The bytes do not change. */
#define LOAD_READERS 4

void sdc_weights_begin(sdc_weight_set *ws, const sdc_weight_source *src, const char *sub_prefix) {
    memset(ws, 0, sizeof *ws);
    ws->index = src->index;
    snprintf(ws->prefix, sizeof ws->prefix, "%s%s", src->prefix ? src->prefix : "", sub_prefix ? sub_prefix : "");
    ws->be = src->be;
    ws->log = src->log;
    ws->prec = src->prec;
    ws->host = src->host;
    ws->status = SDC_OK;
}

static void vname(const sdc_weight_set *ws, char *buf, size_t size, const char *fmt, va_list ap) {
    size_t p = strlen(ws->prefix);
    snprintf(buf, size, "%s", ws->prefix);
    vsnprintf(buf + p, size - p, fmt, ap);
}

int sdc_weights_has(const sdc_weight_set *ws, const char *fmt, ...) {
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    vname(ws, name, sizeof name, fmt, ap);
    va_end(ap);
    return sdc_index_find(ws->index, name) != NULL;
}

/* Same element count and equal dims, ignoring trailing 1s on either side. */
static int shape_matches(const sdc_tensor_info *info, int ndim, const int64_t *ne) {
    int a = info->ndim, b = ndim;
    while (a > 0 && info->ne[a - 1] == 1) a--;
    while (b > 0 && ne[b - 1] == 1) b--;
    if (a != b) return 0;
    for (int i = 0; i < a; i++)
        if (info->ne[i] != ne[i]) return 0;
    return 1;
}

/* A convolution kernel ne = [Co, Ci, KH, KW] stored as the 2-D block-type tensor [Co, Ci*KH*KW] (the same
 * bytes: sdc convert --quantize-convs). */
static int flat_kernel(const sdc_tensor_info *info, int ndim, const int64_t *ne) {
    return ndim == 4 && info->ndim == 2 && sdc_dtype_is_quant(info->dtype) && info->ne[0] == ne[0] &&
        ne[2] * ne[3] != 0 && info->ne[1] % (ne[2] * ne[3]) == 0 && info->ne[1] / (ne[2] * ne[3]) == ne[1];
}

/* The length of a tensor's rows of blocks: its innermost dim, or, for a block-type kernel [Co, Ci, KH, KW]
 * whose innermost dim is not whole blocks (a kernel flattened in the file, io/gguf.h), Ci*KH*KW. */
static int64_t block_row(int ndim, const int64_t *ne, sdc_dtype dt) {
    const int64_t row = ndim ? ne[ndim - 1] : 1;
    if (ndim < 2 || !sdc_dtype_is_quant(dt) || row % sdc_dtype_block(dt) == 0 || ne[0] == 0) return row;
    int64_t n = 1;
    for (int i = 1; i < ndim; i++) n *= ne[i];
    return n;
}

static void shape_str(char *buf, size_t size, int ndim, const int64_t *ne) {
    size_t n = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, i ? ", %lld" : "%lld", (long long)ne[i]);
    if (n < size) snprintf(buf + n, size - n, "]");
}

static int push(sdc_weight_set *ws, sdc_tensor *t) {
    if (ws->n == ws->cap) {
        int cap = ws->cap ? ws->cap * 2 : 64;
        sdc_tensor **nt = realloc(ws->tensors, sizeof *nt * (size_t)cap);
        if (!nt) return -1;
        ws->tensors = nt;
        ws->cap = cap;
    }
    ws->tensors[ws->n++] = t;
    return 0;
}

/* The set's reusable host buffer, grown to at least nbytes (one allocation for a whole component, not
 * one per tensor: large mallocs are fresh mappings whose every page faults again). */
static void *scratch(sdc_weight_set *ws, size_t nbytes) {
    if (nbytes > ws->scratch_size) {
        free(ws->scratch);
        ws->scratch = malloc(nbytes);
        ws->scratch_size = ws->scratch ? nbytes : 0;
    }
    return ws->scratch;
}

/* Elements of the smallest run that is whole blocks of both dtypes (block sizes are 1, 32 or 256: the
 * larger is a multiple of the smaller). */
static int64_t common_block(sdc_dtype a, sdc_dtype b) {
    const int64_t x = sdc_dtype_block(a), y = sdc_dtype_block(b);
    return x > y ? x : y;
}

/* m elements (whole blocks of both dtypes) of file bytes src into dst in the tensor's dtype, through f32:
 * dequantized or widened into f (room for m floats; dst itself when the tensor is f32), then narrowed or
 * quantized. -1 when a dtype cannot be converted. */
static int convert_run(sdc_dtype from, const void *src, sdc_dtype to, void *dst, float *f, int64_t m) {
    float *x = to == SDC_DTYPE_F32 ? dst : f;
    int bad = sdc_dtype_is_quant(from) ? sdc_dequant_row(from, src, x, m) : sdc_convert_to_f32(x, src, from, (size_t)m);
    if (!bad && to != SDC_DTYPE_F32) bad = sdc_quant_row(to, x, dst, m);
    return bad;
}

/* Whether the tensor's rows are whole blocks of both dtypes; logs when not (a backend that asks for a
 * block type on a weight whose rows do not fit it). */
static int rows_fit(sdc_weight_set *ws, const sdc_tensor_info *info, sdc_dtype to) {
    const int64_t row = block_row(info->ndim, info->ne, info->dtype), u = common_block(info->dtype, to);
    if (row % u == 0) return 1;
    SDC_LOGE(ws->log, "weights: %s: rows of %lld elements are not whole blocks of %s and %s", info->name,
             (long long)row, sdc_dtype_name(info->dtype), sdc_dtype_name(to));
    return 0;
}

/* The tensor's file bytes converted to f32 into f (nelem floats): from the host image when it has them
 * (converted as sdc_index_read_f32 converts), else from the file. */
static sdc_status read_f32(sdc_weight_set *ws, const sdc_tensor_info *info, const void *host, float *f) {
    if (!host) return sdc_index_read_f32(ws->index, info, f);
    const int64_t n = sdc_tensor_info_nelem(info);
    if (convert_run(info->dtype, host, SDC_DTYPE_F32, f, NULL, n) == 0) return SDC_OK;
    SDC_LOGE(ws->log, "weights: %s: cannot convert %s to f32", info->name, sdc_dtype_name(info->dtype));
    return SDC_ERR_UNSUPPORTED;
}

/* Through a host buffer: read (converting when the dtypes differ), then one synchronous upload. host: the
 * tensor's bytes in the host image, or NULL (read from the file). */
static sdc_status load_direct(sdc_weight_set *ws, const sdc_tensor_info *info, const void *host, sdc_tensor *t) {
    const int64_t n = sdc_tensor_info_nelem(info);
    if (t->dtype == info->dtype) {
        if (host) {
            sdc_tensor_set_raw(t, host);
            return SDC_OK;
        }
        void *raw = scratch(ws, info->nbytes ? info->nbytes : 1);
        sdc_status st =
            raw ? sdc_index_read_range_par(ws->index, info, 0, info->nbytes, raw, LOAD_READERS) : SDC_ERR_OOM;
        if (st == SDC_OK) sdc_tensor_set_raw(t, raw);
        return st;
    }
    if (!rows_fit(ws, info, t->dtype)) return SDC_ERR_UNSUPPORTED;
    /* f32 values, then (a block-type tensor) the quantized bytes; set_f32 narrows the plain types itself */
    const int quant = sdc_dtype_is_quant(t->dtype);
    const size_t fbytes = sizeof(float) * (size_t)n, qbytes = quant ? sdc_dtype_row_bytes(t->dtype, n) : 0;
    float *f = scratch(ws, fbytes + qbytes + 1);
    sdc_status st = f ? read_f32(ws, info, host, f) : SDC_ERR_OOM;
    if (st == SDC_OK && quant && sdc_quant_row(t->dtype, f, (char *)f + fbytes, n) != 0) st = SDC_ERR_UNSUPPORTED;
    if (st == SDC_OK) quant ? sdc_tensor_set_raw(t, (char *)f + fbytes) : sdc_tensor_set_f32(t, f);
    return st;
}

/* Through the backend's pinned staging buffers, a chunk at a time: reading chunk k + 1 from the file
 * overlaps the upload of chunk k. A chunk is a run of whole blocks (of the file's dtype and the tensor's:
 * a block never straddles two rows, so each run converts alone; plain dtypes have blocks of 1). Same
 * dtype: the file bytes go straight into the staging buffer, block types included; otherwise each chunk
 * is read into the set's scratch and converted (dequantized, widened, narrowed) into the staging buffer.
 * The set's last upload is flushed by sdc_weights_end. */
static sdc_status load_staged(sdc_weight_set *ws, const sdc_tensor_info *info, const void *host, sdc_tensor *t) {
    sdc_backend *be = ws->be;
    const int same = t->dtype == info->dtype;
    if (same && host) { /* straight from the image: no staging copy */
        sdc_backend_upload_async(be, t->data, host, t->nbytes);
        return SDC_OK;
    }
    if (!same && !rows_fit(ws, info, t->dtype)) return SDC_ERR_UNSUPPORTED;
    const int64_t n = sdc_tensor_info_nelem(info), u = common_block(info->dtype, t->dtype);
    const size_t src_u = sdc_dtype_row_bytes(info->dtype, u), dst_u = sdc_dtype_row_bytes(t->dtype, u);
    const int64_t chunk = (int64_t)(be->iface->staging_size(be) / dst_u) * u; /* elements per staging buffer */
    if (chunk == 0) {
        SDC_LOGE(ws->log, "weights: %s: a %s block does not fit a staging buffer", info->name,
                 sdc_dtype_name(t->dtype));
        return SDC_ERR_UNSUPPORTED;
    }
    /* a converted copy kept for later loads (the host tier's, on a backend with staging) */
    char *keep = same ? NULL : sdc_host_image_conv_slot(ws->host, info, t->dtype, t->nbytes);
    /* scratch: the chunk's f32 values (unless the target is f32), then its file bytes */
    const size_t fbytes = t->dtype == SDC_DTYPE_F32 ? 0 : sizeof(float) * (size_t)chunk;
    char *tmp = same ? NULL : scratch(ws, fbytes + (size_t)(chunk / u) * src_u);
    if (!same && !tmp) return SDC_ERR_OOM;
    sdc_status st = SDC_OK;
    for (int64_t i = 0; i < n && st == SDC_OK; i += chunk) {
        const int64_t m = n - i < chunk ? n - i : chunk;
        const uint64_t src_off = (uint64_t)(i / u) * src_u, src_n = (uint64_t)(m / u) * src_u;
        const size_t dst_n = (size_t)(m / u) * dst_u;
        void *buf = be->iface->staging_acquire(be, dst_n);
        if (!buf) {
            SDC_LOGE(ws->log, "weights: %s: no staging buffer for %zu bytes", info->name, dst_n);
            st = SDC_ERR_OOM;
            break;
        }
        if (same) {
            st = sdc_index_read_range_par(ws->index, info, src_off, src_n, buf, LOAD_READERS);
        } else {
            const char *raw = host ? (const char *)host + src_off : tmp + fbytes;
            if (!host) st = sdc_index_read_range_par(ws->index, info, src_off, src_n, tmp + fbytes, LOAD_READERS);
            if (st == SDC_OK && convert_run(info->dtype, raw, t->dtype, buf, (float *)tmp, m) != 0) {
                SDC_LOGE(ws->log, "weights: %s: cannot convert %s to %s", info->name, sdc_dtype_name(info->dtype),
                         sdc_dtype_name(t->dtype));
                st = SDC_ERR_UNSUPPORTED;
            }
        }
        if (st == SDC_OK && keep) memcpy(keep + (size_t)(i / u) * dst_u, buf, dst_n);
        if (st == SDC_OK) be->iface->staging_upload(be, (char *)t->data + (size_t)(i / u) * dst_u, buf, dst_n);
    }
    if (st == SDC_OK && keep) sdc_host_image_conv_done(ws->host, info);
    return st;
}

static sdc_tensor *get(sdc_weight_set *ws, int matrix, int ndim, const int64_t *ne, const char *fmt, va_list ap) {
    if (ws->status != SDC_OK) return NULL;
    char name[512];
    vname(ws, name, sizeof name, fmt, ap);
    const sdc_tensor_info *info = sdc_index_find(ws->index, name);
    if (!info) {
        SDC_LOGE(ws->log, "weights: missing tensor '%s'", name);
        ws->status = SDC_ERR_NOT_FOUND;
        return NULL;
    }
    if (!shape_matches(info, ndim, ne) && !flat_kernel(info, ndim, ne)) {
        char want[128], got[128], flat[160] = "";
        shape_str(want, sizeof want, ndim, ne);
        shape_str(got, sizeof got, info->ndim, info->ne);
        if (ndim == 4 && info->ndim == 2 && sdc_dtype_is_quant(info->dtype))
            snprintf(flat, sizeof flat, " (as a flattened %s kernel it would be [%lld, %lld])",
                     sdc_dtype_name(info->dtype), (long long)ne[0], (long long)(ne[1] * ne[2] * ne[3]));
        SDC_LOGE(ws->log, "weights: tensor '%s' has shape %s, the config needs %s%s", name, got, want, flat);
        ws->status = SDC_ERR_FORMAT;
        return NULL;
    }
    sdc_dtype wdt = ws->be->iface->weight_dtype(ws->be, info->dtype, ws->prec, matrix);
    /* a block type kept for a kernel whose innermost dim is not whole blocks (a flattened kernel): made as
     * [Co, Ci*KH*KW], its rows of blocks (sdc_tensor_new's rule), then viewed as the kernel it is, as conv2d
     * reads it (w as [Co, Ci*KH*KW]) */
    const int64_t brow = block_row(ndim, ne, wdt);
    const int flat = brow != ne[ndim - 1];
    if (flat && brow % sdc_dtype_block(wdt) != 0) {
        SDC_LOGE(ws->log, "weights: %s: %s rows of %lld elements are not whole blocks", name, sdc_dtype_name(wdt),
                 (long long)brow);
        ws->status = SDC_ERR_FORMAT;
        return NULL;
    }
    sdc_tensor *t = flat ? sdc_tensor_new(ws->be, SDC_MEM_WEIGHTS, wdt, 2, (int64_t[]){ne[0], brow})
                         : sdc_tensor_new(ws->be, SDC_MEM_WEIGHTS, wdt, ndim, ne);
    if (!t || push(ws, t) != 0) {
        sdc_tensor_free(t);
        ws->status = SDC_ERR_OOM;
        return NULL;
    }
    t->matmul_bf16 = matrix && sdc_prec_matmul_bf16(ws->prec);
    t->conv_tf32 = matrix && ndim == 4 && sdc_prec_conv_tf32(ws->prec);
    if (flat) {
        t->ndim = ndim;
        for (int i = 0; i < SDC_MAX_DIMS; i++) t->ne[i] = i < ndim ? ne[i] : 1;
    }
    if (sdc_backend_is_count(ws->be)) {   // counted only: its tensors hold no data
        ws->bytes_resident += t->nbytes;
        return t;
    }
    /* a copy converted by an earlier load, else the file's bytes from the image (each counted once as served);
     * F8 has no conversion here: the file path refuses it with its message */
    const void *conv = t->dtype == info->dtype ? NULL : sdc_host_image_take_converted(ws->host, info, t->dtype);
    const void *host = conv || info->dtype == SDC_DTYPE_F8_E4M3 || info->dtype == SDC_DTYPE_F8_E5M2
        ? conv
        : sdc_host_image_take(ws->host, info);
    sdc_status st = SDC_OK;
    if (conv) /* the same bytes again */
        sdc_backend_upload_async(ws->be, t->data, conv, t->nbytes);
    else
        st = ws->be->iface->staging_acquire ? load_staged(ws, info, host, t) : load_direct(ws, info, host, t);
    if (st != SDC_OK) {
        ws->status = st;
        return NULL;
    }
    if (host)
        ws->bytes_host += info->nbytes;
    else
        ws->bytes_read += info->nbytes;
    ws->bytes_resident += t->nbytes;
    return t;
}

sdc_tensor *sdc_weights_get(sdc_weight_set *ws, int ndim, const int64_t *ne, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sdc_tensor *t = get(ws, 0, ndim, ne, fmt, ap);
    va_end(ap);
    return t;
}

sdc_tensor *sdc_weights_matrix(sdc_weight_set *ws, int ndim, const int64_t *ne, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sdc_tensor *t = get(ws, 1, ndim, ne, fmt, ap);
    va_end(ap);
    return t;
}

void sdc_weights_free(sdc_weight_set *ws) {
    for (int i = 0; i < ws->n; i++) sdc_tensor_free(ws->tensors[i]);
    free(ws->tensors);
    ws->tensors = NULL;
    ws->n = ws->cap = 0;
    ws->bytes_resident = 0;
}

static sdc_status end(sdc_weight_set *ws, int flush) {
    /* every upload has landed (a failed set always waits: its memory is freed below) */
    if ((flush || ws->status != SDC_OK) && ws->be->iface->staging_flush) ws->be->iface->staging_flush(ws->be);
    free(ws->scratch);
    ws->scratch = NULL;
    ws->scratch_size = 0;
    if (ws->status != SDC_OK) sdc_weights_free(ws);
    return ws->status;
}

sdc_status sdc_weights_end(sdc_weight_set *ws) { return end(ws, 1); }

sdc_status sdc_weights_end_async(sdc_weight_set *ws) { return end(ws, 0); }
