/* cuda_data.cu - data movement: embedding, nearest 2x upsampling, concat, permute, copy (with dtype
 * conversion), zero padding, slice.
 *
 * Pure moves do not look at values, so their kernels copy elements as 2- or 4-byte words (uint16_t or
 * uint32_t by the dtype's size, DISPATCH_WORD); concat and slice are strided 2-D copies (copy_2d: a
 * kernel moving 16-byte words where the layout allows). Permutations that are batched 2-D transposes, which
 * covers [B, C, H, W] <-> [B, H, W, C], go through 32x32 tiles in shared memory so that reads and
 * writes are both coalesced; other permutations take one thread per output element. */
#include "backend/cuda/cuda_common.cuh"

/* Runs call_u16 for 2-byte elements, call_u32 for 4-byte ones. */
#define DISPATCH_WORD(es, call_u16, call_u32)                  \
    do {                                                       \
        if ((es) == 2) {                                       \
            call_u16;                                          \
        } else {                                               \
            assert((es) == 4 && "cuda data op: element size"); \
            call_u32;                                          \
        }                                                      \
    } while (0)

/* Treats a tensor as 4-D (trailing dims are 1). */
static int64_t prod(const int64_t *ne, int from, int to) {
    int64_t p = 1;
    for (int d = from; d < to; d++) p *= ne[d];
    return p;
}

/* --- embedding --- */

/* y[t, c] = table[ids[t], c] for y [T, C]. */
template <typename W> __global__ void embedding_kernel(W *y, const W *table, const int32_t *ids, int64_t T, int64_t C) {
    SDC_ROWS_LOOP(t, T) {
        const W *row = table + (int64_t)ids[t] * C;
        SDC_COLS_LOOP(c, C) y[t * C + c] = row[c];
    }
}

extern "C" void sdc_cuda_embedding(sdc_backend *be, sdc_tensor *y, const sdc_tensor *table, const sdc_tensor *ids) {
    assert(ids->dtype == SDC_DTYPE_I32 && table->dtype == y->dtype);
    const int64_t T = sdc_tensor_nelem(ids), C = table->ne[1];
    if (T == 0 || C == 0) return;
    const sdc_launch2d l = sdc_plan_rows(T, C);
    cudaStream_t s = sdc_cuda_stream(be);
    DISPATCH_WORD(sdc_dtype_size(y->dtype),
                  (embedding_kernel<uint16_t><<<l.grid, l.block, 0, s>>>(
                      (uint16_t *)y->data, (const uint16_t *)table->data, (const int32_t *)ids->data, T, C)),
                  (embedding_kernel<uint32_t><<<l.grid, l.block, 0, s>>>(
                      (uint32_t *)y->data, (const uint32_t *)table->data, (const int32_t *)ids->data, T, C)));
    SDC_CUDA_LAUNCHED(be);
}

/* --- upsample2x --- */

/* x [rows = B*C*H, W] -> y [B*C*2H, 2W]: input row r feeds output rows 2r and 2r+1, each input
 * element two neighbours in both. */
template <typename W> __global__ void upsample2x_kernel(W *y, const W *x, int64_t rows, int64_t Wd) {
    SDC_ROWS_LOOP(r, rows) {
        W *y0 = y + 2 * r * 2 * Wd, *y1 = y0 + 2 * Wd;
        SDC_COLS_LOOP(w, Wd) {
            const W v = x[r * Wd + w];
            y0[2 * w] = v;
            y0[2 * w + 1] = v;
            y1[2 * w] = v;
            y1[2 * w + 1] = v;
        }
    }
}

extern "C" void sdc_cuda_upsample2x(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x) {
    assert(x->dtype == y->dtype);
    const int64_t rows = x->ne[0] * x->ne[1] * x->ne[2], Wd = x->ne[3];
    if (rows == 0 || Wd == 0) return;
    const sdc_launch2d l = sdc_plan_rows(rows, Wd);
    cudaStream_t s = sdc_cuda_stream(be);
    DISPATCH_WORD(sdc_dtype_size(y->dtype),
                  (upsample2x_kernel<uint16_t>
                   <<<l.grid, l.block, 0, s>>>((uint16_t *)y->data, (const uint16_t *)x->data, rows, Wd)),
                  (upsample2x_kernel<uint32_t>
                   <<<l.grid, l.block, 0, s>>>((uint32_t *)y->data, (const uint32_t *)x->data, rows, Wd)));
    SDC_CUDA_LAUNCHED(be);
}

/* --- concat, slice: strided 2-D copies --- */

