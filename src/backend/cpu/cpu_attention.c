/* cpu_attention.c - scaled dot-product attention, with or without an additive bias (attention_bias).
 * The work items are (batch, head, block of queries); each runs on one thread with its own block of
 * scores:
 *   scores[blk, S] = q_blk . k^T * scale (+ bias[h, blk, S])   (single-threaded GEMM)
 *   scores         = softmax over each row
 *   y_blk          = scores . v              (GEMM, written straight into y's head columns)
 * A thread holds one block of scores at a time (a bounded workspace), so 4096-token self-attention
 * never holds the 4096 x 4096 matrix. Causal blocks only compute the keys up to their last query.
 * Block boundaries do not depend on the thread count, so neither does any output bit. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "backend/cpu/cpu_backend.h"

/* e^x for x <= 0 in f32, within about 1 ulp: x = n ln2 + r with |r| <= ln2/2, e^r by its degree-7
 * Taylor polynomial, 2^n through the exponent bits; ln2 is split in a short high part (n * hi is
 * exact) and a low correction. Below -87 the result is 0; NaN stays NaN. The range handling uses
 * integer masks, not float compares, so that the compiler vectorises a loop of it under the default
 * -ftrapping-math. */
static inline float exp_nonpos(float x) {
    int32_t bits;
    memcpy(&bits, &x, sizeof bits);
    const int32_t mag = bits & 0x7fffffff, mag87 = 0x42ae0000;   // |x| and 87.0f as bits
    const int32_t keep = -(mag < mag87);                         // all ones while |x| < 87
    const int32_t nan = -(mag > 0x7f800000);                     // all ones for NaN
    const uint32_t xcbits = (uint32_t)((mag & keep) | (mag87 & ~keep)) | 0x80000000u;
    float xc;   // -min(|x|, 87)
    memcpy(&xc, &xcbits, sizeof xc);
    const float nf = (xc * 1.44269504f + 12582912.0f) - 12582912.0f;   // round(x / ln2): 1.5 * 2^23
    const float r = (xc - nf * 0.693359375f) + nf * 2.12194440e-4f;
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const int32_t nbits = ((int32_t)nf + 127) << 23;   // 2^n, n in [-126, 0]
    float two_n;
    memcpy(&two_n, &nbits, sizeof two_n);
    const float e = p * two_n;
    int32_t ebits;
    memcpy(&ebits, &e, sizeof ebits);
    ebits = (ebits & keep) | (bits & nan);
    float out;
    memcpy(&out, &ebits, sizeof out);
    return out;
}

/* In-place softmax of p[n] (max subtracted). Max and sum run in 8 independent lanes, combined in a
 * fixed order, so the result depends only on n (and the max loop is not one long latency chain). */
static void softmax_row(float *p, int64_t n) {
    float lane[8];
    for (int j = 0; j < 8; j++) lane[j] = p[0];
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) lane[j] = p[i + j] > lane[j] ? p[i + j] : lane[j];
    for (int j = 0; j < 8 && i + j < n; j++) lane[j] = p[i + j] > lane[j] ? p[i + j] : lane[j];
    float mx = lane[0];
    for (int j = 1; j < 8; j++) mx = lane[j] > mx ? lane[j] : mx;

    for (int64_t k = 0; k < n; k++) p[k] = exp_nonpos(p[k] - mx);
    for (int j = 0; j < 8; j++) lane[j] = 0.0f;
    for (i = 0; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) lane[j] += p[i + j];
    for (int j = 0; j < 8 && i + j < n; j++) lane[j] += p[i + j];
    const float sum = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
    const float inv = 1.0f / sum;
    for (int64_t k = 0; k < n; k++) p[k] *= inv;
}

/* One work item: queries [t0, t0 + rows) of one head. q, k, v, y point at the head's first column;
 * rows are C apart. bias (NULL: none) points at the head's [T, S] plane. scores has room for rows x
 * (keys) floats. */
