/* cpu_dnnl.c - oneDNN's matmul on bf16 operands with f32 output (cpu_dnnl.h).
 *
 * One primitive per tile shape, kept per thread of the team with its memory objects (a call only points
 * them at its data): making a primitive (and looking it up in oneDNN's own cache) costs more than many
 * small tiles' products. A call runs on the calling thread: sdc's op regions set the task's thread count
 * to 1, which oneDNN's OpenMP build reads as its team size. Each thread has its own stream (a oneDNN
 * stream is not for concurrent use) and its own scratchpad, grown to the largest a primitive asked for
 * and kept (user scratchpad mode: in library mode oneDNN allocates and frees one per call, whose fresh
 * pages cost more kernel time than some tiles' arithmetic).
 * oneDNN 2.6 runs its fast bf16 kernel (brg:avx512_core_bf16 here) only on dense operands; on strided ones
 * it takes a jit GEMM that allocates its packing buffers per call. So A and B come dense (the callers pack
 * them), and a C whose rows are not N apart gets the product in a dense tile of the thread's first. */
#include <assert.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/dnnl/cpu_dnnl.h"

typedef struct tile_key {
    int64_t M, N, K, lda, ldb, ldc;
    int trans_b, accumulate;
} tile_key;

typedef struct tile_prim {
    tile_key key;
    dnnl_primitive_t prim; /* NULL: a free slot */
    dnnl_memory_t mem[4];  /* A, B, C, scratchpad (NULL when it needs none) */
    size_t scratch_bytes;
} tile_prim;

/* Slots of a thread's table of primitives (open addressing; full: emptied and refilled). SD 1.5's UNet
 * and VAE make about a hundred tile shapes. */
#define TILE_SLOTS 512

typedef struct thread_state {
    dnnl_stream_t stream;
    tile_prim *slots; /* [TILE_SLOTS] */
    int used;
    void *scratch;
    size_t scratch_bytes;
    float *c; /* a dense C tile, for a C whose rows are not N apart */
    size_t c_bytes;
} thread_state;

struct sdc_cpu_dnnl {
    dnnl_engine_t engine;
    dnnl_primitive_attr_t attr[2]; /* [0]: C = A . B; [1]: C += A . B (a sum post-op); user scratchpad */
    int n_threads;
    thread_state *ts; /* [n_threads] */
    char impl[64];
};

static void prim_free(tile_prim *t) {
    for (int i = 0; i < 4; i++)
        if (t->mem[i]) dnnl_memory_destroy(t->mem[i]);
    if (t->prim) dnnl_primitive_destroy(t->prim);
    memset(t, 0, sizeof *t);
}

/* The primitive for one tile shape and its memory objects into *t; -1 on failure (t left empty). impl:
 * where the implementation's name goes (may be NULL). */
static int make(sdc_cpu_dnnl *d, const tile_key *k, tile_prim *t, char *impl, size_t impl_size) {
    const dnnl_dims_t a_dims = {k->M, k->K}, a_str = {k->lda, 1}, b_dims = {k->K, k->N}, c_dims = {k->M, k->N};
    const dnnl_dims_t b_str = {k->trans_b ? 1 : k->ldb, k->trans_b ? k->ldb : 1}, c_str = {k->ldc, 1};
    dnnl_memory_desc_t md[3];
    dnnl_matmul_desc_t desc;
    dnnl_primitive_desc_t pd = NULL;
    memset(t, 0, sizeof *t);
    t->key = *k;
    int rc = dnnl_memory_desc_init_by_strides(&md[0], 2, a_dims, dnnl_bf16, a_str) == dnnl_success &&
            dnnl_memory_desc_init_by_strides(&md[1], 2, b_dims, dnnl_bf16, b_str) == dnnl_success &&
            dnnl_memory_desc_init_by_strides(&md[2], 2, c_dims, dnnl_f32, c_str) == dnnl_success &&
            dnnl_matmul_desc_init(&desc, &md[0], &md[1], NULL, &md[2]) == dnnl_success &&
            dnnl_primitive_desc_create(&pd, &desc, d->attr[k->accumulate], d->engine, NULL) == dnnl_success
        ? 0
        : -1;
    const char *name = NULL;
    if (rc == 0 && impl && dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) == dnnl_success && name)
        snprintf(impl, impl_size, "%s", name);
    const dnnl_memory_desc_t *smd = rc == 0 ? dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0) : NULL;
    t->scratch_bytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
    for (int i = 0; i < 3 && rc == 0; i++)
        if (dnnl_memory_create(&t->mem[i], &md[i], d->engine, DNNL_MEMORY_NONE) != dnnl_success) rc = -1;
    if (rc == 0 && t->scratch_bytes && dnnl_memory_create(&t->mem[3], smd, d->engine, DNNL_MEMORY_NONE) != dnnl_success)
        rc = -1;
    if (rc == 0 && dnnl_primitive_create(&t->prim, pd) != dnnl_success) rc = -1;
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (rc != 0) prim_free(t);
    return rc;
}

