/* count_backend.c - the counting backend (see count_backend.h). */
#include "backend/count/count_backend.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct count_ctx {
    sdc_backend *like;
    uintptr_t next;       /* the last handle given out */
    size_t persistent_ws; /* like's workspace at creation, counted while this backend lives */
} count_ctx;

static count_ctx *ctx_of(sdc_backend *be) { return (count_ctx *)be->ctx; }
static sdc_backend *like_of(sdc_backend *be) { return ctx_of(be)->like; }

static void count_destroy(sdc_backend *be) {
    count_ctx *c = ctx_of(be);
    sdc_mem_stats_free(&be->stats, SDC_MEM_WORKSPACE, c->persistent_ws);
    if (be->stats.cur_total)
        SDC_LOGW(&be->log, "sdc_backend_free: count backend freed with %zu bytes still counted", be->stats.cur_total);
    free(c);
    free(be);
}

/* Handles are never dereferenced; 64 apart, like real allocations, so that they stay distinct. */
static void *count_alloc(sdc_backend *be, size_t nbytes) {
    count_ctx *c = ctx_of(be);
    c->next += 64;
    return (void *)c->next;
}

static void count_release(sdc_backend *be, void *ptr) {}
static void count_upload(sdc_backend *be, void *dst, const void *host_src, size_t nbytes) {}
static void count_download(sdc_backend *be, void *host_dst, const void *src, size_t nbytes) {
    if (nbytes) memset(host_dst, 0, nbytes);
}
static void count_synchronize(sdc_backend *be) {}

static sdc_dtype count_weight_dtype(sdc_backend *be, sdc_dtype file_dtype, sdc_prec prec, int matrix) {
    sdc_backend *l = like_of(be);
    return l->iface->weight_dtype(l, file_dtype, prec, matrix);
}
static sdc_dtype count_act_dtype(sdc_backend *be, sdc_prec prec) {
    sdc_backend *l = like_of(be);
    return l->iface->act_dtype(l, prec);
}
static int64_t count_row_chunk(sdc_backend *be) { return sdc_backend_row_chunk(like_of(be)); }
static size_t count_workspace_bound(sdc_backend *be, size_t im2col_elems, int64_t tokens) {
    sdc_backend *l = like_of(be);
    return l->iface->workspace_bound ? l->iface->workspace_bound(l, im2col_elems, tokens) : 0;
}

/* An op that holds nbytes of workspace while it runs. */
static void hold_workspace(sdc_backend *be, size_t nbytes) {
    sdc_mem_stats_alloc(&be->stats, SDC_MEM_WORKSPACE, nbytes);
    sdc_mem_stats_free(&be->stats, SDC_MEM_WORKSPACE, nbytes);
}

static void count_conv2d(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b,
                         int stride, int pad) {
    sdc_backend *l = like_of(be);
    if (l->iface->conv2d_workspace) hold_workspace(be, l->iface->conv2d_workspace(l, y, x, w, stride, pad));
}

static void count_attention(sdc_backend *be, sdc_tensor *y, const sdc_tensor *q, const sdc_tensor *k,
                            const sdc_tensor *v, int n_heads, int causal) {
    sdc_backend *l = like_of(be);
    if (l->iface->attention_workspace) hold_workspace(be, l->iface->attention_workspace(l, y, q, k, n_heads));
}

static void count_attention_bias(sdc_backend *be, sdc_tensor *y, const sdc_tensor *q, const sdc_tensor *k,
                                 const sdc_tensor *v, const sdc_tensor *bias, int n_heads, float scale) {
    sdc_backend *l = like_of(be);
    if (l->iface->attention_workspace) hold_workspace(be, l->iface->attention_workspace(l, y, q, k, n_heads));
}

static void count_group_norm(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                             const sdc_tensor *b, int groups, float eps, int silu) {
    sdc_backend *l = like_of(be);
    if (l->iface->group_norm_workspace) hold_workspace(be, l->iface->group_norm_workspace(l, x, groups));
}

