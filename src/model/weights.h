/* weights.h - loading one component's weights from the model index into a backend.
 *
 * A component asks for tensors by canonical diffusers name under its prefix ("unet.", "vae.",
 * "text_encoder."); name variants in the wild are mapped to those names when the files are indexed.
 * The first error sticks in ws->status, so a loader can ask for every tensor and check once:
 *
 *   sdc_weight_set ws; sdc_weights_begin(&ws, index, "unet.", be, log);
 *   m->conv_in_w = sdc_weights_get(&ws, 4, (int64_t[]){C, 4, 3, 3}, "conv_in.weight");
 *   ...
 *   if (sdc_weights_end(&ws) != SDC_OK) { ...free... }
 */
#ifndef SDC_MODEL_WEIGHTS_H
#define SDC_MODEL_WEIGHTS_H

#include "backend/backend.h"
#include "io/model_index.h"

typedef struct sdc_weight_set {
    sdc_model_index *index;
    char prefix[64];
    sdc_backend *be;
    const sdc_logger *log;
    sdc_status status;          /* first error, SDC_OK while all went well */
    sdc_tensor **tensors;       /* everything loaded, owned by the set */
    int n, cap;
    uint64_t bytes_read;        /* file bytes read for this set */
    uint64_t bytes_resident;    /* backend bytes the tensors take */
    void *scratch;              /* host buffer reused across tensors (file bytes, f32 conversions) */
    size_t scratch_size;
} sdc_weight_set;

void sdc_weights_begin(sdc_weight_set *ws, sdc_model_index *index, const char *prefix, sdc_backend *be,
                       const sdc_logger *log);
/* Loads prefix + name (printf-style) with the expected shape. A shape that differs only by trailing
 * 1s with the same element count (a 1x1 conv stored for a linear) is accepted and viewed as
 * expected. Missing tensor: SDC_ERR_NOT_FOUND; wrong shape: SDC_ERR_FORMAT. Returns NULL on error. */
sdc_tensor *sdc_weights_get(sdc_weight_set *ws, int ndim, const int64_t *ne, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Whether prefix + name exists in the index (for optional tensors). */
int sdc_weights_has(const sdc_weight_set *ws, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns ws->status. On error frees everything loaded so far. */
sdc_status sdc_weights_end(sdc_weight_set *ws);
/* Frees every tensor of the set. */
void sdc_weights_free(sdc_weight_set *ws);

#endif