/* dst row r = src row r, `words` words of W each, rows dpitch / spitch bytes apart. */
template <typename W>
__global__ void copy_2d_kernel(char *dst, size_t dpitch, const char *src, size_t spitch, int64_t words, int64_t rows) {
    SDC_ROWS_LOOP(r, rows) {
        W *d = (W *)(dst + (size_t)r * dpitch);
        const W *s = (const W *)(src + (size_t)r * spitch);
        SDC_COLS_LOOP(c, words) d[c] = s[c];
    }
}

/* dst[o, :width] = src[o, :width] for o < height, rows dpitch / spitch bytes apart: a kernel moving the
 * widest words (16 bytes down to 1) that every address, pitch and width allow (cudaMemcpy2DAsync ran such
 * copies at a fraction of the memory bandwidth: the Flux blocks' joins and splits, session 13). */
static void copy_2d(sdc_backend *be, void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                    size_t height) {
    if (width == 0 || height == 0) return;
    if (height > 1 && width == dpitch && width == spitch) { /* one contiguous run */
        width *= height;
        height = 1;
    }
    const size_t all = (uintptr_t)dst | (uintptr_t)src | width | (height > 1 ? dpitch | spitch : 0);
    const size_t w = all % 16 == 0 ? 16 : all % 8 == 0 ? 8 : all % 4 == 0 ? 4 : all % 2 == 0 ? 2 : 1;
    const int64_t words = (int64_t)(width / w), rows = (int64_t)height;
    const sdc_launch2d l = sdc_plan_rows(rows, words);
    cudaStream_t s = sdc_cuda_stream(be);
    char *d = (char *)dst;
    const char *x = (const char *)src;
    switch (w) {
    case 16: copy_2d_kernel<uint4><<<l.grid, l.block, 0, s>>>(d, dpitch, x, spitch, words, rows); break;
    case 8: copy_2d_kernel<uint2><<<l.grid, l.block, 0, s>>>(d, dpitch, x, spitch, words, rows); break;
    case 4: copy_2d_kernel<uint32_t><<<l.grid, l.block, 0, s>>>(d, dpitch, x, spitch, words, rows); break;
    case 2: copy_2d_kernel<uint16_t><<<l.grid, l.block, 0, s>>>(d, dpitch, x, spitch, words, rows); break;
    default: copy_2d_kernel<uint8_t><<<l.grid, l.block, 0, s>>>(d, dpitch, x, spitch, words, rows); break;
    }
    SDC_CUDA_LAUNCHED(be);
}

extern "C" void sdc_cuda_concat(sdc_backend *be, sdc_tensor *y, const sdc_tensor *a, const sdc_tensor *b, int dim) {
    assert(a->dtype == y->dtype && b->dtype == y->dtype);
    /* y [outer, (na + nb) * inner] = a [outer, na * inner] beside b [outer, nb * inner] */
    const size_t es = sdc_dtype_size(y->dtype);
    const size_t outer = (size_t)prod(y->ne, 0, dim), inner = (size_t)prod(y->ne, dim + 1, 4);
    const size_t wa = (size_t)a->ne[dim] * inner * es, wb = (size_t)b->ne[dim] * inner * es;
    copy_2d(be, y->data, wa + wb, a->data, wa, wa, outer);
    copy_2d(be, (char *)y->data + wa, wa + wb, b->data, wb, wb, outer);
}

extern "C" void sdc_cuda_slice(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, int dim, int64_t start) {
    assert(x->dtype == y->dtype);
    /* y [outer, ny * inner] = x [outer, nx * inner] from column start * inner */
    const size_t es = sdc_dtype_size(y->dtype);
    const size_t outer = (size_t)prod(y->ne, 0, dim), inner = (size_t)prod(y->ne, dim + 1, 4);
    const size_t wy = (size_t)y->ne[dim] * inner * es, wx = (size_t)x->ne[dim] * inner * es;
    copy_2d(be, y->data, wy, (const char *)x->data + (size_t)start * inner * es, wx, wy, outer);
}

/* --- permute --- */

#define TILE 32
#define TILE_ROWS 8

/* y[a, n, m] = x[a, m, n] for x [A, M, N]: blocks of (32, 8) threads move a 32x32 tile through shared
 * memory (one column of padding against bank conflicts). grid (N tiles, M tiles, min(A, 65535)). */
