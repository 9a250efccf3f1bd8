/* rates.c - a backend's upload and linear rates, timed once per process for the reports (see backend.h).
 *
 * Only the plan table and the run report read them: no schedule, window or kernel depends on them, so
 * results never depend on timing. Measuring borrows memory from the backend for a moment (64 MiB and three
 * square matrices, counted as workspace, within mem_limit), runs with the backend's logger silenced, its
 * profile and failure injection set aside, and any status it meets cleared (a failure only leaves the
 * rates unmeasured). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "core/sysmem.h"

#define H2D_BYTES ((size_t)64 << 20)
#define GEMM_MIN 256
#define GEMM_MAX 4096
#define TIME_MIN 0.02 /* seconds a timing runs at least (reps double until it does) */

/* host -> device: a warm-up upload, then two timed, from page-locked memory where the backend has it.
 * 0 when no memory could be had. */
static double time_h2d(sdc_backend *be) {
    int pinned = 0;
    void *host = sdc_backend_pinned_alloc(be, H2D_BYTES, &pinned);
    sdc_tensor *dst = host ? sdc_tensor_new(be, SDC_MEM_WORKSPACE, SDC_DTYPE_F32, 1, (int64_t[]){H2D_BYTES / 4}) : NULL;
    double rate = 0;
    if (dst) {
        memset(host, 0x3c, H2D_BYTES); /* touched: no page faults inside the timing */
        sdc_backend_upload_async(be, dst->data, host, H2D_BYTES);
        sdc_backend_sync(be);
        const double t0 = sdc_now();
        for (int r = 0; r < 2; r++) sdc_backend_upload_async(be, dst->data, host, H2D_BYTES);
        const sdc_status st = sdc_backend_sync(be);
        const double dt = sdc_now() - t0;
        if (st == SDC_OK && dt > 0) rate = 2.0 * (double)H2D_BYTES / dt;
    }
    sdc_tensor_free(dst);
    sdc_backend_pinned_free(be, host, pinned);
    return rate;
}

/* y[n, n] = x[n, n] w[n, n]^T with x, w uniform in [-1, 1); 0 on failure. */
static int gemm_operands(sdc_backend *be, sdc_prec prec, int n, sdc_tensor *t[3]) {
    const sdc_dtype act = sdc_backend_act_dtype(be, prec);
    const sdc_dtype wdt = sdc_backend_weight_dtype(be, sdc_prec_bf16(prec) ? SDC_DTYPE_BF16 : SDC_DTYPE_F16, prec, 1);
    const int64_t ne[2] = {n, n};
    t[0] = sdc_tensor_new(be, SDC_MEM_WORKSPACE, act, 2, ne); /* x [n, n] */
    t[1] = sdc_tensor_new(be, SDC_MEM_WORKSPACE, wdt, 2, ne); /* w [n, n] */
    t[2] = sdc_tensor_new(be, SDC_MEM_WORKSPACE, act, 2, ne); /* y [n, n] */
    if (t[1]) t[1]->matmul_bf16 = sdc_prec_matmul_bf16(prec); /* as the loader marks a weight */
    float *v = malloc(sizeof(float) * (size_t)n * (size_t)n);
    int ok = t[0] && t[1] && t[2] && v;
    if (ok) {
        uint32_t s = 12345;
        for (size_t i = 0; i < (size_t)n * (size_t)n; i++) {
            s = s * 1664525u + 1013904223u;
            v[i] = (float)(s >> 8) / 8388608.0f - 1.0f;
        }
        ok = sdc_tensor_set_f32(t[0], v) == SDC_OK && sdc_tensor_set_f32(t[1], v) == SDC_OK;
    }
    free(v);
    return ok;
}

/* FLOPs per second of a square linear, growing n from GEMM_MIN until one takes TIME_MIN, then (at
 * GEMM_MAX) repeating it; *n_out: the n timed. 0 on failure. */
