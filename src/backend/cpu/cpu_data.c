/* cpu_data.c - data movement: embedding lookup, nearest upsampling, concat, slice, permute, dtype
 * copy and zero padding. Exact by construction (copies only), split over threads by output rows. */
#include <string.h>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_ref.h"

#define PAR(work) num_threads(be->n_threads) schedule(static) if ((work) >= SDC_CPU_PAR_MIN)

void sdc_cpu_embedding(sdc_backend *be, sdc_tensor *y, const sdc_tensor *table, const sdc_tensor *ids) {
    assert(ids->dtype == SDC_DTYPE_I32);
    const int64_t T = sdc_tensor_nelem(ids), V = table->ne[0], C = table->ne[1];
    const int32_t *id = ids->data;          // [T]
    const float *td = sdc_cpu_f32(table);   // [V, C]
    float *yd = sdc_cpu_f32(y);             // [T, C]
#pragma omp parallel for PAR(T *C)
    for (int64_t t = 0; t < T; t++) {
        assert(id[t] >= 0 && id[t] < V);
        memcpy(yd + t * C, td + (int64_t)id[t] * C, (size_t)C * sizeof(float));
    }
}

void sdc_cpu_upsample2x(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x) {
    const int64_t P = x->ne[0] * x->ne[1], H = x->ne[2], W = x->ne[3];
    const float *xd = sdc_cpu_f32(x);   // [P, H, W]
    float *yd = sdc_cpu_f32(y);         // [P, 2H, 2W]
#pragma omp parallel for PAR(P *H *W * 4)
    for (int64_t r = 0; r < P * 2 * H; r++) {   // output row r of plane r / 2H
        const float *src = xd + (r / (2 * H) * H + r % (2 * H) / 2) * W;
        float *dst = yd + r * 2 * W;
        for (int64_t w = 0; w < 2 * W; w++) dst[w] = src[w / 2];
    }
}

/* n_blocks copies of block elements: dst[i * dst_stride ...] = src[i * src_stride ...]. */
static void copy_blocks(sdc_backend *be, float *dst, int64_t dst_stride, const float *src, int64_t src_stride,
                        int64_t n_blocks, int64_t block) {
#pragma omp parallel for PAR(n_blocks *block)
    for (int64_t i = 0; i < n_blocks; i++)
        memcpy(dst + i * dst_stride, src + i * src_stride, (size_t)block * sizeof(float));
}

/* Elements of t after dimension dim (t is 4-D with unused trailing dims 1). */
static int64_t inner_after(const sdc_tensor *t, int dim) {
    int64_t n = 1;
    for (int d = dim + 1; d < SDC_MAX_DIMS; d++) n *= t->ne[d];
    return n;
}

static int64_t outer_before(const sdc_tensor *t, int dim) {
    int64_t n = 1;
    for (int d = 0; d < dim; d++) n *= t->ne[d];
    return n;
}

void sdc_cpu_concat(sdc_backend *be, sdc_tensor *y, const sdc_tensor *a, const sdc_tensor *b, int dim) {
    // y[outer, na + nb, inner] = a[outer, na, inner] ++ b[outer, nb, inner]
    const int64_t outer = outer_before(y, dim), inner = inner_after(y, dim);
    const int64_t la = a->ne[dim] * inner, lb = b->ne[dim] * inner;
    float *yd = sdc_cpu_f32(y);
    copy_blocks(be, yd, la + lb, sdc_cpu_f32(a), la, outer, la);
    copy_blocks(be, yd + la, la + lb, sdc_cpu_f32(b), lb, outer, lb);
}

void sdc_cpu_slice(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, int dim, int64_t start) {
    // y[outer, n, inner] = x[outer, start : start + n, inner]
    const int64_t outer = outer_before(y, dim), inner = inner_after(y, dim);
    copy_blocks(be, sdc_cpu_f32(y), y->ne[dim] * inner, sdc_cpu_f32(x) + start * inner, x->ne[dim] * inner, outer,
                y->ne[dim] * inner);
}

/* The same permutation on fewer, larger dims: size-1 dims dropped, and x dims that stay adjacent
 * and in order in y merged into one. Left-padded with size-1 dims to 4. */
static void permute_canonical(const int64_t *xne, const int perm[4], int64_t cne[4], int cperm[4]) {
    int rank[4], n_kept = 0;   // rank of each kept x dim among the kept dims
    for (int d = 0; d < 4; d++) rank[d] = xne[d] == 1 ? -1 : n_kept++;
    int yr[4] = {0}, n = 0;   // kept dims in y order, as x ranks
    for (int i = 0; i < 4; i++)
        if (rank[perm[i]] >= 0) yr[n++] = rank[perm[i]];
    int64_t rne[4] = {1, 1, 1, 1};   // x shape over kept dims, in rank order
    for (int d = 0; d < 4; d++)
        if (rank[d] >= 0) rne[rank[d]] = xne[d];
    int group_of_rank[4] = {0}, first_rank[4] = {0}, n_groups = 0;
    for (int i = 0; i < n; i++) {   // runs of consecutive x ranks in y order
        if (i == 0 || yr[i] != yr[i - 1] + 1) first_rank[n_groups++] = yr[i];
        group_of_rank[yr[i]] = n_groups - 1;
    }
    int64_t gne[4] = {1, 1, 1, 1};
    int xpos[4] = {0}, n_x = 0;   // groups in x order
    for (int r = 0; r < n; r++) {
        const int g = group_of_rank[r];
        if (r == first_rank[g]) xpos[g] = n_x++;
        gne[xpos[g]] *= rne[r];
    }
    const int pad = 4 - n_groups;
    for (int d = 0; d < 4; d++) {
        cne[d] = d < pad ? 1 : gne[d - pad];
        cperm[d] = d < pad ? d : pad + xpos[d - pad];
    }
}

