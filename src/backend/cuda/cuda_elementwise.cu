/* cuda_elementwise.cu - unary activations, binary ops with broadcasting, scale, GEGLU, rotary embedding.
 *
 * Every op is a grid-stride map over elements, in f32, rounded once on the store. Contiguous maps move
 * 16-byte packs (8 halves or 4 floats) when every pointer is 16-byte aligned, and finish the tail one
 * element at a time. Outputs may alias the first input: each element is read before it is written by
 * the same thread. The activations follow PyTorch: erf GELU, tanh GELU, x * sigmoid(1.702 x). */
#include "backend/cuda/cuda_common.cuh"

static __device__ __forceinline__ float gelu_erf(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }

static __device__ __forceinline__ float unary1(float x, int op) {
    switch (op) {
    case SDC_UNARY_SILU: return x / (1.0f + expf(-x));
    case SDC_UNARY_GELU: return gelu_erf(x);
    case SDC_UNARY_GELU_TANH: return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
    default: return x / (1.0f + expf(-1.702f * x));   // SDC_UNARY_QUICK_GELU
    }
}

static __device__ __forceinline__ float binary1(float a, float b, int op) {
    return op == SDC_BINARY_ADD ? a + b : op == SDC_BINARY_SUB ? a - b : a * b;
}

/* The per-element functions of the contiguous maps. */
struct unary_fn {
    int op;
    __device__ float operator()(float x) const { return unary1(x, op); }
};
struct scale_fn {
    float s;
    __device__ float operator()(float x) const { return x * s; }
};
struct binary_fn {
    int op;
    __device__ float operator()(float a, float b) const { return binary1(a, b, op); }
};

/* y[i] = f(x[i]) for i < n; packs when vec. */
template <typename T, typename F> __global__ void map1_kernel(T *y, const T *x, int64_t n, int vec, F f) {
    constexpr int N = sdc_pack<T>::N;
    const int64_t tid = blockIdx.x * (int64_t)blockDim.x + threadIdx.x, step = (int64_t)gridDim.x * blockDim.x;
    const int64_t n_packs = vec ? n / N : 0;
    for (int64_t p = tid; p < n_packs; p += step) {
        float v[N];
        sdc_load_pack(x + p * N, v);
#pragma unroll
        for (int i = 0; i < N; i++) v[i] = f(v[i]);
        sdc_store_pack(y + p * N, v);
    }
    for (int64_t i = n_packs * N + tid; i < n; i += step) y[i] = sdc_from_f<T>(f(sdc_to_f(x[i])));
}

/* y[i] = f(a[i], b[i]) for i < n; packs when vec. */
template <typename T, typename F> __global__ void map2_kernel(T *y, const T *a, const T *b, int64_t n, int vec, F f) {
    constexpr int N = sdc_pack<T>::N;
    const int64_t tid = blockIdx.x * (int64_t)blockDim.x + threadIdx.x, step = (int64_t)gridDim.x * blockDim.x;
    const int64_t n_packs = vec ? n / N : 0;
    for (int64_t p = tid; p < n_packs; p += step) {
        float va[N], vb[N];
        sdc_load_pack(a + p * N, va);
        sdc_load_pack(b + p * N, vb);
#pragma unroll
        for (int i = 0; i < N; i++) va[i] = f(va[i], vb[i]);
        sdc_store_pack(y + p * N, va);
    }
    for (int64_t i = n_packs * N + tid; i < n; i += step) y[i] = sdc_from_f<T>(f(sdc_to_f(a[i]), sdc_to_f(b[i])));
}

/* a's shape collapsed to nd <= 4 dims (outermost first) that alternate between b-broadcast and not;
 * bs[d] is b's element stride along dim d, 0 where b is broadcast. */
struct bcast_geom {
    int64_t n[4], bs[4];
    int nd;
};

/* y[i] = a[i] op b[broadcast index of i], P elements per item: 1, or a 16-byte pack where a's innermost
 * collapsed dim is not broadcast and holds whole packs (the pack's elements of b are then contiguous too, at
 * the broadcast index of its first element: Flux's gates, a [B, L, C] times b [B, 1, C]); the same arithmetic
 * per element either way. I is the index type: 32-bit whenever the count fits, so the divisions stay cheap. */