template <typename W> __global__ void transpose_kernel(W *y, const W *x, int64_t A, int64_t M, int64_t N) {
    __shared__ W tile[TILE][TILE + 1];
    const int64_t n0 = (int64_t)blockIdx.x * TILE, m0 = (int64_t)blockIdx.y * TILE;
    for (int64_t a = blockIdx.z; a < A; a += gridDim.z) {
        const W *xa = x + a * M * N;
        W *ya = y + a * M * N;
        for (int j = threadIdx.y; j < TILE; j += TILE_ROWS) {
            const int64_t m = m0 + j, n = n0 + threadIdx.x;
            if (m < M && n < N) tile[j][threadIdx.x] = xa[m * N + n];
        }
        __syncthreads();
        for (int j = threadIdx.y; j < TILE; j += TILE_ROWS) {
            const int64_t n = n0 + j, m = m0 + threadIdx.x;
            if (n < N && m < M) ya[n * M + m] = tile[threadIdx.x][j];
        }
        __syncthreads();   // the tile is refilled for the next a
    }
}

/* y.ne[d] = x.ne[perm[d]]; s[d] = x's stride along its dim perm[d]. One thread per output element. */
struct perm_geom {
    int64_t yn[4], s[4];
};

template <typename W, typename I> __global__ void permute_kernel(W *y, const W *x, I total, perm_geom g) {
    const I n1 = (I)g.yn[1], n2 = (I)g.yn[2], n3 = (I)g.yn[3];
    const I s0 = (I)g.s[0], s1 = (I)g.s[1], s2 = (I)g.s[2], s3 = (I)g.s[3];
    for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < total; i += (I)gridDim.x * blockDim.x) {
        I r = i;
        const I i3 = r % n3;
        r /= n3;
        const I i2 = r % n2;
        r /= n2;
        const I i1 = r % n1, i0 = r / n1;
        y[i] = x[i0 * s0 + i1 * s1 + i2 * s2 + i3 * s3];
    }
}

/* When perm keeps dims [0, p) in place and swaps the blocks [p, k) and [k, 4) of x, the permutation is
 * a batched transpose of x [A, M, N] with A = x.ne[0..p), M = x.ne[p..k), N = x.ne[k..4). Returns 1 and
 * sets A, M, N then. */
static int as_transpose(const sdc_tensor *x, const int perm[4], int64_t *A, int64_t *M, int64_t *N) {
    int p = 0;
    while (p < 4 && perm[p] == p) p++;
    if (p == 4) return 0;
    const int k = perm[p];
    for (int d = p; d < 4; d++) {   // y's dims after p: k, k+1, ..., 3, then p, p+1, ..., k-1
        const int want = d - p < 4 - k ? k + (d - p) : p + (d - p - (4 - k));
        if (perm[d] != want) return 0;
    }
    *A = prod(x->ne, 0, p);
    *M = prod(x->ne, p, k);
    *N = prod(x->ne, k, 4);
    return 1;
}

template <typename W>
static void permute_typed(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const int perm[4]) {
    cudaStream_t s = sdc_cuda_stream(be);
    const int64_t total = sdc_tensor_nelem(x);
    int64_t A, M, N;
    if (as_transpose(x, perm, &A, &M, &N) && (M + TILE - 1) / TILE <= 65535 && (N + TILE - 1) / TILE <= INT32_MAX) {
        const dim3 grid((unsigned)((N + TILE - 1) / TILE), (unsigned)((M + TILE - 1) / TILE),
                        (unsigned)(A < 65535 ? A : 65535));
        transpose_kernel<W><<<grid, dim3(TILE, TILE_ROWS), 0, s>>>((W *)y->data, (const W *)x->data, A, M, N);
        SDC_CUDA_LAUNCHED(be);
        return;
    }
    perm_geom g;
    int64_t xs[4];
    xs[3] = 1;
    for (int d = 2; d >= 0; d--) xs[d] = xs[d + 1] * x->ne[d + 1];
    for (int d = 0; d < 4; d++) {
        g.yn[d] = y->ne[d];
        g.s[d] = xs[perm[d]];
    }
    if (total <= (int64_t)UINT32_MAX)
        permute_kernel<W, uint32_t>
            <<<sdc_grid_1d(total, 256), 256, 0, s>>>((W *)y->data, (const W *)x->data, (uint32_t)total, g);
    else
        permute_kernel<W, int64_t><<<sdc_grid_1d(total, 256), 256, 0, s>>>((W *)y->data, (const W *)x->data, total, g);
    SDC_CUDA_LAUNCHED(be);
}

