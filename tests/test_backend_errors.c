/* test_backend_errors.c - the CPU backend's error paths, driven by failure injection (be->fail):
 *   - an op that cannot get its workspace (fast conv and attention, the reference conv and attention)
 *     does nothing, and the backend's sticky status becomes SDC_ERR_OOM: sdc_backend_sync returns it,
 *     it is logged once (error level) with the op's file and line, no workspace is left counted, later
 *     ops are no-ops, a later failure does not replace it (the first wins), and after
 *     sdc_backend_clear_status the op gives the bits of a clean run on a backend that never failed;
 *   - the countdown: workspace = 2 lets the first allocation through and fails the second;
 *   - a host allocation: a tensor record (sdc_tensor_new returns NULL, logged, the status untouched)
 *     and a dtype-conversion buffer of sdc_tensor_set_f32 / get_f32 (SDC_ERR_OOM returned and sticky).
 * Leaks: the memory counters must be back at zero; the ASan build checks the host side. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_ref.h"
#include "backend/ops.h"
#include "test_util.h"

typedef struct op_setup {
    const char *name;
    const char *file;   // where the failure must be logged
    int attention;      // else a 3x3 convolution
} op_setup;

/* Fresh inputs and an output on be; the output starts as `fill`. */
typedef struct op_tensors {
    sdc_tensor *x, *w, *q, *k, *v, *y;
} op_tensors;

static const int64_t XS[4] = {1, 16, 12, 10}, WS[4] = {8, 16, 3, 3}, YS[4] = {1, 8, 12, 10};
static const int64_t QS[3] = {2, 64, 32};   // [B, T, H*D], 4 heads of 8

static size_t out_n(int attention) { return attention ? 2 * 64 * 32 : 8 * 12 * 10; }

static op_tensors make(sdc_backend *be, int attention, float fill) {
    op_tensors t = {0};
    float *h = malloc(8192 * sizeof(float));
    if (attention) {
        t.q = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 3, QS);
        t.k = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 3, QS);
        t.v = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 3, QS);
        t.y = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 3, QS);
        sdc_tensor *in[3] = {t.q, t.k, t.v};
        for (int i = 0; i < 3; i++) {
            test_fill_normal(h, (size_t)sdc_tensor_nelem(in[i]), 100 + (uint64_t)i, 1.0f);
            sdc_tensor_set_f32(in[i], h);
        }
    } else {
        t.x = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 4, XS);
        t.w = sdc_tensor_new(be, SDC_MEM_WEIGHTS, SDC_DTYPE_F32, 4, WS);
        t.y = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 4, YS);
        test_fill_normal(h, (size_t)sdc_tensor_nelem(t.x), 200, 1.0f);
        sdc_tensor_set_f32(t.x, h);
        test_fill_normal(h, (size_t)sdc_tensor_nelem(t.w), 201, 0.1f);
        sdc_tensor_set_f32(t.w, h);
    }
    for (size_t i = 0; i < out_n(attention); i++) h[i] = fill;
    sdc_tensor_set_f32(t.y, h);
    free(h);
    return t;
}

static void run(const op_tensors *t, int attention) {
    if (attention)
        sdc_attention(t->y, t->q, t->k, t->v, 4, 0);
    else
        sdc_conv2d(t->y, t->x, t->w, NULL, 1, 1);
}

static void release(op_tensors *t) {
    sdc_tensor *all[6] = {t->x, t->w, t->q, t->k, t->v, t->y};
    for (int i = 0; i < 6; i++) sdc_tensor_free(all[i]);
}

/* Number of elements of y[n] that differ from v (bitwise for v = the fill value). */
static size_t count_not(const float *y, size_t n, float v) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += memcmp(&y[i], &v, sizeof v) != 0;
    return bad;
}

/* One injected workspace failure of op s on be, checked against a clean run on clean_be: workspace
 * allocation number `countdown` fails during the last of `runs` runs of the op. */
