/* test_blas_threads.c - the CPU backend leaves the process's BLAS state alone (issue 14):
 *   - the caller sets OpenBLAS's thread count to 3 (and OpenMP's to 4) before any backend exists; while
 *     GEMM ops (a linear with a padded row tile, a 3x3 convolution, attention) run on 1- and 2-thread
 *     backends, a second thread polling openblas_get_num_threads() reads 3 every time, and so does the
 *     caller after;
 *   - the caller's OpenMP thread count (omp_get_max_threads(), which the OpenMP build of OpenBLAS
 *     follows) is the same before and after;
 *   - no thread beyond the backends' own OpenMP team is started (OpenBLAS spread no call);
 *   - the ops give the same bits on 2 threads as on 1 (each GEMM tile is a single-threaded call);
 *   - the OpenBLAS loaded is the OpenMP build the backend was built for. */
#include <cblas.h>
#include <dirent.h>
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "test_util.h"

/* The caller's counts, OpenBLAS's and OpenMP's unlike: OpenBLAS's OpenMP build sets its process-wide count
 * to omp_get_max_threads() at a call made outside an active region with that above 1, so a GEMM of the
 * backend made on a task with the caller's OpenMP count would turn 3 into 4. */
#define CALLER_THREADS 3
#define CALLER_OMP_THREADS 4

/* [M, K] . [N, K]^T with M not a multiple of the 256-row tile (the padded path); conv [1, 32, 24, 24] by
 * [48, 32, 3, 3]; attention [2, 256, 64] in 4 heads */
static const int64_t LX[2] = {300, 320}, LW[2] = {512, 320}, LY[2] = {300, 512};
static const int64_t CX[4] = {1, 32, 24, 24}, CW[4] = {48, 32, 3, 3}, CY[4] = {1, 48, 24, 24};
static const int64_t AQ[3] = {2, 256, 64};

enum {
    T_LX,
    T_LW,
    T_LY,
    T_CX,
    T_CW,
    T_CY,
    T_Q,
    T_K,
    T_V,
    T_AY,
    T_COUNT
};
static const int OUTS[3] = {T_LY, T_CY, T_AY};

typedef struct poll_state {
    atomic_int stop;
    long n_polls, n_other;   // polls, and polls that read a count other than CALLER_THREADS
    int other;               // the last such count
} poll_state;

static void *poll_blas(void *arg) {
    poll_state *p = arg;
    while (!atomic_load(&p->stop)) {
        int n = openblas_get_num_threads();
        p->n_polls++;
        if (n != CALLER_THREADS) {
            p->n_other++;
            p->other = n;
        }
    }
    return NULL;
}

