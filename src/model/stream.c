/* stream.c - block streaming: units loaded on acquire, the highest released one evicted (see stream.h). */
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
    s->lookahead = src->lookahead && s->window >= 2 && sdc_backend_has_async_copy(src->be);
    s->status = SDC_OK;
    return s;
}

static void evict(sdc_weight_stream *s, int k) {
    sdc_stream_unit *u = &s->unit[k];
    /* a device may still be running the unit's kernels; its memory may next take an upload on another
     * stream: wait for them (a sticky error stays for the forward to return) */
    (void)sdc_backend_sync(s->src.be);
    sdc_backend_event_free(s->src.be, u->ready);
    u->ready = NULL;
    s->drop(s->owner, k);
    sdc_weights_free(&u->ws);
    u->resident = 0;
    s->n_resident--;
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

/* The resident unit with the highest index that is not held; -1 when every resident unit is held. A
 * forward acquires its units in index order, over and over: least recently used would evict each unit just
 * before its next use (every unit read again per forward), while this keeps units 0 .. window - 2 resident
 * for good and cycles the rest through the last slot (n - window + 1 reads per forward after the first). */
static int victim(const sdc_weight_stream *s) {
    for (int k = s->n_units - 1; k >= 0; k--)
        if (s->unit[k].resident && !s->unit[k].held) return k;
    return -1;
}

/* Evicts until a unit fits the window; 0 (logged, sticky) when every resident unit is held. */
static int make_room(sdc_weight_stream *s, int k) {
    while (s->n_resident >= s->window) {
        const int v = victim(s);
        if (v < 0) {
            SDC_LOGE(&s->log, "sdc_stream_acquire: unit %d: all %d units of the window are held", k, s->window);
            s->status = SDC_ERR_OOM;
            return 0;
        }
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
    s->n_resident++;
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
    if (!u->resident && !(make_room(s, k) && load_unit(s, k, 0))) return 0;
    if (u->ready) { /* prefetched: the compute that follows waits for its copies, the host does not */
        sdc_backend_compute_wait(s->src.be, u->ready);
        sdc_backend_event_free(s->src.be, u->ready);
        u->ready = NULL;
    }
    u->held = 1;
    /* lookahead: unit k + 1's uploads run on the copy stream while unit k computes (its failure sticks
     * and fails the next acquire) */
    if (s->lookahead && k + 1 < s->n_units && !s->unit[k + 1].resident && make_room(s, k + 1))
        (void)load_unit(s, k + 1, 1);
    return 1;
}

void sdc_stream_release(sdc_weight_stream *s, int k) {
    if (s) s->unit[k].held = 0;
}
