/* test_cuda_quant.c - the CUDA backend on block-quantized weights (GGUF's types, core/quant.h), every block
 * type, in f32, f16 and bf16:
 *
 *  1. dequantization (sdc_cuda_dequant_rows, and the copy op that uses it) on random blocks (random bytes,
 *     every f16 field redrawn until finite, as tools/make_quant_fixtures.py makes them) against
 *     sdc_dequant_row on the host: bit for bit, in F32 and against the host's f32 rounded to F16 / BF16
 *     (max |diff| bound 0, and no differing bits); the copy op on the CPU backends too.
 *  2. linear with a quantized weight at M = 1, 77, 129, 200, 4096; K = 64 .. 12288; N = 258 .. 12288 (tails of
 *     the fused kernel's 128 x 256 tiles included), against "dequantize with sdc_dequant_row, then the GEMM in
 *     double" (on every sub-th row of x for the large case): relative error <= 1e-5 with f32 activations,
 *     2e-3 f16, 1e-2 bf16 (issue 11 asks 2e-3 in bf16 too: printed, not checked: bf16's rounding of the inputs
 *     alone is about that). Also: bit-identical run to run, output fully written (it starts as NaN), the
 *     workspace the op holds equals its linear_workspace query and the counting backend's count (0 for the
 *     fused kernel), and all of it is released; the result against dequantizing the whole weight (copy) then
 *     one GEMM: bit-identical where the dequantize path runs one chunk, else the max |diff| is printed. Where
 *     the fused kernel (sm90/linear_wgmma.cu) runs: against the dequantize path (forced), max |diff| printed
 *     and each within the bound above; and a token alone (M = 1) gives the same bits as inside the call.
 *  3. speed, printed: linear on a quantized weight (fused where it applies, and forced through the dequantize
 *     path) against the same linear on the weight dequantized to bf16 beforehand, on Flux's shapes, and the
 *     whole-weight dequantization alone. Issue 11's target: Q8_0 / Q4_0 at <= 1.0x bf16.
 * It needs a GPU: without one it fails. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_ref.h"
#include "backend/cuda/cuda_internal.h"
#include "backend/ops.h"
#include "core/quant.h"
#include "test_util.h"

/* every block type, with the byte offsets of its f16 fields */
typedef struct qtype {
    sdc_dtype dt;
    int n_f16, f16_off[2];
} qtype;

static const qtype qtypes[] = {
    {SDC_DTYPE_Q4_0, 1, {0}},    {SDC_DTYPE_Q4_1, 2, {0, 2}},   {SDC_DTYPE_Q5_0, 1, {0}},   {SDC_DTYPE_Q5_1, 2, {0, 2}},
    {SDC_DTYPE_Q8_0, 1, {0}},    {SDC_DTYPE_Q2_K, 2, {80, 82}}, {SDC_DTYPE_Q3_K, 1, {108}}, {SDC_DTYPE_Q4_K, 2, {0, 2}},
    {SDC_DTYPE_Q5_K, 2, {0, 2}}, {SDC_DTYPE_Q6_K, 1, {208}},    {SDC_DTYPE_IQ4_NL, 1, {0}}, {SDC_DTYPE_IQ4_XS, 1, {0}},
};
#define N_QTYPES (sizeof qtypes / sizeof qtypes[0])
_Static_assert(N_QTYPES == SDC_DTYPE_COUNT - SDC_DTYPE_FIRST_QUANT, "every block type tested");

static const qtype *qtype_of(sdc_dtype dt) {
    for (size_t i = 0; i < N_QTYPES; i++)
        if (qtypes[i].dt == dt) return &qtypes[i];
    return NULL;
}

static const sdc_dtype acts[] = {SDC_DTYPE_F32, SDC_DTYPE_F16, SDC_DTYPE_BF16};

static uint64_t next_u64(uint64_t *s) {   // xorshift64*
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

/* Rows [rows, K] of q's blocks: random bytes; each f16 field finite over its whole range (scale 0) or
 * +-U(0.25, 1) * scale (the linear tests take 2^-10: weights of at most a few units whatever the type, so
 * that outputs stay well inside f16's range and above its subnormals). */
static uint8_t *random_blocks(const qtype *q, int64_t rows, int64_t K, uint64_t seed, float scale) {
    const size_t bb = sdc_dtype_block_bytes(q->dt), nb = (size_t)(rows * (K / sdc_dtype_block(q->dt)));
    uint8_t *p = malloc(nb * bb);
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < nb * bb; i += 8) {
        uint64_t v = next_u64(&s);
        for (size_t k = 0; k < 8 && i + k < nb * bb; k++) p[i + k] = (uint8_t)(v >> (8 * k));
    }
    for (size_t b = 0; b < nb; b++) {
        for (int f = 0; f < q->n_f16; f++) {
            uint16_t h;
            if (scale > 0) {
                const uint64_t v = next_u64(&s);
                const float u = 0.25f + 0.75f * (float)(v >> 40) / (float)(1 << 24);
                h = sdc_f32_to_f16((v & 1) ? -u * scale : u * scale);
            } else {
                do h = (uint16_t)next_u64(&s);
                while (((h >> 10) & 0x1f) == 0x1f);   // exponent all ones: inf or NaN
            }
            p[b * bb + (size_t)q->f16_off[f]] = (uint8_t)(h & 0xff);
            p[b * bb + (size_t)q->f16_off[f] + 1] = (uint8_t)(h >> 8);
        }
    }
    return p;
}

