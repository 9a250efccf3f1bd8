/* host_tier.c - the cross-phase prefetcher and the pinned host tier (see host_tier.h). */
#include "pipeline/host_tier.h"

#include <stdlib.h>
#include <string.h>

#include "core/sysmem.h"
#include "pipeline/model.h"

void sdc_host_tier_init(sdc_host_tier *t, sdc_model_index *index, int64_t prefetch_mem, int64_t host_cache) {
    memset(t, 0, sizeof *t);
    atomic_init(&t->stop, 0);
    t->index = index;
    t->host_cache = host_cache > 0 ? (size_t)host_cache : 0;
    if (prefetch_mem > 0) {
        t->prefetch_mem = (size_t)prefetch_mem;
    } else if (prefetch_mem == 0) {
        /* default: a component's files are only asked into the OS page cache ahead of its load. Until
         * session 15 CUDA's later loads also got a page-locked image of up to 4 GiB; once the loader read
         * with 4 threads, that image cost more than it saved (H100, Flux 512x512 phased, three images in one
         * process: 2.536, 7.606 and 2.623 s with it, 2.600, 2.342 and 2.374 s without it;
         * bench/results/h100-flux-gguf.txt). */
        t->readahead = 1;
    }
}

static void drop(sdc_host_tier *t, int c) {
    sdc_host_image *img = t->img[c];
    if (img && !t->kept[c] && img->base && img->block > t->spare_size && img->block <= t->prefetch_mem) {
        sdc_backend_pinned_free(img->be, t->spare, t->spare_pinned); /* the larger one stays */
        t->spare = sdc_host_image_take_block(img, &t->spare_size, &t->spare_pinned);
    }
    sdc_host_image_free(img);
    t->img[c] = NULL;
    t->kept[c] = 0;
}

void sdc_host_tier_cancel(sdc_host_tier *t) {
    if (!t->running) return;
    atomic_store(&t->stop, 1);
    pthread_join(t->thread, NULL);
    t->running = 0;
    t->filling = 0;
    atomic_store(&t->stop, 0);
}

void sdc_host_tier_free(sdc_host_tier *t, sdc_backend *be) {
    sdc_host_tier_cancel(t);
    for (int c = 0; c < SDC_MAX_COMPONENTS; c++) drop(t, c);
    sdc_backend_pinned_free(be, t->spare, t->spare_pinned);
    t->spare = NULL;
    t->spare_size = 0;
}

/* File bytes of the images the tier keeps, c's left out. */
static size_t kept_bytes(const sdc_host_tier *t, int c) {
    size_t b = 0;
    for (int k = 0; k < SDC_MAX_COMPONENTS; k++)
        if (k != c && t->kept[k] && t->img[k]) b += t->img[k]->bytes + t->img[k]->conv_size;
    return b;
}

/* Host bytes the tier needs for component c whole: its file bytes, and where the backend stores some of its
 * weights in another dtype and can take uploads behind compute (CUDA), room for those converted copies
 * (at most the component's backend bytes), so that a later load converts nothing. */
static size_t tier_bytes(const sdc_model *m, int c) {
    const int converts = m->comp_converts[c] && sdc_backend_has_async_copy(m->be);
    return m->comp_file_bytes[c] + (converts ? m->comp_bytes[c] : 0);
}

/* A new image of component c's index tensors holding at most cap bytes; NULL when out of memory. */
static sdc_host_image *image_of(sdc_model *m, int c, size_t cap) {
    const sdc_model_index *idx = m->mf->index;
    const sdc_component_def *def = &m->family->components[c];
    const size_t n = sdc_index_count(idx);
    const sdc_tensor_info **infos = malloc((n ? n : 1) * sizeof *infos);
    if (!infos) return NULL;
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        const sdc_tensor_info *info = sdc_index_at(idx, i);
        if (sdc_component_owns(def, info->name)) infos[k++] = info;
    }
    sdc_host_image *img = sdc_host_image_new(m->be, infos, k, cap);
    free(infos);
    return img;
}

/* Whether the tier keeps component c whole: its tier_bytes fit host_cache beside the kept ones. */
static int tier_keeps(sdc_model *m, int c) {
    sdc_host_tier *t = &m->tier;
    return t->host_cache && tier_bytes(m, c) + kept_bytes(t, c) <= t->host_cache;
}

void sdc_host_tier_join(sdc_model *m) {
    sdc_host_tier *t = &m->tier;
    if (!t->running) return;
    const double t0 = sdc_now();
    pthread_join(t->thread, NULL);
    for (int k = 0; k < m->n_components; k++)
        if (t->filling & (1u << k)) t->waited[k] = sdc_now() - t0;
    t->running = 0;
    t->filling = 0;
}