/* The thread's primitive for k, made at its first use; NULL on failure. */
static tile_prim *lookup(sdc_cpu_dnnl *d, thread_state *ts, const tile_key *k) {
    uint64_t h = 1469598103934665603ull;
    const unsigned char *p = (const unsigned char *)k;
    for (size_t i = 0; i < sizeof *k; i++) h = (h ^ p[i]) * 1099511628211ull;
    for (unsigned i = (unsigned)(h % TILE_SLOTS);; i = (i + 1) % TILE_SLOTS) {
        tile_prim *t = &ts->slots[i];
        if (t->prim && !memcmp(&t->key, k, sizeof *k)) return t;
        if (t->prim) continue;
        if (ts->used >= TILE_SLOTS * 3 / 4) { /* full: start over (same primitives, made again) */
            for (int j = 0; j < TILE_SLOTS; j++) prim_free(&ts->slots[j]);
            ts->used = 0;
            return lookup(d, ts, k);
        }
        if (make(d, k, t, NULL, 0) != 0) return NULL;
        ts->used++;
        return t;
    }
}

sdc_cpu_dnnl *sdc_cpu_dnnl_new(int n_threads, char *why, size_t why_size) {
    sdc_cpu_dnnl *d = calloc(1, sizeof *d);
    dnnl_post_ops_t sum = NULL;
    const char *fail = "out of memory";
    if (!d || !(d->ts = calloc((size_t)n_threads, sizeof *d->ts))) goto fail;
    fail = "no CPU engine";
    if (dnnl_engine_create(&d->engine, dnnl_cpu, 0) != dnnl_success) goto fail;
    fail = "no primitive attributes";
    if (dnnl_primitive_attr_create(&d->attr[0]) != dnnl_success ||
        dnnl_primitive_attr_create(&d->attr[1]) != dnnl_success || dnnl_post_ops_create(&sum) != dnnl_success ||
        dnnl_post_ops_append_sum(sum, 1.0f) != dnnl_success ||
        dnnl_primitive_attr_set_post_ops(d->attr[1], sum) != dnnl_success ||
        dnnl_primitive_attr_set_scratchpad_mode(d->attr[0], dnnl_scratchpad_mode_user) != dnnl_success ||
        dnnl_primitive_attr_set_scratchpad_mode(d->attr[1], dnnl_scratchpad_mode_user) != dnnl_success)
        goto fail;
    for (d->n_threads = 0; d->n_threads < n_threads; d->n_threads++) {
        thread_state *ts = &d->ts[d->n_threads];
        fail = "out of memory";
        if (!(ts->slots = calloc(TILE_SLOTS, sizeof *ts->slots))) goto fail;
        fail = "no stream";
        if (dnnl_stream_create(&ts->stream, d->engine, dnnl_stream_default_flags) != dnnl_success) {
            d->n_threads++; /* its slots are freed below */
            goto fail;
        }
    }
    /* a typical tile: which implementation this CPU gets */
    tile_prim probe;
    const tile_key k = {256, 256, 448, 448, 448, 256, 1, 0};
    fail = "no bf16 matmul";
    if (make(d, &k, &probe, d->impl, sizeof d->impl) != 0) goto fail;
    prim_free(&probe);
    dnnl_post_ops_destroy(sum);
    if (!strstr(d->impl, "bf16") && !strstr(d->impl, "amx")) {
        snprintf(why, why_size, "its bf16 matmul here is %s, not native bf16 code", d->impl);
        sdc_cpu_dnnl_free(d);
        return NULL;
    }
    return d;
fail:
    snprintf(why, why_size, "%s", fail);
    if (sum) dnnl_post_ops_destroy(sum);
    sdc_cpu_dnnl_free(d);
    return NULL;
}

