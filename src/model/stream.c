/* stream.c - block streaming: sticky units stay, the others cycle through one or two slots (see stream.h). */
#include "model/stream.h"

#include <stdlib.h>

#include "core/sysmem.h"

sdc_weight_stream *sdc_stream_new(const sdc_weight_source *src, int n_units, void *owner, sdc_stream_load_fn load,
                                  sdc_stream_drop_fn drop) {
    sdc_weight_stream *s = calloc(1, sizeof *s);
    if (s) s->unit = calloc((size_t)(n_units > 0 ? n_units : 1), sizeof *s->unit);
    if (!s || !s->unit) {
        SDC_LOGE(src->log, "sdc_stream_new: out of host memory");
        free(s);
        return NULL;
    }
    s->src = *src;
    if (src->log) s->log = *src->log;
    s->src.log = &s->log;
    s->owner = owner;
    s->load = load;
    s->drop = drop;
    s->n_units = n_units;
    s->window = src->window < 1 ? 1 : src->window > n_units ? n_units : src->window;
    s->lookahead = sdc_stream_lookahead(src->be, src->lookahead, s->window, n_units);
    s->slots = sdc_stream_slots(s->window, n_units, s->lookahead);
    for (int k = 0; k < n_units; k++) s->unit[k].sticky = sdc_stream_sticky(k, n_units, s->window - s->slots);
    s->status = SDC_OK;
    return s;
}

static void evict(sdc_weight_stream *s, int k) {
    sdc_stream_unit *u = &s->unit[k];
    /* a device may still be running the unit's kernels, and its memory may next take an upload: a
     * backend with asynchronous copies orders every upload after the compute enqueued before it; any
     * other, wait (a sticky error stays for the forward to return) */
    if (!sdc_backend_has_async_copy(s->src.be)) (void)sdc_backend_sync(s->src.be);
    sdc_backend_event_free(s->src.be, u->ready);
    u->ready = NULL;
    s->drop(s->owner, k);
    sdc_weights_free(&u->ws);
    u->resident = 0;
    s->n_resident--;
    if (!u->sticky) s->n_cycling--;
}

void sdc_stream_free(sdc_weight_stream *s) {
    if (!s) return;
    for (int k = 0; k < s->n_units; k++)
        if (s->unit[k].resident) evict(s, k);
    free(s->unit);
    free(s);
}

void sdc_stream_begin(sdc_weight_stream *s) {
    if (s) s->status = SDC_OK;
}

sdc_status sdc_stream_status(const sdc_weight_stream *s) { return s ? s->status : SDC_OK; }

/* The cycling unit to evict for one acquired at position `at` of the forward: resident, not held, and
 * whose next use is furthest away (units run in index order, call after call: one below `at` is next
 * used in the next call). A lookahead's unit not yet used goes only if `unused_too`. -1: none. */
static int victim(const sdc_weight_stream *s, int at, int unused_too) {
    int best = -1, best_dist = -1;
    for (int k = 0; k < s->n_units; k++) {
        const sdc_stream_unit *u = &s->unit[k];
        if (!u->resident || u->sticky || u->held || (!u->used && !unused_too)) continue;
        const int dist = k < at ? s->n_units - at + k : k - at;
        if (dist > best_dist) best = k, best_dist = dist;
    }
    return best;
}

/* Room for unit k: a sticky unit always has its place; a cycling one needs a free slot, made by evicting
 * (unused_too: a lookahead's unit may go). 0 when none can be made. */
static int make_room(sdc_weight_stream *s, int k, int unused_too) {
    if (s->unit[k].sticky) return 1;
    while (s->n_cycling >= s->slots) {
        const int v = victim(s, k, unused_too);
        if (v < 0) return 0;
        evict(s, v);
    }
    return 1;
}

/* Loads unit k; async: its uploads may still run (u->ready: the event compute waits for before using it). */
static int load_unit(sdc_weight_stream *s, int k, int async) {
    sdc_stream_unit *u = &s->unit[k];
    const double t0 = sdc_now();
    sdc_weights_begin(&u->ws, &s->src, NULL);
    s->load(s->owner, k, &u->ws);
    const sdc_status st = async ? sdc_weights_end_async(&u->ws) : sdc_weights_end(&u->ws); /* on error: freed */
    if (st != SDC_OK) {
        s->drop(s->owner, k);
        SDC_LOGE(&s->log, "sdc_stream_acquire: loading unit %d of %d failed: %s", k, s->n_units, sdc_status_str(st));
        s->status = st;
        return 0;
    }
    if (async) u->ready = sdc_backend_copy_event(s->src.be);
    u->resident = 1;
    u->used = 0;
    s->n_resident++;
    if (!u->sticky) s->n_cycling++;
    s->loads++;
    s->bytes_read += u->ws.bytes_read;
    s->bytes_host += u->ws.bytes_host;
    s->seconds += sdc_now() - t0;
    return 1;
}

int sdc_stream_acquire(sdc_weight_stream *s, int k) {
    if (!s) return 1;
    if (s->status != SDC_OK) return 0;
    sdc_stream_unit *u = &s->unit[k];
    if (!u->resident) {
        if (!make_room(s, k, 1)) {
            SDC_LOGE(&s->log, "sdc_stream_acquire: unit %d: all %d slots of the window are held", k, s->slots);
            s->status = SDC_ERR_OOM;
            return 0;
        }
        if (!load_unit(s, k, 0)) return 0;
    }
    if (u->ready) { /* a lookahead's: the compute that follows waits for its copies, the host does not */
        sdc_backend_compute_wait(s->src.be, u->ready);
        sdc_backend_event_free(s->src.be, u->ready);
        u->ready = NULL;
    }
    u->held = 1;
    u->used = 1;
    /* lookahead: the next unit of this call that is not resident uploads on the copy stream while k
     * computes, if a slot is free or holds a unit already used (its failure sticks and fails the next
     * acquire) */
    if (s->lookahead) {
        int j = k + 1;
        while (j < s->n_units && s->unit[j].resident) j++;
        if (j < s->n_units && make_room(s, j, 0)) (void)load_unit(s, j, 1);
    }
    return 1;
}

int sdc_stream_preload(sdc_weight_stream *s) {
    if (!s || s->window < s->n_units || !sdc_backend_has_async_copy(s->src.be)) return 1;
    for (int k = 0; k < s->n_units; k++)
        if (!s->unit[k].resident && !load_unit(s, k, 1)) return 0;
    return 1;
}

void sdc_stream_release(sdc_weight_stream *s, int k) {
    if (s) s->unit[k].held = 0;
}
