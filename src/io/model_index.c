/* model_index.c - every tensor of a model's safetensors files, by name.
 *
 * Each indexed file keeps its descriptor open for the life of the index; reads are pread calls on it,
 * so they never move a shared file position. Before each read the descriptor is fstat'ed: a size or
 * mtime that differs from what was indexed (the file was truncated, appended to or rewritten in
 * place) is SDC_ERR_IO. A file replaced by rename keeps its old, still consistent bytes under the
 * open descriptor.
 *
 * Each file's tensor records live in one array that never moves, so the pointers that
 * sdc_index_find/at return stay valid until sdc_index_free; a sorted array of pointers to them
 * serves lookups by binary search. Building and changing the index (adding files, views) is for one
 * thread; once built, reads may come from several threads at once (the prefetcher reads the next
 * phase's tensors while the current phase streams its own): pread, fstat and the atomic byte count. */
#include "io/model_index.h"

#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/quant.h"
#include "io/gguf.h"
#include "io/path_check.h"
#include "io/safetensors.h"

/* The reference implementation refuses headers above 100 MB; so do we, before allocating one. */
#define MAX_HEADER_BYTES (100u << 20)
/* Room a name map may add to a name. */
#define MAP_SLACK 256

typedef struct index_file {
    char *path;
    int fd;
    uint64_t size;
    struct timespec mtime;
    sdc_tensor_info *tensors; /* n of them; names malloc'd; never moved */
    size_t n;
} index_file;

struct sdc_model_index {
    sdc_logger log;
    index_file *files;
    int n_files, cap_files;
    const sdc_tensor_info **sorted; /* by name */
    size_t n, cap;
    sdc_tensor_info **views; /* sdc_index_split_rows' tensors, each allocated alone (never moved) */
    size_t n_views, cap_views;
    _Atomic uint64_t bytes_read;
};

sdc_model_index *sdc_index_new(const sdc_logger *log) {
    sdc_model_index *idx = calloc(1, sizeof *idx);
    if (idx && log) idx->log = *log;
    return idx;
}

static void free_tensors(sdc_tensor_info *t, size_t n) {
    for (size_t i = 0; i < n; i++) free((char *)t[i].name);
    free(t);
}

void sdc_index_free(sdc_model_index *idx) {
    if (!idx) return;
    for (int i = 0; i < idx->n_files; i++) {
        index_file *f = &idx->files[i];
        close(f->fd);
        free(f->path);
        free_tensors(f->tensors, f->n);
    }
    for (size_t i = 0; i < idx->n_views; i++) free_tensors(idx->views[i], 1);
    free(idx->views);
    free(idx->files);
    free(idx->sorted);
    free(idx);
}

/* pread until n bytes or EOF/error; returns bytes read or -1 (errno set). */
static int64_t pread_full(int fd, void *dst, uint64_t n, uint64_t off) {
    uint64_t done = 0;
    while (done < n) {
        uint64_t chunk = n - done < (1u << 30) ? n - done : (1u << 30);
        ssize_t r = pread(fd, (char *)dst + done, (size_t)chunk, (off_t)(off + done));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) break;
        done += (uint64_t)r;
    }
    return (int64_t)done;
}

static int cmp_info(const void *a, const void *b) {
    const sdc_tensor_info *x = *(const sdc_tensor_info *const *)a, *y = *(const sdc_tensor_info *const *)b;
    return strcmp(x->name, y->name);
}

/* The position of name in idx->sorted, or idx->n when absent. */
static size_t sorted_pos(const sdc_model_index *idx, const char *name) {
    size_t lo = 0, hi = idx->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(idx->sorted[mid]->name, name);
        if (c == 0) return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return idx->n;
}

const sdc_tensor_info *sdc_index_find(const sdc_model_index *idx, const char *name) {
    const size_t k = sorted_pos(idx, name);
    return k < idx->n ? idx->sorted[k] : NULL;
}

