/* host_image.h - one component's weight bytes in host memory: what the loader takes instead of the file.
 *
 * An image holds, for some of a component's index tensors, exactly the bytes sdc_index_read_raw returns
 * (canonical layout, the file's dtype), in one block of host memory, page-locked where the backend can
 * (so a weight whose device dtype is the file's uploads straight from it, without a staging copy). The
 * loader (model/weights.h) asks the image first and reads the file only for what it lacks; it converts
 * an image's bytes exactly as a file's, so a load from an image gives bit-identical weights.
 *
 *   sdc_host_image *img = sdc_host_image_new(be, infos, n, cap);   // layout only, no memory yet
 *   sdc_host_image_fill(img, index, &stop);                        // memory, then tensor after tensor
 *   ... loads through a weight source whose .host is img ...
 *   sdc_host_image_free(img);
 *
 * The tensors are laid out in the order given until cap bytes are used; the rest stay on disk. Filling
 * may run in another thread (the prefetcher) while the main thread computes; the main thread reads an
 * image only after that thread was joined, or one that no thread fills. */
#ifndef SDC_MODEL_HOST_IMAGE_H
#define SDC_MODEL_HOST_IMAGE_H

#include <stdatomic.h>

#include "backend/backend.h"
#include "io/model_index.h"

#define SDC_HOST_IMAGE_MAX_READERS 4

typedef struct sdc_host_entry {
    const sdc_tensor_info *info;
    uint64_t off; /* in base; UINT64_MAX: not in the image (past cap) */
    atomic_int ready;
    /* the tensor as the backend last stored it when that took a conversion (e.g. bf16 -> f16), in conv:
     * a later load uploads these bytes instead of converting again; conv_off UINT64_MAX: none */
    uint64_t conv_off;
    sdc_dtype conv_dtype;
    int conv_ready;
} sdc_host_entry;

typedef struct sdc_host_image {
    sdc_backend *be;
    sdc_host_entry *entry; /* [n], sorted by info address (lookups; filled in that order) */
    int n;
    size_t bytes; /* of the tensors that fit: the block's size */
    int whole;    /* every tensor fits */
    char *base;   /* NULL until the first fill (or a block handed in: sdc_host_image_adopt) */
    size_t block; /* base's size (>= bytes) */
    int pinned;   /* base is page-locked */
    int filled;   /* every tensor that fits is ready */
    char *conv;   /* converted copies (sdc_host_image_keep_converted), NULL: none kept */
    size_t conv_size, conv_used;
    int conv_pinned;
    int readers; /* threads a fill reads with, taking tensors in turn (which one reads a tensor changes
                  * nothing but when its bytes arrive) */
    atomic_size_t ready_bytes;
    atomic_size_t served_bytes; /* handed to loads */
    double fill_seconds;        /* spent filling (the host tier resets it as each load begins) */
} sdc_host_image;

/* An image of infos[0..n) (copied), holding at most cap bytes of them. NULL when out of host memory. */
sdc_host_image *sdc_host_image_new(sdc_backend *be, const sdc_tensor_info *const *infos, int n, size_t cap);
void sdc_host_image_free(sdc_host_image *img); /* NULL is harmless */
/* Allocates the block if needed and reads every tensor that fits and is not ready yet, in order, until
 * done or *stop (when non-NULL) becomes nonzero. A read that fails leaves its tensor to the file (the
 * loader then reports the failure). SDC_OK, or SDC_ERR_OOM when no host memory could be had. */
sdc_status sdc_host_image_fill(sdc_host_image *img, sdc_model_index *idx, const atomic_int *stop);
/* Keeps up to `bytes` of converted copies from now on (a block of page-locked memory where the backend
 * can). 0 when the memory could not be had (nothing is kept then). */
int sdc_host_image_keep_converted(sdc_host_image *img, size_t bytes);
/* Where the loader writes the tensor converted to dtype (nbytes) for later loads, or NULL (not kept, no
 * room, or already there); sdc_host_image_conv_done marks it whole once the load succeeded. */
void *sdc_host_image_conv_slot(sdc_host_image *img, const sdc_tensor_info *info, sdc_dtype dtype, size_t nbytes);
void sdc_host_image_conv_done(sdc_host_image *img, const sdc_tensor_info *info);
/* The tensor converted to dtype when kept (counted as served), else NULL. img may be NULL. */
const void *sdc_host_image_take_converted(sdc_host_image *img, const sdc_tensor_info *info, sdc_dtype dtype);
/* Hands the image a block of host memory (pinned_alloc'd when pinned) of size >= img->bytes, before its
 * first fill; the image owns it from then on. */
void sdc_host_image_adopt(sdc_host_image *img, void *base, size_t size, int pinned);
/* Takes the image's block back out of it (for reuse by another image; NULL when it has none). */
void *sdc_host_image_take_block(sdc_host_image *img, size_t *size, int *pinned);
/* The tensor's bytes when the image holds them (counted as served), else NULL. img may be NULL. */
const void *sdc_host_image_take(sdc_host_image *img, const sdc_tensor_info *info);

#endif
