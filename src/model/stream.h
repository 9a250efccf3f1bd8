/* stream.h - block streaming: a component whose weights do not all stay resident.
 *
 * A streamed component splits its weights into units (a UNet's down, mid and up blocks; Flux's double
 * and single blocks) and a small rest that stays resident (embeddings, input and output layers). Its
 * forward brackets each unit's computation:
 *
 *   if (!sdc_stream_acquire(s, k)) fail;   // unit k's weights resident (read from the index if not)
 *   ... the unit's forward, exactly the kernels of the resident path ...
 *   sdc_stream_release(s, k);              // unit k may be evicted
 *
 * At most `window` units are resident: `sticky` of them, spread evenly over the forward
 * (sdc_stream_sticky), stay once loaded; the others cycle through the remaining `slots`, one slot
 * (synchronous loads) or two (the lookahead below), so every call after the first reads n_units - sticky
 * units. Acquiring a unit that is not resident evicts the cycling unit whose next use is furthest away.
 * Evicting waits for the device's queued work where uploads could overtake it (a backend without
 * asynchronous copies); with them every upload is ordered after the compute enqueued before it.
 * Lookahead: on a backend with asynchronous copies (CUDA) and a window of 2 or more (sdc_model_params'
 * stream_prefetch), acquiring unit k also starts loading the next unit of this call that is not
 * resident, without waiting for its uploads: they run on the copy stream while k (and any sticky units
 * before it) compute, and acquiring it makes the compute stream (not the host) wait for them. Sticky
 * units spread between cycling ones give each upload their compute to hide behind. Elsewhere loading is
 * synchronous.
 *
 * Streaming changes when weights are loaded, never which kernels run on which data in which order: a
 * unit's tensors are loaded by the same loader calls as in a whole load, so their bytes are identical.
 *
 * s == NULL (a component loaded whole) makes acquire a no-op that succeeds and release a no-op. */
#ifndef SDC_MODEL_STREAM_H
#define SDC_MODEL_STREAM_H

#include "model/weights.h"

/* Loads unit k's tensors from ws into the owner's structures (errors stick in ws->status). */
typedef void (*sdc_stream_load_fn)(void *owner, int k, sdc_weight_set *ws);
/* Forgets unit k's tensor pointers (the set that owned them is freed by the stream). */
typedef void (*sdc_stream_drop_fn)(void *owner, int k);

typedef struct sdc_stream_unit {
    sdc_weight_set ws; /* owns the unit's tensors while resident */
    int resident, held;
    int sticky;  /* stays once loaded (sdc_stream_sticky) */
    int used;    /* acquired since it was loaded (a lookahead's unit is not yet) */
    void *ready; /* prefetched: the copy event its first use waits for (NULL: none pending) */
} sdc_stream_unit;

typedef struct sdc_weight_stream {
    sdc_weight_source src; /* where units are read from; the index stays open as long as the model */
    sdc_logger log;
    void *owner;
    sdc_stream_load_fn load;
    sdc_stream_drop_fn drop;
    int n_units, window, n_resident;
    int slots, n_cycling;  /* units that are not sticky: resident at most, resident now */
    int lookahead;         /* acquiring unit k loads the next one behind k's compute (window >= 2, async copies) */
    sdc_stream_unit *unit; /* [n_units] */
    sdc_status status;     /* the first failed acquire since sdc_stream_begin */
    /* counters since the component was loaded */
    uint64_t loads;      /* unit loads */
    uint64_t bytes_read; /* file bytes read for units */
    uint64_t bytes_host; /* file bytes taken from host memory for units instead (the host tier's image) */
    double seconds;      /* host time spent loading units (a lookahead's uploads run on behind it) */
} sdc_weight_stream;

/* Whether a window of w units of n loads ahead: the lookahead asked for (prefetch), a backend with
 * asynchronous copies, and a window of 2 or more that is not every unit. The stream, the planner and the
 * tests all decide it here. */
static inline int sdc_stream_lookahead(const sdc_backend *be, int prefetch, int w, int n) {
    return prefetch && w >= 2 && w < n && sdc_backend_has_async_copy(be);
}
/* The slots of a window of w units of n: every unit stays (w >= n), else 1, or 2 with the lookahead. */
static inline int sdc_stream_slots(int w, int n, int lookahead) { return w >= n ? 0 : lookahead && w >= 2 ? 2 : 1; }
/* Whether unit k of n is one of the n_sticky units that stay: the units where ceil(k * n_sticky / n)
 * steps up, so they are spread evenly (unit 0 first; n_sticky >= n: every unit). */
static inline int sdc_stream_sticky(int k, int n, int n_sticky) {
    return (int)(((int64_t)(k + 1) * n_sticky + n - 1) / n) > (int)(((int64_t)k * n_sticky + n - 1) / n);
}

/* A stream of n_units over src (src->window units resident at most, clamped to [1, n_units]); no unit
 * is loaded yet. NULL when out of host memory (logged). */
sdc_weight_stream *sdc_stream_new(const sdc_weight_source *src, int n_units, void *owner, sdc_stream_load_fn load,
                                  sdc_stream_drop_fn drop);
/* A stream whose window holds every unit (a component loaded whole) on a backend with asynchronous
 * copies: loads every unit, in order, without waiting for the uploads; each unit's first acquire makes
 * the compute (not the host) wait for its own. The forward starts on unit 0 while the later units still
 * upload. Elsewhere (or s == NULL) nothing happens: units load at their acquire. 0 on error (s->status). */
int sdc_stream_preload(sdc_weight_stream *s);
/* Frees every resident unit and the stream. NULL is harmless. */
void sdc_stream_free(sdc_weight_stream *s);
/* Clears the sticky status: called at the start of each forward. */
void sdc_stream_begin(sdc_weight_stream *s);
/* Unit k resident and held until released. 0 on error (s->status says which; nothing of k stays). */
int sdc_stream_acquire(sdc_weight_stream *s, int k);
void sdc_stream_release(sdc_weight_stream *s, int k);
/* s->status, SDC_OK for NULL. */
sdc_status sdc_stream_status(const sdc_weight_stream *s);

#endif