sdc_host_image *sdc_host_tier_before_load(sdc_model *m, int c) {
    sdc_host_tier *t = &m->tier;
    sdc_tier_load *l = &t->last[c];
    sdc_host_tier_join(m);
    memset(l, 0, sizeof *l);
    l->wait_seconds = t->waited[c];
    t->waited[c] = 0;
    const int keep = tier_keeps(m, c);
    if (keep && t->img[c] && !t->img[c]->whole) drop(t, c); /* prefetched in part: the tier holds all of it */
    if (t->img[c]) {
        l->hidden_bytes = atomic_load(&t->img[c]->ready_bytes);
        l->prefetch_seconds = t->img[c]->fill_seconds;
    }
    if (keep) {
        if (!t->img[c]) t->img[c] = image_of(m, c, SIZE_MAX);
        const size_t conv = tier_bytes(m, c) - m->comp_file_bytes[c];
        if (t->img[c] && sdc_host_image_fill(t->img[c], t->index, NULL) == SDC_OK &&
            (!conv || sdc_host_image_keep_converted(t->img[c], conv)))
            t->kept[c] = 1;
        else
            drop(t, c); /* no host memory for it: the file it is */
    }
    if (t->img[c]) t->img[c]->fill_seconds = 0; /* the next load reports only the prefetcher's reads since */
    t->served0[c] = t->img[c] ? atomic_load(&t->img[c]->served_bytes) : 0;
    return t->img[c];
}

void sdc_host_tier_after_load(sdc_model *m, int c) {
    sdc_host_tier *t = &m->tier;
    sdc_tier_load *l = &t->last[c];
    l->host_bytes = t->img[c] ? atomic_load(&t->img[c]->served_bytes) - t->served0[c] : 0;
    if (l->hidden_bytes > l->host_bytes) l->hidden_bytes = l->host_bytes;
    if (t->img[c] && !t->kept[c] && !(m->comp[c] && m->window[c] > 0)) drop(t, c);
}

void sdc_host_tier_component_freed(sdc_model *m, int c) {
    if (m->tier.img[c] && !m->tier.kept[c]) drop(&m->tier, c);
}

/* Component c's file bytes asked into the OS page cache (t->readahead). */
static void read_ahead(sdc_model *m, int c) {
    const sdc_component_def *def = &m->family->components[c];
    for (size_t i = 0; i < sdc_index_count(m->tier.index) && !atomic_load(&m->tier.stop); i++) {
        const sdc_tensor_info *info = sdc_index_at(m->tier.index, i);
        if (sdc_component_owns(def, info->name)) sdc_index_will_need(m->tier.index, info);
    }
}

static void *prefetch_main(void *arg) {
    sdc_model *m = arg;
    sdc_host_tier *t = &m->tier;
    for (int c = 0; c < m->n_components; c++) {
        if (!(t->filling & (1u << c))) continue;
        if (t->img[c])
            (void)sdc_host_image_fill(t->img[c], t->index, &t->stop);
        else if (t->readahead)
            read_ahead(m, c);
    }
    return NULL;
}

void sdc_host_tier_prefetch(sdc_model *m, unsigned mask) {
    sdc_host_tier *t = &m->tier;
    if (t->running || (!t->prefetch_mem && !t->readahead)) return;
    /* the prefetch budget bounds the images the tier does not keep */
    size_t used = 0;
    for (int c = 0; c < m->n_components; c++)
        if (t->img[c] && !t->kept[c]) used += t->img[c]->bytes;
    unsigned fill = 0;
    for (int c = 0; c < m->n_components; c++) {
        if (!(mask & (1u << c)) || m->comp[c] || (t->img[c] && t->img[c]->filled)) continue;
        if (!t->img[c]) {
            const int keep = tier_keeps(m, c);
            const size_t room = used < t->prefetch_mem ? t->prefetch_mem - used : 0;
            if (!keep && room == 0) {
                if (t->readahead) fill |= 1u << c; /* into the page cache only */
                continue;
            }
            if (!(t->img[c] = image_of(m, c, keep ? SIZE_MAX : room))) continue;
            if (!keep) used += t->img[c]->bytes;
            if (t->spare && t->spare_size >= t->img[c]->bytes) { /* no page-locking this time */
                sdc_host_image_adopt(t->img[c], t->spare, t->spare_size, t->spare_pinned);
                t->spare = NULL;
                t->spare_size = 0;
            }
        }
        fill |= 1u << c;
    }
    if (!fill) return;
    t->filling = fill;
    atomic_store(&t->stop, 0);
    if (pthread_create(&t->thread, NULL, prefetch_main, m) != 0) {
        SDC_LOGW(&m->log, "prefetch: cannot start a thread; the next phase reads its weights itself");
        t->filling = 0;
        return;
    }
    t->running = 1;
}
