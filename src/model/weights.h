/* weights.h - loading one component's weights from the model index into a backend.
 *
 * Every component loader has one signature:
 *
 *   sdc_status sdc_X_load(const sdc_X_config *cfg, const sdc_weight_source *src, sdc_X **out);
 *
 * The source says where the tensors are (index, prefix), which backend they go to, and the component's
 * precision (f32). A component asks for tensors by canonical diffusers name under the prefix ("unet.",
 * "vae.", "text_encoder."); name variants in the wild are mapped to those names when the files are
 * indexed. The first error sticks in ws->status, so a loader can ask for every tensor and check once:
 *
 *   sdc_weight_set ws; sdc_weights_begin(&ws, src, "");
 *   m->conv_in_w = sdc_weights_matrix(&ws, 4, (int64_t[]){C, 4, 3, 3}, "conv_in.weight");
 *   m->conv_in_b = sdc_weights_get(&ws, 1, (int64_t[]){C}, "conv_in.bias");
 *   ...
 *   if (sdc_weights_end(&ws) != SDC_OK) { ...free... }
 *
 * On a counting backend (backend/count) no file byte is read: the tensors are only counted. */
#ifndef SDC_MODEL_WEIGHTS_H
#define SDC_MODEL_WEIGHTS_H

#include "backend/backend.h"
#include "io/model_index.h"

typedef struct sdc_weight_source {
    sdc_model_index *index; /* where tensors are read (deferred, on demand); open only during the load */
    const char *prefix;     /* e.g. "unet.", "vae.", "text_encoder." */
    sdc_backend *be;
    const sdc_logger *log;
    sdc_prec prec; /* the component's precision: SDC_PREC_AUTO (0), _F32 (1) or _BF16 */
    /* 0: every weight resident; >= 1: a component that can stream (model/stream.h) keeps at most this
     * many of its units resident, reading them from the index on demand (which then stays open) */
    int window;
    /* NULL, or the component's weight bytes in host memory (model/host_image.h): tensors it holds are
     * taken from it instead of the file, converted the same way */
    struct sdc_host_image *host;
    /* a streamed component on a backend with asynchronous copies: acquiring unit k loads unit k + 1
     * behind k's compute (model/stream.h) */
    int lookahead;
} sdc_weight_source;

/* The activation dtype a component loaded from src computes in. */
static inline sdc_dtype sdc_weight_source_act_dtype(const sdc_weight_source *src) {
    return src->be->iface->act_dtype(src->be, src->prec);
}

typedef struct sdc_weight_set {
    sdc_model_index *index;
    char prefix[96];
    sdc_backend *be;
    const sdc_logger *log;
    sdc_prec prec;        /* the component's precision (weight_dtype's argument) */
    sdc_status status;    /* first error, SDC_OK while all went well */
    sdc_tensor **tensors; /* everything loaded, owned by the set */
    int n, cap;
    struct sdc_host_image *host;
    uint64_t bytes_read;     /* file bytes read for this set */
    uint64_t bytes_host;     /* file bytes taken from the host image instead */
    uint64_t bytes_resident; /* backend bytes the tensors take */
    void *scratch;           /* host buffer reused across tensors (file bytes, f32 conversions) */
    size_t scratch_size;
} sdc_weight_set;

/* Starts a set reading src->prefix + sub_prefix + name (sub_prefix may be NULL or ""). */
void sdc_weights_begin(sdc_weight_set *ws, const sdc_weight_source *src, const char *sub_prefix);
/* Loads prefix + name (printf-style) with the expected shape. A shape that differs only by trailing
 * 1s with the same element count (a 1x1 conv stored for a linear) is accepted and viewed as
 * expected, and so is a convolution kernel [Co, Ci, KH, KW] stored as the 2-D block-type tensor
 * [Co, Ci*KH*KW] (`sdc convert --quantize-convs`; the same bytes). A block-type kernel kept in its type
 * whose innermost dim is not whole blocks is [Co, Ci, KH, KW] over rows of Ci*KH*KW (what conv2d reads).
 * Missing tensor: SDC_ERR_NOT_FOUND; wrong shape: SDC_ERR_FORMAT. Returns NULL on error. */
sdc_tensor *sdc_weights_get(sdc_weight_set *ws, int ndim, const int64_t *ne, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* sdc_weights_get for a matrix weight: one that feeds sdc_linear or sdc_conv2d and nothing else, which
 * the backend may keep in the file's storage dtype (on the CPU F16, BF16 and block types stay as they
 * are; backend.h's weight_dtype). Biases, norms, embeddings and tables use sdc_weights_get. */
sdc_tensor *sdc_weights_matrix(sdc_weight_set *ws, int ndim, const int64_t *ne, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Whether prefix + name exists in the index (for optional tensors). */
int sdc_weights_has(const sdc_weight_set *ws, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns ws->status. On error frees everything loaded so far. */
sdc_status sdc_weights_end(sdc_weight_set *ws);
/* The same without waiting for the set's uploads (on a backend with asynchronous copies): the caller
 * makes compute wait for them (sdc_backend_copy_event / sdc_backend_compute_wait) before their first use. */
sdc_status sdc_weights_end_async(sdc_weight_set *ws);
/* Frees every tensor of the set. */
void sdc_weights_free(sdc_weight_set *ws);

#endif
