/* test_weights.c - weight loading through a backend's staging slots (as the CUDA backend loads) gives
 * exactly the bytes of the direct path, for same-dtype and converting loads, with tensors split across
 * many small staging buffers; and so do two loads through a host image (the host tier's) that keeps the
 * converted copies (the second uploads them). Runs on the CPU: the staging slots are plain host memory. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "io/model_files.h"
#include "model/host_image.h"
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
    /* through a host image (the host tier's, filled by several readers) keeping converted copies: the first
     * load fills them, the second uploads them; both give the direct path's bytes */
    const sdc_tensor_info **infos = calloc(sdc_index_count(mf->index) + 1, sizeof *infos);
    int k = 0;
    for (size_t i = 0; infos && i < sdc_index_count(mf->index); i++)
        if (!strncmp(sdc_index_at(mf->index, i)->name, "unet.", 5)) infos[k++] = sdc_index_at(mf->index, i);
    sdc_host_image *img = infos ? sdc_host_image_new(staged, infos, k, SIZE_MAX) : NULL;
    if (img) img->readers = SDC_HOST_IMAGE_MAX_READERS; /* a big image's: threads take tensors in turn */
    test_check(img && sdc_host_image_fill(img, mf->index, NULL) == SDC_OK &&
                   sdc_host_image_keep_converted(img, (size_t)64 << 20),
               "%s: host image", label);
    for (int round = 0; img && round < 2; round++) {
        const int uploads0 = n_uploads;
        const size_t served0 = atomic_load(&img->served_bytes);
        size_t file_bytes = 0;
        for (int i = 0; i < k; i++) file_bytes += (size_t)infos[i]->nbytes;
        sdc_weight_set c;
        sdc_weights_begin(&c, &(sdc_weight_source){mf->index, "unet.", staged, test_logger(), 0, 0, img, 0}, NULL);
        int ok = 0;
        for (int i = 0; i < a.n; i++) {
            const sdc_tensor *ta = a.tensors[i];
            sdc_tensor *tc = sdc_weights_get(&c, ta->ndim, ta->ne, "%s", infos[i]->name + 5);
            ok += tc && tc->nbytes == ta->nbytes && !memcmp(tc->data, ta->data, ta->nbytes);
        }
        test_check(sdc_weights_end(&c) == SDC_OK && ok == a.n && c.bytes_read == 0 && c.bytes_host > 0,
                   "%s: load %d from the host image: %d of %d tensors identical, %llu file bytes read, %llu from "
                   "the image, converted copies %zu bytes",
                   label, round + 1, ok, a.n, (unsigned long long)c.bytes_read, (unsigned long long)c.bytes_host,
                   img->conv_used);
        test_check(c.bytes_host == file_bytes && atomic_load(&img->served_bytes) - served0 == file_bytes,
                   "%s: load %d: every file byte counted once as taken from the image (%llu, image %zu, files %zu)",
                   label, round + 1, (unsigned long long)c.bytes_host, atomic_load(&img->served_bytes) - served0,
                   file_bytes);
        if (round == 1)
            test_check(n_uploads == uploads0, "%s: load 2 converted nothing (%d staged uploads)", label,
                       n_uploads - uploads0);
        sdc_weights_free(&c);
    }
    sdc_host_image_free(img);
    free(infos);
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
