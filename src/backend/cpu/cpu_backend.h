/* cpu_backend.h - what the CPU backend's files share: the fast op entry points the vtable points
 * at, counted scratch memory, the GEMM calls, and the threading rule.
 *
 * Threading: one OpenMP team of be->n_threads per op; BLAS itself runs on 1 thread inside it
 * (sdc_cpu_blas_one_thread), without any process-wide setting.
 * Determinism: the work is cut into items that do not depend on the thread count (rows, planes,
 * groups, GEMM tiles, query blocks); each output element is computed by exactly one item, and any
 * reduction runs in a fixed order inside it. So results are bit-identical run to run and for any
 * thread count. */
#ifndef SDC_BACKEND_CPU_CPU_BACKEND_H
#define SDC_BACKEND_CPU_CPU_BACKEND_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"

/* Loops with fewer elements than this run on one thread (a team costs more than the work). */
#define SDC_CPU_PAR_MIN 16384

/* Upper bounds on the scratch of one op: a convolution's im2col band, and one thread's block of
 * attention scores. The planner's workspace bound is derived from them. A bigger score block packs
 * K and V (OpenBLAS copies both per GEMM call) for more queries at once: SD 1.5 at 512x512 on 2 cores,
 * 256 rows instead of 64 took the UNet's attention from 13.4 to 9.1 s (38 -> 55 GFLOP/s, --profile)
 * with the same PNG bytes (a row's products and softmax do not depend on its block). */
#define SDC_CPU_CONV_WORKSPACE_BYTES ((size_t)16 << 20)
#define SDC_CPU_SCORE_BLOCK_BYTES ((size_t)4 << 20)

/* The f32 data of a tensor, asserting its dtype: every CPU compute tensor is F32 (a linear's or a
 * convolution's weight may also be kept in its storage dtype: sdc_cpu_wmat). */
static inline float *sdc_cpu_f32(const sdc_tensor *t) {
    assert(t->dtype == SDC_DTYPE_F32);
    return (float *)t->data;
}

/* --- memory --- */
/* 64-byte aligned host memory, uncounted (sdc_tensor_new counts tensors). NULL when out of memory. Free it
 * with sdc_cpu_aligned_free (NULL is harmless), never free(): a big block is a mapping of its own. */
void *sdc_cpu_aligned_alloc(size_t nbytes);
void sdc_cpu_aligned_free(void *ptr);
/* Scratch for an op: 64-byte aligned and counted in be->stats as SDC_MEM_WORKSPACE; free it with the
 * same nbytes. Its size depends on shapes only, never on free memory (so neither does any output
 * bit). NULL when out of memory (or be->fail.workspace says so): that is then the sticky status,
 * SDC_ERR_OOM, logged with the caller's location and `what`, and the op returns at once. */
#define SDC_CPU_SCRATCH(be, nbytes, what) sdc_cpu_scratch_alloc((be), (nbytes), (what), __FILE__, __LINE__)
void *sdc_cpu_scratch_alloc(sdc_backend *be, size_t nbytes, const char *what, const char *file, int line);
void sdc_cpu_scratch_free(sdc_backend *be, void *ptr, size_t nbytes);

/* --- GEMM (cpu_gemm.c): the only place that calls BLAS --- */
/* sdc links OpenBLAS's OpenMP build and never sets its process-wide thread count: every BLAS call is
 * made from a thread of the op's own OpenMP region (of one thread or more), after this call on that
 * thread, so that OpenBLAS runs it on that thread alone. It sets the thread's task's
 * omp_get_max_threads() to 1, which ends with the region; a caller's own BLAS calls, thread counts and
 * OpenMP settings are untouched. sdc_cpu_gemm_tiles calls it itself. */
void sdc_cpu_blas_one_thread(void);
/* 0 when the OpenBLAS loaded is its OpenMP (or sequential) build; else logs why not and returns -1 (the
 * pthread build, which a library loaded before sdc's can bring: they share the soname). */
int sdc_cpu_blas_check(const sdc_logger *log);
/* Address space OpenBLAS maps per thread that calls a GEMM at the same time as others: its buffer
 * (BUFFER_SIZE, 32 << 22 in the x86-64 build of 0.3.21) plus a page. It is taken at the first
 * concurrent call and kept; if it cannot be had, OpenBLAS retries forever, so the backend leaves room
 * for one per thread under RLIMIT_AS (test_addrspace measures it). */
