/* host_image.c - a component's weight bytes in (page-locked) host memory (see host_image.h). */
#include "model/host_image.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/sysmem.h"

#define ALIGN 64 /* each tensor starts on a cache line (and any dtype's alignment) */
/* Readers of a fill (img->readers): one copy out of the page cache (or one request to the disk) at a
 * time runs at a quarter or less of what the memory system (or an NVMe queue) takes, so images from
 * FILL_SPLIT_BYTES up get SDC_HOST_IMAGE_MAX_READERS. */
#define FILL_SPLIT_BYTES ((size_t)64 << 20)

static size_t aligned(size_t b) { return (b + ALIGN - 1) / ALIGN * ALIGN; }

static int by_address(const void *a, const void *b) {
    const uintptr_t x = (uintptr_t)((const sdc_host_entry *)a)->info, y = (uintptr_t)((const sdc_host_entry *)b)->info;
    return x < y ? -1 : x > y;
}

sdc_host_image *sdc_host_image_new(sdc_backend *be, const sdc_tensor_info *const *infos, int n, size_t cap) {
    sdc_host_image *img = calloc(1, sizeof *img);
    if (img) img->entry = calloc((size_t)(n > 0 ? n : 1), sizeof *img->entry);
    if (!img || !img->entry) {
        sdc_host_image_free(img);
        return NULL;
    }
    img->be = be;
    img->n = n;
    img->whole = 1;
    for (int i = 0; i < n; i++) { /* laid out in the order given */
        const size_t b = (size_t)infos[i]->nbytes;
        img->entry[i].info = infos[i];
        img->entry[i].off = img->bytes + b <= cap ? img->bytes : UINT64_MAX;
        atomic_init(&img->entry[i].ready, 0);
        img->entry[i].conv_off = UINT64_MAX;
        if (img->entry[i].off != UINT64_MAX)
            img->bytes += aligned(b);
        else
            img->whole = 0;
    }
    /* lookups by address; also the fill order: the index's records, each file's in its order */
    qsort(img->entry, (size_t)n, sizeof *img->entry, by_address);
    atomic_init(&img->ready_bytes, 0);
    atomic_init(&img->served_bytes, 0);
    img->readers = img->bytes >= FILL_SPLIT_BYTES ? SDC_HOST_IMAGE_MAX_READERS : 1;
    return img;
}

void sdc_host_image_free(sdc_host_image *img) {
    if (!img) return;
    sdc_backend_pinned_free(img->be, img->base, img->pinned);
    sdc_backend_pinned_free(img->be, img->conv, img->conv_pinned);
    free(img->entry);
    free(img);
}

typedef struct fill_job {
    sdc_host_image *img;
    sdc_model_index *idx;
    const atomic_int *stop;
    atomic_int next;       /* the next entry to claim */
    atomic_int incomplete; /* a tensor was left unread (stopped, or its read failed) */
} fill_job;

static void *fill_worker(void *arg) {
    fill_job *j = arg;
    for (int i; (i = atomic_fetch_add(&j->next, 1)) < j->img->n;) {
        sdc_host_entry *e = &j->img->entry[i];
        if (e->off == UINT64_MAX || atomic_load(&e->ready)) continue;
        if (j->stop && atomic_load(j->stop)) {
            atomic_store(&j->incomplete, 1);
            break;
        }
        if (sdc_index_read_raw(j->idx, e->info, j->img->base + e->off) != SDC_OK) {
            atomic_store(&j->incomplete, 1); /* left to the file: the loader reads it and reports what is wrong */
            continue;
        }
        atomic_fetch_add(&j->img->ready_bytes, (size_t)e->info->nbytes);
        atomic_store(&e->ready, 1);
    }
    return NULL;
}

sdc_status sdc_host_image_fill(sdc_host_image *img, sdc_model_index *idx, const atomic_int *stop) {
    if (img->filled) return SDC_OK;
    const double t0 = sdc_now();
    if (!img->base && img->bytes) {
        if (!(img->base = sdc_backend_pinned_alloc(img->be, img->bytes, &img->pinned))) return SDC_ERR_OOM;
        img->block = img->bytes;
    }
    fill_job job = {.img = img, .idx = idx, .stop = stop};
    pthread_t th[SDC_HOST_IMAGE_MAX_READERS - 1];
    int n_th = 0;
    while (n_th < img->readers - 1 && n_th < SDC_HOST_IMAGE_MAX_READERS - 1 &&
           pthread_create(&th[n_th], NULL, fill_worker, &job) == 0)
        n_th++;
    fill_worker(&job); /* a thread that could not be started leaves its share to the others */
    for (int i = 0; i < n_th; i++) pthread_join(th[i], NULL);
    img->filled = !atomic_load(&job.incomplete);
    img->fill_seconds += sdc_now() - t0;
    return SDC_OK;
}

void sdc_host_image_adopt(sdc_host_image *img, void *base, size_t size, int pinned) {
    img->base = base;
    img->block = size;
    img->pinned = pinned;
}

void *sdc_host_image_take_block(sdc_host_image *img, size_t *size, int *pinned) {
    void *b = img->base;
    *size = img->block;
    *pinned = img->pinned;
    img->base = NULL;
    img->block = 0;
    return b;
}

/* The entry of info, or NULL. */
static sdc_host_entry *find(sdc_host_image *img, const sdc_tensor_info *info) {
    int lo = 0, hi = img->n;
    while (lo < hi) { /* the first entry whose info is not below info */
        const int mid = (lo + hi) / 2;
        if ((uintptr_t)img->entry[mid].info < (uintptr_t)info)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < img->n && img->entry[lo].info == info ? &img->entry[lo] : NULL;
}

const void *sdc_host_image_take(sdc_host_image *img, const sdc_tensor_info *info) {
    if (!img || !img->base) return NULL;
    sdc_host_entry *e = find(img, info);
    if (!e || !atomic_load(&e->ready)) return NULL;
    atomic_fetch_add(&img->served_bytes, (size_t)info->nbytes);
    return img->base + e->off;
}

int sdc_host_image_keep_converted(sdc_host_image *img, size_t bytes) {
    if (img->conv) return 1;
    img->conv = sdc_backend_pinned_alloc(img->be, bytes, &img->conv_pinned);
    img->conv_size = img->conv ? bytes : 0;
    return img->conv != NULL;
}

void *sdc_host_image_conv_slot(sdc_host_image *img, const sdc_tensor_info *info, sdc_dtype dtype, size_t nbytes) {
    sdc_host_entry *e = img && img->conv ? find(img, info) : NULL;
    const size_t room = aligned(nbytes);
    if (!e || e->conv_off != UINT64_MAX || img->conv_used + room > img->conv_size) return NULL;
    e->conv_off = img->conv_used;
    e->conv_dtype = dtype;
    img->conv_used += room;
    return img->conv + e->conv_off;
}

void sdc_host_image_conv_done(sdc_host_image *img, const sdc_tensor_info *info) {
    sdc_host_entry *e = img ? find(img, info) : NULL;
    if (e && e->conv_off != UINT64_MAX) e->conv_ready = 1;
}

const void *sdc_host_image_take_converted(sdc_host_image *img, const sdc_tensor_info *info, sdc_dtype dtype) {
    sdc_host_entry *e = img && img->conv ? find(img, info) : NULL;
    if (!e || !e->conv_ready || e->conv_dtype != dtype) return NULL;
    atomic_fetch_add(&img->served_bytes, (size_t)info->nbytes);
    return img->conv + e->conv_off;
}
