/* test_rng.c - the torch-compatible generators against torch's own draws.
 *
 * Every case of tiny-sd1-golden/rng.json (seed, shape, key, device) is drawn twice from one
 * generator and compared with <key>.first / <key>.second of rng.safetensors: CPU draws bit for bit,
 * CUDA draws within 1e-5 (GPU fast sincos is not reproduced). Then known-answer tests of mt19937 and
 * Philox4x32-10, the stream properties torch has (scalar draws continue across calls, a copy forks
 * the stream, the CUDA grid size only matters beyond one grid), and the statistics of long draws. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "core/rng.h"
#include "test_golden.h"
#include "test_util.h"

#define RNG_JSON "tiny-sd1-golden/rng.json"
#define RNG_TENSORS "tiny-sd1-golden/rng.safetensors"
#define CUDA_MAX_ABS 1e-5

static const char *const draw_suffix[2] = {".first", ".second"};

/* floats mapped to integers that count ulps (monotonic across zero) */
static int64_t ulp_index(float f) {
    int32_t i;
    memcpy(&i, &f, sizeof i);
    return i < 0 ? -(int64_t)(i & 0x7fffffff) : (int64_t)i;
}

typedef struct rng_case {
    const char *key;
    uint64_t seed;
    sdc_rng_kind kind;
    int ndim;
    int64_t shape[SDC_INDEX_MAX_DIMS];
    size_t n;
} rng_case;

/* Reads one entry of rng.json; returns 0 and records a failure when it is malformed. */
static int parse_case(const cJSON *c, rng_case *out) {
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(c, "seed");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(c, "shape");
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(c, "key");
    const cJSON *device = cJSON_GetObjectItemCaseSensitive(c, "device");
    memset(out, 0, sizeof *out);
    if (!cJSON_IsString(key) || !cJSON_IsNumber(seed) || !cJSON_IsArray(shape)) {
        test_check(0, "rng.json entry has key, seed and shape");
        return 0;
    }
    out->key = key->valuestring;
    double s = seed->valuedouble;
    if (!(s >= 0 && s < 0x1p53 && s == floor(s))) {
        test_check(0, "%s: seed %g is a non-negative integer", out->key, s);
        return 0;
    }
    out->seed = (uint64_t)s;
    const char *dev = cJSON_IsString(device) ? device->valuestring : "cpu";
    if (sdc_rng_kind_from_name(dev, &out->kind) != 0) {
        test_check(0, "%s: device '%s' is cpu or cuda", out->key, dev);
        return 0;
    }
    out->n = 1;
    const cJSON *d;
    cJSON_ArrayForEach(d, shape) {
        if (!cJSON_IsNumber(d) || d->valuedouble < 0 || out->ndim == SDC_INDEX_MAX_DIMS) {
            test_check(0, "%s: shape is a list of at most %d sizes", out->key, SDC_INDEX_MAX_DIMS);
            return 0;
        }
        out->shape[out->ndim++] = (int64_t)d->valuedouble;
        out->n *= (size_t)d->valuedouble;
    }
    return 1;
}

static int same_shape(const sdc_tensor_info *info, const rng_case *c) {
    if (info->ndim != c->ndim) return 0;
    for (int i = 0; i < c->ndim; i++)
        if (info->ne[i] != c->shape[i]) return 0;
    return 1;
}

/* Draws both draws of one case and compares each with the reference where the bundle has it.
 * Returns the number of reference tensors compared. */
static int check_case(sdc_model_index *g, const rng_case *c) {
    sdc_rng r;
    sdc_rng_init(&r, c->kind, c->seed);
    float *out = malloc(sizeof(float) * (c->n ? c->n : 1));
    int compared = 0;
    for (int d = 0; d < 2; d++) {
        char name[256];
        snprintf(name, sizeof name, "%s%s", c->key, draw_suffix[d]);
        sdc_rng_randn(&r, out, c->n); /* draw even when not stored: the next draw follows it */
        const sdc_tensor_info *info = sdc_index_find(g, name);
        if (!info) {
            if (d == 0) test_check(0, "%s present in %s", name, RNG_TENSORS);
            continue;
        }
        if (!test_check(same_shape(info, c), "%s: stored shape matches rng.json", name)) continue;
        float *ref = test_golden_f32(g, name, NULL);
        if (!ref) continue;
        compared++;
        if (c->kind == SDC_RNG_CPU) {
            size_t differ = 0;
            int64_t max_ulp = 0;
            for (size_t i = 0; i < c->n; i++) {
                if (memcmp(&out[i], &ref[i], sizeof(float)) != 0) differ++;
                int64_t u = llabs(ulp_index(out[i]) - ulp_index(ref[i]));
                if (u > max_ulp) max_ulp = u;
            }
            test_check(differ == 0, "%s (seed %llu, %zu elements): %zu differ in bits, max %lld ulp", name,
                       (unsigned long long)c->seed, c->n, differ, (long long)max_ulp);
        } else {
            char what[300];
            snprintf(what, sizeof what, "%s (seed %llu, %zu elements)", name, (unsigned long long)c->seed, c->n);
            test_check_err(what, "max |d|", test_max_abs(out, ref, c->n), CUDA_MAX_ABS);
        }
        free(ref);
    }
    free(out);
    return compared;
}

