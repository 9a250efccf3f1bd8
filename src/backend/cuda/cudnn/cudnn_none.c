/* cudnn_none.c - the build found no cuDNN: every convolution runs as im2col + cuBLAS (cuda_conv.cu).
 * The interface is cudnn_conv.c's (cuda_internal.h). */
#include <stdint.h>
#include <stdio.h>

#include "backend/cuda/cuda_internal.h"

sdc_cuda_cudnn *sdc_cuda_cudnn_new(cudaStream_t stream, char *version, size_t version_size) {
    (void)stream;
    snprintf(version, version_size, "no cuDNN (not found at build time)");
    return NULL;
}

void sdc_cuda_cudnn_free(sdc_cuda_cudnn *c) { (void)c; }

size_t sdc_cuda_cudnn_conv_workspace(sdc_backend *be, const sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                                     int stride, int pad) {
    return SIZE_MAX;
}

int sdc_cuda_cudnn_conv2d(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const void *w_data, const sdc_tensor *w,
                          float beta, int stride, int pad) {
    return 0;
}
