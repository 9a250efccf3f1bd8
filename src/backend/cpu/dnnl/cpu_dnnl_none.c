/* cpu_dnnl_none.c - stands in for cpu_dnnl.c in a build without oneDNN: the plain bf16 kernel runs. */
#include <stdio.h>

#include "backend/cpu/dnnl/cpu_dnnl.h"

sdc_cpu_dnnl *sdc_cpu_dnnl_new(int n_threads, char *why, size_t why_size) {
    (void)n_threads;
    snprintf(why, why_size, "not in this build (CMake found no libdnnl-dev)");
    return NULL;
}
void sdc_cpu_dnnl_free(sdc_cpu_dnnl *d) { (void)d; }
const char *sdc_cpu_dnnl_impl(const sdc_cpu_dnnl *d) {
    (void)d;
    return "none";
}
int sdc_cpu_dnnl_gemm(sdc_cpu_dnnl *d, int thread, int trans_b, int64_t M, int64_t N, int64_t K, const void *A,
                      int64_t lda, const void *B, int64_t ldb, int accumulate, float *C, int64_t ldc) {
    (void)d, (void)thread, (void)trans_b, (void)M, (void)N, (void)K, (void)A, (void)lda, (void)B, (void)ldb,
        (void)accumulate, (void)C, (void)ldc;
    return -1; /* unreachable: sdc_cpu_dnnl_new made no kernel */
}
