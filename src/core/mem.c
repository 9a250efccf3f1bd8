#include "core/mem.h"

#include <assert.h>
#include <string.h>

const char *sdc_mem_kind_name(sdc_mem_kind kind) {
    static const char *const names[] = {"weights", "activations", "workspace"};
    _Static_assert(sizeof(names) / sizeof(names[0]) == SDC_MEM_KIND_COUNT, "mem kind names");
    return (unsigned)kind < SDC_MEM_KIND_COUNT ? names[kind] : "?";
}

void sdc_mem_stats_alloc(sdc_mem_stats *s, sdc_mem_kind kind, size_t nbytes) {
    assert((unsigned)kind < SDC_MEM_KIND_COUNT);
    s->cur[kind] += nbytes;
    s->cur_total += nbytes;
    s->n_alloc++;
    if (s->cur[kind] > s->peak[kind]) s->peak[kind] = s->cur[kind];
    if (s->cur_total > s->peak_total) {
        s->peak_total = s->cur_total;
        memcpy(s->at_peak, s->cur, sizeof s->cur);
    }
}

void sdc_mem_stats_free(sdc_mem_stats *s, sdc_mem_kind kind, size_t nbytes) {
    assert((unsigned)kind < SDC_MEM_KIND_COUNT);
    assert(s->cur[kind] >= nbytes && s->cur_total >= nbytes);
    s->cur[kind] -= nbytes;
    s->cur_total -= nbytes;
    s->n_free++;
}

void sdc_mem_stats_reset_peak(sdc_mem_stats *s) {
    memcpy(s->peak, s->cur, sizeof s->cur);
    s->peak_total = s->cur_total;
    memcpy(s->at_peak, s->cur, sizeof s->cur);
}