static void workspace_case(sdc_backend *be, sdc_backend *clean_be, const op_setup *s, int countdown, int runs) {
    const size_t n = out_n(s->attention);
    float *clean = malloc(n * sizeof(float)), *got = malloc(n * sizeof(float));
    op_tensors c = make(clean_be, s->attention, 0.0f);
    run(&c, s->attention);
    sdc_tensor_get_f32(c.y, clean);
    test_check(sdc_backend_sync(clean_be) == SDC_OK, "%s: clean run status %s (want ok)", s->name,
               sdc_status_str(clean_be->status));
    release(&c);

    const float fill = 7.5f;
    op_tensors t = make(be, s->attention, fill);
    const sdc_logger saved = be->log;
    be->log = *test_capture_logger();
    const size_t ws0 = be->stats.cur[SDC_MEM_WORKSPACE];
    const uint64_t allocs0 = be->stats.n_alloc;
    be->fail.workspace = countdown;
    for (int i = 0; i < runs; i++) run(&t, s->attention);
    sdc_status st = sdc_backend_sync(be);
    test_check(st == SDC_ERR_OOM, "%s: workspace allocation %d of %d runs fails: status %s (want %s)", s->name,
               countdown, runs, sdc_status_str(st), sdc_status_str(SDC_ERR_OOM));
    test_check(be->fail.workspace == 0, "%s: the countdown ran out (left %d, want 0)", s->name, be->fail.workspace);
    const char *log = test_last_error();
    test_check(strstr(log, s->file) != NULL && strstr(log, "failed") != NULL && strstr(log, " | ") == NULL,
               "%s: logged once with its location %s: \"%.200s\"", s->name, s->file, log);
    test_check(be->stats.cur[SDC_MEM_WORKSPACE] == ws0, "%s: workspace counted after the failure: %zu bytes (want %zu)",
               s->name, be->stats.cur[SDC_MEM_WORKSPACE], ws0);
    sdc_tensor_get_f32(t.y, got);
    if (runs == 1)   // the op that failed did not run at all: y keeps its fill
        test_check(count_not(got, n, fill) == 0, "%s: the failed op wrote %zu of %zu outputs (want 0)", s->name,
                   count_not(got, n, fill), n);
    else   // the earlier runs succeeded
        test_check(memcmp(got, clean, n * sizeof(float)) == 0, "%s: the runs before the failure are clean", s->name);

    /* sticky: later ops are no-ops, a later error does not replace the first, nothing more is logged */
    sdc_scale(t.y, t.y, 0.0f);
    SDC_BACKEND_FAIL(be, SDC_ERR_BACKEND, "test", "a second error");
    sdc_tensor_get_f32(t.y, got);
    st = sdc_backend_sync(be);
    test_check(st == SDC_ERR_OOM, "%s: after a second error the status is still %s (want %s)", s->name,
               sdc_status_str(st), sdc_status_str(SDC_ERR_OOM));
    test_check(strstr(test_last_error(), " | ") == NULL, "%s: the second error is not logged as an error: \"%.200s\"",
               s->name, test_last_error());
    const float *expect_y = runs == 1 ? NULL : clean;
    const size_t changed = expect_y ? (size_t)(memcmp(got, expect_y, n * sizeof(float)) != 0) : count_not(got, n, fill);
    test_check(changed == 0, "%s: an op while the status is set changed %zu outputs (want 0)", s->name, changed);

    /* clear and retry: the bits of the clean run */
    sdc_backend_clear_status(be);
    test_check(sdc_backend_status(be) == SDC_OK, "%s: status after clearing: %s", s->name,
               sdc_status_str(sdc_backend_status(be)));
    be->log = saved;
    const uint64_t allocs1 = be->stats.n_alloc;
    run(&t, s->attention);
    sdc_tensor_get_f32(t.y, got);
    st = sdc_backend_sync(be);
    test_check(st == SDC_OK && memcmp(got, clean, n * sizeof(float)) == 0,
               "%s: retry after clearing: status %s, bit-identical to the clean run: %s", s->name, sdc_status_str(st),
               memcmp(got, clean, n * sizeof(float)) == 0 ? "yes" : "no");
    test_check(be->stats.n_alloc > allocs1 && allocs1 >= allocs0,
               "%s: the retry allocated its workspace (%llu allocations)", s->name,
               (unsigned long long)(be->stats.n_alloc - allocs1));
    release(&t);
    free(clean);
    free(got);
}

