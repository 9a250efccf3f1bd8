/* kernel_trace.c - where a CUDA program's GPU time goes, kernel by kernel, without changing the program.
 *
 * A CUPTI injection library: the CUDA driver loads it at initialisation when CUDA_INJECTION64_PATH names
 * it, and calls InitializeInjection. It records every kernel's start and end (CUPTI's activity API, which
 * does not serialise the program), and at exit prints, per kernel name, the calls, total milliseconds and
 * share of all kernel time, the top KTRACE_TOP (default 40) rows, plus the span from the first kernel's
 * start to the last one's end and how much of it no kernel ran. Built on the GPU machine (bench/ only; sdc
 * does not link it) by bench/ktrace.sh, which also runs a command under it, or by hand:
 *
 *   cc -O2 -shared -fPIC -o /tmp/libktrace.so bench/kernel_trace.c -I$CUDA/include -I$CUPTI/include \
 *      -L$CUPTI/lib64 -lcupti -DKTRACE_RECORD=CUpti_ActivityKernelN   (N: the newest its header has)
 *   CUDA_INJECTION64_PATH=/tmp/libktrace.so build-gpu/sdc_bench ...
 *
 * KTRACE_SKIP (default 0): kernels started before the KTRACE_SKIP-th one are not counted (to leave out
 * a warm-up run). KTRACE_GAPS=N: also the N longest stretches with no kernel running, with the kernels
 * either side (where the GPU waited for the host). */
#define _POSIX_C_SOURCE 200809L
#include <cupti.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef KTRACE_RECORD
#define KTRACE_RECORD CUpti_ActivityKernel9
#endif

typedef struct {
    char *name;
    uint64_t calls, ns;
} ktrace_row;

typedef struct {
    uint64_t start, end;
    size_t row; /* the kernel's name: rows[row] (before sorting) */
} ktrace_span;

static ktrace_row *rows;
static size_t n_rows, cap_rows;
static ktrace_span *spans;
static size_t n_spans, cap_spans;
static uint64_t n_seen, skip;

static ktrace_row *row_for(const char *name) {
    for (size_t i = 0; i < n_rows; i++)
        if (strcmp(rows[i].name, name) == 0) return &rows[i];
    if (n_rows == cap_rows) {
        cap_rows = cap_rows ? 2 * cap_rows : 256;
        rows = realloc(rows, cap_rows * sizeof *rows);
    }
    rows[n_rows] = (ktrace_row){strdup(name), 0, 0};
    return &rows[n_rows++];
}

static void CUPTIAPI buffer_requested(uint8_t **buffer, size_t *size, size_t *max_records) {
    *size = 16u << 20;
    *buffer = aligned_alloc(8, *size);
    *max_records = 0;
}

static void CUPTIAPI buffer_completed(CUcontext ctx, uint32_t stream, uint8_t *buffer, size_t size, size_t valid) {
    (void)ctx, (void)stream, (void)size;
    CUpti_Activity *rec = NULL;
    while (cuptiActivityGetNextRecord(buffer, valid, &rec) == CUPTI_SUCCESS) {
        if (rec->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL && rec->kind != CUPTI_ACTIVITY_KIND_KERNEL) continue;
        const KTRACE_RECORD *k = (const KTRACE_RECORD *)rec;
        if (n_seen++ < skip) continue;
        ktrace_row *r = row_for(k->name ? k->name : "?");
        r->calls++;
        r->ns += k->end - k->start;
        if (n_spans == cap_spans) {
            cap_spans = cap_spans ? 2 * cap_spans : 4096;
            spans = realloc(spans, cap_spans * sizeof *spans);
        }
        spans[n_spans++] = (ktrace_span){k->start, k->end, (size_t)(r - rows)};
    }
    free(buffer);
}

static int by_ns(const void *a, const void *b) {
    const ktrace_row *x = a, *y = b;
    return x->ns < y->ns ? 1 : x->ns > y->ns ? -1 : 0;
}
static int by_start(const void *a, const void *b) {
    const ktrace_span *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start ? 1 : 0;
}