/* Fills the file's identity into f and reads its first bytes: the GGUF magic or a safetensors length. */
static sdc_status read_head(sdc_model_index *idx, const char *path, index_file *f, unsigned char head[8], int *got) {
    const sdc_logger *log = &idx->log;
    struct stat st;
    if (fstat(f->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        SDC_LOGE(log, "sdc_index_add_file: %s: not a readable regular file", path);
        return SDC_ERR_IO;
    }
    f->size = (uint64_t)st.st_size;
    f->mtime = st.st_mtim;
    int64_t r = pread_full(f->fd, head, f->size < 8 ? f->size : 8, 0);
    if (r < 0) {
        SDC_LOGE(log, "sdc_index_add_file: %s: read failed: %s", path, strerror(errno));
        return SDC_ERR_IO;
    }
    *got = (int)r;
    return SDC_OK;
}

/* Parses path's safetensors header into *h, given its first 8 bytes. */
static sdc_status read_st_header(sdc_model_index *idx, const char *path, index_file *f, const unsigned char *len8,
                                 int got, sdc_st_header *h) {
    const sdc_logger *log = &idx->log;
    if (got < 8) {
        SDC_LOGE(log, "sdc_index_add_file: %s: truncated file (%llu bytes, a safetensors file has at least 8)", path,
                 (unsigned long long)f->size);
        return SDC_ERR_FORMAT;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | len8[i];
    if (n > f->size - 8) {
        SDC_LOGE(log, "sdc_index_add_file: %s: header length %llu goes beyond the end of the file (%llu bytes)", path,
                 (unsigned long long)n, (unsigned long long)f->size);
        return SDC_ERR_FORMAT;
    }
    if (n > MAX_HEADER_BYTES) {
        SDC_LOGE(log, "sdc_index_add_file: %s: header length %llu exceeds the %u byte limit", path,
                 (unsigned long long)n, MAX_HEADER_BYTES);
        return SDC_ERR_FORMAT;
    }
    char *json = malloc(n ? (size_t)n : 1);
    if (!json) return SDC_ERR_OOM;
    int64_t r = pread_full(f->fd, json, n, 8);
    if (r != (int64_t)n) {
        SDC_LOGE(log, "sdc_index_add_file: %s: cannot read the header: %s", path,
                 r < 0 ? strerror(errno) : "file shrank");
        free(json);
        return SDC_ERR_IO;
    }
    sdc_status s = sdc_st_parse_header(json, (size_t)n, f->size, path, log, h);
    free(json);
    return s;
}

/* Renames the file's tensors src[0..n) (prefix + map(name)) into f->tensors, dropping skipped ones. */
static sdc_status name_tensors(sdc_model_index *idx, const char *path, const char *prefix, sdc_name_map_fn map,
                               void *map_user, const sdc_tensor_info *tensors, size_t n_tensors, index_file *f) {
    size_t plen = prefix ? strlen(prefix) : 0, maxlen = 0;
    for (size_t i = 0; i < n_tensors; i++) {
        size_t l = strlen(tensors[i].name);
        if (l > maxlen) maxlen = l;
    }
    char *buf = malloc(maxlen + MAP_SLACK);
    f->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *f->tensors);
    if (!buf || !f->tensors) {
        free(buf);
        return SDC_ERR_OOM;
    }
    sdc_status st = SDC_OK;
    for (size_t i = 0; i < n_tensors && st == SDC_OK; i++) {
        const sdc_tensor_info *src = &tensors[i];
        const char *name = map ? map(src->name, buf, maxlen + MAP_SLACK, map_user) : src->name;
        if (!name) continue;
        size_t l = strlen(name);
        char *full = malloc(plen + l + 1);
        if (!full) {
            st = SDC_ERR_OOM;
            break;
        }
        if (plen) memcpy(full, prefix, plen);
        memcpy(full + plen, name, l + 1);
        sdc_tensor_info *t = &f->tensors[f->n++];
        *t = *src;
        t->name = full;
        t->file = idx->n_files;
        if (sdc_index_find(idx, full)) {
            SDC_LOGE(&idx->log, "sdc_index_add_file: %s: tensor '%.200s' is already indexed from %s", path, full,
                     sdc_index_file_path(idx, sdc_index_find(idx, full)->file));
            st = SDC_ERR_FORMAT;
        }
    }
    free(buf);
    if (st != SDC_OK || f->n < 2) return st;
    /* two file names that map to one name */
    const sdc_tensor_info **p = malloc(sizeof *p * f->n);
    if (!p) return SDC_ERR_OOM;
    for (size_t i = 0; i < f->n; i++) p[i] = &f->tensors[i];
    qsort(p, f->n, sizeof *p, cmp_info);
    for (size_t i = 1; i < f->n && st == SDC_OK; i++) {
        if (strcmp(p[i - 1]->name, p[i]->name) == 0) {
            SDC_LOGE(&idx->log, "sdc_index_add_file: %s: two tensors are both named '%.200s' after renaming", path,
                     p[i]->name);
            st = SDC_ERR_FORMAT;
        }
    }
    free(p);
    return st;
}

sdc_status sdc_index_add_file(sdc_model_index *idx, const char *path, const char *prefix, sdc_name_map_fn map,
                              void *map_user) {
    assert(idx && path);
    index_file f = {.fd = -1};
    sdc_st_header h = {0};
    /* O_NONBLOCK: a FIFO in place of the file must not block the open; anything but a regular file is
     * refused below, and on a regular file the flag changes nothing */
    f.fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (f.fd < 0) {
        int e = errno;
        SDC_LOGE(&idx->log, "sdc_index_add_file: cannot open %s: %s%s", path, strerror(e),
                 e == ELOOP ? " (a symlink loop)" : "");
        return e == ENOENT ? SDC_ERR_NOT_FOUND : SDC_ERR_IO;
    }
    struct stat fst;
    if (fstat(f.fd, &fst) != 0 || !S_ISREG(fst.st_mode)) {
        char kind[128];
        SDC_LOGE(&idx->log, "sdc_index_add_file: %s is %s, not a regular file", path,
                 sdc_path_kind(path, kind, sizeof kind));
        close(f.fd);
        return SDC_ERR_IO;
    }
    unsigned char head[8];
    int got = 0;
    sdc_status st = read_head(idx, path, &f, head, &got);
    if (st == SDC_OK && sdc_gguf_has_magic(head, (size_t)got)) { /* the magic decides, not the extension */
        sdc_gguf *g = NULL;
        st = sdc_gguf_parse_fd(f.fd, f.size, path, &idx->log, &g);
        if (st == SDC_OK)
            st = name_tensors(idx, path, prefix, map, map_user, sdc_gguf_tensor(g, 0), sdc_gguf_tensor_count(g), &f);
        sdc_gguf_free(g);
    } else if (st == SDC_OK) {
        st = read_st_header(idx, path, &f, head, got, &h);
        if (st == SDC_OK) st = name_tensors(idx, path, prefix, map, map_user, h.tensors, h.n_tensors, &f);
        sdc_st_header_free(&h);
    }

    /* make room for everything before changing anything */
    if (st == SDC_OK && idx->n_files == idx->cap_files) {
        int cap = idx->cap_files ? idx->cap_files * 2 : 4;
        index_file *nf = realloc(idx->files, sizeof *nf * (size_t)cap);
        if (nf) {
            idx->files = nf;
            idx->cap_files = cap;
        } else {
            st = SDC_ERR_OOM;
        }
    }
    if (st == SDC_OK && idx->n + f.n > idx->cap) {
        size_t cap = idx->cap ? idx->cap : 256;
        while (cap < idx->n + f.n) cap *= 2;
        const sdc_tensor_info **ns = realloc(idx->sorted, sizeof *ns * cap);
        if (ns) {
            idx->sorted = ns;
            idx->cap = cap;
        } else {
            st = SDC_ERR_OOM;
        }
    }
    if (st == SDC_OK) f.path = strdup(path);
    if (st == SDC_OK && !f.path) st = SDC_ERR_OOM;
    if (st != SDC_OK) {
        if (st == SDC_ERR_OOM) SDC_LOGE(&idx->log, "sdc_index_add_file: %s: out of memory", path);
        close(f.fd);
        free(f.path);
        free_tensors(f.tensors, f.n);
        return st;
    }
    for (size_t i = 0; i < f.n; i++) idx->sorted[idx->n++] = &f.tensors[i];
    if (idx->n) qsort(idx->sorted, idx->n, sizeof *idx->sorted, cmp_info); /* qsort(NULL, 0) is UB */
    idx->files[idx->n_files++] = f;
    return SDC_OK;
}

size_t sdc_index_count(const sdc_model_index *idx) { return idx->n; }

const sdc_tensor_info *sdc_index_at(const sdc_model_index *idx, size_t i) { return i < idx->n ? idx->sorted[i] : NULL; }

const char *sdc_index_file_path(const sdc_model_index *idx, int file) {
    return file >= 0 && file < idx->n_files ? idx->files[file].path : NULL;
}

int sdc_index_file_count(const sdc_model_index *idx) { return idx->n_files; }

uint64_t sdc_index_bytes_read(const sdc_model_index *idx) { return atomic_load(&idx->bytes_read); }

void sdc_index_will_need(sdc_model_index *idx, const sdc_tensor_info *info) {
    const index_file *f = &idx->files[info->file];
    if (f->fd >= 0 && info->nbytes)
        (void)posix_fadvise(f->fd, (off_t)info->offset, (off_t)info->nbytes, POSIX_FADV_WILLNEED);
}

int64_t sdc_tensor_info_nelem(const sdc_tensor_info *info) {
    /* an empty tensor may have huge other dimensions (a safetensors [2^32, 2^32, 0]; fuzz_st_file found a
     * GGUF one): their product is never formed */
    for (int i = 0; i < info->ndim; i++)
        if (info->ne[i] == 0) return 0;
    int64_t n = 1;
    for (int i = 0; i < info->ndim; i++) n *= info->ne[i];
    return n;
}

sdc_status sdc_index_read_raw(sdc_model_index *idx, const sdc_tensor_info *info, void *dst) {
    return sdc_index_read_range(idx, info, 0, info->nbytes, dst);
}

/* Reads n file bytes of the tensor from file byte `begin` of its data (checking the file is unchanged);
 * failures logged to log (NULL: not at all). */
static sdc_status read_file_bytes_to(sdc_model_index *idx, const sdc_tensor_info *info, uint64_t begin, uint64_t n,
                                     void *dst, const sdc_logger *log) {
    index_file *f = &idx->files[info->file];
    struct stat st;
    if (fstat(f->fd, &st) != 0) {
        SDC_LOGE(log, "sdc_index_read_raw: %s: fstat failed: %s", f->path, strerror(errno));
        return SDC_ERR_IO;
    }
    if ((uint64_t)st.st_size != f->size || st.st_mtim.tv_sec != f->mtime.tv_sec ||
        st.st_mtim.tv_nsec != f->mtime.tv_nsec) {
        SDC_LOGE(log, "sdc_index_read_raw: %s: file changed since it was indexed (size %llu -> %llu bytes, mtime %s)",
                 f->path, (unsigned long long)f->size, (unsigned long long)st.st_size,
                 st.st_mtim.tv_sec != f->mtime.tv_sec || st.st_mtim.tv_nsec != f->mtime.tv_nsec ? "changed"
                                                                                                : "unchanged");
        return SDC_ERR_IO;
    }
    int64_t r = pread_full(f->fd, dst, n, info->offset + begin);
    if (r > 0) atomic_fetch_add(&idx->bytes_read, (uint64_t)r);
    if (r != (int64_t)n) {
        SDC_LOGE(log, "sdc_index_read_raw: %s: reading tensor '%.200s' failed: %s", f->path, info->name,
                 r < 0 ? strerror(errno) : "unexpected end of file");
        return SDC_ERR_IO;
    }
    return SDC_OK;
}

static sdc_status read_file_bytes(sdc_model_index *idx, const sdc_tensor_info *info, uint64_t begin, uint64_t n,
                                  void *dst) {
    return read_file_bytes_to(idx, info, begin, n, dst, &idx->log);
}

/* Elements [e0, e0 + m) of the canonical [R, C] tensor whose file holds [C, R]: the whole file tensor
 * is read, then canonical (i, j) = file (j, i). */
static sdc_status read_transposed(sdc_model_index *idx, const sdc_tensor_info *info, uint64_t e0, uint64_t m,
                                  void *dst) {
    const size_t es = sdc_dtype_size(info->dtype);
    const uint64_t R = (uint64_t)info->ne[0], C = (uint64_t)info->ne[1];
    char *file = malloc(info->nbytes ? (size_t)info->nbytes : 1);
    if (!file) {
        SDC_LOGE(&idx->log, "sdc_index_read_raw: out of memory transposing tensor '%.200s'", info->name);
        return SDC_ERR_OOM;
    }
    sdc_status st = read_file_bytes(idx, info, 0, info->nbytes, file);
    for (uint64_t e = e0; st == SDC_OK && e < e0 + m; e++) {
        const uint64_t i = e / C, j = e % C;   // canonical row i, column j
        memcpy((char *)dst + (e - e0) * es, file + (j * R + i) * es, es);
    }
    free(file);
    return st;
}

/* Bytes [begin, begin + n) of the canonical tensor whose file rows are rotated by info->roll_rows: at
 * most two contiguous file ranges (the canonical rows before and after the wrap). */
static sdc_status read_rolled(sdc_model_index *idx, const sdc_tensor_info *info, uint64_t begin, uint64_t n,
                              void *dst) {
    const uint64_t shift =
        info->nbytes / (uint64_t)info->ne[0] * (uint64_t)info->roll_rows; /* file byte of canonical 0 */
    const uint64_t wrap = info->nbytes - shift;                           /* canonical byte that is file byte 0 */
    sdc_status st = SDC_OK;
    if (begin < wrap) {
        const uint64_t m = n < wrap - begin ? n : wrap - begin;
        st = read_file_bytes(idx, info, begin + shift, m, dst);
        begin += m, n -= m, dst = (char *)dst + m;
    }
    if (st == SDC_OK && n) st = read_file_bytes(idx, info, begin - wrap, n, dst);
    return st;
}

sdc_status sdc_index_read_range(sdc_model_index *idx, const sdc_tensor_info *info, uint64_t begin, uint64_t n,
                                void *dst) {
    assert(info->file >= 0 && info->file < idx->n_files && begin <= info->nbytes && n <= info->nbytes - begin);
    assert(begin % sdc_dtype_block_bytes(info->dtype) == 0 && n % sdc_dtype_block_bytes(info->dtype) == 0);
    if (info->roll_rows) return read_rolled(idx, info, begin, n, dst);
    if (!info->transposed) return read_file_bytes(idx, info, begin, n, dst);
    const size_t es = sdc_dtype_size(info->dtype);
    assert(es && begin % es == 0 && n % es == 0);
    return read_transposed(idx, info, begin / es, n / es, dst);
}

/* Below this, a read is one pread: the pieces' fork and join would cost more than they gain. */
#define PAR_READ_MIN ((uint64_t)4 << 20)
#define PAR_READ_ALIGN ((uint64_t)4096) /* pieces start on page boundaries of the destination's offsets */

sdc_status sdc_index_read_range_par(sdc_model_index *idx, const sdc_tensor_info *info, uint64_t begin, uint64_t n,
                                    void *dst, int readers) {
    const int procs = omp_get_num_procs();
    readers = readers < procs ? readers : procs;
    if (readers < 2 || n < PAR_READ_MIN || info->roll_rows || info->transposed)
        return sdc_index_read_range(idx, info, begin, n, dst);
    assert(info->file >= 0 && info->file < idx->n_files && begin <= info->nbytes && n <= info->nbytes - begin);
    atomic_int failed = 0;
#pragma omp parallel for num_threads(readers) schedule(static)
    for (int p = 0; p < readers; p++) {
        const uint64_t b0 = p == 0 ? 0 : n / (uint64_t)readers * (uint64_t)p / PAR_READ_ALIGN * PAR_READ_ALIGN;
        const uint64_t b1 =
            p == readers - 1 ? n : n / (uint64_t)readers * (uint64_t)(p + 1) / PAR_READ_ALIGN * PAR_READ_ALIGN;
        if (b1 > b0 && !atomic_load(&failed) &&
            read_file_bytes_to(idx, info, begin + b0, b1 - b0, (char *)dst + b0, NULL) != SDC_OK)
            atomic_store(&failed, 1);
    }
    /* after a failure, the whole range once more as one read: its status, logged once */
    return atomic_load(&failed) ? read_file_bytes(idx, info, begin, n, dst) : SDC_OK;
}

/* ---- views ---- */

sdc_status sdc_index_transpose(sdc_model_index *idx, const char *name) {
    const size_t k = sorted_pos(idx, name);
    if (k == idx->n) {
        SDC_LOGE(&idx->log, "sdc_index_transpose: no tensor '%.200s'", name);
        return SDC_ERR_NOT_FOUND;
    }
    sdc_tensor_info *t = (sdc_tensor_info *)idx->sorted[k]; /* the index's own record */
    if (t->ndim != 2 || t->transposed || t->roll_rows) {
        SDC_LOGE(&idx->log, "sdc_index_transpose: tensor '%.200s' has %d dimensions%s; a transposed one needs 2", name,
                 t->ndim, t->transposed ? " and is transposed already" : "");
        return SDC_ERR_FORMAT;
    }
    if (sdc_dtype_is_quant(t->dtype)) { /* its blocks run along the file's rows: no element can be moved alone */
        SDC_LOGE(&idx->log, "sdc_index_transpose: tensor '%.200s' is %s: a block-quantized tensor cannot be transposed",
                 name, sdc_dtype_name(t->dtype));
        return SDC_ERR_FORMAT;
    }
    const int64_t r = t->ne[0];
    t->ne[0] = t->ne[1];
    t->ne[1] = r;
    t->transposed = 1;
    return SDC_OK;
}

sdc_status sdc_index_roll_rows(sdc_model_index *idx, const char *name, int64_t rows) {
    const size_t k = sorted_pos(idx, name);
    if (k == idx->n) {
        SDC_LOGE(&idx->log, "sdc_index_roll_rows: no tensor '%.200s'", name);
        return SDC_ERR_NOT_FOUND;
    }
    sdc_tensor_info *t = (sdc_tensor_info *)idx->sorted[k]; /* the index's own record */
    if (t->ndim < 1 || t->transposed || t->roll_rows || rows < 0 || rows >= t->ne[0]) {
        SDC_LOGE(&idx->log, "sdc_index_roll_rows: tensor '%.200s' (%lld rows%s) cannot be rolled by %lld rows", name,
                 t->ndim ? (long long)t->ne[0] : 0LL, t->transposed || t->roll_rows ? ", a view already" : "",
                 (long long)rows);
        return SDC_ERR_FORMAT;
    }
    t->roll_rows = rows;
    return SDC_OK;
}

/* The n views of t's row blocks of rows[k] rows each, malloc'd (names too); NULL on OOM. */
static sdc_tensor_info **row_views(const sdc_tensor_info *t, int n, const int64_t *rows, const char *const *names) {
    sdc_tensor_info **v = calloc((size_t)n, sizeof *v);
    const uint64_t row_bytes = t->ne[0] ? t->nbytes / (uint64_t)t->ne[0] : 0;
    uint64_t offset = t->offset;
    int ok = v != NULL;
    for (int k = 0; ok && k < n; k++) {
        if (!(v[k] = malloc(sizeof *v[k]))) {
            ok = 0;
            break;
        }
        *v[k] = *t;
        v[k]->name = strdup(names[k]);
        v[k]->ne[0] = rows[k];
        v[k]->nbytes = row_bytes * (uint64_t)rows[k];
        v[k]->offset = offset;
        offset += v[k]->nbytes;
        ok = v[k]->name != NULL;
    }
    if (ok) return v;
    for (int k = 0; v && k < n; k++)
        if (v[k]) free_tensors(v[k], 1);
    free(v);
    return NULL;
}

sdc_status sdc_index_split_rows(sdc_model_index *idx, const char *name, int n, const char *const *names) {
    assert(n >= 1 && n <= 64);
    const sdc_tensor_info *t = sdc_index_find(idx, name);
    if (t && t->ndim >= 1 && t->ne[0] % n) {
        SDC_LOGE(&idx->log, "sdc_index_split_rows: tensor '%.200s' (%lld rows) cannot be split in %d row blocks", name,
                 (long long)t->ne[0], n);
        return SDC_ERR_FORMAT;
    }
    int64_t rows[64];
    for (int i = 0; i < n; i++) rows[i] = t && t->ndim >= 1 ? t->ne[0] / n : 0;
    return sdc_index_split_rows_sized(idx, name, n, rows, names);
}

sdc_status sdc_index_split_rows_sized(sdc_model_index *idx, const char *name, int n, const int64_t *rows,
                                      const char *const *names) {
    assert(n >= 1);
    const size_t k = sorted_pos(idx, name);
    if (k == idx->n) {
        SDC_LOGE(&idx->log, "sdc_index_split_rows: no tensor '%.200s'", name);
        return SDC_ERR_NOT_FOUND;
    }
    const sdc_tensor_info *t = idx->sorted[k];
    int64_t sum = 0;
    for (int i = 0; i < n; i++) sum += rows[i] > 0 ? rows[i] : -t->ne[0] - 1; /* a block of < 1 row fails below */
    if (t->ndim < 1 || t->transposed || t->roll_rows || sum != t->ne[0]) {
        SDC_LOGE(&idx->log,
                 "sdc_index_split_rows: tensor '%.200s' (%lld rows) cannot be split in %d row blocks of "
                 "the sizes asked",
                 name, t->ndim ? (long long)t->ne[0] : 0LL, n);
        return SDC_ERR_FORMAT;
    }
    for (int i = 0; i < n; i++)
        if (sdc_index_find(idx, names[i])) {
            SDC_LOGE(&idx->log, "sdc_index_split_rows: splitting '%.200s': '%.200s' is already indexed", name,
                     names[i]);
            return SDC_ERR_FORMAT;
        }
    /* room for everything before changing anything */
    if (idx->n + (size_t)n > idx->cap) {
        const sdc_tensor_info **ns = realloc(idx->sorted, sizeof *ns * (idx->n + (size_t)n));
        if (!ns) return SDC_ERR_OOM;
        idx->sorted = ns;
        idx->cap = idx->n + (size_t)n;
    }
    if (idx->n_views + (size_t)n > idx->cap_views) {
        size_t cap = idx->cap_views ? 2 * idx->cap_views : 64;
        while (cap < idx->n_views + (size_t)n) cap *= 2;
        sdc_tensor_info **nv = realloc(idx->views, sizeof *nv * cap);
        if (!nv) return SDC_ERR_OOM;
        idx->views = nv;
        idx->cap_views = cap;
    }
    sdc_tensor_info **v = row_views(t, n, rows, names);
    if (!v) return SDC_ERR_OOM;
    memmove(&idx->sorted[k], &idx->sorted[k + 1], sizeof *idx->sorted * (idx->n - k - 1)); /* the fused one goes */
    idx->n--;
    for (int i = 0; i < n; i++) idx->sorted[idx->n++] = idx->views[idx->n_views++] = v[i];
    free(v);
    qsort(idx->sorted, idx->n, sizeof *idx->sorted, cmp_info);
    return SDC_OK;
}

sdc_status sdc_index_check_float(const sdc_model_index *idx, const sdc_tensor_info *info) {
    switch (info->dtype) {
    case SDC_DTYPE_I8:
    case SDC_DTYPE_I16:
    case SDC_DTYPE_I32:
    case SDC_DTYPE_I64:
    case SDC_DTYPE_U8:
    case SDC_DTYPE_BOOL:
        SDC_LOGE(&idx->log,
                 "sdc_index_check_float: tensor '%.200s' has the integer dtype %s; a float weight "
                 "(F32, F16, BF16, F64) is needed (a quantised or corrupt file?)",
                 info->name, sdc_dtype_name(info->dtype));
        return SDC_ERR_UNSUPPORTED;
    default: return SDC_OK;
    }
}

sdc_status sdc_index_read_f32(sdc_model_index *idx, const sdc_tensor_info *info, float *dst) {
    size_t n = (size_t)sdc_tensor_info_nelem(info);
    if (info->dtype == SDC_DTYPE_F32) return sdc_index_read_raw(idx, info, dst);
    if (info->dtype == SDC_DTYPE_F8_E4M3 || info->dtype == SDC_DTYPE_F8_E5M2) {
        SDC_LOGE(&idx->log, "sdc_index_read_f32: tensor '%.200s' has dtype %s, which sdc does not convert", info->name,
                 sdc_dtype_name(info->dtype));
        return SDC_ERR_UNSUPPORTED;
    }
    void *raw = malloc(info->nbytes ? (size_t)info->nbytes : 1);
    if (!raw) {
        SDC_LOGE(&idx->log, "sdc_index_read_f32: out of memory for tensor '%.200s'", info->name);
        return SDC_ERR_OOM;
    }
    sdc_status st = sdc_index_read_raw(idx, info, raw);
    /* a block type's rows are whole blocks one after the other: all of them dequantize as one row */
    const int bad = sdc_dtype_is_quant(info->dtype) ? sdc_dequant_row(info->dtype, raw, dst, (int64_t)n)
                                                    : sdc_convert_to_f32(dst, raw, info->dtype, n);
    if (st == SDC_OK && bad != 0) {
        SDC_LOGE(&idx->log, "sdc_index_read_f32: tensor '%.200s': cannot convert %s to f32", info->name,
                 sdc_dtype_name(info->dtype));
        st = SDC_ERR_UNSUPPORTED;
    }
    free(raw);
    return st;
}