extern "C" void sdc_cuda_permute(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const int perm[4]) {
    assert(x->dtype == y->dtype);
    if (sdc_tensor_nelem(x) == 0) return;
    if (perm[0] == 0 && perm[1] == 1 && perm[2] == 2 && perm[3] == 3) {
        copy_2d(be, y->data, x->nbytes, x->data, x->nbytes, x->nbytes, 1);
        return;
    }
    DISPATCH_WORD(sdc_dtype_size(y->dtype), permute_typed<uint16_t>(be, y, x, perm),
                  permute_typed<uint32_t>(be, y, x, perm));
}

/* --- copy with conversion --- */

template <typename TY, typename TX> __global__ void convert_kernel(TY *y, const TX *x, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = sdc_from_f<TY>(sdc_to_f(x[i]));
}

template <typename TY> static void convert_from(sdc_backend *be, TY *y, const sdc_tensor *x, int64_t n) {
    cudaStream_t s = sdc_cuda_stream(be);
    const unsigned grid = sdc_grid_1d(n, 256);
    switch (x->dtype) {
    case SDC_DTYPE_F32: convert_kernel<<<grid, 256, 0, s>>>(y, (const float *)x->data, n); break;
    case SDC_DTYPE_F16: convert_kernel<<<grid, 256, 0, s>>>(y, (const __half *)x->data, n); break;
    case SDC_DTYPE_BF16: convert_kernel<<<grid, 256, 0, s>>>(y, (const __nv_bfloat16 *)x->data, n); break;
    default: assert(!"cuda copy: unsupported source dtype");
    }
    SDC_CUDA_LAUNCHED(be);
}

extern "C" void sdc_cuda_copy(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x) {
    const int64_t n = sdc_tensor_nelem(x);
    if (n == 0) return;
    if (x->dtype == y->dtype) {
        copy_2d(be, y->data, x->nbytes, x->data, x->nbytes, x->nbytes, 1);
        return;
    }
    if (sdc_dtype_is_quant(x->dtype)) {   // rows of whole blocks to floats
        const int64_t K = x->ne[x->ndim - 1];
        sdc_cuda_dequant_rows(be, x->dtype, x->data, y->dtype, y->data, n / K, K);
        return;
    }
    switch (y->dtype) {   // the float types to each other; I32 only to I32 (above)
    case SDC_DTYPE_F32: convert_from(be, (float *)y->data, x, n); break;
    case SDC_DTYPE_F16: convert_from(be, (__half *)y->data, x, n); break;
    case SDC_DTYPE_BF16: convert_from(be, (__nv_bfloat16 *)y->data, x, n); break;
    default: assert(!"cuda copy: unsupported destination dtype");
    }
}

/* --- pad2d --- */

/* y [B*C, Ho, Wo] = x [B*C, H, W] placed at (top, left), zeros around it: one y row per row step. */
template <typename W>
__global__ void pad2d_kernel(W *y, const W *x, int64_t rows, int64_t H, int64_t Wd, int64_t Ho, int64_t Wo, int top,
                             int left) {
    SDC_ROWS_LOOP(r, rows) {   // r = bc * Ho + oh
        const int64_t bc = r / Ho, ih = r % Ho - top;
        const int row_inside = ih >= 0 && ih < H;
        SDC_COLS_LOOP(ow, Wo) {
            const int64_t iw = ow - left;
            y[r * Wo + ow] = row_inside && iw >= 0 && iw < Wd ? x[(bc * H + ih) * Wd + iw] : (W)0;
        }
    }
}

extern "C" void sdc_cuda_pad2d(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, int top, int bottom, int left,
                               int right) {
    assert(x->dtype == y->dtype);
    (void)bottom;
    (void)right;   // implied by y's shape
    const int64_t rows = y->ne[0] * y->ne[1] * y->ne[2], Wo = y->ne[3];
    if (rows == 0 || Wo == 0) return;
    const sdc_launch2d l = sdc_plan_rows(rows, Wo);
    cudaStream_t s = sdc_cuda_stream(be);
    const int64_t H = x->ne[2], Wd = x->ne[3], Ho = y->ne[2];
    DISPATCH_WORD(sdc_dtype_size(y->dtype),
                  (pad2d_kernel<uint16_t><<<l.grid, l.block, 0, s>>>((uint16_t *)y->data, (const uint16_t *)x->data,
                                                                     rows, H, Wd, Ho, Wo, top, left)),
                  (pad2d_kernel<uint32_t><<<l.grid, l.block, 0, s>>>((uint32_t *)y->data, (const uint32_t *)x->data,
                                                                     rows, H, Wd, Ho, Wo, top, left)));
    SDC_CUDA_LAUNCHED(be);
}
