/* test_model_golden.c - model components against the reference bundle (see test_model_golden.h). */
#include "test_model_golden.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_golden.h"
#include "test_util.h"

sdc_model_files *test_open_tiny_sd1(sdc_weight_variant variant, const char *label) {
    sdc_model_files *mf = NULL;
    if (!test_check(sdc_model_files_open(test_ref_path("tiny-sd1"), variant, test_logger(), &mf) == SDC_OK &&
                        sdc_model_files_use_all(mf, test_logger()) == SDC_OK,
                    "open tiny-sd1%s%s%s", label ? " (" : "", label ? label : "", label ? ")" : "")) {
        sdc_model_files_free(mf);
        return NULL;
    }
    return mf;
}

sdc_tensor *test_golden_tensor(sdc_backend *be, sdc_dtype dt, sdc_model_index *g, const char *name) {
    const sdc_tensor_info *info;
    float *x = test_golden_f32(g, name, &info);
    if (!x) return NULL;
    sdc_tensor *t = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, dt, info->ndim, info->ne);
    if (t)
        sdc_tensor_set_f32(t, x);
    else
        test_check(0, "allocate reference tensor %s", name);
    free(x);
    return t;
}

int test_golden_compare(sdc_model_index *g, const char *ref_name, const sdc_tensor *t, const char *what, double bound) {
    const sdc_tensor_info *info;
    float *ref = test_golden_f32(g, ref_name, &info);
    if (!ref) return 0;
    int same = info->ndim == t->ndim;
    for (int i = 0; same && i < t->ndim; i++) same = info->ne[i] == t->ne[i];
    char shape[64];
    if (test_check(same, "%s: shape %s matches the reference", what, sdc_tensor_shape_str(t, shape, sizeof shape))) {
        const size_t n = (size_t)sdc_tensor_nelem(t);
        float *out = malloc(sizeof(float) * n);
        sdc_tensor_get_f32(t, out);
        test_check_err(what, "rel err", test_rel_err(out, ref, n), bound);
        free(out);
    }
    free(ref);
    return 1;
}

int test_golden_compare_f32(sdc_model_index *g, const char *ref_name, const float *got, size_t n, const char *what,
                            double bound) {
    const sdc_tensor_info *info;
    float *ref = test_golden_f32(g, ref_name, &info);
    if (!ref) return 0;
    const size_t n_ref = (size_t)sdc_tensor_info_nelem(info);
    if (n_ref != n)
        test_check(0, "%s: %zu values, the reference %zu", what, n, n_ref);
    else
        test_check_err(what, "rel err", test_rel_err(got, ref, n), bound);
    free(ref);
    return 1;
}

int test_golden_cases(sdc_model_index *g, const char *prefix, const char *suffix, char cases[][64]) {
    int n = 0;
    const size_t lp = strlen(prefix), ls = strlen(suffix);
    for (size_t i = 0; i < sdc_index_count(g) && n < TEST_GOLDEN_MAX_CASES; i++) {
        const char *name = sdc_index_at(g, i)->name;
        const size_t len = strlen(name);
        if (len <= lp + ls || strncmp(name, prefix, lp) != 0 || strcmp(name + len - ls, suffix) != 0 ||
            len - lp - ls >= 64)
            continue;
        memcpy(cases[n], name + lp, len - lp - ls);
        cases[n][len - lp - ls] = '\0';
        if (!strchr(cases[n], '.')) n++;   // "<prefix><case>.block.<name><suffix>" is no case
    }
    return n;
}

void test_block_check_init(test_block_check *bc, sdc_model_index *g, const char *ref_prefix, const char *what_prefix,
                           double bound, double ill_bound, int groups) {
    memset(bc, 0, sizeof *bc);
    bc->g = g;
    snprintf(bc->ref_prefix, sizeof bc->ref_prefix, "%s", ref_prefix);
    snprintf(bc->what_prefix, sizeof bc->what_prefix, "%s", what_prefix);
    bc->bound = bound;
    bc->ill_bound = ill_bound;
    bc->groups = groups;
}

double test_block_bound(const test_block_check *bc) { return bc->ill ? bc->ill_bound : bc->bound; }

/* A GroupNorm over groups of <= 2 elements amplifies small differences (test_unet.c says how much). */
static void note_conditioning(test_block_check *bc, const char *name, const sdc_tensor *t) {
    if (bc->groups <= 0 || bc->ill || t->ndim != 4 || t->ne[1] < bc->groups ||
        t->ne[1] / bc->groups * t->ne[2] * t->ne[3] > 2)
        return;
    bc->ill = 1;
    if (bc->ill_bound != bc->bound)
        printf("    after %s: <= 2 elements per GroupNorm group, ill-conditioned; bound %.1e from here\n", name,
               bc->ill_bound);
}

void test_on_block(const char *name, const sdc_tensor *t, void *user) {
    test_block_check *bc = user;
    char ref_name[256], what[256];
    snprintf(ref_name, sizeof ref_name, "%s%s", bc->ref_prefix, name);
    snprintf(what, sizeof what, "%s %s", bc->what_prefix, name);
    test_golden_compare(bc->g, ref_name, t, what, test_block_bound(bc));
    bc->n_seen++;
    note_conditioning(bc, name, t);
}

int32_t *test_golden_ids(sdc_model_index *g, const char *name, int *B, int *T) {
    const sdc_tensor_info *info;
    float *f = test_golden_f32(g, name, &info);
    if (!f) exit(test_finish());
    *B = (int)info->ne[0];
    *T = (int)info->ne[1];
    const size_t n = (size_t)*B * (size_t)*T;
    int32_t *ids = malloc(sizeof(int32_t) * n);
    for (size_t i = 0; i < n; i++) ids[i] = (int32_t)f[i];
    free(f);
    return ids;
}

void test_hidden_capture_init(test_hidden_capture *c, int n, size_t nelem) {
    c->n = n;
    c->h = calloc((size_t)n, sizeof(float *));
    for (int i = 0; i < n; i++) c->h[i] = malloc(sizeof(float) * nelem);
}

void test_hidden_capture_free(test_hidden_capture *c) {
    for (int i = 0; c->h && i < c->n; i++) free(c->h[i]);
    free(c->h);
    c->h = NULL;
    c->n = 0;
}

void test_on_hidden(int i, const sdc_tensor *h, void *user) {
    test_hidden_capture *c = user;
    if (i < c->n) sdc_tensor_get_f32(h, c->h[i]);
}