/* sdc_dequant_row over each of rows rows of K elements */
static float *host_dequant(sdc_dtype dt, const uint8_t *blocks, int64_t rows, int64_t K) {
    float *w = malloc((size_t)(rows * K) * sizeof(float));
    const size_t rb = sdc_dtype_row_bytes(dt, K);
    int rc = 0;
    for (int64_t r = 0; r < rows; r++) rc |= sdc_dequant_row(dt, blocks + (size_t)r * rb, w + r * K, K);
    if (rc) test_check(0, "sdc_dequant_row(%s) refuses K = %lld", sdc_dtype_name(dt), (long long)K);
    return w;
}

static sdc_tensor *tensor2(sdc_backend *be, sdc_mem_kind kind, sdc_dtype dt, int64_t d0, int64_t d1) {
    const int64_t ne[2] = {d0, d1};
    return sdc_tensor_new(be, kind, dt, d1 ? 2 : 1, ne);
}

static void fill_nan(sdc_tensor *t) {   // all-ones bytes: NaN in f32, f16 and bf16
    void *p = malloc(t->nbytes);
    memset(p, 0xff, t->nbytes);
    sdc_tensor_set_raw(t, p);
    free(p);
}

static uint32_t bits_of(const void *p, sdc_dtype dt, size_t i) {
    if (dt == SDC_DTYPE_F32) {
        uint32_t u;
        memcpy(&u, (const char *)p + i * 4, 4);
        return u;
    }
    return ((const uint16_t *)p)[i];
}