static void host_alloc_cases(sdc_backend *be) {
    const sdc_logger saved = be->log;
    const int64_t ne[2] = {4, 5};
    const size_t cur0 = be->stats.cur_total;

    /* the tensor record */
    be->log = *test_capture_logger();
    be->fail.host_alloc = 1;
    sdc_tensor *t = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 2, ne);
    test_check(t == NULL && strstr(test_last_error(), "sdc_tensor_new") != NULL,
               "tensor record: sdc_tensor_new gives %s, logged \"%.120s\"", t ? "a tensor" : "NULL", test_last_error());
    test_check(sdc_backend_status(be) == SDC_OK && be->stats.cur_total == cur0,
               "tensor record: status %s (want ok: the caller reports it), %zu bytes counted (want %zu)",
               sdc_status_str(sdc_backend_status(be)), be->stats.cur_total, cur0);
    sdc_tensor_free(t);

    /* the conversion buffers of an f16 tensor */
    t = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F16, 2, ne);
    float h[20], back[20];
    for (int i = 0; i < 20; i++) h[i] = (float)i * 0.25f;
    for (int get = 0; get <= 1; get++) {
        be->log = *test_capture_logger();
        be->fail.host_alloc = 1;
        const sdc_status st = get ? sdc_tensor_get_f32(t, back) : sdc_tensor_set_f32(t, h);
        const char *what = get ? "sdc_tensor_get_f32" : "sdc_tensor_set_f32";
        test_check(st == SDC_ERR_OOM && sdc_backend_sync(be) == SDC_ERR_OOM,
                   "%s without a conversion buffer: returns %s, sticky %s (want %s)", what, sdc_status_str(st),
                   sdc_status_str(be->status), sdc_status_str(SDC_ERR_OOM));
        test_check(strstr(test_last_error(), "tensor_mem.c:") != NULL && strstr(test_last_error(), what) != NULL,
                   "%s: logged with its location: \"%.200s\"", what, test_last_error());
        sdc_backend_clear_status(be);
    }
    be->log = saved;
    test_check(sdc_tensor_set_f32(t, h) == SDC_OK && sdc_tensor_get_f32(t, back) == SDC_OK &&
                   memcmp(h, back, sizeof h) == 0 && sdc_backend_sync(be) == SDC_OK,
               "f16 round trip after clearing: status %s", sdc_status_str(be->status));
    sdc_tensor_free(t);
}

int main(void) {
    sdc_backend *fast = sdc_backend_cpu_new(2, test_logger());
    sdc_backend *ref = sdc_backend_cpu_ref_new(test_logger());
    sdc_backend *clean = sdc_backend_cpu_new(2, test_logger());
    sdc_backend *clean_ref = sdc_backend_cpu_ref_new(test_logger());
    if (!test_check(fast && ref && clean && clean_ref, "backends created")) return test_finish();

    const op_setup conv = {"cpu conv2d", "cpu_conv.c:", 0}, attn = {"cpu attention", "cpu_attention.c:", 1};
    const op_setup ref_conv = {"cpu-ref conv2d", "cpu_ref.c:", 0}, ref_attn = {"cpu-ref attention", "cpu_ref.c:", 1};
    workspace_case(fast, clean, &conv, 1, 1);
    workspace_case(fast, clean, &attn, 1, 1);
    workspace_case(fast, clean, &conv, 2, 2);   // the first run allocates, the second fails
    workspace_case(fast, clean, &attn, 2, 2);
    workspace_case(ref, clean_ref, &ref_conv, 1, 1);
    workspace_case(ref, clean_ref, &ref_attn, 1, 1);   // its first scratch row fails
    workspace_case(ref, clean_ref, &ref_attn, 2, 1);   // its second fails in the same op: the first is freed
    host_alloc_cases(fast);

    sdc_backend *all[4] = {fast, ref, clean, clean_ref};
    size_t left = 0;
    for (int i = 0; i < 4; i++) left += all[i]->stats.cur_total;
    test_check(left == 0, "all backend memory freed: %zu bytes left (want 0)", left);
    for (int i = 0; i < 4; i++) sdc_backend_free(all[i]);
    return test_finish();
}
