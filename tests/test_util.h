/* test_util.h - what every test shares: where the reference bundle is, error measures that print
 * the measured value next to its bound, fresh random inputs, and the closing summary line. */
#ifndef SDC_TEST_UTIL_H
#define SDC_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "test_rm_tree.h"

/* The device a test that can run anywhere runs on: $SDC_TEST_DEVICE ("cpu", "cuda"; unset or empty: cpu),
 * printed. A name that is not a device fails the test: this prints why and exits 1. */
int test_env_device(void);

/* $SDC_REFERENCE_DIR, else <source>/../shared/reference. A missing bundle fails the test (never a
 * skip): this prints why and exits 1. */
const char *test_reference_dir(void);
/* reference_dir + "/" + rel, in one of a few rotating static buffers. */
const char *test_ref_path(const char *rel);

/* ||out - ref|| / ||ref|| in double; +inf if out holds a NaN or Inf. */
double test_rel_err(const float *out, const float *ref, size_t n);
/* max |out - ref|; +inf on NaN. */
double test_max_abs(const float *out, const float *ref, size_t n);

/* Records a check: prints "  PASS|FAIL what: <name> <err> (bound <bound>)". Returns 1 when it passed. */
int test_check_err(const char *what, const char *measure, double err, double bound);
/* Records a boolean check with a printf message. */
int test_check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "N passed, N failed" and returns the process exit code. */
int test_finish(void);

/* A stderr logger (min level warn, or debug with SDC_TEST_VERBOSE set). */
const sdc_logger *test_logger(void);
/* A logger that records the error messages instead of printing (all of them since it was taken,
 * " | "-separated); test_last_error() returns them. */
const sdc_logger *test_capture_logger(void);
const char *test_last_error(void);

/* Deterministic fresh random inputs: N(0, 1) * scale, from a seeded generator. */
void test_fill_normal(float *x, size_t n, uint64_t seed, float scale);
void test_fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi);

/* Wall-clock seconds. */
double test_now(void);

/* A fresh directory /tmp/sdc-<name>-XXXXXX for the test's files, made once and returned (a failure
 * that exits the test when it cannot be made), removed with its contents when the test exits (kept with
 * SDC_TEST_KEEP_TMP=1); test_tmp_path(rel) is "<that directory>/<rel>", in one of 8 rotating static buffers. */
const char *test_make_tmp_dir(const char *name);
const char *test_tmp_path(const char *rel);
/* Files in dir whose name contains ".tmp-" (temporaries an atomic write left behind). */
int test_count_temporaries(const char *dir);

#endif