template <typename T, typename I, int P>
__global__ void binary_bcast_kernel(T *y, const T *a, const T *b, I items, bcast_geom g, int op) {
    I n[4], bs[4];
    for (int d = 0; d < 4; d++) {
        n[d] = (I)g.n[d];
        bs[d] = (I)g.bs[d];
    }
    for (I k = blockIdx.x * (I)blockDim.x + threadIdx.x; k < items; k += (I)gridDim.x * blockDim.x) {
        const I i = k * P;
        I rem = i, bi = 0;
        for (int d = g.nd - 1; d > 0; d--) {
            bi += rem % n[d] * bs[d];
            rem /= n[d];
        }
        bi += rem * bs[0];
        if constexpr (P == 1) {
            y[i] = sdc_from_f<T>(binary1(sdc_to_f(a[i]), sdc_to_f(b[bi]), op));
        } else {
            float va[P], vb[P];
            sdc_load_pack(a + i, va);
            sdc_load_pack(b + bi, vb);
#pragma unroll
            for (int e = 0; e < P; e++) va[e] = binary1(va[e], vb[e], op);
            sdc_store_pack(y + i, va);
        }
    }
}

/* y[r, i] = x[r, i] * gelu(x[r, N + i]) for x [R, 2N], y [R, N]; packs along i when vec. */
template <typename T> __global__ void geglu_kernel(T *y, const T *x, int64_t R, int64_t N, int vec) {
    constexpr int P = sdc_pack<T>::N;
    const int64_t cols = vec ? N / P : N;
    SDC_ROWS_LOOP(r, R) {
        const T *xv = x + r * 2 * N, *xg = xv + N;
        T *yr = y + r * N;
        SDC_COLS_LOOP(c, cols) {
            if (vec) {
                float v[P], g[P];
                sdc_load_pack(xv + c * P, v);
                sdc_load_pack(xg + c * P, g);
#pragma unroll
                for (int i = 0; i < P; i++) v[i] *= gelu_erf(g[i]);
                sdc_store_pack(yr + c * P, v);
            } else {
                yr[c] = sdc_from_f<T>(sdc_to_f(xv[c]) * gelu_erf(sdc_to_f(xg[c])));
            }
        }
    }
}

/* --- launchers --- */

template <typename T, typename F> static void map1(sdc_backend *be, void *y, const void *x, int64_t n, F f) {
    if (n == 0) return;
    const int vec = sdc_aligned16(y) && sdc_aligned16(x);
    const int64_t items = vec ? n / sdc_pack<T>::N + 1 : n;
    map1_kernel<T, F><<<sdc_grid_1d(items, 256), 256, 0, sdc_cuda_stream(be)>>>((T *)y, (const T *)x, n, vec, f);
    SDC_CUDA_LAUNCHED(be);
}

extern "C" void sdc_cuda_unary(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, sdc_unary_op op) {
    assert(x->dtype == y->dtype);
    const unary_fn f = {(int)op};
    const int64_t n = sdc_tensor_nelem(x);
    SDC_FLOAT_DISPATCH(x->dtype, T, map1<T>(be, y->data, x->data, n, f));
}

extern "C" void sdc_cuda_scale(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, float s) {
    assert(x->dtype == y->dtype);
    const scale_fn f = {s};
    const int64_t n = sdc_tensor_nelem(x);
    SDC_FLOAT_DISPATCH(x->dtype, T, map1<T>(be, y->data, x->data, n, f));
}

/* Collapses a's dims (dropping those of size 1) into runs that are all broadcast in b or all not. */
static void collapse_bcast(const sdc_tensor *a, const sdc_tensor *b, bcast_geom *g) {
    int64_t n[4], flag[4];
    int nd = 0;
    for (int d = 0; d < 4; d++) {
        if (a->ne[d] == 1) continue;
        const int64_t f = b->ne[d] == 1;   // broadcast along d
        if (nd > 0 && flag[nd - 1] == f) {
            n[nd - 1] *= a->ne[d];
        } else {
            n[nd] = a->ne[d];
            flag[nd] = f;
            nd++;
        }
    }
    int64_t stride = 1;   // b's strides: its non-broadcast dims are contiguous in order
    for (int d = 3; d >= 0; d--) {
        g->n[d] = d < nd ? n[d] : 1;
        g->bs[d] = 0;
        if (d < nd && !flag[d]) {
            g->bs[d] = stride;
            stride *= n[d];
        }
    }
    g->nd = nd;
}