static void report(void) {
    cuptiActivityFlushAll(1);
    uint64_t total = 0;
    for (size_t i = 0; i < n_rows; i++) total += rows[i].ns;
    char **names = malloc(n_rows * sizeof *names); /* span.row -> name, before the rows are sorted */
    for (size_t i = 0; i < n_rows; i++) names[i] = rows[i].name;
    qsort(rows, n_rows, sizeof *rows, by_ns);
    qsort(spans, n_spans, sizeof *spans, by_start);
    uint64_t busy = 0, cur_s = 0, cur_e = 0; /* the union of the kernels' intervals */
    for (size_t i = 0; i < n_spans; i++) {
        if (i == 0 || spans[i].start > cur_e) {
            busy += cur_e - cur_s;
            cur_s = spans[i].start, cur_e = spans[i].end;
        } else if (spans[i].end > cur_e) {
            cur_e = spans[i].end;
        }
    }
    busy += cur_e - cur_s;
    const uint64_t span = n_spans ? spans[n_spans - 1].end - spans[0].start : 0;
    const char *gaps_env = getenv("KTRACE_GAPS");
    const size_t n_gaps = gaps_env ? (size_t)atol(gaps_env) : 0;
    if (n_gaps && n_spans > 1) { /* the longest idle stretches: insertion into a short sorted list */
        size_t *top_i = calloc(n_gaps, sizeof *top_i);
        uint64_t *top_ns = calloc(n_gaps, sizeof *top_ns), end = spans[0].end, over_50us = 0;
        for (size_t i = 1; i < n_spans; i++) {
            const uint64_t gap = spans[i].start > end ? spans[i].start - end : 0;
            if (gap > 50000) over_50us += gap;
            for (size_t j = 0; j < n_gaps; j++)
                if (gap > top_ns[j]) {
                    memmove(top_ns + j + 1, top_ns + j, (n_gaps - j - 1) * sizeof *top_ns);
                    memmove(top_i + j + 1, top_i + j, (n_gaps - j - 1) * sizeof *top_i);
                    top_ns[j] = gap, top_i[j] = i;
                    break;
                }
            if (spans[i].end > end) end = spans[i].end;
        }
        fprintf(stderr, "[ktrace] idle stretches over 50 us: %.3f ms in all; the longest:\n", over_50us / 1e6);
        for (size_t j = 0; j < n_gaps && top_ns[j]; j++)
            fprintf(stderr, "[ktrace]   %9.3f ms at %10.3f ms  after %.70s  before %.70s\n", top_ns[j] / 1e6,
                    (spans[top_i[j]].start - spans[0].start) / 1e6, names[spans[top_i[j] - 1].row],
                    names[spans[top_i[j]].row]);
        free(top_i);
        free(top_ns);
    }
    free(names);
    const char *top_env = getenv("KTRACE_TOP");
    const size_t top = top_env ? (size_t)atol(top_env) : 40;
    fprintf(stderr, "\n[ktrace] %zu kernels, %.3f ms of kernel time; span %.3f ms, GPU busy %.3f ms, idle %.3f ms\n",
            n_spans, total / 1e6, span / 1e6, busy / 1e6, (span - busy) / 1e6);
    fprintf(stderr, "[ktrace] %8s %10s %6s %9s  %s\n", "calls", "ms", "share", "us/call", "kernel");
    for (size_t i = 0; i < n_rows && i < top; i++)
        fprintf(stderr, "[ktrace] %8llu %10.3f %5.1f%% %9.2f  %.150s\n", (unsigned long long)rows[i].calls,
                rows[i].ns / 1e6, total ? 100.0 * rows[i].ns / total : 0.0, rows[i].ns / 1e3 / rows[i].calls,
                rows[i].name);
}

int InitializeInjection(void);
int InitializeInjection(void) {
    const char *s = getenv("KTRACE_SKIP");
    skip = s ? (uint64_t)atoll(s) : 0;
    if (cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed) != CUPTI_SUCCESS ||
        cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) != CUPTI_SUCCESS) {
        fprintf(stderr, "[ktrace] CUPTI activity tracing could not start\n");
        return 0;
    }
    atexit(report);
    return 1;
}