static float value_of(const void *p, sdc_dtype dt, size_t i) {
    const uint32_t u = bits_of(p, dt, i);
    if (dt == SDC_DTYPE_F16) return sdc_f16_to_f32((uint16_t)u);
    if (dt == SDC_DTYPE_BF16) return sdc_bf16_to_f32((uint16_t)u);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Compares raw[n] of dtype dt with the host's f32 values rounded to dt: bit for bit. Returns the max |diff|
 * (inf where one side is not finite and they differ) and counts the differing elements. */
static double compare_rounded(const void *raw, sdc_dtype dt, const float *want, size_t n, size_t *n_diff) {
    void *ref = malloc(n * sdc_dtype_size(dt));
    sdc_convert_from_f32(ref, dt, want, n);
    double max = 0;
    *n_diff = 0;
    for (size_t i = 0; i < n; i++) {
        if (bits_of(raw, dt, i) == bits_of(ref, dt, i)) continue;
        ++*n_diff;
        double d = fabs((double)value_of(raw, dt, i) - (double)value_of(ref, dt, i));
        max = isnan(d) || d > max ? (isnan(d) ? INFINITY : d) : max;
    }
    free(ref);
    return max;
}

/* --- 1. dequantization --- */

static void check_dequant(const char *what, const void *raw, sdc_dtype dt, const float *want, size_t n) {
    size_t n_diff;
    const double max = compare_rounded(raw, dt, want, n, &n_diff);
    test_check_err(what, "max |device - host|", max, 0);
    test_check(n_diff == 0, "%s: %zu of %zu elements differ in their bits", what, n_diff, n);
}

static void test_dequant(sdc_backend *cuda, sdc_backend *cpu, sdc_backend *ref) {
    static const int64_t shapes[][2] = {{64, 4096}, {3, 256}, {1, 512}};   // rows, K
    for (size_t t = 0; t < N_QTYPES; t++) {
        const qtype *q = &qtypes[t];
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const int64_t rows = shapes[s][0], K = shapes[s][1];
            const size_t n = (size_t)(rows * K);
            uint8_t *blocks = random_blocks(q, rows, K, 100 + t * 8 + s, 0.0f);
            float *want = host_dequant(q->dt, blocks, rows, K);
            sdc_tensor *w = tensor2(cuda, SDC_MEM_WEIGHTS, q->dt, rows, K);
            sdc_tensor_set_raw(w, blocks);
            for (size_t a = 0; a < 3; a++) {
                sdc_tensor *y = tensor2(cuda, SDC_MEM_ACTIVATIONS, acts[a], rows, K);
                fill_nan(y);
                sdc_cuda_dequant_rows(cuda, q->dt, w->data, acts[a], y->data, rows, K);
                test_check(sdc_backend_sync(cuda) == SDC_OK, "dequant %s: status ok", sdc_dtype_name(q->dt));
                void *raw = malloc(y->nbytes);
                cuda->iface->download(cuda, raw, y->data, y->nbytes);
                char what[160];
                snprintf(what, sizeof what, "dequant %s [%lld, %lld] -> %s", sdc_dtype_name(q->dt), (long long)rows,
                         (long long)K, sdc_dtype_name(acts[a]));
                check_dequant(what, raw, acts[a], want, n);
                if (s == 0) {   // the copy op takes the same path
                    fill_nan(y);
                    sdc_copy(y, w);
                    test_check(sdc_backend_sync(cuda) == SDC_OK, "copy %s: status ok", sdc_dtype_name(q->dt));
                    cuda->iface->download(cuda, raw, y->data, y->nbytes);
                    snprintf(what, sizeof what, "cuda copy %s -> %s", sdc_dtype_name(q->dt), sdc_dtype_name(acts[a]));
                    check_dequant(what, raw, acts[a], want, n);
                }
                free(raw);
                sdc_tensor_free(y);
            }
            sdc_tensor_free(w);
            for (int b = 0; b < 2 && s == 0; b++) {   // the CPU backends' copy: F32 and F16
                sdc_backend *be = b ? ref : cpu;
                sdc_tensor *wc = tensor2(be, SDC_MEM_WEIGHTS, q->dt, rows, K);
                sdc_tensor_set_raw(wc, blocks);
                for (size_t a = 0; a < 2; a++) {
                    sdc_tensor *y = tensor2(be, SDC_MEM_ACTIVATIONS, acts[a], rows, K);
                    fill_nan(y);
                    sdc_copy(y, wc);
                    char what[160];
                    snprintf(what, sizeof what, "%s copy %s -> %s", sdc_backend_name(be), sdc_dtype_name(q->dt),
                             sdc_dtype_name(acts[a]));
                    check_dequant(what, y->data, acts[a], want, n);
                    sdc_tensor_free(y);
                }
                sdc_tensor_free(wc);
            }
            free(want);
            free(blocks);
        }
    }
}

/* --- 2. linear --- */

typedef struct lcase {
    sdc_dtype dt;   // SDC_DTYPE_COUNT: every block type
    int64_t M, K, N;
    int bias;
    int sub;   // the reference computes every sub-th row of x
} lcase;

static const lcase lcases[] = {
    {SDC_DTYPE_COUNT, 77, 256, 3072, 1, 1},       // T5-like token count, one short row of blocks
    {SDC_DTYPE_COUNT, 1, 3072, 12288, 0, 1},      // a modulation vector, Flux's MLP width: several chunks
    {SDC_DTYPE_Q8_0, 4096, 3072, 12288, 1, 64},   // Flux at 1024^2: 4096 image tokens
    {SDC_DTYPE_Q4_0, 4096, 3072, 12288, 1, 64}, {SDC_DTYPE_Q4_K, 4096, 3072, 12288, 1, 64},
    {SDC_DTYPE_Q6_K, 77, 12288, 3072, 1, 1},   // the long-K direction (MLP out)
    {SDC_DTYPE_Q8_0, 200, 576, 392, 1, 1},     // the fused kernel's tails: M, N (256 + 136) and K (9 steps)
    {SDC_DTYPE_Q4_0, 129, 64, 258, 1, 1},      // one step of K, a last tile of 2 features
    {SDC_DTYPE_Q5_1, 130, 128, 264, 0, 1},     // the other 32-element types: once each
    {SDC_DTYPE_Q4_1, 130, 128, 264, 0, 1},      {SDC_DTYPE_Q5_0, 130, 128, 264, 0, 1},
    {SDC_DTYPE_IQ4_NL, 130, 128, 264, 1, 1},
};

static double bound_for(sdc_dtype act) { return act == SDC_DTYPE_F32 ? 1e-5 : act == SDC_DTYPE_F16 ? 2e-3 : 1e-2; }

