/* cpu_gemm.c - the CPU backend's single BLAS entry point, GEMMs of a weight (in its storage dtype,
 * widened per tile) split in fixed tiles over the backend's OpenMP team, and the linear op built on
 * them. */
#include <cblas.h>
#include <limits.h>
#include <omp.h>
#include <string.h>

#include "backend/cpu/cpu_backend.h"
#include "core/quant.h"

/* Tiles of C (SDC_CPU_GEMM_TILE_M x _N, cpu_backend.h): one thread computes one with one single-threaded
 * sgemm call. Fixed sizes: the split of the work, and so every output bit, is the same for any thread
 * count. (Measured on 16 cores: one OpenMP team with 1-thread BLAS tiles matches OpenBLAS's own
 * threading up to 8 threads and avoids its collapse at 16, where OpenBLAS's spinning workers and the
 * OpenMP team oversubscribe.) */
#define GEMM_TILE_M SDC_CPU_GEMM_TILE_M
#define GEMM_TILE_N SDC_CPU_GEMM_TILE_N

/* OpenBLAS 0.3.21 has one process-wide thread count (openblas_set_num_threads) and no per-call or
 * per-thread one; sdc never sets it. sdc links OpenBLAS's OpenMP build, where a call runs on the calling
 * thread alone when that thread is in an active OpenMP parallel region or its task's
 * omp_get_max_threads() is 1; a call otherwise sets the process-wide count to omp_get_max_threads() and
 * spreads over that many threads. So every sdc BLAS call is made from a thread of the op's own region,
 * whose task's thread count this sets to 1: an ICV of that task's data environment, gone with the region
 * (the caller's own count, and OpenBLAS's, stay as they were). Measured: test_blas_threads. */
void sdc_cpu_blas_one_thread(void) {
    assert(omp_get_level() > 0); /* inside the op's region, not on the caller's task */
    omp_set_num_threads(1);
}

int sdc_cpu_blas_check(const sdc_logger *log) {
    const int mode = openblas_get_parallel();
    if (mode == OPENBLAS_OPENMP || mode == OPENBLAS_SEQUENTIAL) return 0;
    SDC_LOGE(log,
             "sdc_backend_cpu_new: the OpenBLAS loaded is not its OpenMP build (parallel mode %d: %s); sdc was built "
             "for the OpenMP build, whose calls from sdc's threads stay on them without a process-wide setting. "
             "Another part of this process loaded libopenblas.so.0 first?",
             mode, openblas_get_config());
    return -1;
}

const char *sdc_cpu_blas_config(void) { return openblas_get_config(); }

