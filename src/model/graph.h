/* graph.h - a model's forward recorded once and replayed (CUDA graphs, on backends that have them).
 *
 * The denoiser's forward runs 20-50 times per image with the same operands (the caller's x, out and
 * context tensors stay, only their contents and the small host-computed inputs change). Enqueuing its
 * few thousand kernels one by one costs host time the GPU waits for where kernels are short; replayed
 * as one graph it runs them back to back. A forward that may be recorded does:
 *
 *   upload the call's host inputs into tensors that stay between calls (the same addresses)
 *   if (sdc_graph_replay(g, be, key, n))  done: the recorded kernels run on the new contents
 *   rec = sdc_graph_record_begin(g, be);  // the second call with this key records
 *   ... the forward, enqueued as always ...
 *   if (rec && !sdc_graph_record_end(g, be))  run the forward again, unrecorded (recording failed)
 *
 * The key is every address and shape the recorded kernels depend on. A replay runs exactly the kernels of
 * the recorded call, on the same operands, in the same order: the same bits as the unrecorded path.
 * Replays need the recording's temporaries to be free still: none is made once any device allocation
 * or release happened after the recording (sdc_backend_alloc_generation), nor with another key. */
#ifndef SDC_MODEL_GRAPH_H
#define SDC_MODEL_GRAPH_H

#include <stdint.h>

#include "backend/backend.h"

#define SDC_GRAPH_KEY_MAX 16

typedef struct sdc_graph {
    void *exec;                      /* the recorded forward, or NULL */
    uint64_t gen;                    /* the backend's allocation generation right after it was recorded */
    uint64_t key[SDC_GRAPH_KEY_MAX]; /* the call it was recorded for (or the last call seen) */
    int n_key;
    int calls; /* calls with this key so far (a recording is made on the second) */
    int off;   /* recording failed once: never again for this model */
} sdc_graph;

/* 1: the recorded forward for this key was launched and the caller is done; 0: run the forward. */
int sdc_graph_replay(sdc_graph *g, sdc_backend *be, const uint64_t *key, int n_key);
/* 1: the forward enqueued from now on is recorded (call sdc_graph_record_end after it); 0: run it as usual. */
int sdc_graph_record_begin(sdc_graph *g, sdc_backend *be);
/* Ends the recording. ok (the forward was enqueued whole): keeps and launches it, 1; 0 when the recording
 * failed and the caller must run the forward again, unrecorded (nothing of it ran; no recording is tried
 * again). !ok: throws it away, 0. */
int sdc_graph_record_end(sdc_graph *g, sdc_backend *be, int ok);
/* Drops the recording (the model's weights or operands go away). */
void sdc_graph_drop(sdc_graph *g, sdc_backend *be);

#endif