static void attend_block(float *y, const float *q, const float *k, const float *v, const float *bias, int64_t C,
                         int64_t S, int64_t D, int64_t t0, int64_t rows, int causal, float scale, float *scores) {
    const int64_t n_keys = causal ? t0 + rows : S;
    // scores[rows, n_keys] = scale * q[t0 : t0+rows] . k[0 : n_keys]^T
    sdc_cpu_gemm(1, rows, n_keys, D, scale, q + t0 * C, C, k, C, 0.0f, scores, n_keys);
    for (int64_t i = 0; i < rows; i++) {
        float *p = scores + i * n_keys;
        if (bias) {
            const float *b = bias + (t0 + i) * S;
            for (int64_t s = 0; s < n_keys; s++) p[s] += b[s];
        }
        const int64_t len = causal ? t0 + i + 1 : n_keys;   // query t0+i sees keys <= itself
        softmax_row(p, len);
        for (int64_t s = len; s < n_keys; s++) p[s] = 0.0f;
    }
    // y[t0 : t0+rows] = scores[rows, n_keys] . v[0 : n_keys]
    sdc_cpu_gemm(0, rows, D, n_keys, 1.0f, scores, n_keys, v, C, 0.0f, y + t0 * C, C);
}

/* bias [H, T, S] or NULL */
static void attention(sdc_backend *be, sdc_tensor *y, const sdc_tensor *q, const sdc_tensor *k, const sdc_tensor *v,
                      const sdc_tensor *bias, int n_heads, int causal, float scale) {
    const int64_t B = q->ne[0], T = q->ne[1], C = q->ne[2], S = k->ne[1], D = C / n_heads;
    const float *qd = sdc_cpu_f32(q);                    // [B, T, H*D]
    const float *kd = sdc_cpu_f32(k);                    // [B, S, H*D]
    const float *vd = sdc_cpu_f32(v);                    // [B, S, H*D]
    const float *bd = bias ? sdc_cpu_f32(bias) : NULL;   // [H, T, S]
    float *yd = sdc_cpu_f32(y);                          // [B, T, H*D]
    if (B == 0 || T == 0 || C == 0) return;
    assert(S > 0);
    const int nt = be->n_threads;

    /* one score block per thread: [nt][blk, S] */
    const size_t row_bytes = (size_t)S * sizeof(float);
    const size_t want = SDC_CPU_SCORE_BLOCK_BYTES / row_bytes;
    const size_t blk = want < 1 ? 1 : want > (size_t)T ? (size_t)T : want;   // query rows per block
    float *scores = SDC_CPU_SCRATCH(be, blk * row_bytes * (size_t)nt, "sdc_cpu_attention score blocks");
    if (!scores) return;

    const int64_t n_blk = (T + (int64_t)blk - 1) / (int64_t)blk, n_items = B * n_heads * n_blk;
#pragma omp parallel num_threads(nt)   // the threads split the items; each GEMM runs in its thread
    {
        sdc_cpu_blas_one_thread();
        float *mine = scores + (size_t)omp_get_thread_num() * blk * (size_t)S;
#pragma omp for schedule(dynamic)
        for (int64_t it = 0; it < n_items; it++) {
            const int64_t n = it / (n_heads * n_blk), h = it / n_blk % n_heads, t0 = it % n_blk * (int64_t)blk;
            const int64_t off_q = n * T * C + h * D, off_k = n * S * C + h * D;
            const int64_t rows = T - t0 < (int64_t)blk ? T - t0 : (int64_t)blk;
            const float *bh = bd ? bd + h * T * S : NULL;
            attend_block(yd + off_q, qd + off_q, kd + off_k, vd + off_k, bh, C, S, D, t0, rows, causal, scale, mine);
        }
    }
    sdc_cpu_scratch_free(be, scores, blk * row_bytes * (size_t)nt);
}

void sdc_cpu_attention(sdc_backend *be, sdc_tensor *y, const sdc_tensor *q, const sdc_tensor *k, const sdc_tensor *v,
                       int n_heads, int causal) {
    attention(be, y, q, k, v, NULL, n_heads, causal, (float)(1.0 / sqrt((double)(q->ne[2] / n_heads))));
}

void sdc_cpu_attention_bias(sdc_backend *be, sdc_tensor *y, const sdc_tensor *q, const sdc_tensor *k,
                            const sdc_tensor *v, const sdc_tensor *bias, int n_heads, float scale) {
    attention(be, y, q, k, v, bias, n_heads, 0, scale);
}