template <typename T>
static void binary_typed(sdc_backend *be, sdc_tensor *y, const sdc_tensor *a, const sdc_tensor *b, int op) {
    const int64_t n = sdc_tensor_nelem(a);
    if (n == 0) return;
    cudaStream_t s = sdc_cuda_stream(be);
    bcast_geom g;
    if (sdc_tensor_nelem(b) == n) {   // same shape: one flat map
        const int vec = sdc_aligned16(y->data) && sdc_aligned16(a->data) && sdc_aligned16(b->data);
        const int64_t items = vec ? n / sdc_pack<T>::N + 1 : n;
        const binary_fn f = {op};
        map2_kernel<T>
            <<<sdc_grid_1d(items, 256), 256, 0, s>>>((T *)y->data, (const T *)a->data, (const T *)b->data, n, vec, f);
    } else {
        collapse_bcast(a, b, &g);
        constexpr int P = sdc_pack<T>::N;
        const int packed = g.bs[g.nd - 1] == 1 && g.n[g.nd - 1] % P == 0 && sdc_aligned16(y->data) &&
            sdc_aligned16(a->data) && sdc_aligned16(b->data);
        if (packed && n <= (int64_t)UINT32_MAX)
            binary_bcast_kernel<T, uint32_t, P><<<sdc_grid_1d(n / P, 256), 256, 0, s>>>(
                (T *)y->data, (const T *)a->data, (const T *)b->data, (uint32_t)(n / P), g, op);
        else if (n <= (int64_t)UINT32_MAX)
            binary_bcast_kernel<T, uint32_t, 1><<<sdc_grid_1d(n, 256), 256, 0, s>>>(
                (T *)y->data, (const T *)a->data, (const T *)b->data, (uint32_t)n, g, op);
        else
            binary_bcast_kernel<T, int64_t, 1>
                <<<sdc_grid_1d(n, 256), 256, 0, s>>>((T *)y->data, (const T *)a->data, (const T *)b->data, n, g, op);
    }
    SDC_CUDA_LAUNCHED(be);
}

extern "C" void sdc_cuda_binary(sdc_backend *be, sdc_tensor *y, const sdc_tensor *a, const sdc_tensor *b,
                                sdc_binary_op op) {
    assert(a->dtype == y->dtype && b->dtype == y->dtype);
    SDC_FLOAT_DISPATCH(y->dtype, T, binary_typed<T>(be, y, a, b, (int)op));
}

template <typename T> static void geglu_typed(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x) {
    const int64_t N = y->ne[y->ndim - 1], R = sdc_tensor_rows(y);
    if (N == 0 || R == 0) return;
    const int vec = N % sdc_pack<T>::N == 0 && sdc_aligned16(y->data) && sdc_aligned16(x->data);
    const sdc_launch2d l = sdc_plan_rows(R, vec ? N / sdc_pack<T>::N : N);
    geglu_kernel<T><<<l.grid, l.block, 0, sdc_cuda_stream(be)>>>((T *)y->data, (const T *)x->data, R, N, vec);
    SDC_CUDA_LAUNCHED(be);
}

extern "C" void sdc_cuda_geglu(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x) {
    assert(x->dtype == y->dtype);
    SDC_FLOAT_DISPATCH(y->dtype, T, geglu_typed<T>(be, y, x));
}

/* --- rotary embedding: a thread per (row, item) of Q/2 pairs, Q = 2 (one pair) or a 16-byte pack (where each
 * head's pairs fill whole packs); each item is read before it is written --- */

template <typename T, int Q>
__global__ void rope_kernel(T *y, const T *x, const float *cs, const float *sn, int64_t R, int64_t T_len, int64_t items,
                            int64_t head_pairs) {
    SDC_ROWS_LOOP(r, R) {
        const float *c = cs + r % T_len * head_pairs, *s = sn + r % T_len * head_pairs;
        SDC_COLS_LOOP(k, items) {   // item k holds pairs k Q/2 ..., pair p being pair p % head_pairs of its head
            const int64_t e = (r * items + k) * Q, i0 = k * (Q / 2) % head_pairs;
            float v[Q], o[Q];
            if constexpr (Q == 2) {
                v[0] = sdc_to_f(x[e]);
                v[1] = sdc_to_f(x[e + 1]);
            } else {
                sdc_load_pack(x + e, v);
            }
#pragma unroll
            for (int j = 0; j < Q / 2; j++) {
                const float x0 = v[2 * j], x1 = v[2 * j + 1];
                o[2 * j] = x0 * c[i0 + j] - x1 * s[i0 + j];
                o[2 * j + 1] = x1 * c[i0 + j] + x0 * s[i0 + j];
            }
            if constexpr (Q == 2) {
                y[e] = sdc_from_f<T>(o[0]);
                y[e + 1] = sdc_from_f<T>(o[1]);
            } else {
                sdc_store_pack(y + e, o);
            }
        }
    }
}

