/* cpu_dnnl.c - oneDNN's matmul on bf16 operands with f32 output (cpu_dnnl.h). One primitive per tile
 * shape: oneDNN keeps made primitives in its own cache, so a shape's later calls only look it up. A call
 * runs on the calling thread: sdc's op regions set the task's thread count to 1, which oneDNN's OpenMP
 * build reads as its team size. Each thread of a team has its own stream (a oneDNN stream is not for
 * concurrent use). */
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/dnnl/cpu_dnnl.h"

struct sdc_cpu_dnnl {
    dnnl_engine_t engine;
    dnnl_primitive_attr_t attr[2]; /* [0]: C = A . B; [1]: C += A . B (a sum post-op) */
    int n_streams;
    dnnl_stream_t *streams; /* [n_streams]: one per thread of a team */
    char impl[64];
};

/* The primitive for one tile shape, NULL on failure. */
static dnnl_primitive_t make(sdc_cpu_dnnl *d, int trans_b, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb,
                             int64_t ldc, int accumulate, dnnl_memory_desc_t md[3], char *impl, size_t impl_size) {
    const dnnl_dims_t a_dims = {M, K}, a_str = {lda, 1}, b_dims = {K, N}, c_dims = {M, N}, c_str = {ldc, 1};
    const dnnl_dims_t b_str = {trans_b ? 1 : ldb, trans_b ? ldb : 1};
    dnnl_matmul_desc_t desc;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t p = NULL;
    if (dnnl_memory_desc_init_by_strides(&md[0], 2, a_dims, dnnl_bf16, a_str) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(&md[1], 2, b_dims, dnnl_bf16, b_str) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(&md[2], 2, c_dims, dnnl_f32, c_str) != dnnl_success ||
        dnnl_matmul_desc_init(&desc, &md[0], &md[1], NULL, &md[2]) != dnnl_success ||
        dnnl_primitive_desc_create(&pd, &desc, d->attr[accumulate], d->engine, NULL) != dnnl_success)
        return NULL;
    const char *name = NULL;
    if (impl && dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) == dnnl_success && name)
        snprintf(impl, impl_size, "%s", name);
    if (dnnl_primitive_create(&p, pd) != dnnl_success) p = NULL;
    dnnl_primitive_desc_destroy(pd);
    return p;
}

sdc_cpu_dnnl *sdc_cpu_dnnl_new(int n_threads, char *why, size_t why_size) {
    sdc_cpu_dnnl *d = calloc(1, sizeof *d);
    dnnl_post_ops_t sum = NULL;
    const char *fail = "out of memory";
    if (!d || !(d->streams = calloc((size_t)n_threads, sizeof *d->streams))) goto fail;
    fail = "no CPU engine";
    if (dnnl_engine_create(&d->engine, dnnl_cpu, 0) != dnnl_success) goto fail;
    fail = "no primitive attributes";
    if (dnnl_primitive_attr_create(&d->attr[0]) != dnnl_success ||
        dnnl_primitive_attr_create(&d->attr[1]) != dnnl_success || dnnl_post_ops_create(&sum) != dnnl_success ||
        dnnl_post_ops_append_sum(sum, 1.0f) != dnnl_success ||
        dnnl_primitive_attr_set_post_ops(d->attr[1], sum) != dnnl_success)
        goto fail;
    for (d->n_streams = 0; d->n_streams < n_threads; d->n_streams++) {
        fail = "no stream";
        if (dnnl_stream_create(&d->streams[d->n_streams], d->engine, dnnl_stream_default_flags) != dnnl_success)
            goto fail;
    }
    /* a typical tile: which implementation this CPU gets */
    dnnl_memory_desc_t md[3];
    dnnl_primitive_t probe = make(d, 1, 256, 256, 448, 448, 448, 256, 0, md, d->impl, sizeof d->impl);
    fail = "no bf16 matmul";
    if (!probe) goto fail;
    dnnl_primitive_destroy(probe);
    if (!strstr(d->impl, "bf16") && !strstr(d->impl, "amx")) {
        snprintf(why, why_size, "its bf16 matmul here is %s, not native bf16 code", d->impl);
        dnnl_post_ops_destroy(sum);
        sdc_cpu_dnnl_free(d);
        return NULL;
    }
    dnnl_post_ops_destroy(sum);
    return d;
fail:
    snprintf(why, why_size, "%s", fail);
    if (sum) dnnl_post_ops_destroy(sum);
    sdc_cpu_dnnl_free(d);
    return NULL;
}

void sdc_cpu_dnnl_free(sdc_cpu_dnnl *d) {
    if (!d) return;
    for (int i = 0; i < d->n_streams; i++) dnnl_stream_destroy(d->streams[i]);
    free(d->streams);
    for (int i = 0; i < 2; i++)
        if (d->attr[i]) dnnl_primitive_attr_destroy(d->attr[i]);
    if (d->engine) dnnl_engine_destroy(d->engine);
    free(d);
}

const char *sdc_cpu_dnnl_impl(const sdc_cpu_dnnl *d) { return d->impl; }

int sdc_cpu_dnnl_gemm(sdc_cpu_dnnl *d, int thread, int trans_b, int64_t M, int64_t N, int64_t K, const void *A,
                      int64_t lda, const void *B, int64_t ldb, int accumulate, float *C, int64_t ldc) {
    dnnl_memory_desc_t md[3];
    dnnl_primitive_t p = make(d, trans_b, M, N, K, lda, ldb, ldc, accumulate, md, NULL, 0);
    if (!p) return -1;
    dnnl_memory_t mem[3] = {NULL, NULL, NULL};
    int rc = 0;
    void *const ptr[3] = {(void *)A, (void *)B, C};
    for (int i = 0; i < 3 && rc == 0; i++)
        if (dnnl_memory_create(&mem[i], &md[i], d->engine, ptr[i]) != dnnl_success) rc = -1;
    if (rc == 0) {
        const dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, mem[0]}, {DNNL_ARG_WEIGHTS, mem[1]}, {DNNL_ARG_DST, mem[2]}};
        dnnl_stream_t s = d->streams[thread];
        if (dnnl_primitive_execute(p, s, 3, args) != dnnl_success || dnnl_stream_wait(s) != dnnl_success) rc = -1;
    }
    for (int i = 0; i < 3; i++)
        if (mem[i]) dnnl_memory_destroy(mem[i]);
    dnnl_primitive_destroy(p);
    return rc;
}