/* ref[i, n] = sum_k x[i * sub, k] w[n, k] + b[n] in double, for every sub-th row of x */
static float *reference(const float *x, const float *w, const float *b, int64_t M, int64_t K, int64_t N, int sub) {
    const int64_t Ms = (M + sub - 1) / sub;
    float *r = malloc((size_t)(Ms * N) * sizeof(float));
    for (int64_t i = 0; i < Ms; i++) {
        const float *xr = x + i * sub * K;
        for (int64_t n = 0; n < N; n++) {
            const float *wr = w + n * K;
            double acc = b ? b[n] : 0.0;
            for (int64_t k = 0; k < K; k++) acc += (double)xr[k] * wr[k];
            r[i * N + n] = (float)acc;
        }
    }
    return r;
}

/* One linear on the given backend's tensors, y NaN first (so an element left unwritten shows); returns
 * the status and, in *ms, the op's time to its end on the device. */
static sdc_status run_linear(sdc_tensor *y, sdc_tensor *x, sdc_tensor *w, sdc_tensor *b, double *ms) {
    fill_nan(y);
    sdc_backend_sync(y->backend);
    const double t0 = test_now();
    sdc_linear(y, x, w, b);
    const sdc_status st = sdc_backend_sync(y->backend);
    if (ms) *ms = (test_now() - t0) * 1e3;
    return st;
}

/* The workspace the counting backend counts for this linear. */
static size_t counted_workspace(sdc_backend *cuda, const sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                                const sdc_tensor *b) {
    sdc_backend *cnt = sdc_backend_count_new(cuda);
    sdc_tensor *cx = sdc_tensor_new(cnt, SDC_MEM_ACTIVATIONS, x->dtype, x->ndim, x->ne);
    sdc_tensor *cw = sdc_tensor_new(cnt, SDC_MEM_WEIGHTS, w->dtype, w->ndim, w->ne);
    sdc_tensor *cb = b ? sdc_tensor_new(cnt, SDC_MEM_WEIGHTS, b->dtype, b->ndim, b->ne) : NULL;
    sdc_tensor *cy = sdc_tensor_new(cnt, SDC_MEM_ACTIVATIONS, y->dtype, y->ndim, y->ne);
    sdc_mem_stats_reset_peak(&cnt->stats);
    const size_t ws0 = cnt->stats.cur[SDC_MEM_WORKSPACE];
    sdc_linear(cy, cx, cw, cb);
    const size_t ws = cnt->stats.peak[SDC_MEM_WORKSPACE] - ws0;
    sdc_tensor_free(cx);
    sdc_tensor_free(cw);
    sdc_tensor_free(cb);
    sdc_tensor_free(cy);
    sdc_backend_free(cnt);
    return ws;
}

/* Where the fused kernel ran (y1: its output of the linear on tx (from x, host), tw, tb into ty; ref: the
 * reference rows): the dequantize path forced on the same operands is within the same bound of the
 * reference, and a token alone (a call of M = 1) gets the bits it had inside the call of M tokens. */
static void fused_checks(sdc_backend *cuda, const char *what, const float *x, sdc_tensor *tx, sdc_tensor *tw,
                         sdc_tensor *tb, sdc_tensor *ty, const float *y1, const float *ref, const lcase *c,
                         sdc_dtype act) {
    const int64_t M = c->M, K = c->K, N = c->N, Ms = (M + c->sub - 1) / c->sub;
    float *y4 = malloc((size_t)(M * N) * sizeof(float)), *got = malloc((size_t)(Ms * N) * sizeof(float));
    sdc_cuda_linear_force_dequant(1);
    const sdc_status st = run_linear(ty, tx, tw, tb, NULL);
    sdc_cuda_linear_force_dequant(0);
    sdc_tensor_get_f32(ty, y4);
    for (int64_t i = 0; i < Ms; i++) memcpy(got + i * N, y4 + i * c->sub * N, (size_t)N * sizeof(float));
    const double err = test_rel_err(got, ref, (size_t)(Ms * N));
    char w2[200];
    snprintf(w2, sizeof w2, "%s, dequantize path (forced)", what);
    test_check(st == SDC_OK, "%s: status %s", w2, sdc_status_str(st));
    test_check_err(w2, "rel err", err, bound_for(act));
    double max = 0;
    for (size_t i = 0; i < (size_t)(M * N); i++) {
        const double d = fabs((double)y1[i] - y4[i]);
        max = isnan(d) ? INFINITY : d > max ? d : max;
    }
    printf("    fused vs dequantize path: max |diff| %.3g\n", max);

    const int64_t r = M / 2;   // a token alone
    float *yr = malloc((size_t)N * sizeof(float));
    sdc_tensor *tx1 = tensor2(cuda, SDC_MEM_ACTIVATIONS, act, 1, K),
               *ty1 = tensor2(cuda, SDC_MEM_ACTIVATIONS, act, 1, N);
    sdc_tensor_set_f32(tx1, x + r * K);   // rounded to act as tx's row was
    const sdc_status st1 = run_linear(ty1, tx1, tw, tb, NULL);
    sdc_tensor_get_f32(ty1, yr);
    test_check(st1 == SDC_OK && memcmp(yr, y1 + r * N, (size_t)N * sizeof(float)) == 0,
               "%s: token %lld alone (M = 1) has the bits it has among %lld", what, (long long)r, (long long)M);
    sdc_tensor_free(tx1);
    sdc_tensor_free(ty1);
    free(yr), free(y4), free(got);
}