#define SDC_CPU_BLAS_BUFFER_BYTES (((size_t)128 << 20) + 4096)
/* C[M, N] = alpha * A[M, K] . op(B) + beta * C on the calling thread, row-major with leading
 * dimensions; op(B) is B[K, N], or B[N, K] transposed when trans_b. Call it in an op's region, after
 * sdc_cpu_blas_one_thread (asserted). */
void sdc_cpu_gemm(int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                  const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
/* Tiles of C: each is one single-threaded sgemm call per chunk of K, the same for any thread count. */
#define SDC_CPU_GEMM_TILE_M 256
#define SDC_CPU_GEMM_TILE_N 256

/* The GEMM depth K in chunks: a weight tile is widened to f32, and a convolution's im2col matrix built,
 * one chunk of K at a time, and the chunks' products are added into C in K order (sgemm with beta 1).
 * So neither holds a whole deep K: SD 1.5's up-block 3x3 convolutions have K = 1920 * 9 = 17280, and a
 * whole 256-row weight tile was 17.7 MB per thread; a chunk's is 448 KiB, and stays in L2 while
 * OpenBLAS packs it. A weight whose tile (up to SDC_CPU_GEMM_TILE_M rows of K) is at most two chunks
 * (256 x 896 floats) has K whole. The chunks depend on the weight's shape only (not on its dtype, the
 * thread count or the batch).
 * The chunks are the K blocks of OpenBLAS 0.3.21's SkylakeX sgemm: GEMM_Q = 448, and a last part
 * under two blocks in halves rounded up to GEMM_UNROLL_M = 16. Its kernel adds each block's products to
 * C, so the chunks sum in the order one call over K does: the same bits (measured: single sgemm calls
 * of SD 1.5's tile shapes against their chunks, and an SD 1.5 fp16 256x256 PNG, byte for byte). A chunk
 * that OpenBLAS's small-matrix kernel takes (M * N * K <= 1e6; measured to differ for N <= 8) and other
 * CPUs' blocks may round differently, still the same way for any thread count and batch. */
#define SDC_CPU_GEMM_K_BLOCK 448
#define SDC_CPU_GEMM_K_UNROLL 16

/* Whether a weight of R rows of K is cut in chunks of K. */
static inline int sdc_cpu_k_chunked(int64_t R, int64_t K) {
    const int64_t rows = R < SDC_CPU_GEMM_TILE_M ? R : SDC_CPU_GEMM_TILE_M;
    return rows * K > SDC_CPU_GEMM_TILE_M * 2 * SDC_CPU_GEMM_K_BLOCK;
}
/* The length of the chunk that starts at k0 (0, or a chunk's end) of such a weight's K. */
static inline int64_t sdc_cpu_k_chunk(int64_t R, int64_t K, int64_t k0) {
    const int64_t rest = K - k0, q = SDC_CPU_GEMM_K_BLOCK, u = SDC_CPU_GEMM_K_UNROLL;
    if (!sdc_cpu_k_chunked(R, K) || rest <= q) return rest;
    return rest >= 2 * q ? q : (rest / 2 + u - 1) / u * u;
}
/* The longest chunk of such a weight's K. */
static inline int64_t sdc_cpu_k_chunk_max(int64_t R, int64_t K) {
    return sdc_cpu_k_chunked(R, K) ? SDC_CPU_GEMM_K_BLOCK : K;
}

/* A weight matrix w[R, K] as a GEMM operand (K: the product of w's dims after the first), in the dtype
 * it is kept in. F32 rows are read in place; F16, BF16 and the block types are widened to f32 a tile
 * of rows and a chunk of K at a time (sdc_dequant_row; a block type's whole blocks around the chunk)
 * into a buffer of the thread that computes the tile, never as a whole copy. Widening is exact, so each
 * sgemm call sees the values, shapes and K order a weight widened at load gave: the same bits.
 * A weight marked matmul_bf16 (--precision bf16) is multiplied by the bf16 kernel (cpu_bf16.c) instead:
 * its tiles are in the kernel's format, never read in place (oneDNN takes dense tiles: copied from a BF16
 * weight, else widened then rounded; the plain kernel's widened, rounded unless BF16), and each product's
 * other operand is rounded a tile at a time into the thread's ops slot. */
typedef struct sdc_cpu_wmat {
    sdc_dtype dtype;
    const char *data; /* R rows of row_bytes */
    size_t row_bytes;
    int64_t R, K;
    int64_t block;                   /* elements per block of dtype (1 for F16, BF16) */
    float *tiles;                    /* n_threads slots of slot_floats, one per thread of the op's team; NULL
                                     when the weight is read in place */
    size_t slot_floats;              /* tile_rows x the widest chunk's span of blocks, rounded up to 64 bytes */
    const struct sdc_cpu_bf16 *bf16; /* the bf16 kernel (w->matmul_bf16), else NULL */
    char *ops;                       /* bf16: n_threads slots of ops_slot bytes, the other operand's tiles */
    size_t ops_slot;
    void *scratch; /* the op's workspace holding both, scratch_bytes */
    size_t scratch_bytes;
    sdc_backend *be; /* where a failed bf16 product is reported */
} sdc_cpu_wmat;

/* The workspace sdc_cpu_wmat_begin takes for w viewed as R rows of K, widened in tiles of tile_rows rows
 * and chunks of K (sdc_cpu_k_chunk) by a team of n_threads: 0 for F32 outside bf16. The ops' workspace
 * queries use it too. */
size_t sdc_cpu_wmat_bytes(sdc_backend *be, const sdc_tensor *w, int64_t R, int64_t K, int64_t tile_rows, int n_threads);
/* Describes w (viewed as [w->ne[0], K]) for a team of n_threads that widens tiles of tile_rows rows. The
 * tile buffers are scratch of the op (SDC_MEM_WORKSPACE). 0, or -1 with the sticky status set (no
 * memory: SDC_ERR_OOM; a dtype sdc_dequant_row cannot widen: SDC_ERR_UNSUPPORTED); the op then returns. */
int sdc_cpu_wmat_begin(sdc_backend *be, sdc_cpu_wmat *wm, const sdc_tensor *w, int64_t K, int64_t tile_rows,
                       int n_threads);
void sdc_cpu_wmat_end(sdc_backend *be, sdc_cpu_wmat *wm);

/* --- bf16 products (cpu_bf16.c) --- */
typedef struct sdc_cpu_bf16 sdc_cpu_bf16;
/* The kernel for teams of up to n_threads: oneDNN's where it has native bf16 code here, else (or with
 * plain) the plain one; logs which. NULL when out of memory. */
sdc_cpu_bf16 *sdc_cpu_bf16_new(int n_threads, int plain, const sdc_logger *log);
void sdc_cpu_bf16_free(sdc_cpu_bf16 *k);
const char *sdc_cpu_bf16_name(const sdc_cpu_bf16 *k);
/* Bytes of one operand element in the kernel's format: 2 (bf16), or 4 (a bf16 value as f32: plain). */
size_t sdc_cpu_bf16_elem(const sdc_cpu_bf16 *k);
/* src[rows, cols] (rows ld apart) rounded to bf16 into dst[rows, cols] (rows cols apart) in the kernel's
 * format. dst may be src when ld == cols (in place: each element is read before its bytes are written). */
void sdc_cpu_bf16_round(const sdc_cpu_bf16 *k, const float *src, int64_t rows, int64_t cols, int64_t ld, void *dst);
/* sdc_cpu_gemm's product (alpha 1, beta 0 or 1) of operands in the kernel's format, on the calling
 * thread of the op's team. 0, or -1 when the kernel failed (no memory). */
int sdc_cpu_bf16_gemm(const sdc_cpu_bf16 *k, int trans_b, int64_t M, int64_t N, int64_t K, const void *A, int64_t lda,
                      const void *B, int64_t ldb, float beta, float *C, int64_t ldc);
/* The backend's bf16 kernel, made at its first call (from the op's thread, outside its team). NULL with
 * the sticky status set when out of memory. */
const sdc_cpu_bf16 *sdc_cpu_bf16_of(sdc_backend *be);
/* Tests: the backend's later bf16 products use the plain kernel (its kernel is remade). */
void sdc_cpu_bf16_use_plain(sdc_backend *be);

/* Which GEMM operand the weight is, in sdc_cpu_gemm_tiles. */
typedef enum sdc_cpu_wside {
    SDC_CPU_W_LEFT,  /* C[M, N] = w[M, K] . X[K, N] + bias[row]   (a convolution) */
    SDC_CPU_W_RIGHT, /* C[M, N] = X[M, K] . w[N, K]^T + bias[col] (a linear) */
} sdc_cpu_wside;

/* The number of GEMM tiles of an M x N product (the linear's team is no larger). */
static inline int64_t sdc_cpu_gemm_n_tiles(int64_t M, int64_t N) {
    return ((M + SDC_CPU_GEMM_TILE_M - 1) / SDC_CPU_GEMM_TILE_M) *
        ((N + SDC_CPU_GEMM_TILE_N - 1) / SDC_CPU_GEMM_TILE_N);
}

/* The f32 operand of sdc_cpu_gemm_tiles: nb matrices X_b = data + b * stride, rows ld apart, whose
 * products go to C + b * c_stride.
 * pad_x, pad_c (SDC_CPU_W_RIGHT with nb 1 only; both or neither, NULL when M is a multiple of
 * SDC_CPU_GEMM_TILE_M): X's last partial tile of rows copied into pad_x [SDC_CPU_GEMM_TILE_M, K] (rows K
 * apart) and zero-padded, and a slot of pad_c per thread of the team, [SDC_CPU_GEMM_TILE_M, min(N,
 * SDC_CPU_GEMM_TILE_N)] each, where that tile's products are computed before its real rows go to C. So
 * every sgemm call has exactly SDC_CPU_GEMM_TILE_M rows and a row's bits do not depend on how many rows
 * the product has (sdc_cpu_gemm_pad_bytes sizes both). */
typedef struct sdc_cpu_gemm_x {
    const float *data;
    int64_t ld, nb, stride, c_stride;
    const float *pad_x;
    float *pad_c;
} sdc_cpu_gemm_x;

/* The bytes of pad_x and n_threads slots of pad_c for X[M, K] . w[N, K]^T: 0 when M is a multiple of
 * SDC_CPU_GEMM_TILE_M (or M or N is 0). */
size_t sdc_cpu_gemm_pad_bytes(int64_t M, int64_t N, int64_t K, int n_threads);

/* The products of a weight w with each X_b of x over the part [k0, k1) of K (k0 and k1: 0, w->K or ends of
 * chunks), as `side` says, cut into fixed tiles of C shared out over the enclosing OpenMP team (an
 * orphaned `omp for`, called by every thread of the op's region; a region of one thread does every tile). X_b holds only that
 * part: its rows (SDC_CPU_W_LEFT) or columns (SDC_CPU_W_RIGHT; pad_x too) 0 .. k1 - k0 - 1 are K's k0 ..
 * k1 - 1. When k0 is 0, C = bias (may be NULL) + the products; else C += the products. Each tile adds its
 * chunks in K order, and the tiles do not depend on the thread count, so neither does any bit of C.
 * Weight tiles are widened into the calling thread's slot (omp_get_thread_num() < the team size wm was
 * begun for). */
void sdc_cpu_gemm_tiles(sdc_cpu_wside side, int64_t M, int64_t N, int64_t k0, int64_t k1, const sdc_cpu_wmat *w,
                        const sdc_cpu_gemm_x *x, const float *bias, float *C, int64_t ldc);
/* OpenBLAS's build description, for the backend's start-up log line. */
const char *sdc_cpu_blas_config(void);

/* Workspace queries (backend.h): the weight tiles a linear widens and its padded last row tile; a
 * convolution's im2col band and weight tiles. */
size_t sdc_cpu_linear_workspace(sdc_backend *be, const sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w);
size_t sdc_cpu_conv2d_workspace(sdc_backend *be, const sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                                int stride, int pad);

/* --- conv geometry shared with the reference --- */
/* Output positions o in [*lo, *hi) whose input position o*stride - pad + k lies in [0, n_in). */
static inline void sdc_cpu_conv_range(int64_t n_out, int64_t n_in, int stride, int pad, int64_t k, int64_t *lo,
                                      int64_t *hi) {
    int64_t off = k - pad; /* input position of output 0 */
    int64_t a = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int64_t b = n_in - off <= 0 ? 0 : (n_in - off + stride - 1) / stride;
    *lo = a < n_out ? a : n_out;
    *hi = b < n_out ? b : n_out;
    if (*hi < *lo) *hi = *lo;
}

/* --- the fast ops: sdc_cpu_<name> for each op of SDC_BACKEND_OPS (semantics in backend.h) --- */
#define SDC_CPU_OP_DECLARE_(name, family, params, args) SDC_OP_DECLARE(sdc_cpu_, name, params)
SDC_BACKEND_OPS(SDC_CPU_OP_DECLARE_)
#undef SDC_CPU_OP_DECLARE_

/* Scalar activations in float, the forms backend.h names (shared by the elementwise and norm ops). */
float sdc_cpu_silu(float x);
float sdc_cpu_gelu(float x);

#endif
