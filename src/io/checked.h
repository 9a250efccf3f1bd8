/* checked.h - checked integer arithmetic for sizes that come from a file or a flag.
 *
 * Each returns 0 and stores the result, or -1 (leaving *out unchanged) when the exact result does not
 * fit the type. Signed overflow is undefined behaviour in C; these never perform it. */
#ifndef SDC_IO_CHECKED_H
#define SDC_IO_CHECKED_H

#include <stddef.h>
#include <stdint.h>

static inline int sdc_ckd_add_int(int a, int b, int *out) {
    int r;
    if (__builtin_add_overflow(a, b, &r)) return -1;
    *out = r;
    return 0;
}

static inline int sdc_ckd_sub_int(int a, int b, int *out) {
    int r;
    if (__builtin_sub_overflow(a, b, &r)) return -1;
    *out = r;
    return 0;
}

static inline int sdc_ckd_mul_int(int a, int b, int *out) {
    int r;
    if (__builtin_mul_overflow(a, b, &r)) return -1;
    *out = r;
    return 0;
}

static inline int sdc_ckd_add_i64(int64_t a, int64_t b, int64_t *out) {
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) return -1;
    *out = r;
    return 0;
}

static inline int sdc_ckd_mul_size(size_t a, size_t b, size_t *out) {
    size_t r;
    if (__builtin_mul_overflow(a, b, &r)) return -1;
    *out = r;
    return 0;
}

#endif