static void linear_case(sdc_backend *cuda, const qtype *q, const lcase *c, uint64_t seed) {
    const int64_t M = c->M, K = c->K, N = c->N, Ms = (M + c->sub - 1) / c->sub;
    printf("linear %s [%lld, %lld] x [%lld, %lld]^T%s\n", sdc_dtype_name(q->dt), (long long)M, (long long)K,
           (long long)N, (long long)K, c->bias ? " + b" : "");
    uint8_t *blocks = random_blocks(q, N, K, seed, 1.0f / 1024);
    float *wf = host_dequant(q->dt, blocks, N, K);   // [N, K]
    float *x = malloc((size_t)(M * K) * sizeof(float)), *b = c->bias ? malloc((size_t)N * sizeof(float)) : NULL;
    test_fill_normal(x, (size_t)(M * K), seed + 1, 1.0f);
    if (b) test_fill_normal(b, (size_t)N, seed + 2, 0.5f);
    double t0 = test_now();
    float *ref = reference(x, wf, b, M, K, N, c->sub);   // [Ms, N]
    printf("    reference %.1f s%s\n", test_now() - t0, c->sub > 1 ? " (every sub-th row)" : "");
    const size_t ny = (size_t)(M * N);
    float *y1 = malloc(ny * sizeof(float)), *y2 = malloc(ny * sizeof(float)), *y3 = malloc(ny * sizeof(float));
    float *got = malloc((size_t)(Ms * N) * sizeof(float));

    for (size_t a = 0; a < 3; a++) {
        const sdc_dtype act = acts[a];
        char what[160];
        snprintf(what, sizeof what, "linear %s M=%lld K=%lld N=%lld [%s]", sdc_dtype_name(q->dt), (long long)M,
                 (long long)K, (long long)N, sdc_dtype_name(act));
        const size_t start_total = cuda->stats.cur_total, ws_start = cuda->stats.cur[SDC_MEM_WORKSPACE];
        sdc_tensor *tx = tensor2(cuda, SDC_MEM_ACTIVATIONS, act, M, K);
        sdc_tensor *tw = tensor2(cuda, SDC_MEM_WEIGHTS, q->dt, N, K);
        sdc_tensor *tb = b ? tensor2(cuda, SDC_MEM_WEIGHTS, act, N, 0) : NULL;
        sdc_tensor *ty = tensor2(cuda, SDC_MEM_ACTIVATIONS, act, M, N);
        sdc_tensor_set_f32(tx, x);
        sdc_tensor_set_raw(tw, blocks);
        if (tb) sdc_tensor_set_f32(tb, b);

        const size_t query = cuda->iface->linear_workspace(cuda, ty, tx, tw);
        sdc_backend_sync(cuda);
        sdc_mem_stats_reset_peak(&cuda->stats);
        const sdc_status st1 = run_linear(ty, tx, tw, tb, NULL);
        const size_t ws_peak = cuda->stats.peak[SDC_MEM_WORKSPACE] - ws_start;
        sdc_tensor_get_f32(ty, y1);
        double ms = 0;
        const sdc_status st2 = run_linear(ty, tx, tw, tb, &ms);
        sdc_tensor_get_f32(ty, y2);
        test_check(st1 == SDC_OK && st2 == SDC_OK, "%s: status %s, %s (want ok)", what, sdc_status_str(st1),
                   sdc_status_str(st2));

        for (int64_t i = 0; i < Ms; i++) memcpy(got + i * N, y1 + i * c->sub * N, (size_t)N * sizeof(float));
        const double err = test_rel_err(got, ref, (size_t)(Ms * N));
        test_check_err(what, "rel err", err, bound_for(act));
        if (act == SDC_DTYPE_BF16)
            printf("    bf16 rel err %.2e against issue 11's 2e-3: %s\n", err, err <= 2e-3 ? "within" : "ABOVE");
        test_check(memcmp(y1, y2, ny * sizeof(float)) == 0, "%s: bit-identical run to run", what);

        const int fz = sdc_cuda_linear_wgmma_applies(act, q->dt, M, N, K);
        const int64_t chunk = query ? (int64_t)(query / ((size_t)K * sdc_dtype_size(act))) : N;
        const int64_t n_chunks = (N + chunk - 1) / chunk;
        if (fz)
            test_check(query == 0 && ws_peak == 0, "%s: fused kernel: no workspace (held %zu, query %zu)", what,
                       ws_peak, query);
        else
            test_check(query > 0 && ws_peak == query,
                       "%s: workspace held %zu = its query %zu (%lld chunks of %lld rows)", what, ws_peak, query,
                       (long long)n_chunks, (long long)chunk);
        test_check(query <= SDC_CUDA_LINEAR_WORKSPACE_BYTES, "%s: workspace %.1f MiB within the fixed %.0f MiB", what,
                   query / 1048576.0, SDC_CUDA_LINEAR_WORKSPACE_BYTES / 1048576.0);
        const size_t counted = counted_workspace(cuda, ty, tx, tw, tb);
        test_check(counted == query, "%s: the counting backend counts %zu bytes of workspace (query %zu)", what,
                   counted, query);

        // dequantize the whole weight, then one GEMM
        sdc_tensor *twd = tensor2(cuda, SDC_MEM_WEIGHTS, act, N, K);
        sdc_copy(twd, tw);
        const sdc_status st3 = run_linear(ty, tx, twd, tb, NULL);
        sdc_tensor_get_f32(ty, y3);
        size_t n_diff = 0;
        double max = 0;
        for (size_t i = 0; i < ny; i++) {
            if (memcmp(&y1[i], &y3[i], sizeof(float)) == 0) continue;
            n_diff++;
            const double d = fabs((double)y1[i] - y3[i]);
            max = isnan(d) ? INFINITY : d > max ? d : max;
        }
        test_check(st3 == SDC_OK, "%s: dequantize-all + one GEMM ran", what);
        if (fz) {
            printf("    fused kernel vs dequantize-all + one GEMM: max |diff| %.3g, %zu of %zu elements differ\n", max,
                   n_diff, ny);
            fused_checks(cuda, what, x, tx, tw, tb, ty, y1, ref, c, act);
        } else if (n_chunks == 1)
            test_check(n_diff == 0, "%s: one chunk: identical to dequantize-all + one GEMM (%zu of %zu differ)", what,
                       n_diff, ny);
        else
            printf("    %lld chunks vs dequantize-all + one GEMM: max |diff| %.3g, %zu of %zu elements differ%s\n",
                   (long long)n_chunks, max, n_diff, ny, n_diff ? "" : " (bit-identical)");
        printf("    time: cuda %.3f ms (second run)\n", ms);

        sdc_tensor_free(twd);
        sdc_tensor_free(tx);
        sdc_tensor_free(tw);
        sdc_tensor_free(tb);
        sdc_tensor_free(ty);
        test_check(cuda->stats.cur_total == start_total && cuda->stats.cur[SDC_MEM_WORKSPACE] == ws_start,
                   "%s: memory counters back at start, workspace released", what);
    }
    free(got);
    free(y1);
    free(y2);
    free(y3);
    free(ref);
    free(x);
    free(b);
    free(wf);
    free(blocks);
}

