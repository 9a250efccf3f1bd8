/* test_weights.c - weight loading through a backend's staging slots (as the CUDA backend loads) gives
 * exactly the bytes of the direct path, for same-dtype and converting loads, with tensors split across
 * many small staging buffers. Runs on the CPU: the staging slots here are plain host memory. */
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "io/model_files.h"
#include "model/weights.h"
#include "test_util.h"

enum {
    STAGE = 4096,
    N_STAGE = 3
};
static unsigned char stage[N_STAGE][STAGE];
static int next_stage, n_uploads;

static size_t staging_size(sdc_backend *be) { return STAGE; }
static void *staging_acquire(sdc_backend *be, size_t nbytes) {
    return nbytes <= STAGE ? stage[next_stage++ % N_STAGE] : NULL;
}
static void staging_upload(sdc_backend *be, void *dst, const void *src, size_t nbytes) {
    be->iface->upload(be, dst, src, nbytes);
    n_uploads++;
}
static void staging_flush(sdc_backend *be) {}

static void compare(sdc_weight_variant variant, const char *label) {
    sdc_model_files *mf = NULL;
    if (!test_check(sdc_model_files_open(test_ref_path("tiny-sd1"), variant, test_logger(), &mf) == SDC_OK &&
                        sdc_model_files_use_all(mf, test_logger()) == SDC_OK,
                    "open %s", label)) {
        sdc_model_files_free(mf);
        return;
    }
    sdc_backend *plain = sdc_backend_cpu_new(1, test_logger());
    sdc_backend *staged = sdc_backend_cpu_new(1, test_logger());
    struct sdc_backend_i iface = *staged->iface; /* the CPU backend plus staging slots */
    iface.staging_size = staging_size;
    iface.staging_acquire = staging_acquire;
    iface.staging_upload = staging_upload;
    iface.staging_flush = staging_flush;
    const struct sdc_backend_i *orig = staged->iface;
    staged->iface = &iface;
    sdc_weight_set a, b;
    sdc_weights_begin(&a, &(sdc_weight_source){mf->index, "unet.", plain, test_logger(), 0, 0, NULL, 0}, NULL);
    sdc_weights_begin(&b, &(sdc_weight_source){mf->index, "unet.", staged, test_logger(), 0, 0, NULL, 0}, NULL);
    int n = 0, same = 0;
    n_uploads = 0;
    for (size_t i = 0; i < sdc_index_count(mf->index); i++) {
        const sdc_tensor_info *info = sdc_index_at(mf->index, i);
        if (strncmp(info->name, "unet.", 5)) continue;
        sdc_tensor *ta = sdc_weights_get(&a, info->ndim, info->ne, "%s", info->name + 5);
        sdc_tensor *tb = sdc_weights_get(&b, info->ndim, info->ne, "%s", info->name + 5);
        n++;
        same += ta && tb && ta->nbytes == tb->nbytes && !memcmp(ta->data, tb->data, ta->nbytes);
    }
    test_check(sdc_weights_end(&a) == SDC_OK && sdc_weights_end(&b) == SDC_OK, "%s: both loads succeed", label);
    test_check(n > 0 && same == n, "%s: %d of %d tensors identical through %d staged uploads of <= %d bytes", label,
               same, n, n_uploads, STAGE);
    test_check(n_uploads > n, "%s: big tensors were split across staging buffers", label);
    sdc_weights_free(&a);
    sdc_weights_free(&b);
    staged->iface = orig;
    sdc_backend_free(plain);
    sdc_backend_free(staged);
    sdc_model_files_free(mf);
}

int main(void) {
    compare(SDC_VARIANT_F32, "f32 file (same dtype)");
    compare(SDC_VARIANT_FP16, "fp16 file (converted to f32)");
    return test_finish();
}