void sdc_cpu_dnnl_free(sdc_cpu_dnnl *d) {
    if (!d) return;
    for (int i = 0; i < d->n_threads; i++) {
        thread_state *ts = &d->ts[i];
        for (int j = 0; ts->slots && j < TILE_SLOTS; j++) prim_free(&ts->slots[j]);
        free(ts->slots);
        free(ts->scratch);
        free(ts->c);
        if (ts->stream) dnnl_stream_destroy(ts->stream);
    }
    free(d->ts);
    for (int i = 0; i < 2; i++)
        if (d->attr[i]) dnnl_primitive_attr_destroy(d->attr[i]);
    if (d->engine) dnnl_engine_destroy(d->engine);
    free(d);
}

const char *sdc_cpu_dnnl_impl(const sdc_cpu_dnnl *d) { return d->impl; }

/* *buf holds at least bytes (64-byte aligned, kept and grown); 0, or -1 when out of memory. */
static int hold(void **buf, size_t *have, size_t bytes) {
    if (bytes <= *have) return 0;
    free(*buf);
    *have = 0;
    if (!(*buf = aligned_alloc(64, (bytes + 63) & ~(size_t)63))) return -1;
    *have = bytes;
    return 0;
}

int sdc_cpu_dnnl_gemm(sdc_cpu_dnnl *d, int thread, int trans_b, int64_t M, int64_t N, int64_t K, const void *A,
                      int64_t lda, const void *B, int64_t ldb, int accumulate, float *C, int64_t ldc) {
    assert(lda == K && ldb == (trans_b ? K : N)); /* dense operands: the callers pack them */
    thread_state *ts = &d->ts[thread];
    /* a C whose rows are not N apart: the product goes to the thread's dense tile, then into C */
    const int direct = ldc == N;
    if (!direct && hold((void **)&ts->c, &ts->c_bytes, sizeof(float) * (size_t)(M * N)) != 0) return -1;
    const tile_key k = {M, N, K, lda, ldb, N, trans_b, direct && accumulate};
    tile_prim *t = lookup(d, ts, &k);
    if (!t || hold(&ts->scratch, &ts->scratch_bytes, t->scratch_bytes) != 0) return -1;
    void *const ptr[4] = {(void *)A, (void *)B, direct ? C : ts->c, ts->scratch};
    for (int i = 0; i < 4; i++)
        if (t->mem[i] && dnnl_memory_set_data_handle(t->mem[i], ptr[i]) != dnnl_success) return -1;
    const dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, t->mem[0]},
                                     {DNNL_ARG_WEIGHTS, t->mem[1]},
                                     {DNNL_ARG_DST, t->mem[2]},
                                     {DNNL_ARG_SCRATCHPAD, t->mem[3]}};
    if (dnnl_primitive_execute(t->prim, ts->stream, t->mem[3] ? 4 : 3, args) != dnnl_success ||
        dnnl_stream_wait(ts->stream) != dnnl_success)
        return -1;
    if (!direct)
        for (int64_t i = 0; i < M; i++) {
            float *c = C + i * ldc;
            const float *p = ts->c + i * N;
            if (accumulate)
                for (int64_t j = 0; j < N; j++) c[j] += p[j];
            else
                memcpy(c, p, sizeof(float) * (size_t)N);
        }
    return 0;
}