static void test_linear(sdc_backend *cuda) {
    for (size_t i = 0; i < sizeof lcases / sizeof lcases[0]; i++) {
        const lcase *c = &lcases[i];
        for (size_t t = 0; t < N_QTYPES; t++)
            if (c->dt == SDC_DTYPE_COUNT || c->dt == qtypes[t].dt) linear_case(cuda, &qtypes[t], c, 7000 + i * 64 + t);
    }
}

/* --- 3. speed --- */

/* ms per call of sdc_linear(y, x, w, NULL), after warm-up */
static double time_linear(sdc_tensor *y, sdc_tensor *x, sdc_tensor *w, int iters) {
    for (int i = 0; i < 3; i++) sdc_linear(y, x, w, NULL);
    sdc_backend_sync(y->backend);
    const double t0 = test_now();
    for (int i = 0; i < iters; i++) sdc_linear(y, x, w, NULL);
    sdc_backend_sync(y->backend);
    return (test_now() - t0) * 1e3 / iters;
}

static void test_speed(sdc_backend *cuda) {
    static const sdc_dtype types[] = {SDC_DTYPE_Q8_0, SDC_DTYPE_Q4_0, SDC_DTYPE_Q4_K};
    /* Flux's linears at 1024^2 (4096 image tokens) and 512^2 (1536 tokens: single blocks; 1024 image and 512
     * text tokens: double blocks), and a modulation (one row) */
    static const int64_t shapes[][3] = {{4096, 3072, 12288}, {1536, 3072, 12288}, {1536, 3072, 21504},
                                        {1536, 15360, 3072}, {1024, 3072, 3072},  {512, 3072, 9216},
                                        {1024, 12288, 3072}, {1, 3072, 18432}};   // M, K, N
    const sdc_dtype act = SDC_DTYPE_BF16;
    printf("speed: bf16 activations (issue 11's target: Q8_0 and Q4_0 <= 1.0x bf16); ms per call\n");
    printf("    %-6s %5s %5s %5s | %8s %8s %8s | %6s %6s | %s\n", "type", "M", "K", "N", "quant", "dequant", "bf16 w",
           "q/bf16", "dq/bf16", "whole-weight dequant");
    for (size_t m = 0; m < sizeof shapes / sizeof shapes[0]; m++) {
        const int64_t M = shapes[m][0], K = shapes[m][1], N = shapes[m][2];
        float *x = malloc((size_t)(M * K) * sizeof(float));
        test_fill_normal(x, (size_t)(M * K), 99, 1.0f);
        sdc_tensor *tx = tensor2(cuda, SDC_MEM_ACTIVATIONS, act, M, K);
        sdc_tensor *ty = tensor2(cuda, SDC_MEM_ACTIVATIONS, act, M, N);
        sdc_tensor_set_f32(tx, x);
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
            const qtype *q = qtype_of(types[t]);
            uint8_t *blocks = random_blocks(q, N, K, 500 + t, 1.0f / 1024);
            sdc_tensor *tw = tensor2(cuda, SDC_MEM_WEIGHTS, q->dt, N, K);
            sdc_tensor *twd = tensor2(cuda, SDC_MEM_WEIGHTS, act, N, K);
            sdc_tensor_set_raw(tw, blocks);
            sdc_copy(twd, tw);
            const int iters = M == 1 ? 100 : 20;
            const int fz = sdc_cuda_linear_wgmma_applies(act, q->dt, M, N, K);
            const double tq = time_linear(ty, tx, tw, iters), tb = time_linear(ty, tx, twd, iters);
            double tdq = tq;
            if (fz) {
                sdc_cuda_linear_force_dequant(1);
                tdq = time_linear(ty, tx, tw, iters);
                sdc_cuda_linear_force_dequant(0);
            }
            for (int i = 0; i < 3; i++) sdc_copy(twd, tw);
            sdc_backend_sync(cuda);
            double t0 = test_now();
            for (int i = 0; i < iters; i++) sdc_copy(twd, tw);
            sdc_backend_sync(cuda);
            const double td = (test_now() - t0) * 1e3 / iters, gb = (double)(tw->nbytes + twd->nbytes) / 1e9;
            printf("    %-6s %5lld %5lld %5lld | %8.3f %8.3f %8.3f | %6.3f %6.3f | %.3f ms (%.0f GB/s)%s\n",
                   sdc_dtype_name(q->dt), (long long)M, (long long)K, (long long)N, tq, tdq, tb, tq / tb, tdq / tb, td,
                   gb / (td * 1e-3), fz ? "" : "  (no fused kernel)");
            test_check(sdc_backend_sync(cuda) == SDC_OK, "speed %s M=%lld: status ok", sdc_dtype_name(q->dt),
                       (long long)M);
            sdc_tensor_free(tw);
            sdc_tensor_free(twd);
            free(blocks);
        }
        sdc_tensor_free(tx);
        sdc_tensor_free(ty);
        free(x);
    }
}

