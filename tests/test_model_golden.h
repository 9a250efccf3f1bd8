/* test_model_golden.h - checking model components against the reference bundle (tiny-sd1 and its
 * tiny-sd1-golden tensors), shared by test_clip, test_unet, test_vae and test_cuda_models: the model
 * opened, reference tensors uploaded as inputs, outputs compared with the stored ones (block by block
 * through the forward's callback), the bundle's case names, and CLIP's ids and hidden states. */
#ifndef SDC_TEST_MODEL_GOLDEN_H
#define SDC_TEST_MODEL_GOLDEN_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "io/model_files.h"
#include "io/model_index.h"

#define TEST_GOLDEN_MAX_CASES 16

/* tiny-sd1 of the bundle with the given weights; NULL after a recorded failure. The check reads
 * "open tiny-sd1 (<label>)", or "open tiny-sd1" when label is NULL. */
sdc_model_files *test_open_tiny_sd1(sdc_weight_variant variant, const char *label);

/* The named reference tensor uploaded as activations of dtype dt; NULL after a recorded failure. */
sdc_tensor *test_golden_tensor(sdc_backend *be, sdc_dtype dt, sdc_model_index *g, const char *name);

/* Compares backend tensor t with the named reference tensor: "<what>: shape [..] matches the reference",
 * then ||t - ref|| / ||ref|| against bound. Returns 0 (after a recorded failure) when the reference is
 * missing, else 1. */
int test_golden_compare(sdc_model_index *g, const char *ref_name, const sdc_tensor *t, const char *what, double bound);
/* The same for n host values: ||got - ref|| / ||ref|| against bound (a reference of another size fails). */
int test_golden_compare_f32(sdc_model_index *g, const char *ref_name, const float *got, size_t n, const char *what,
                            double bound);

/* Case names: <case> of every tensor "<prefix><case><suffix>" of g where <case> has no '.', in index
 * order, at most TEST_GOLDEN_MAX_CASES of them (names under 64 characters). Returns how many. */
int test_golden_cases(sdc_model_index *g, const char *prefix, const char *suffix, char cases[][64]);

/* Block outputs of a forward (sdc_unet_block_cb, sdc_vae_block_cb) against the reference: block <name>
 * is compared with "<ref_prefix><name>" under the check name "<what_prefix> <name>". With groups > 0
 * (the UNet's GroupNorm groups), once a block output has <= 2 elements per group the case counts as
 * ill-conditioned and ill_bound applies from there (see test_unet.c). */
typedef struct test_block_check {
    sdc_model_index *g;
    char ref_prefix[128], what_prefix[128];
    double bound, ill_bound;
    int groups, ill;
    int n_seen;   // block outputs the forward reported
} test_block_check;

void test_block_check_init(test_block_check *bc, sdc_model_index *g, const char *ref_prefix, const char *what_prefix,
                           double bound, double ill_bound, int groups);
/* The bound in force: ill_bound past the ill-conditioned point, else bound. */
double test_block_bound(const test_block_check *bc);
/* The forward's block callback; user is a test_block_check. */
void test_on_block(const char *name, const sdc_tensor *t, void *user);

/* The named reference ids (stored as floats, [B, T]) as malloc'd int32. Exits the test with a failure
 * when they are absent (a model input: nothing can be checked without them). */
int32_t *test_golden_ids(sdc_model_index *g, const char *name, int *B, int *T);

/* Hidden states captured through sdc_clip_forward's callback: h[i] receives hidden state i. */
typedef struct test_hidden_capture {
    float **h;   // [n][B*T*C]
    int n;
} test_hidden_capture;

void test_hidden_capture_init(test_hidden_capture *c, int n, size_t nelem);
void test_hidden_capture_free(test_hidden_capture *c);
/* The callback (sdc_clip_hidden_cb); user is a test_hidden_capture. */
void test_on_hidden(int i, const sdc_tensor *h, void *user);

#endif
