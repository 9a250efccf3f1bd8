/* single_file.c - the facts of a single-file checkpoint (its tensors' names and shapes, sorted), and
 * indexing it under the names a family chose. */
#include "io/single_file.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sdc_sf_facts {
    size_t n;
    sdc_tensor_info *t; /* [n], sorted by name; names owned */
};

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const sdc_tensor_info *)a)->name, ((const sdc_tensor_info *)b)->name);
}

void sdc_sf_facts_free(sdc_sf_facts *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) free((char *)f->t[i].name);
    free(f->t);
    free(f);
}

sdc_status sdc_sf_facts_new(const sdc_tensor_info *t, size_t n, sdc_sf_facts **out) {
    *out = NULL;
    sdc_sf_facts *f = calloc(1, sizeof *f);
    if (!f || !(f->t = calloc(n ? n : 1, sizeof *f->t))) {
        free(f);
        return SDC_ERR_OOM;
    }
    for (; f->n < n; f->n++) {
        f->t[f->n] = t[f->n];
        if (!(f->t[f->n].name = strdup(t[f->n].name))) {
            sdc_sf_facts_free(f);
            return SDC_ERR_OOM;
        }
    }
    qsort(f->t, n, sizeof *f->t, cmp_name);
    *out = f;
    return SDC_OK;
}

sdc_status sdc_sf_facts_read(const char *path, const sdc_logger *log, sdc_sf_facts **out) {
    *out = NULL;
    sdc_model_index *raw = sdc_index_new(log);
    if (!raw) return SDC_ERR_OOM;
    sdc_status st = sdc_index_add_file(raw, path, NULL, NULL, NULL);
    const size_t n = sdc_index_count(raw);
    sdc_tensor_info *t = st == SDC_OK ? malloc(sizeof *t * (n ? n : 1)) : NULL;
    if (st == SDC_OK && !t) st = SDC_ERR_OOM;
    for (size_t i = 0; st == SDC_OK && i < n; i++) t[i] = *sdc_index_at(raw, i);
    if (st == SDC_OK) st = sdc_sf_facts_new(t, n, out);
    free(t);
    sdc_index_free(raw);
    return st;
}

size_t sdc_sf_count(const sdc_sf_facts *f) { return f->n; }

const sdc_tensor_info *sdc_sf_at(const sdc_sf_facts *f, size_t i) { return i < f->n ? &f->t[i] : NULL; }

/* Index of the first name >= key. */
static size_t lower_bound(const sdc_sf_facts *f, const char *key) {
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(f->t[mid].name, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const sdc_tensor_info *sdc_sf_find(const sdc_sf_facts *f, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof name) return NULL;
    size_t i = lower_bound(f, name);
    return i < f->n && strcmp(f->t[i].name, name) == 0 ? &f->t[i] : NULL;
}

size_t sdc_sf_count_prefix(const sdc_sf_facts *f, const char *prefix) {
    const size_t len = strlen(prefix);
    size_t i = lower_bound(f, prefix), k = i;
    while (k < f->n && strncmp(f->t[k].name, prefix, len) == 0) k++;
    return k - i;
}

int sdc_sf_max_index(const sdc_sf_facts *f, const char *prefix) {
    const size_t len = strlen(prefix);
    int best = -1;
    for (size_t i = lower_bound(f, prefix); i < f->n && strncmp(f->t[i].name, prefix, len) == 0; i++) {
        const char *s = f->t[i].name + len;
        if (*s < '0' || *s > '9') continue;
        long v = strtol(s, NULL, 10);
        if (v > best && v < 100000) best = (int)v;
    }
    return best;
}

/* The length of name's group: its first two dot-separated segments with the second dot. */
static size_t group_len(const char *name) {
    const char *dot = strchr(name, '.');
    if (dot) dot = strchr(dot + 1, '.');
    return dot ? (size_t)(dot - name) + 1 : strlen(name);
}

const char *sdc_sf_groups(const sdc_sf_facts *f, char *out, size_t size) {
    size_t used = 0;
    if (size) out[0] = 0;
    for (size_t i = 0; i < f->n && used < size;) {
        const size_t len = group_len(f->t[i].name);
        size_t k = i + 1;
        while (k < f->n && strncmp(f->t[k].name, f->t[i].name, len) == 0 && group_len(f->t[k].name) == len) k++;
        int w = snprintf(out + used, size - used, "%s%.*s (%zu)", i ? ", " : "", (int)len, f->t[i].name, k - i);
        if (w < 0 || (size_t)w >= size - used) {
            if (size >= 4) snprintf(out + size - 4, 4, "...");
            break;
        }
        used += (size_t)w;
        i = k;
    }
    return out;
}

sdc_status sdc_single_file_index(sdc_model_index *index, const char *path, sdc_name_map_fn map, void *map_user) {
    const size_t first = sdc_index_count(index);
    sdc_status st = sdc_index_add_file(index, path, NULL, map, map_user);
    for (size_t i = first; st == SDC_OK && i < sdc_index_count(index); i++)
        st = sdc_index_check_float(index, sdc_index_at(index, i));
    return st;
}