static void check_reference(void) {
    char *text = NULL;
    size_t len = 0;
    if (!test_check(sdc_read_file(test_ref_path(RNG_JSON), test_logger(), &text, &len) == SDC_OK, "read %s", RNG_JSON))
        return;
    cJSON *cases = cJSON_Parse(text);
    free(text);
    if (!test_check(cJSON_IsArray(cases) && cJSON_GetArraySize(cases) > 0, "%s is a non-empty list", RNG_JSON)) {
        cJSON_Delete(cases);
        return;
    }
    sdc_model_index *g = test_golden_open(RNG_TENSORS);
    int compared = 0, n_cases = 0, kinds_seen[SDC_RNG_KIND_COUNT] = {0};
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        rng_case rc;
        if (!parse_case(c, &rc)) continue;
        n_cases++;
        kinds_seen[rc.kind]++;
        compared += check_case(g, &rc);
    }
    /* every rng.* tensor of the bundle belongs to a case of rng.json, so none went unchecked */
    int stored = 0, orphans = 0;
    for (size_t i = 0; i < sdc_index_count(g); i++) {
        const char *name = sdc_index_at(g, i)->name;
        if (strncmp(name, "rng.", 4) != 0) continue;
        stored++;
        int found = 0;
        cJSON_ArrayForEach(c, cases) {
            const cJSON *key = cJSON_GetObjectItemCaseSensitive(c, "key");
            size_t kl = cJSON_IsString(key) ? strlen(key->valuestring) : 0;
            if (kl && strncmp(name, key->valuestring, kl) == 0 &&
                (strcmp(name + kl, draw_suffix[0]) == 0 || strcmp(name + kl, draw_suffix[1]) == 0))
                found = 1;
        }
        if (!found) {
            orphans++;
            test_check(0, "%s belongs to a case of rng.json", name);
        }
    }
    test_check(orphans == 0 && compared == stored, "%d cases (%d cpu, %d cuda): %d of %d stored draws compared",
               n_cases, kinds_seen[SDC_RNG_CPU], kinds_seen[SDC_RNG_CUDA], compared, stored);
    sdc_index_free(g);
    cJSON_Delete(cases);
}

static void check_known_answers(void) {
    /* the C++ standard's check of mt19937: the 10000th output for the default seed 5489 */
    sdc_rng r;
    sdc_rng_init(&r, SDC_RNG_CPU, 5489);
    uint32_t v = 0;
    for (int i = 0; i < 10000; i++) v = sdc_rng_cpu_u32(&r);
    test_check(v == 4123659995u, "mt19937(5489) output 10000 = %u (expected 4123659995)", v);

    /* Random123's known-answer vectors for Philox4x32-10 */
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e, 0xa20bc7c6,
         0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb, 0x5001e420,
         0x24126ea1},
    };
    for (int i = 0; i < 3; i++) {
        uint32_t out[4];
        sdc_philox4x32_10(kat[i], kat[i] + 4, out);
        test_check(memcmp(out, kat[i] + 6, sizeof out) == 0, "philox4x32-10 known answer %d: %08x %08x %08x %08x", i,
                   out[0], out[1], out[2], out[3]);
    }

    for (int k = 0; k < SDC_RNG_KIND_COUNT; k++) {
        sdc_rng_kind back;
        const char *name = sdc_rng_kind_name((sdc_rng_kind)k);
        test_check(name && sdc_rng_kind_from_name(name, &back) == 0 && back == (sdc_rng_kind)k,
                   "kind %d named '%s' parses back", k, name ? name : "(null)");
    }
    sdc_rng_kind dummy;
    test_check(sdc_rng_kind_from_name("mps", &dummy) != 0, "unknown kind name rejected");
}

static int bits_equal(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof *a) == 0; }