void sdc_cpu_gemm(int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                  const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    assert(M >= 0 && N >= 0 && K >= 1);
    assert(omp_in_parallel() || omp_get_max_threads() == 1); /* OpenBLAS runs it on this thread alone */
    assert(M <= INT_MAX && N <= INT_MAX && K <= INT_MAX && lda <= INT_MAX && ldb <= INT_MAX && ldc <= INT_MAX);
    if (M == 0 || N == 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, alpha, A,
                (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

/* The widest span of whole blocks a chunk of K covers in a weight row of K elements in blocks of
 * `block`: the chunk, and up to a block less one on each side (a chunk need not start at a block). */
static int64_t wmat_span_max(int64_t R, int64_t K, int64_t block) {
    const int64_t span = sdc_cpu_k_chunk_max(R, K) + 2 * (block - 1);
    return span < K ? span : K;
}

static size_t wmat_slot_floats(int64_t R, int64_t tile_rows, int64_t K, int64_t block) {
    /* 64-byte slots: no two threads share a line */
    const int64_t rows = R < tile_rows ? R : tile_rows;
    return ((size_t)rows * (size_t)wmat_span_max(R, K, block) + 15) & ~(size_t)15;
}

/* Whether the weight's tiles are read in place: F32 for the f32 path. A bf16 product never does: oneDNN's
 * fast kernel takes dense tiles only (its strided form is a slower GEMM that allocates per call), so its
 * tiles are copied (BF16) or widened and rounded, rows a chunk apart; the plain kernel widens every weight
 * and rounds it unless it is BF16. */
static int wmat_in_place(sdc_dtype dt, const sdc_cpu_bf16 *k) { return !k && dt == SDC_DTYPE_F32; }

/* bf16: one thread's slot for the other operand's tile: up to SDC_CPU_GEMM_TILE_M (or _N) by a chunk of K,
 * in the kernel's format, 64-byte aligned */
static size_t ops_slot_bytes(const sdc_cpu_bf16 *k, int64_t R, int64_t K) {
    const int64_t tile = SDC_CPU_GEMM_TILE_M > SDC_CPU_GEMM_TILE_N ? SDC_CPU_GEMM_TILE_M : SDC_CPU_GEMM_TILE_N;
    return ((size_t)(tile * sdc_cpu_k_chunk_max(R, K)) * sdc_cpu_bf16_elem(k) + 63) & ~(size_t)63;
}

/* the bf16 kernel of a product with w, NULL for the f32 path (or with the sticky status set: no memory) */
static const sdc_cpu_bf16 *wmat_kernel(sdc_backend *be, const sdc_tensor *w) {
    return w->matmul_bf16 ? sdc_cpu_bf16_of(be) : NULL;
}

static size_t wmat_tile_bytes(sdc_dtype dt, const sdc_cpu_bf16 *k, int64_t R, int64_t K, int64_t tile_rows) {
    return wmat_in_place(dt, k) ? 0 : wmat_slot_floats(R, tile_rows, K, sdc_dtype_block(dt)) * sizeof(float);
}

size_t sdc_cpu_wmat_bytes(sdc_backend *be, const sdc_tensor *w, int64_t R, int64_t K, int64_t tile_rows,
                          int n_threads) {
    if (R == 0 || K == 0) return 0;
    const sdc_cpu_bf16 *k = wmat_kernel(be, w);
    const size_t slot = wmat_tile_bytes(w->dtype, k, R, K, tile_rows) + (k ? ops_slot_bytes(k, R, K) : 0);
    return (size_t)n_threads * slot;
}

int sdc_cpu_wmat_begin(sdc_backend *be, sdc_cpu_wmat *wm, const sdc_tensor *w, int64_t K, int64_t tile_rows,
                       int n_threads) {
    const int64_t R = w->ne[0];
    *wm = (sdc_cpu_wmat){.dtype = w->dtype,
                         .data = w->data,
                         .row_bytes = sdc_dtype_row_bytes(w->dtype, K),
                         .R = R,
                         .K = K,
                         .block = sdc_dtype_block(w->dtype),
                         .bf16 = wmat_kernel(be, w),
                         .be = be};
    if (w->matmul_bf16 && !wm->bf16) return -1; /* no memory for the kernel: the sticky status says so */
    const size_t tile_bytes = R && K ? wmat_tile_bytes(w->dtype, wm->bf16, R, K, tile_rows) : 0;
    wm->ops_slot = wm->bf16 && R && K ? ops_slot_bytes(wm->bf16, R, K) : 0;
    wm->scratch_bytes = (size_t)n_threads * (tile_bytes + wm->ops_slot);
    if (!wm->scratch_bytes) return 0;
    wm->scratch = SDC_CPU_SCRATCH(be, wm->scratch_bytes, "weight tiles widened to f32");
    if (!wm->scratch) return -1;
    wm->ops = wm->ops_slot ? (char *)wm->scratch + (size_t)n_threads * tile_bytes : NULL;
    if (!tile_bytes) return 0;
    wm->tiles = wm->scratch;
    wm->slot_floats = tile_bytes / sizeof(float);
    /* the one check of the dtype: every later piece of a row widens as this first block did */
    if (wm->row_bytes == 0 || sdc_dequant_row(w->dtype, wm->data, wm->tiles, wm->block) != 0) {
        SDC_BACKEND_FAIL(be, SDC_ERR_UNSUPPORTED, "sdc_dequant_row", "cannot widen %s weight rows of %lld",
                         sdc_dtype_name(w->dtype), (long long)K);
        sdc_cpu_wmat_end(be, wm);
        return -1;
    }
    return 0;
}

void sdc_cpu_wmat_end(sdc_backend *be, sdc_cpu_wmat *wm) {
    sdc_cpu_scratch_free(be, wm->scratch, wm->scratch_bytes);
    wm->scratch = NULL;
    wm->tiles = NULL;
    wm->ops = NULL;
}

/* Weight rows [r0, r0 + n), columns [k0, k0 + kc), in the product's format (f32, or the bf16 kernel's): in
 * place (rows K apart); or widened into buf (the whole blocks around the columns, rows *ld apart) and, for
 * the plain bf16 kernel, rounded there; or for a kernel that takes bf16, dense: rows kc apart in buf
 * (copied from a BF16 weight, else widened, then each row's chunk rounded to the front of buf: in place,
 * front to back, no element written before it is read). Returns where column k0 of row r0 is. */
static const void *wmat_rows(const sdc_cpu_wmat *w, int64_t r0, int64_t n, int64_t k0, int64_t kc, float *buf,
                             int64_t *ld) {
    const char *src = w->data + (size_t)r0 * w->row_bytes;
    if (!buf) {
        *ld = w->K;
        return src + (size_t)k0 * sdc_dtype_size(w->dtype);
    }
    const int dense16 = w->bf16 && sdc_cpu_bf16_elem(w->bf16) == sizeof(uint16_t);
    uint16_t *d16 = (uint16_t *)buf;
    if (dense16 && w->dtype == SDC_DTYPE_BF16) {
        for (int64_t r = 0; r < n; r++)
            memcpy(d16 + r * kc, src + (size_t)r * w->row_bytes + (size_t)k0 * sizeof(uint16_t),
                   (size_t)kc * sizeof(uint16_t));
        *ld = kc;
        return d16;
    }
    const int64_t b0 = k0 / w->block * w->block, b1 = (k0 + kc + w->block - 1) / w->block * w->block;
    const size_t off = sdc_dtype_row_bytes(w->dtype, b0);
    *ld = b1 - b0;
    for (int64_t r = 0; r < n; r++) {
        int rc = sdc_dequant_row(w->dtype, src + (size_t)r * w->row_bytes + off, buf + r * *ld, *ld);
        assert(rc == 0); /* checked for this dtype by sdc_cpu_wmat_begin */
        (void)rc;
    }
    if (!w->bf16) return buf + (k0 - b0);
    if (!dense16) {
        if (w->dtype != SDC_DTYPE_BF16) sdc_cpu_bf16_round(w->bf16, buf, n, *ld, *ld, buf); /* in place */
        return buf + (k0 - b0);
    }
    for (int64_t r = 0; r < n; r++) sdc_cpu_bf16_round(w->bf16, buf + r * *ld + (k0 - b0), 1, kc, kc, d16 + r * kc);
    *ld = kc;
    return d16;
}

/* c[m, n] (+)= the tile's product, rows ldc apart: left, w[m, kc] . X[kc, n]; else X[m, kc] . w[n, kc]^T;
 * X's rows ldx apart. The f32 path is one sgemm call; at bf16, X's part is rounded into this thread's ops
 * slot and the bf16 kernel multiplies. */
static void tile_product(const sdc_cpu_wmat *w, int left, int64_t m, int64_t n, int64_t kc, const void *wt, int64_t ldw,
                         const float *xp, int64_t ldx, float beta, float *c, int64_t ldc) {
    if (!w->bf16) {
        if (left)
            sdc_cpu_gemm(0, m, n, kc, 1.0f, wt, ldw, xp, ldx, beta, c, ldc);
        else
            sdc_cpu_gemm(1, m, n, kc, 1.0f, xp, ldx, wt, ldw, beta, c, ldc);
        return;
    }
    char *xb = w->ops + (size_t)omp_get_thread_num() * w->ops_slot;
    int rc;
    if (left) {   // X [kc, n]
        sdc_cpu_bf16_round(w->bf16, xp, kc, n, ldx, xb);
        rc = sdc_cpu_bf16_gemm(w->bf16, 0, m, n, kc, wt, ldw, xb, n, beta, c, ldc);
    } else {   // X [m, kc]
        sdc_cpu_bf16_round(w->bf16, xp, m, kc, ldx, xb);
        rc = sdc_cpu_bf16_gemm(w->bf16, 1, m, n, kc, xb, kc, wt, ldw, beta, c, ldc);
    }
    if (rc != 0) {
#pragma omp critical(sdc_cpu_bf16_fail)
        SDC_BACKEND_FAIL(w->be, SDC_ERR_OOM, "sdc_cpu_bf16_gemm", "the bf16 kernel failed on a %lld x %lld x %lld tile",
                         (long long)m, (long long)n, (long long)kc);
    }
}

/* A linear's last partial tile of rows is computed padded with zero rows (sdc_cpu_gemm_x's pad_x,
 * pad_c), so every sgemm call a linear makes has exactly GEMM_TILE_M rows. OpenBLAS 0.3.21 (SkylakeX)
 * computes a call of few rows with its small-matrix kernel, which rounds differently, and chooses it by
 * the call's M: without the padding a row's bits would depend on how many rows share the op, and so an
 * image's on the images batched beside it (test_batch). Within calls of one shape a row's bits do not
 * depend on its place (measured: 0 of 11115 row blocks differ; 4808 of 11500 differed with calls of the
 * rows' own count). 256 rows, not fewer: 64-row calls were 1.2-1.3x slower on SD 1.5's K = 320 linears.
 * A convolution needs no padding: its weight is the left operand, whose tiles of rows are the layer's,
 * and its right operand is one image's band, whose columns do not depend on the batch either. */
static int64_t pad_tile_n(int64_t N) { return N < GEMM_TILE_N ? N : GEMM_TILE_N; }

size_t sdc_cpu_gemm_pad_bytes(int64_t M, int64_t N, int64_t K, int n_threads) {
    if (M == 0 || N == 0 || M % GEMM_TILE_M == 0) return 0;
    return sizeof(float) * (size_t)(GEMM_TILE_M * K + (int64_t)n_threads * GEMM_TILE_M * pad_tile_n(N));
}

void sdc_cpu_gemm_tiles(sdc_cpu_wside side, int64_t M, int64_t N, int64_t k0, int64_t k1, const sdc_cpu_wmat *w,
                        const sdc_cpu_gemm_x *x, const float *bias, float *C, int64_t ldc) {
    const int left = side == SDC_CPU_W_LEFT;
    const int64_t n_tm = (M + GEMM_TILE_M - 1) / GEMM_TILE_M, n_tn = (N + GEMM_TILE_N - 1) / GEMM_TILE_N;
    /* Work items: a weight tile tw with a run of the tiles of X (of all nb products) it multiplies. A
     * thread widens each chunk of the weight tile once per item, so a widened weight tile has one item
     * while there are enough for the team (>= 2 per thread), else the fewest parts that make enough; a
     * weight used in place has an item per tile of C. Only the split of the work depends on the team;
     * every tile of C is the same sgemm calls whoever computes it. */
    const int64_t n_tw = left ? n_tm : n_tn, n_tx = left ? n_tn : n_tm, n_x = x->nb * n_tx;
    assert(!x->pad_x == !x->pad_c && (!x->pad_x || (!left && x->nb == 1)));
    assert(k0 >= 0 && k0 < k1 && k1 <= w->K);
    sdc_cpu_blas_one_thread();
    float *pad_c = x->pad_c ? x->pad_c + (size_t)omp_get_thread_num() * GEMM_TILE_M * pad_tile_n(N) : NULL;
    const int64_t want = 2 * (int64_t)omp_get_num_threads();
    int64_t parts = w->tiles ? (want + n_tw - 1) / n_tw : n_x; /* in place (F32): one tile per item */
    parts = parts < 1 ? 1 : parts > n_x ? n_x : parts;
    float *buf = w->tiles ? w->tiles + (size_t)omp_get_thread_num() * w->slot_floats : NULL;
    const int one_chunk = sdc_cpu_k_chunk(w->R, w->K, k0) == k1 - k0;
    /* the weight tile buf holds when it holds one whole (this thread's: the function runs on each) */
    int64_t have = -1, ldw = 0;
    const void *wt = NULL; /* w[r0 : r0+nr, kk : kk+kc] below, rows ldw apart, in the product's format */
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < n_tw * parts; item++) {
        const int64_t tw = item / parts, p = item % parts, ix0 = p * n_x / parts, ix1 = (p + 1) * n_x / parts;
        const int64_t r0 = tw * (left ? GEMM_TILE_M : GEMM_TILE_N);   // the weight rows of this item
        const int64_t nr = left ? (M - r0 < GEMM_TILE_M ? M - r0 : GEMM_TILE_M) : pad_tile_n(N - r0);
        for (int64_t kk = k0; kk < k1; kk += sdc_cpu_k_chunk(w->R, w->K, kk)) {   // chunks in K order
            const int64_t kc = sdc_cpu_k_chunk(w->R, w->K, kk);
            /* the tile's first chunk starts C from the bias (or zero); later ones add to it. One call over
             * all of K keeps beta 0 without a bias, the call it always was. */
            const int first = kk == 0, beta0 = first && !bias && kc == w->K;
            if (!buf || !one_chunk || have != tw) wt = wmat_rows(w, r0, nr, kk, kc, buf, &ldw);
            have = one_chunk ? tw : -1;
            for (int64_t ix = ix0; ix < ix1; ix++) {
                const int64_t b = ix / n_tx, tx = ix % n_tx;   // product b, its X tile tx
                const int64_t i0 = left ? r0 : tx * GEMM_TILE_M, j0 = left ? tx * GEMM_TILE_N : r0;
                const int64_t m = M - i0 < GEMM_TILE_M ? M - i0 : GEMM_TILE_M;
                const int64_t n = N - j0 < GEMM_TILE_N ? N - j0 : GEMM_TILE_N;
                const float *X = x->data + b * x->stride;   // K's kk is X's row / column kk - k0
                /* the last partial tile of rows of X, padded: its GEMM_TILE_M rows go to this thread's pad_c */
                const int pad = pad_c && m < GEMM_TILE_M;
                const int64_t rows = pad ? GEMM_TILE_M : m, ldc_t = pad ? pad_tile_n(N) : ldc;
                float *c = pad ? pad_c : C + b * x->c_stride + i0 * ldc + j0;   // [rows, n], rows ldc_t apart
                if (first && (bias || !beta0))   // start from the bias or zero: c = a . b + c
                    for (int64_t i = 0; i < rows; i++)
                        for (int64_t j = 0; j < n; j++)
                            c[i * ldc_t + j] = !bias ? 0.0f : left ? bias[i0 + i] : bias[j0 + j];
                const float beta = beta0 ? 0.0f : 1.0f;
                if (left)   // c = w[i0 : i0+m, kk : kk+kc] . X[kk : kk+kc, j0 : j0+n]
                    tile_product(w, 1, m, n, kc, wt, ldw, X + (kk - k0) * x->ld + j0, x->ld, beta, c, ldc);
                else if (!pad)   // c = X[i0 : i0+m, kk : kk+kc] . w[j0 : j0+n, kk : kk+kc]^T
                    tile_product(w, 0, m, n, kc, wt, ldw, X + i0 * x->ld + (kk - k0), x->ld, beta, c, ldc);
                else   // the same with X's rows [i0, M) then zero rows; the real rows are copied out below
                    tile_product(w, 0, GEMM_TILE_M, n, kc, wt, ldw, x->pad_x + (kk - k0), x->ld, beta, c, ldc_t);
            }
        }
        for (int64_t ix = ix0; pad_c && ix < ix1; ix++) {   // the padded tile's real rows, once all of K is in
            const int64_t i0 = ix % n_tx * GEMM_TILE_M, m = M - i0 < GEMM_TILE_M ? M - i0 : GEMM_TILE_M;
            if (m < GEMM_TILE_M)
                for (int64_t i = 0; i < m; i++)
                    memcpy(C + (i0 + i) * ldc + r0, pad_c + i * pad_tile_n(N), sizeof(float) * (size_t)nr);
        }
    }
}

/* The linear's team: no more threads than tiles (each thread holds a weight tile buffer). */
static int linear_team(const sdc_backend *be, int64_t M, int64_t N, int64_t K) {
    const int64_t tiles = sdc_cpu_gemm_n_tiles(M, N);
    if (M * N * K < 64 * SDC_CPU_PAR_MIN) return 1;
    return tiles < be->n_threads ? (int)tiles : be->n_threads;
}

size_t sdc_cpu_linear_workspace(sdc_backend *be, const sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w) {
    const int64_t K = x->ne[x->ndim - 1], N = w->ne[0], M = sdc_tensor_rows(x);
    if (M == 0 || N == 0) return 0;
    const int team = linear_team(be, M, N, K);
    return sdc_cpu_wmat_bytes(be, w, N, K, GEMM_TILE_N, team) + sdc_cpu_gemm_pad_bytes(M, N, K, team);
}

void sdc_cpu_linear(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b) {
    const int64_t K = x->ne[x->ndim - 1], N = w->ne[0], M = sdc_tensor_rows(x);
    const float *xd = sdc_cpu_f32(x);              // [M, K]
    const float *bd = b ? sdc_cpu_f32(b) : NULL;   // [N]
    float *yd = sdc_cpu_f32(y);                    // [M, N]
    if (M == 0 || N == 0) return;
    const int team = linear_team(be, M, N, K);
    sdc_cpu_wmat wm;   // w [N, K]
    if (sdc_cpu_wmat_begin(be, &wm, w, K, GEMM_TILE_N, team) != 0) return;
    sdc_cpu_gemm_x src = {xd, K, 1, 0, 0, NULL, NULL};
    const size_t pad_bytes = sdc_cpu_gemm_pad_bytes(M, N, K, team);
    float *pad = NULL;   // [GEMM_TILE_M, K] then team slots of [GEMM_TILE_M, min(N, GEMM_TILE_N)]
    if (pad_bytes) {
        if (!(pad = SDC_CPU_SCRATCH(be, pad_bytes, "sdc_cpu_linear padded row tile"))) {
            sdc_cpu_wmat_end(be, &wm);
            return;
        }
        const int64_t rem = M % GEMM_TILE_M;   // x's last rem rows, then zero rows
        memcpy(pad, xd + (M - rem) * K, sizeof(float) * (size_t)(rem * K));
        memset(pad + rem * K, 0, sizeof(float) * (size_t)((GEMM_TILE_M - rem) * K));
        src.pad_x = pad;
        src.pad_c = pad + GEMM_TILE_M * K;
    }
    // y = x . w^T + b, tiles of y over the team
#pragma omp parallel num_threads(team) if (team > 1)
    sdc_cpu_gemm_tiles(SDC_CPU_W_RIGHT, M, N, 0, K, &wm, &src, bd, yd, N);
    sdc_cpu_scratch_free(be, pad, pad_bytes);
    sdc_cpu_wmat_end(be, &wm);
}

/* The linear, then act in place: the same bits as the two ops one after the other. */
void sdc_cpu_linear_act(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b,
                        sdc_unary_op act) {
    sdc_cpu_linear(be, y, x, w, b);
    sdc_cpu_unary(be, y, y, act);
}
