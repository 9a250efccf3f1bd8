#include "test_util.h"

#include "sdc.h"

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef M_PI /* not in strict POSIX */
#define M_PI 3.14159265358979323846
#endif

static int n_pass, n_fail;

const char *test_reference_dir(void) {
    static char dir[4096];
    if (dir[0]) return dir;
    const char *env = getenv("SDC_REFERENCE_DIR");
    if (env && *env)
        snprintf(dir, sizeof dir, "%s", env);
    else
        snprintf(dir, sizeof dir, "%s/../shared/reference", SDC_SOURCE_DIR);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "FAIL: reference bundle not found at %s (set SDC_REFERENCE_DIR)\n", dir);
        printf("0 passed, 1 failed\n");
        exit(1);
    }
    return dir;
}

const char *test_ref_path(const char *rel) {
    static char bufs[8][4096];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", test_reference_dir(), rel);
    return b;
}

double test_rel_err(const float *out, const float *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(out[i])) return INFINITY;
        double d = (double)out[i] - (double)ref[i];
        num += d * d;
        den += (double)ref[i] * (double)ref[i];
    }
    if (den == 0) return num == 0 ? 0 : INFINITY;
    return sqrt(num / den);
}

double test_max_abs(const float *out, const float *ref, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(out[i])) return INFINITY;
        double d = fabs((double)out[i] - (double)ref[i]);
        if (d > m) m = d;
    }
    return m;
}

int test_check_err(const char *what, const char *measure, double err, double bound) {
    int ok = err <= bound; /* NaN fails */
    printf("  %s %s: %s %.3e (bound %.1e)\n", ok ? "PASS" : "FAIL", what, measure, err, bound);
    fflush(stdout);
    ok ? n_pass++ : n_fail++;
    return ok;
}

int test_check(int ok, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("  %s ", ok ? "PASS" : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    ok ? n_pass++ : n_fail++;
    return ok;
}

int test_finish(void) {
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail || !n_pass ? 1 : 0;
}

const sdc_logger *test_logger(void) {
    static sdc_logger lg;
    lg.fn = sdc_log_stderr;
    lg.min_level = getenv("SDC_TEST_VERBOSE") ? SDC_LOG_DEBUG : SDC_LOG_WARN;
    return &lg;
}

static char last_error[4096];

static void capture(sdc_log_level level, const char *msg, void *user) {
    (void)user;
    if (level >= SDC_LOG_ERROR) { /* every error since the logger was taken, " | "-separated */
        size_t n = strlen(last_error);
        snprintf(last_error + n, sizeof last_error - n, "%s%s", n ? " | " : "", msg);
    }
    if (getenv("SDC_TEST_VERBOSE")) fprintf(stderr, "[captured] %s\n", msg);
}

const sdc_logger *test_capture_logger(void) {
    static sdc_logger lg = {capture, NULL, SDC_LOG_DEBUG};
    last_error[0] = 0;
    return &lg;
}

const char *test_last_error(void) { return last_error; }

/* splitmix64 seeds a xoshiro-like stream; Box-Muller for normals. Quality is ample for test inputs. */
static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *s) { return ((splitmix(s) >> 11) + 0.5) * 0x1p-53; }

void test_fill_normal(float *x, size_t n, uint64_t seed, float scale) {
    uint64_t s = seed * 0x2545f4914f6cdd1dull + 1;
    for (size_t i = 0; i < n; i += 2) {
        double u = uniform01(&s), v = uniform01(&s);
        double r = sqrt(-2 * log(u));
        x[i] = (float)(r * cos(2 * M_PI * v)) * scale;
        if (i + 1 < n) x[i + 1] = (float)(r * sin(2 * M_PI * v)) * scale;
    }
}

void test_fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi) {
    uint64_t s = seed * 0x2545f4914f6cdd1dull + 7;
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * (float)uniform01(&s);
}

double test_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static char tmp_dir[256];
static char made_dirs[16][256]; /* the directories test_make_tmp_dir made, removed at exit */
static int n_made;

static void rm_made_dirs(void) {
    const char *keep = getenv("SDC_TEST_KEEP_TMP");
    if (keep && *keep && strcmp(keep, "0") != 0) return;
    for (int i = 0; i < n_made; i++) test_rm_tree(made_dirs[i]);
}

const char *test_make_tmp_dir(const char *name) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/sdc-%s-XXXXXX", name);
    if (!mkdtemp(tmp_dir)) {
        test_check(0, "create a temporary directory %s", tmp_dir);
        exit(test_finish());
    }
    if (n_made < 16) {
        if (n_made == 0) atexit(rm_made_dirs);
        snprintf(made_dirs[n_made++], sizeof made_dirs[0], "%s", tmp_dir);
    }
    return tmp_dir;
}

const char *test_tmp_path(const char *rel) {
    static char bufs[8][512];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", tmp_dir, rel);
    return b;
}

int test_count_temporaries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strstr(e->d_name, ".tmp-")) n++;
    if (d) closedir(d);
    return n;
}

int test_env_device(void) {
    const char *name = getenv("SDC_TEST_DEVICE");
    int d = SDC_DEVICE_CPU;
    if (name && *name && (sdc_name_to_value(SDC_NAMES_DEVICE, name, &d) != 0 || d == SDC_DEVICE_AUTO)) {
        test_check(0, "SDC_TEST_DEVICE=%s: not a device (cpu, cuda)", name);
        exit(test_finish());
    }
    static int printed;
    if (!printed++) printf("device: %s (SDC_TEST_DEVICE)\n", sdc_value_name(SDC_NAMES_DEVICE, d));
    return d;
}