void sdc_cpu_permute(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const int perm[4]) {
    int64_t ne[4];   // canonical x shape
    int p[4];        // canonical permutation
    permute_canonical(x->ne, perm, ne, p);
    const int64_t xs[4] = {ne[1] * ne[2] * ne[3], ne[2] * ne[3], ne[3], 1};     // x strides
    const int64_t s0 = xs[p[0]], s1 = xs[p[1]], s2 = xs[p[2]], s3 = xs[p[3]];   // along y's dims
    const int64_t n1 = ne[p[1]], n2 = ne[p[2]], n3 = ne[p[3]], rows = ne[p[0]] * n1 * n2;
    const float *xd = sdc_cpu_f32(x);
    float *yd = sdc_cpu_f32(y);   // y[i0, i1, i2, i3] = x at i0*s0 + i1*s1 + i2*s2 + i3*s3
#pragma omp parallel for PAR(rows *n3)
    for (int64_t r = 0; r < rows; r++) {
        const int64_t i2 = r % n2, i1 = r / n2 % n1, i0 = r / (n2 * n1);
        const float *src = xd + i0 * s0 + i1 * s1 + i2 * s2;
        float *dst = yd + r * n3;
        if (s3 == 1)
            memcpy(dst, src, (size_t)n3 * sizeof(float));
        else
            for (int64_t i3 = 0; i3 < n3; i3++) dst[i3] = src[i3 * s3];
    }
}

void sdc_cpu_copy(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x) {
    const int64_t n = sdc_tensor_nelem(x), chunk = 16384, n_chunks = (n + chunk - 1) / chunk;
    const size_t xsz = sdc_dtype_size(x->dtype), ysz = sdc_dtype_size(y->dtype);
    if (sdc_dtype_is_quant(x->dtype)) {   // a block-quantized weight to floats: the reference's row loop
        sdc_cpu_ref_copy(be, y, x);
        return;
    }
    /* same dtype, or F32 to / from F16 and BF16 */
    assert(x->dtype == y->dtype || x->dtype == SDC_DTYPE_F32 || y->dtype == SDC_DTYPE_F32);
    assert(sdc_dtype_is_compute(x->dtype) && sdc_dtype_is_compute(y->dtype));
    assert((x->dtype == SDC_DTYPE_I32) == (y->dtype == SDC_DTYPE_I32));
#pragma omp parallel for PAR(n)
    for (int64_t c = 0; c < n_chunks; c++) {
        const int64_t i0 = c * chunk, len = n - i0 < chunk ? n - i0 : chunk;
        const unsigned char *src = (const unsigned char *)x->data + (size_t)i0 * xsz;
        unsigned char *dst = (unsigned char *)y->data + (size_t)i0 * ysz;
        int rc = 0;
        if (x->dtype == y->dtype)
            memcpy(dst, src, (size_t)len * xsz);
        else if (x->dtype == SDC_DTYPE_F32)
            rc = sdc_convert_from_f32(dst, y->dtype, (const float *)src, (size_t)len);
        else
            rc = sdc_convert_to_f32((float *)dst, src, x->dtype, (size_t)len);
        assert(rc == 0);
        (void)rc;
    }
}

void sdc_cpu_pad2d(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, int top, int bottom, int left, int right) {
    const int64_t P = x->ne[0] * x->ne[1], H = x->ne[2], W = x->ne[3];
    const int64_t Ho = y->ne[2], Wo = y->ne[3];
    const float *xd = sdc_cpu_f32(x);   // [P, H, W]
    float *yd = sdc_cpu_f32(y);         // [P, top + H + bottom, left + W + right]
#pragma omp parallel for PAR(P *Ho *Wo)
    for (int64_t r = 0; r < P * Ho; r++) {   // output row r % Ho of plane r / Ho
        const int64_t h = r % Ho - top;
        float *dst = yd + r * Wo;
        if (h < 0 || h >= H) {
            memset(dst, 0, (size_t)Wo * sizeof(float));
            continue;
        }
        memset(dst, 0, (size_t)left * sizeof(float));
        memcpy(dst + left, xd + (r / Ho * H + h) * W, (size_t)W * sizeof(float));
        memset(dst + left + W, 0, (size_t)right * sizeof(float));
    }
}
