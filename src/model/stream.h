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
 * At most `window` units are resident: acquiring a unit that is not resident first evicts the released
 * unit with the highest index (units 0 .. window - 2 stay; the rest cycle through the last slot, the last two
 * with the lookahead below). With a window of every unit nothing is read after the first forward.
 * Evicting waits for the device's queued work (the unit's kernels may still read it). With the source's
 * lookahead on a backend with asynchronous copies (CUDA) and a window of 2 or more (sdc_model_params'
 * stream_prefetch, off by default until measured on a GPU), acquiring unit k also loads unit k + 1 without
 * waiting for its uploads (lookahead): they run on the copy stream while unit k computes, and acquiring
 * k + 1 makes the compute stream (not the host) wait for them. Elsewhere loading is synchronous.
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
    void *ready; /* prefetched: the copy event its first use waits for (NULL: none pending) */
} sdc_stream_unit;

typedef struct sdc_weight_stream {
    sdc_weight_source src; /* where units are read from; the index stays open as long as the model */
    sdc_logger log;
    void *owner;
    sdc_stream_load_fn load;
    sdc_stream_drop_fn drop;
    int n_units, window, n_resident;
    int lookahead;         /* acquiring unit k loads k + 1 behind k's compute (window >= 2, asynchronous copies) */
    sdc_stream_unit *unit; /* [n_units] */
    sdc_status status;     /* the first failed acquire since sdc_stream_begin */
    /* counters since the component was loaded */
    uint64_t loads;      /* unit loads */
    uint64_t bytes_read; /* file bytes read for units */
    uint64_t bytes_host; /* file bytes taken from host memory for units instead (the host tier's image) */
    double seconds;      /* host time spent loading units (a lookahead's uploads run on behind it) */
} sdc_weight_stream;

/* A stream of n_units over src (src->window units resident at most, clamped to [1, n_units]); no unit
 * is loaded yet. NULL when out of host memory (logged). */
sdc_weight_stream *sdc_stream_new(const sdc_weight_source *src, int n_units, void *owner, sdc_stream_load_fn load,
                                  sdc_stream_drop_fn drop);
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