/* conv2d with a block-quantized weight (a GGUF UNet's) equals conv2d with the same weight stored dequantized,
 * bit for bit (the op dequantizes it whole into a workspace, counted by its query), for a 3x3 and a 1x1 conv. */
static void test_conv(sdc_backend *cuda) {
    printf("conv2d on block-quantized weights\n");
    static const sdc_dtype types[] = {SDC_DTYPE_Q8_0, SDC_DTYPE_Q4_K};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (int k = 3; k >= 1; k -= 2)
            for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
                const qtype *q = qtype_of(types[t]);
                const sdc_dtype act = acts[a];
                const int64_t B = 2, Ci = 256, H = 16, W = 16, Co = 64, K = Ci * k * k;
                uint8_t *blocks = random_blocks(q, Co, K, 900 + t * 4 + (uint64_t)k, 1.0f / 256);
                float *wf = host_dequant(types[t], blocks, Co, K);
                float *xh = malloc(sizeof(float) * (size_t)(B * Ci * H * W));
                test_fill_normal(xh, (size_t)(B * Ci * H * W), 77 + (uint64_t)k, 1.0f);
                const int64_t xne[4] = {B, Ci, H, W}, wne[4] = {Co, Ci, k, k}, yne[4] = {B, Co, H, W};
                sdc_tensor *x = sdc_tensor_new(cuda, SDC_MEM_ACTIVATIONS, act, 4, xne);
                /* a block type's kernel is made as rows of whole blocks [Co, Ci*k*k] and viewed 4-D, as the
                 * loader keeps a GGUF's flattened kernel */
                sdc_tensor *wq = sdc_tensor_new(cuda, SDC_MEM_WEIGHTS, types[t], 2, (int64_t[]){Co, K});
                if (wq) {
                    wq->ndim = 4;
                    memcpy(wq->ne, wne, sizeof wne);
                }
                sdc_tensor *wd = sdc_tensor_new(cuda, SDC_MEM_WEIGHTS, act, 4, wne);
                sdc_tensor *y1 = sdc_tensor_new(cuda, SDC_MEM_ACTIVATIONS, act, 4, yne);
                sdc_tensor *y2 = sdc_tensor_new(cuda, SDC_MEM_ACTIVATIONS, act, 4, yne);
                char what[96];
                snprintf(what, sizeof what, "conv2d %dx%d %s weight [%s]", k, k, sdc_dtype_name(types[t]),
                         sdc_dtype_name(act));
                if (x && wq && wd && y1 && y2) {
                    sdc_tensor_set_f32(x, xh);
                    sdc_tensor_set_raw(wq, blocks);
                    sdc_tensor_set_f32(wd, wf);
                    fill_nan(y1);
                    fill_nan(y2);
                    const size_t ws0 = cuda->stats.peak[SDC_MEM_WORKSPACE];
                    cuda->stats.peak[SDC_MEM_WORKSPACE] = cuda->stats.cur[SDC_MEM_WORKSPACE];
                    const size_t before = cuda->stats.cur[SDC_MEM_WORKSPACE];
                    sdc_conv2d(y1, x, wq, NULL, 1, k / 2);
                    const size_t held = cuda->stats.peak[SDC_MEM_WORKSPACE] - before;
                    sdc_conv2d(y2, x, wd, NULL, 1, k / 2);
                    const sdc_status st = sdc_backend_sync(cuda);
                    const size_t n = (size_t)sdc_tensor_nelem(y1);
                    float *h1 = malloc(n * sizeof(float)), *h2 = malloc(n * sizeof(float));
                    sdc_tensor_get_f32(y1, h1);
                    sdc_tensor_get_f32(y2, h2);
                    size_t diff = 0;
                    for (size_t i = 0; i < n; i++) diff += memcmp(&h1[i], &h2[i], sizeof(float)) != 0;
                    test_check(st == SDC_OK && diff == 0, "%s: equals the dequantized weight's conv: %zu of %zu differ",
                               what, diff, n);
                    const size_t query = cuda->iface->conv2d_workspace(cuda, y1, x, wq, 1, k / 2);
                    test_check(held == query, "%s: workspace held %zu = its query %zu", what, held, query);
                    cuda->stats.peak[SDC_MEM_WORKSPACE] =
                        ws0 > cuda->stats.peak[SDC_MEM_WORKSPACE] ? ws0 : cuda->stats.peak[SDC_MEM_WORKSPACE];
                    free(h1), free(h2);
                } else {
                    test_check(0, "%s: tensors", what);
                }
                sdc_tensor_free(x), sdc_tensor_free(wq), sdc_tensor_free(wd), sdc_tensor_free(y1), sdc_tensor_free(y2);
                free(blocks), free(wf), free(xh);
            }
}