static void count_linear(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                         const sdc_tensor *b) {
    sdc_backend *l = like_of(be);
    if (l->iface->linear_workspace) hold_workspace(be, l->iface->linear_workspace(l, y, x, w));
}

static void count_linear_act(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                             const sdc_tensor *b, sdc_unary_op act) {
    count_linear(be, y, x, w, b);
}

/* The ops that hold no workspace on any backend: nothing to do. */
static void count_layer_norm(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                             const sdc_tensor *b, float eps) {}
static void count_unary(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, sdc_unary_op op) {}
static void count_binary(sdc_backend *be, sdc_tensor *y, const sdc_tensor *a, const sdc_tensor *b, sdc_binary_op op) {}
static void count_scale(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, float s) {}
static void count_geglu(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x) {}
static void count_embedding(sdc_backend *be, sdc_tensor *y, const sdc_tensor *table, const sdc_tensor *ids) {}
static void count_upsample2x(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x) {}
static void count_concat(sdc_backend *be, sdc_tensor *y, const sdc_tensor *a, const sdc_tensor *b, int dim) {}
static void count_permute(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const int perm[4]) {}
static void count_copy(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x) {}
static void count_pad2d(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, int top, int bottom, int left, int right) {
}
static void count_slice(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, int dim, int64_t start) {}
static void count_rms_norm(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, float eps) {}
static void count_rope(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *cs, const sdc_tensor *sn,
                       int n_heads) {}
static void count_layer_norm_mod(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *shift,
                                 const sdc_tensor *scale, float eps) {}
static void count_add_gated(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *a,
                            const sdc_tensor *g) {}
static void count_group_norm_stats(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, int groups) {}
static void count_group_norm_apply(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *stats,
                                   const sdc_tensor *w, const sdc_tensor *b, int groups, int silu) {}

static const struct sdc_backend_i count_iface = {
    .name = "count",
    .destroy = count_destroy,
    .alloc = count_alloc,
    .release = count_release,
    .upload = count_upload,
    .download = count_download,
    .synchronize = count_synchronize,
    .weight_dtype = count_weight_dtype,
    .act_dtype = count_act_dtype,
    .workspace_bound = count_workspace_bound,
    .row_chunk = count_row_chunk,
    .linear = count_linear,
    .linear_act = count_linear_act,
    .conv2d = count_conv2d,
    .attention = count_attention,
    .layer_norm = count_layer_norm,
    .group_norm = count_group_norm,
    .unary = count_unary,
    .binary = count_binary,
    .scale = count_scale,
    .geglu = count_geglu,
    .embedding = count_embedding,
    .upsample2x = count_upsample2x,
    .concat = count_concat,
    .permute = count_permute,
    .copy = count_copy,
    .pad2d = count_pad2d,
    .slice = count_slice,
    .rms_norm = count_rms_norm,
    .rope = count_rope,
    .layer_norm_mod = count_layer_norm_mod,
    .add_gated = count_add_gated,
    .attention_bias = count_attention_bias,
    .group_norm_stats = count_group_norm_stats,
    .group_norm_apply = count_group_norm_apply,
};

sdc_backend *sdc_backend_count_new(sdc_backend *like) {
    sdc_backend *be = calloc(1, sizeof *be);
    count_ctx *c = calloc(1, sizeof *c);
    if (!be || !c) {
        SDC_LOGE(&like->log, "sdc_backend_count_new: out of host memory");
        free(be);
        free(c);
        return NULL;
    }
    c->like = like;
    c->next = 4096;
    c->persistent_ws = like->stats.cur[SDC_MEM_WORKSPACE];
    be->iface = &count_iface;
    be->ctx = c;
    be->log = like->log;
    be->n_threads = like->n_threads;
    sdc_mem_stats_alloc(&be->stats, SDC_MEM_WORKSPACE, c->persistent_ws);
    sdc_mem_stats_reset_peak(&be->stats);
    return be;
}

int sdc_backend_is_count(const sdc_backend *be) { return be->iface == &count_iface; }

sdc_backend *sdc_backend_count_like(sdc_backend *be) { return sdc_backend_is_count(be) ? like_of(be) : be; }
