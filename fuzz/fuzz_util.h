/* fuzz_util.h - what the file-level fuzz targets share: a private temporary folder, writing bytes into it,
 * splitting one input into several files, and a safetensors file built around a fuzzed JSON header. */
#ifndef SDC_FUZZ_UTIL_H
#define SDC_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../tests/test_rm_tree.h"

/* The separator between the files of one input (fuzz.sh builds seeds with it). */
#define FUZZ_SEP "\n=====\n"

static char fuzz_dir_name[64];

static inline void fuzz_dir_remove(void) { test_rm_tree(fuzz_dir_name); }

/* A folder for this process's files, made once, removed at exit. */
static inline const char *fuzz_dir(void) {
    if (!fuzz_dir_name[0]) {
        snprintf(fuzz_dir_name, sizeof fuzz_dir_name, "/tmp/sdc_fuzz_%d_XXXXXX", (int)getpid());
        if (!mkdtemp(fuzz_dir_name)) abort();
        atexit(fuzz_dir_remove);
    }
    return fuzz_dir_name;
}

/* fuzz_dir()/rel in a static buffer (one of 8). */
static inline const char *fuzz_path(const char *rel) {
    static char bufs[8][512];
    static int k;
    char *b = bufs[k++ & 7];
    snprintf(b, 512, "%s/%s", fuzz_dir(), rel);
    return b;
}

static inline void fuzz_write(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(data, 1, n, f) != n) abort();
    fclose(f);
}

/* A safetensors file: 8-byte length, the header bytes, then a zero data section of data_bytes (sparse). */
static inline void fuzz_write_st(const char *path, const uint8_t *header, size_t n, uint64_t data_bytes) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)n >> (8 * i));
    if (fwrite(len, 1, 8, f) != 8 || (n && fwrite(header, 1, n, f) != n)) abort();
    fclose(f);
    if (truncate(path, (off_t)(8 + n + data_bytes)) != 0) abort();
}

/* Splits data at FUZZ_SEP into at most max parts; returns the count (parts point into data). */
static inline int fuzz_split(const uint8_t *data, size_t size, const uint8_t **part, size_t *len, int max) {
    const size_t sl = strlen(FUZZ_SEP);
    int n = 0;
    size_t start = 0;
    for (size_t i = 0; n < max - 1 && i + sl <= size; i++) {
        if (memcmp(data + i, FUZZ_SEP, sl) == 0) {
            part[n] = data + start, len[n] = i - start, n++;
            start = i + sl;
            i += sl - 1;
        }
    }
    part[n] = data + start, len[n] = size - start, n++;
    return n;
}

#endif