/* The threads of this process now. */
static int process_threads(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static sdc_tensor *input(sdc_backend *be, sdc_mem_kind kind, int ndim, const int64_t *ne, uint64_t seed) {
    sdc_tensor *t = sdc_tensor_new(be, kind, SDC_DTYPE_F32, ndim, ne);
    size_t n = (size_t)sdc_tensor_nelem(t);
    float *h = malloc(n * sizeof(float));
    test_fill_normal(h, n, seed, 1.0f);
    sdc_tensor_set_f32(t, h);
    free(h);
    return t;
}

/* The three ops on a backend of n_threads, `reps` times; their outputs into out[3] (malloc'd). */
static void run_ops(int n_threads, int reps, float *out[3], size_t out_n[3]) {
    sdc_backend *be = sdc_backend_cpu_new(n_threads, test_logger());
    sdc_tensor *t[T_COUNT];
    t[T_LX] = input(be, SDC_MEM_ACTIVATIONS, 2, LX, 1);
    t[T_LW] = input(be, SDC_MEM_WEIGHTS, 2, LW, 2);
    t[T_LY] = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 2, LY);
    t[T_CX] = input(be, SDC_MEM_ACTIVATIONS, 4, CX, 3);
    t[T_CW] = input(be, SDC_MEM_WEIGHTS, 4, CW, 4);
    t[T_CY] = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 4, CY);
    t[T_Q] = input(be, SDC_MEM_ACTIVATIONS, 3, AQ, 5);
    t[T_K] = input(be, SDC_MEM_ACTIVATIONS, 3, AQ, 6);
    t[T_V] = input(be, SDC_MEM_ACTIVATIONS, 3, AQ, 7);
    t[T_AY] = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 3, AQ);
    for (int r = 0; r < reps; r++) {
        sdc_linear(t[T_LY], t[T_LX], t[T_LW], NULL);
        sdc_conv2d(t[T_CY], t[T_CX], t[T_CW], NULL, 1, 1);
        sdc_attention(t[T_AY], t[T_Q], t[T_K], t[T_V], 4, 0);
    }
    sdc_status st = sdc_backend_sync(be);
    test_check(st == SDC_OK, "%d thread(s): %d rounds of linear, conv2d, attention: status %s (want ok)", n_threads,
               reps, sdc_status_str(st));
    for (int i = 0; i < 3; i++) {
        out_n[i] = (size_t)sdc_tensor_nelem(t[OUTS[i]]);
        out[i] = malloc(out_n[i] * sizeof(float));
        sdc_tensor_get_f32(t[OUTS[i]], out[i]);
    }
    for (int i = 0; i < T_COUNT; i++) sdc_tensor_free(t[i]);
    sdc_backend_free(be);
}

int main(void) {
    openblas_set_num_threads(CALLER_THREADS);
    omp_set_num_threads(CALLER_OMP_THREADS);
    const int omp0 = omp_get_max_threads();
    const int par = openblas_get_parallel();
    test_check(par == OPENBLAS_OPENMP, "OpenBLAS build: parallel mode %d (want %d, OpenMP): %s", par, OPENBLAS_OPENMP,
               openblas_get_config());

    poll_state p = {0};
    pthread_t poller;
    if (pthread_create(&poller, NULL, poll_blas, &p) != 0) {
        test_check(0, "pthread_create of the polling thread");
        return test_finish();
    }
    float *one[3], *two[3];
    size_t n1[3], n2[3];
    const double t0 = test_now();
    run_ops(1, 3, one, n1);
    run_ops(2, 3, two, n2);
    const double secs = test_now() - t0;
    atomic_store(&p.stop, 1);
    pthread_join(poller, NULL);
    test_check(p.n_polls > 0 && p.n_other == 0,
               "a second thread read openblas_get_num_threads() %ld times in %.2f s of ops: %ld read other than %d "
               "(last %d) (bound: > 0 reads, 0 others)",
               p.n_polls, secs, p.n_other, CALLER_THREADS, p.other);
    const int after = openblas_get_num_threads(), omp1 = omp_get_max_threads();
    test_check(after == CALLER_THREADS, "caller's OpenBLAS threads after the ops: %d (bound: %d, as set)", after,
               CALLER_THREADS);
    test_check(omp1 == omp0, "caller's omp_get_max_threads() after the ops: %d (bound: %d, before)", omp1, omp0);
    const int n_os = process_threads();
    test_check(n_os >= 1 && n_os <= 2,
               "threads of the process after the ops: %d (bound 1 .. 2: the caller and the 2-thread team's second)",
               n_os);

    static const char *names[3] = {"linear [300, 320] x [512, 320]^T", "conv2d 3x3 [1, 32, 24, 24] -> 48",
                                   "attention [2, 256, 64], 4 heads"};
    for (int i = 0; i < 3; i++) {
        size_t diff = 0;
        for (size_t j = 0; j < n1[i]; j++) diff += memcmp(&one[i][j], &two[i][j], sizeof(float)) != 0;
        test_check(n1[i] == n2[i] && diff == 0, "%s: 2 threads vs 1: %zu of %zu elements differ in bits (bound 0)",
                   names[i], diff, n1[i]);
        free(one[i]);
        free(two[i]);
    }
    return test_finish();
}