static void check_stream_properties(void) {
    float a[12], b[12];
    sdc_rng r;
    /* torch's scalar path keeps the second normal of each pair in the generator, so draws of 5 and
     * 7 are the first 12 normals of one stream */
    sdc_rng_init(&r, SDC_RNG_CPU, 2024);
    sdc_rng_randn(&r, a, 5);
    sdc_rng_randn(&r, a + 5, 7);
    sdc_rng_init(&r, SDC_RNG_CPU, 2024);
    sdc_rng_randn(&r, b, 12);
    test_check(bits_equal(a, b, 12), "cpu: randn(5) then randn(7) equals randn(12)");

    /* a copy of the state forks the stream, for both kinds; reseeding restarts it */
    enum {
        N = 1000
    };
    float *x = malloc(sizeof(float) * N * 3), *y = x + N, *z = x + 2 * N;
    for (int k = 0; k < SDC_RNG_KIND_COUNT; k++) {
        sdc_rng_init(&r, (sdc_rng_kind)k, 99);
        sdc_rng_randn(&r, z, N);
        sdc_rng fork = r;
        sdc_rng_randn(&r, x, N);
        sdc_rng_randn(&fork, y, N);
        test_check(bits_equal(x, y, N) && !bits_equal(x, z, N),
                   "%s: a copied state continues identically, and differs from the previous draw",
                   sdc_rng_kind_name((sdc_rng_kind)k));
    }

    /* CUDA: a draw no larger than one grid is the same whatever the grid size; beyond it the grid
     * size changes which thread draws which element */
    sdc_rng_init(&r, SDC_RNG_CUDA, 5);
    sdc_rng_randn(&r, x, N);
    sdc_rng_init(&r, SDC_RNG_CUDA, 5);
    r.cuda_grid_threads = 1024; /* 4 blocks >= ceil(1000 / 256) */
    sdc_rng_randn(&r, y, N);
    sdc_rng_init(&r, SDC_RNG_CUDA, 5);
    r.cuda_grid_threads = 256; /* one block: four rounds of 4 normals per thread */
    sdc_rng_randn(&r, z, N);
    test_check(bits_equal(x, y, N) && !bits_equal(x, z, N),
               "cuda: a draw within one grid does not depend on the grid size, a larger one does");
    free(x);
}

/* mean, standard deviation and lag-1 correlation of n normals drawn chunk at a time (0: in one
 * draw), against 5-sigma bounds */
static void check_statistics(const char *what, sdc_rng_kind kind, size_t n, size_t chunk) {
    float *x = malloc(sizeof(float) * n);
    sdc_rng r;
    sdc_rng_init(&r, kind, 31337);
    size_t step = chunk ? chunk : n; /* 0: one draw */
    for (size_t i = 0; i < n; i += step) sdc_rng_randn(&r, x + i, n - i < step ? n - i : step);
    double s = 0, s2 = 0, lag = 0, max_abs = 0;
    int finite = 1;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) finite = 0;
        s += x[i];
        s2 += (double)x[i] * x[i];
        if (i) lag += (double)x[i] * x[i - 1];
        if (fabs(x[i]) > max_abs) max_abs = fabs(x[i]);
    }
    double mean = s / n, var = s2 / n - mean * mean;
    double corr = (lag / (n - 1) - mean * mean) / var;
    char label[128];
    snprintf(label, sizeof label, "%s, %zu normals", what, n);
    test_check(finite && max_abs < 9, "%s: all finite, max |x| = %.3f", label, max_abs);
    test_check_err(label, "|mean|", fabs(mean), 5 / sqrt((double)n));
    test_check_err(label, "|std - 1|", fabs(sqrt(var) - 1), 5 * sqrt(0.5 / n));
    test_check_err(label, "|lag-1 corr|", fabs(corr), 5 / sqrt((double)n));
    free(x);
}

int main(void) {
    printf("torch reference draws:\n");
    check_reference();
    printf("known answers:\n");
    check_known_answers();
    printf("stream properties:\n");
    check_stream_properties();
    printf("statistics:\n");
    check_statistics("cpu vector path (one draw, 16 does not divide n)", SDC_RNG_CPU, (1u << 20) + 5, 0);
    check_statistics("cpu scalar path (draws of 15)", SDC_RNG_CPU, 15 * 8000, 15);
    check_statistics("cuda (beyond one grid)", SDC_RNG_CUDA, 3 * SDC_RNG_CUDA_GRID_THREADS_DEFAULT + 7, 0);
    return test_finish();
}