template <typename T>
static void rope_typed(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *cs, const sdc_tensor *sn,
                       int n_heads) {
    constexpr int P = sdc_pack<T>::N;
    const int64_t R = sdc_tensor_rows(x), pairs = x->ne[2] / 2, head_pairs = pairs / n_heads;
    if (R == 0 || pairs == 0) return;
    cudaStream_t st = sdc_cuda_stream(be);
    const float *c = (const float *)cs->data, *s = (const float *)sn->data;
    if (head_pairs % (P / 2) == 0 && sdc_aligned16(y->data) && sdc_aligned16(x->data)) {
        const int64_t packs = pairs / (P / 2);
        const sdc_launch2d l = sdc_plan_rows(R, packs);
        rope_kernel<T, P>
            <<<l.grid, l.block, 0, st>>>((T *)y->data, (const T *)x->data, c, s, R, x->ne[1], packs, head_pairs);
    } else {
        const sdc_launch2d l = sdc_plan_rows(R, pairs);
        rope_kernel<T, 2>
            <<<l.grid, l.block, 0, st>>>((T *)y->data, (const T *)x->data, c, s, R, x->ne[1], pairs, head_pairs);
    }
    SDC_CUDA_LAUNCHED(be);
}

extern "C" void sdc_cuda_rope(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *cs,
                              const sdc_tensor *sn, int n_heads) {
    assert(x->dtype == y->dtype);
    SDC_FLOAT_DISPATCH(y->dtype, T, rope_typed<T>(be, y, x, cs, sn, n_heads));
}

/* --- gated residual: y = x + a g, g [B, C] broadcast over each batch's T rows --- */

template <typename T>
__global__ void add_gated_kernel(T *y, const T *x, const T *a, const T *g, int64_t R, int64_t T_len, int64_t cols,
                                 int64_t C, int vec) {
    constexpr int P = sdc_pack<T>::N;
    SDC_ROWS_LOOP(r, R) {
        const T *gr = g + r / T_len * C;
        SDC_COLS_LOOP(k, cols) {
            if (vec) {   // k: a pack of P channels
                float vx[P], va[P], vg[P];
                sdc_load_pack(x + r * C + k * P, vx);
                sdc_load_pack(a + r * C + k * P, va);
                sdc_load_pack(gr + k * P, vg);
#pragma unroll
                for (int i = 0; i < P; i++) vx[i] += va[i] * vg[i];
                sdc_store_pack(y + r * C + k * P, vx);
            } else {
                y[r * C + k] = sdc_from_f<T>(sdc_to_f(x[r * C + k]) + sdc_to_f(a[r * C + k]) * sdc_to_f(gr[k]));
            }
        }
    }
}

template <typename T>
static void add_gated_typed(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *a,
                            const sdc_tensor *g) {
    constexpr int P = sdc_pack<T>::N;
    const int64_t C = x->ne[2], R = sdc_tensor_rows(x);
    if (R == 0 || C == 0) return;
    const int vec = C % P == 0 && sdc_aligned16(y->data) && sdc_aligned16(x->data) && sdc_aligned16(a->data) &&
        sdc_aligned16(g->data);
    const int64_t cols = vec ? C / P : C;
    const sdc_launch2d l = sdc_plan_rows(R, cols);
    add_gated_kernel<T><<<l.grid, l.block, 0, sdc_cuda_stream(be)>>>(
        (T *)y->data, (const T *)x->data, (const T *)a->data, (const T *)g->data, R, x->ne[1], cols, C, vec);
    SDC_CUDA_LAUNCHED(be);
}

extern "C" void sdc_cuda_add_gated(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *a,
                                   const sdc_tensor *g) {
    assert(x->dtype == y->dtype && a->dtype == y->dtype && g->dtype == y->dtype);
    SDC_FLOAT_DISPATCH(y->dtype, T, add_gated_typed<T>(be, y, x, a, g));
}