static double time_gemm(sdc_backend *be, sdc_prec prec, int *n_out) {
    double rate = 0;
    for (int n = GEMM_MIN, reps = 1; n <= GEMM_MAX && !rate;) {
        sdc_tensor *t[3] = {0};
        /* a warm-up call first: the backend's first product of a shape pays its one-time costs (CUDA: the
         * library's handle and kernel loading, ~0.07 s), which made the rate 100x too low (H100: 0.5 GFLOP/s) */
        if (!gemm_operands(be, prec, n, t)) {
            n = GEMM_MAX + 1;
        } else {
            sdc_linear(t[2], t[0], t[1], NULL);
            if (sdc_backend_sync(be) != SDC_OK) n = GEMM_MAX + 1;
        }
        while (n <= GEMM_MAX && !rate) {
            const double t0 = sdc_now();
            for (int r = 0; r < reps; r++) sdc_linear(t[2], t[0], t[1], NULL);
            if (sdc_backend_sync(be) != SDC_OK) break;
            const double dt = sdc_now() - t0;
            if (dt >= TIME_MIN || reps >= 4096) {
                rate = 2.0 * (double)n * (double)n * (double)n * reps / dt;
                *n_out = n;
            } else if (n < GEMM_MAX) {
                n *= 2; /* larger operands: new tensors */
                break;
            } else {
                reps *= 2;
            }
        }
        for (int i = 0; i < 3; i++) sdc_tensor_free(t[i]);
        if (sdc_backend_status(be) != SDC_OK) break;
    }
    return rate;
}

static sdc_backend_rates measure(sdc_backend *be, sdc_prec prec) {
    sdc_backend_rates r = {0};
    const sdc_logger log = be->log;
    sdc_op_profile *profile = be->profile;
    const sdc_fail_inject fail = be->fail;
    be->log.fn = NULL; /* a refused allocation is an unmeasured rate, not an error of the job */
    be->profile = NULL;
    memset(&be->fail, 0, sizeof be->fail);
    r.h2d_bytes_per_s = time_h2d(be);
    if (sdc_backend_status(be) == SDC_OK) r.flops_per_s = time_gemm(be, prec, &r.gemm_n);
    r.dtype = sdc_backend_act_dtype(be, prec);
    r.measured = r.h2d_bytes_per_s > 0 && r.flops_per_s > 0 && sdc_backend_status(be) == SDC_OK;
    if (!r.measured) r.h2d_bytes_per_s = r.flops_per_s = 0;
    sdc_backend_clear_status(be);
    sdc_backend_trim(be); /* the borrowed memory goes back */
    be->log = log;
    be->profile = profile;
    be->fail = fail;
    return r;
}

/* The process's measurements: one per backend kind, thread count and compute dtype. */
typedef struct rates_entry {
    const char *name; /* the backend's iface name */
    int n_threads;
    sdc_dtype dtype;
    sdc_backend_rates r;
} rates_entry;
static rates_entry cache[8];
static int n_cached;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

sdc_backend_rates sdc_backend_rates_get(sdc_backend *be, sdc_prec prec) {
    const sdc_dtype dt = sdc_backend_act_dtype(be, prec);
    pthread_mutex_lock(&cache_lock);
    for (int i = 0; i < n_cached; i++)
        if (cache[i].name == be->iface->name && cache[i].n_threads == be->n_threads && cache[i].dtype == dt) {
            const sdc_backend_rates r = cache[i].r;
            pthread_mutex_unlock(&cache_lock);
            return r;
        }
    pthread_mutex_unlock(&cache_lock);
    sdc_backend_rates r = sdc_backend_status(be) == SDC_OK ? measure(be, prec) : (sdc_backend_rates){0};
    pthread_mutex_lock(&cache_lock);
    if (r.measured && n_cached < (int)(sizeof cache / sizeof cache[0]))
        cache[n_cached++] = (rates_entry){be->iface->name, be->n_threads, dt, r};
    pthread_mutex_unlock(&cache_lock);
    return r;
}