int main(void) {
    setenv("SDC_CUDA_FUSED_QUANT", "1", 1);   // the fused kernel is opt-in (cuda_gemm.cu)
    sdc_backend *cuda = sdc_backend_new(SDC_DEVICE_CUDA, 0, test_logger());
    if (!test_check(cuda != NULL, "CUDA backend created (this test needs an NVIDIA GPU and driver)"))
        return test_finish();
    sdc_backend *cpu = sdc_backend_cpu_new(2, test_logger()), *ref = sdc_backend_cpu_ref_new(test_logger());
    const size_t start = cuda->stats.cur_total;
    const double t0 = test_now();
    test_check(cuda->iface->linear_workspace != NULL, "the CUDA backend answers linear_workspace");
    test_dequant(cuda, cpu, ref);
    test_linear(cuda);
    test_conv(cuda);
    test_speed(cuda);
    test_check(cuda->stats.cur_total == start && cpu->stats.cur_total == 0 && ref->stats.cur_total == 0,
               "all tensors freed (cuda: %zu bytes beyond cuBLAS's workspace)", cuda->stats.cur_total - start);
    printf("total %.1f s\n", test_now() - t0);
    sdc_backend_free(cuda);
    sdc_backend_free(cpu);
    sdc_backend_free(ref);
    return test_finish();
}
