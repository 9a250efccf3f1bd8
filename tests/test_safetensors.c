/* test_safetensors.c - the safetensors reader and the model index.
 *
 * Malformed files (one per error the reader promises to catch) must give their status with a
 * message naming the file; a hand-made file must read back exactly; the reference UNet must read in
 * f32 and fp16 with the fp16 values equal to the f32 ones rounded; files changed after indexing must
 * give SDC_ERR_IO; indexing must read headers only; reads split over threads must give one pread's bytes. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"
#include "io/model_index.h"
#include "io/safetensors.h"
#include "io/st_writer.h"
#include "test_util.h"

static char tmpdir[] = "/tmp/sdc_test_st_XXXXXX";

static char *tmp_path(const char *name) { return sdc_path_join(tmpdir, name); }

static void write_bytes(const char *path, const void *a, size_t na, const void *b, size_t nb) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        test_check(0, "create %s", path);
        return;
    }
    if (na) fwrite(a, 1, na, f);
    if (nb) fwrite(b, 1, nb, f);
    fclose(f);
}

/* u64 header length (declared, may lie) + json + data_len bytes of data */
static void write_st(const char *path, uint64_t declared_len, const char *json, const void *data, size_t data_len) {
    size_t jl = strlen(json);
    unsigned char *buf = malloc(8 + jl);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(declared_len >> (8 * i));
    memcpy(buf + 8, json, jl);
    write_bytes(path, buf, 8 + jl, data, data_len);
    free(buf);
}

/* Indexes path into a fresh index; checks the status, the message, and that nothing was added. */
static void expect_add(const char *path, sdc_status want, const char *what) {
    sdc_model_index *idx = sdc_index_new(test_capture_logger());
    sdc_status st = sdc_index_add_file(idx, path, NULL, NULL, NULL);
    const char *msg = test_last_error();
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    int ok = st == want && (want == SDC_OK || (msg[0] && strstr(msg, base)));
    if (want != SDC_OK) ok = ok && sdc_index_count(idx) == 0 && sdc_index_file_count(idx) == 0;
    test_check(ok, "%s: %s (want %s): \"%s\"", what, sdc_status_str(st), sdc_status_str(want), msg);
    sdc_index_free(idx);
}

static void bad_header(const char *name, const char *json, size_t data_len, const char *what) {
    static unsigned char zeros[256];
    char *p = tmp_path(name);
    write_st(p, strlen(json), json, zeros, data_len < sizeof zeros ? data_len : sizeof zeros);
    expect_add(p, SDC_ERR_FORMAT, what);
    unlink(p);
    free(p);
}

#define T(dtype, shape, offs) "{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":" offs "}"

static void test_malformed(void) {
    char *p = tmp_path("short.safetensors");
    write_bytes(p, "", 0, NULL, 0);
    expect_add(p, SDC_ERR_FORMAT, "empty file");
    write_bytes(p, "\x10\0\0\0\0", 5, NULL, 0);
    expect_add(p, SDC_ERR_FORMAT, "truncated file (5 bytes)");
    write_st(p, 1000, "{}", NULL, 0);
    expect_add(p, SDC_ERR_FORMAT, "header length beyond the end of the file");
    write_st(p, UINT64_MAX, "{}", NULL, 0);
    expect_add(p, SDC_ERR_FORMAT, "header length 2^64-1");
    write_st(p, 0, "", NULL, 0);
    expect_add(p, SDC_ERR_FORMAT, "empty header");
    unlink(p);
    free(p);
    char *absent = tmp_path("absent.safetensors");
    expect_add(absent, SDC_ERR_NOT_FOUND, "absent file");
    free(absent);
    expect_add(tmpdir, SDC_ERR_IO, "a folder");

    bad_header("notjson.safetensors", "{\"a\": {\"dtype\"", 0, "header not JSON");
    bad_header("array.safetensors", "[1, 2]", 0, "header a JSON array");
    bad_header("number.safetensors", "42", 0, "header a JSON number");
    bad_header("trailing.safetensors", "{} x", 0, "text after the header JSON");
    bad_header("notobj.safetensors", "{\"a\": [1]}", 0, "tensor entry not an object");
    bad_header("dtype.safetensors", "{\"a\":" T("F17", "[1]", "[0,4]") "}", 4, "unknown dtype");
    bad_header("dtype2.safetensors", "{\"a\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
               "dtype not a string");
    bad_header("dtype3.safetensors", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "dtype missing");
    bad_header("shape1.safetensors", "{\"a\":" T("F32", "3", "[0,12]") "}", 12, "shape not a list");
    bad_header("shape2.safetensors", "{\"a\":" T("F32", "[-1]", "[0,4]") "}", 4, "negative dimension");
    bad_header("shape3.safetensors", "{\"a\":" T("F32", "[2.5]", "[0,10]") "}", 12, "fractional dimension");
    bad_header("shape4.safetensors", "{\"a\":" T("F32", "[\"2\"]", "[0,8]") "}", 8, "string dimension");
    bad_header("shape5.safetensors", "{\"a\":" T("U8", "[1,1,1,1,1,1,1,1,1]", "[0,1]") "}", 1, "9 dimensions");
    bad_header("shape6.safetensors", "{\"a\":" T("U8", "[1e300]", "[0,1]") "}", 1, "dimension 1e300");
    bad_header("shape7.safetensors", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "shape missing");
    bad_header("offs1.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "data_offsets missing");
    bad_header("offs2.safetensors", "{\"a\":" T("F32", "[1]", "[4]") "}", 4, "data_offsets with one entry");
    bad_header("offs3.safetensors", "{\"a\":" T("F32", "[1]", "[0,4,8]") "}", 8, "data_offsets with three entries");
    bad_header("offs4.safetensors", "{\"a\":" T("F32", "[1]", "[8,4]") "}", 8, "data_offsets end < begin");
    bad_header("offs5.safetensors", "{\"a\":" T("F32", "[1]", "[-4,0]") "}", 8, "negative data_offsets");
    bad_header("offs6.safetensors", "{\"a\":" T("F32", "[1]", "{\"b\":0}") "}", 8, "data_offsets an object");
    bad_header("offs7.safetensors", "{\"a\":" T("F32", "[1]", "[\"0\",\"4\"]") "}", 8, "data_offsets strings");
    bad_header("size1.safetensors", "{\"a\":" T("F32", "[2,2]", "[0,12]") "}", 16, "byte count != shape x dtype");
    bad_header("size2.safetensors", "{\"a\":" T("F16", "[3]", "[0,3]") "}", 4, "byte count off by dtype size");
    bad_header("ovf1.safetensors", "{\"a\":" T("F32", "[1099511627776,1099511627776]", "[0,0]") "}", 0,
               "element count overflows");
    bad_header("ovf2.safetensors", "{\"a\":" T("F64", "[4294967296,4294967296]", "[0,0]") "}", 0,
               "nelem fits but bytes overflow");
    bad_header("ovf3.safetensors", "{\"a\":" T("U8", "[4294967296,4294967296]", "[0,0]") "}", 0,
               "2^64 elements wrap to 0");
    bad_header("range1.safetensors", "{\"a\":" T("F32", "[4]", "[0,16]") "}", 8, "tensor past the end of the data");
    bad_header("range2.safetensors", "{\"a\":" T("F32", "[1]", "[9007199254740988,9007199254740992]") "}", 8,
               "offsets near 2^53");
    bad_header("range3.safetensors", "{\"a\":" T("F32", "[1]", "[0,1e20]") "}", 8, "offset 1e20");
    bad_header("overlap.safetensors", "{\"a\":" T("F32", "[2]", "[0,8]") ",\"b\":" T("F32", "[2]", "[4,12]") "}", 12,
               "overlapping tensors");
    bad_header("overlap2.safetensors", "{\"a\":" T("F32", "[4]", "[0,16]") ",\"b\":" T("F32", "[1]", "[4,8]") "}", 16,
               "a tensor inside another");
    bad_header("dup.safetensors", "{\"a\":" T("F32", "[1]", "[0,4]") ",\"a\":" T("F32", "[1]", "[4,8]") "}", 8,
               "duplicate names");

    /* valid corner cases */
    p = tmp_path("corner.safetensors");
    const char *ok =
        "{\"__metadata__\":{\"format\":\"pt\"},\"e\":" T("F32", "[4294967296,4294967296,0]", "[0,0]") ",\"s\":" T(
            "F32", "[]", "[0,4]") ",\"z\":" T("F16", "[0]", "[4,4]") "}   \n";
    write_st(p, strlen(ok), ok, "abcd", 4);
    sdc_model_index *idx = sdc_index_new(test_capture_logger());
    sdc_status st = sdc_index_add_file(idx, p, NULL, NULL, NULL);
    const sdc_tensor_info *e = sdc_index_find(idx, "e"), *s = sdc_index_find(idx, "s");
    test_check(st == SDC_OK && sdc_index_count(idx) == 3 && !sdc_index_find(idx, "__metadata__") && e && e->ndim == 3 &&
                   e->nbytes == 0 && sdc_tensor_info_nelem(e) == 0 && s && s->ndim == 0 &&
                   sdc_tensor_info_nelem(s) == 1,
               "metadata skipped, empty tensors with huge dims, a scalar, trailing spaces: %s (%zu tensors) \"%s\"",
               sdc_status_str(st), sdc_index_count(idx), test_last_error());
    sdc_index_free(idx);
    unlink(p);
    free(p);

    /* the parser alone: a header that does not fit the claimed file size */
    sdc_st_header h;
    test_check(sdc_st_parse_header("{}", 2, 9, "mem", test_capture_logger(), &h) == SDC_ERR_FORMAT &&
                   h.tensors == NULL && test_last_error()[0],
               "parse_header: header beyond the file size: \"%s\"", test_last_error());
    test_check(sdc_st_parse_header("{}", 2, 10, "mem", test_capture_logger(), &h) == SDC_OK && h.n_tensors == 0 &&
                   h.data_start == 10,
               "parse_header: empty object");
    sdc_st_header_free(&h);
}

/* A file built by hand, byte by byte: every dtype reads back exactly, at the right offset. */
static void test_hand_made(void) {
    /* data section layout, written out of header order on purpose */
    const float f32[6] = {1.5f, -2.25f, 3.0f, 0.0f, 1e-3f, -7.0f}; /* [2, 3] at 0 */
    const uint16_t f16[4] = {0x3c00, 0xc000, 0x3555, 0x7bff};      /* [4] at 24 */
    const uint16_t bf16[2] = {0x3f80, 0xc2c8};                     /* [2] at 32 */
    const int64_t i64[3] = {-5, 0, 123456789};                     /* [3] at 36 */
    const double f64[1] = {0.1};                                   /* [1, 1] at 60 */
    const uint8_t u8[4] = {0, 1, 128, 255};                        /* [4] at 68 */
    const uint8_t f8[2] = {0x38, 0x40};                            /* [2] at 72 */
    unsigned char data[74];
    memcpy(data + 0, f32, 24);
    memcpy(data + 24, f16, 8);
    memcpy(data + 32, bf16, 4);
    memcpy(data + 36, i64, 24);
    memcpy(data + 60, f64, 8);
    memcpy(data + 68, u8, 4);
    memcpy(data + 72, f8, 2);
    /* string pieces between macro calls: clang-format 14 does not settle on one layout */
    // clang-format off
    const char *json = "{\"u8\":" T("U8", "[4]", "[68,72]") ",\"f64\":" T("F64", "[1,1]", "[60,68]")
                       ",\"i64\":" T("I64", "[3]", "[36,60]") ",\"bf16\":" T("BF16", "[2]", "[32,36]")
                       ",\"f16\":" T("F16", "[4]", "[24,32]") ",\"f32\":" T("F32", "[2,3]", "[0,24]")
                       ",\"f8\":" T("F8_E4M3", "[2]", "[72,74]") ",\"__metadata__\":{\"a\":\"b\"}}";
    // clang-format on
    char *p = tmp_path("hand.safetensors");
    write_st(p, strlen(json), json, data, sizeof data);
    uint64_t data_start = 8 + strlen(json);

    sdc_model_index *idx = sdc_index_new(test_capture_logger());
    sdc_status st = sdc_index_add_file(idx, p, NULL, NULL, NULL);
    test_check(st == SDC_OK && sdc_index_count(idx) == 7 && sdc_index_bytes_read(idx) == 0,
               "hand-made file indexes: %s, %zu tensors \"%s\"", sdc_status_str(st), sdc_index_count(idx),
               test_last_error());
    if (st != SDC_OK) {
        sdc_index_free(idx);
        free(p);
        return;
    }
    const sdc_tensor_info *t = sdc_index_find(idx, "f32");
    test_check(t && t->dtype == SDC_DTYPE_F32 && t->ndim == 2 && t->ne[0] == 2 && t->ne[1] == 3 &&
                   t->offset == data_start && t->nbytes == 24 && t->file == 0,
               "f32 info: dtype, shape [2, 3], absolute offset, bytes");
    t = sdc_index_find(idx, "u8");
    test_check(t && t->offset == data_start + 68 && t->nbytes == 4, "u8 info: offset");
    /* sorted by name */
    int sorted = 1;
    for (size_t i = 1; i < sdc_index_count(idx); i++)
        sorted = sorted && strcmp(sdc_index_at(idx, i - 1)->name, sdc_index_at(idx, i)->name) < 0;
    test_check(sorted && sdc_index_at(idx, sdc_index_count(idx)) == NULL && !sdc_index_find(idx, "f3") &&
                   !sdc_index_find(idx, "f32x"),
               "index is sorted; absent names are not found");

    float out[6];
    unsigned char raw[24];
    uint64_t expect_read = 0;
    t = sdc_index_find(idx, "f32");
    st = sdc_index_read_f32(idx, t, out);
    expect_read += 24;
    test_check(st == SDC_OK && memcmp(out, f32, 24) == 0, "read f32 exactly");
    t = sdc_index_find(idx, "f16");
    st = sdc_index_read_raw(idx, t, raw);
    expect_read += 8;
    test_check(st == SDC_OK && memcmp(raw, f16, 8) == 0, "read f16 raw bytes");
    st = sdc_index_read_f32(idx, t, out);
    expect_read += 8;
    test_check(st == SDC_OK && out[0] == 1.0f && out[1] == -2.0f && out[2] == sdc_f16_to_f32(0x3555) &&
                   out[3] == 65504.0f,
               "read f16 as f32");
    t = sdc_index_find(idx, "bf16");
    st = sdc_index_read_f32(idx, t, out);
    expect_read += 4;
    test_check(st == SDC_OK && out[0] == 1.0f && out[1] == -100.0f, "read bf16 as f32");
    t = sdc_index_find(idx, "i64");
    st = sdc_index_read_f32(idx, t, out);
    expect_read += 24;
    test_check(st == SDC_OK && out[0] == -5.0f && out[1] == 0.0f && out[2] == 123456789.0f, "read i64 as f32");
    t = sdc_index_find(idx, "f64");
    st = sdc_index_read_f32(idx, t, out);
    expect_read += 8;
    test_check(st == SDC_OK && out[0] == 0.1f, "read f64 as f32");
    t = sdc_index_find(idx, "u8");
    st = sdc_index_read_f32(idx, t, out);
    expect_read += 4;
    test_check(st == SDC_OK && out[0] == 0 && out[2] == 128 && out[3] == 255, "read u8 as f32");
    t = sdc_index_find(idx, "f8");
    st = sdc_index_read_raw(idx, t, raw);
    expect_read += 2;
    test_check(st == SDC_OK && raw[0] == 0x38 && raw[1] == 0x40, "read f8 raw");
    test_check(sdc_index_read_f32(idx, t, out) == SDC_ERR_UNSUPPORTED && test_last_error()[0],
               "read f8 as f32 is unsupported: \"%s\"", test_last_error());
    test_check(sdc_index_bytes_read(idx) == expect_read, "bytes_read counts every byte: %llu (want %llu)",
               (unsigned long long)sdc_index_bytes_read(idx), (unsigned long long)expect_read);

    /* the same file again under a prefix; again without: duplicate names, nothing added */
    st = sdc_index_add_file(idx, p, "copy.", NULL, NULL);
    test_check(st == SDC_OK && sdc_index_count(idx) == 14 && sdc_index_file_count(idx) == 2 &&
                   sdc_index_find(idx, "copy.f32") && sdc_index_find(idx, "copy.f32")->file == 1 &&
                   strcmp(sdc_index_file_path(idx, 1), p) == 0,
               "a second file under prefix \"copy.\": %zu tensors in %d files", sdc_index_count(idx),
               sdc_index_file_count(idx));
    const sdc_tensor_info *kept = sdc_index_find(idx, "f32");
    st = sdc_index_add_file(idx, p, NULL, NULL, NULL);
    test_check(st == SDC_ERR_FORMAT && sdc_index_count(idx) == 14 && sdc_index_file_count(idx) == 2 &&
                   strstr(test_last_error(), "already indexed"),
               "the same names twice: %s, nothing added: \"%s\"", sdc_status_str(st), test_last_error());
    test_check(sdc_index_find(idx, "f32") == kept, "earlier tensor records do not move");
    sdc_index_free(idx);
    free(p);
}

/* Renames and skips through the name map. */
static const char *test_map(const char *name, char *out, size_t size, void *user) {
    int *calls = user;
    (*calls)++;
    if (strcmp(name, "f16") == 0) return NULL;
    snprintf(out, size, "renamed.%s", name);
    return out;
}

static const char *collide_map(const char *name, char *out, size_t size, void *user) {
    (void)out, (void)size, (void)user, (void)name;
    return "same";
}

static void test_name_map(void) {
    char *p = tmp_path("hand.safetensors");
    sdc_model_index *idx = sdc_index_new(test_capture_logger());
    int calls = 0;
    sdc_status st = sdc_index_add_file(idx, p, "pre.", test_map, &calls);
    test_check(st == SDC_OK && calls == 7 && sdc_index_count(idx) == 6 && sdc_index_find(idx, "pre.renamed.f32") &&
                   !sdc_index_find(idx, "pre.renamed.f16") && !sdc_index_find(idx, "pre.f32"),
               "name map renames and skips: %zu tensors after %d calls", sdc_index_count(idx), calls);
    st = sdc_index_add_file(idx, p, "x.", collide_map, NULL);
    test_check(st == SDC_ERR_FORMAT && sdc_index_count(idx) == 6 && sdc_index_file_count(idx) == 1,
               "a map that gives two tensors one name is an error: \"%s\"", test_last_error());
    sdc_index_free(idx);
    unlink(p);
    free(p);
}

/* A file changed after indexing: reads fail with SDC_ERR_IO, never crash. */
static void test_changed_file(void) {
    float v[64];
    test_fill_normal(v, 64, 3, 1.0f);
    sdc_st_writer *w = sdc_st_writer_new(test_logger());
    sdc_st_writer_add(w, "w", SDC_DTYPE_F32, 2, (int64_t[]){8, 8}, v);
    char *p = tmp_path("changing.safetensors");
    for (int mode = 0; mode < 3; mode++) {
        static const char *const what[] = {"appended to", "truncated", "touched (mtime only)"};
        sdc_st_writer_write(w, p);
        sdc_model_index *idx = sdc_index_new(test_capture_logger());
        sdc_status st = sdc_index_add_file(idx, p, NULL, NULL, NULL);
        const sdc_tensor_info *t = sdc_index_find(idx, "w");
        float out[64];
        int ok = st == SDC_OK && t && sdc_index_read_f32(idx, t, out) == SDC_OK && memcmp(out, v, sizeof v) == 0;
        if (mode == 0) {
            FILE *f = fopen(p, "ab");
            fputs("more", f);
            fclose(f);
        } else if (mode == 1) {
            ok = ok && truncate(p, 8 + 16) == 0;
        } else {
            struct timespec ts[2] = {{.tv_sec = 1000000000, .tv_nsec = 0}, {.tv_sec = 1000000000, .tv_nsec = 0}};
            ok = ok && utimensat(AT_FDCWD, p, ts, 0) == 0;
        }
        uint64_t before = sdc_index_bytes_read(idx);
        st = ok ? sdc_index_read_f32(idx, t, out) : SDC_OK;
        test_check(ok && st == SDC_ERR_IO && strstr(test_last_error(), "file changed since it was indexed") &&
                       sdc_index_bytes_read(idx) == before,
                   "file %s after indexing: %s \"%s\"", what[mode], sdc_status_str(st), test_last_error());
        sdc_index_free(idx);
    }
    sdc_st_writer_free(w);
    unlink(p);
    free(p);
}

/* sdc_index_read_range_par (the loader's reads) against one pread: a tensor of 9 MiB + 12 bytes, whole
 * and from an odd offset, with 2, 3, 4 and 64 readers, gives the same bytes and counts them once; after
 * the file is truncated, an error logged once. */
static void test_parallel_reads(void) {
    enum {
        N = (9 << 20) / 2 + 6
    }; /* F16 elements */
    uint16_t *v = malloc(sizeof *v * N), *a = malloc(sizeof *v * N), *b = malloc(sizeof *v * N);
    for (int i = 0; i < N; i++) v[i] = (uint16_t)(i * 2654435761u >> 7);
    sdc_st_writer *w = sdc_st_writer_new(test_logger());
    sdc_st_writer_add(w, "w", SDC_DTYPE_F16, 1, (int64_t[]){N}, v);
    char *p = tmp_path("parallel.safetensors");
    sdc_model_index *idx = sdc_index_new(test_capture_logger());
    const sdc_tensor_info *t = NULL;
    if (sdc_st_writer_write(w, p) == SDC_OK && sdc_index_add_file(idx, p, NULL, NULL, NULL) == SDC_OK)
        t = sdc_index_find(idx, "w");
    static const int readers[] = {2, 3, 4, 64};
    for (size_t k = 0; t && k < sizeof readers / sizeof readers[0]; k++) {
        const uint64_t off = 2 * 12345, n = t->nbytes - off - 2 * 777;
        memset(a, 0, sizeof *a * N);
        memset(b, 1, sizeof *b * N);
        const uint64_t r0 = sdc_index_bytes_read(idx);
        const int whole =
            sdc_index_read_range_par(idx, t, 0, t->nbytes, a, readers[k]) == SDC_OK && memcmp(a, v, sizeof *v * N) == 0;
        const int part = sdc_index_read_range_par(idx, t, off, n, b, readers[k]) == SDC_OK &&
            sdc_index_read_range(idx, t, off, n, a) == SDC_OK && memcmp(a, b, n) == 0;
        test_check(whole && part && sdc_index_bytes_read(idx) - r0 == t->nbytes + 2 * n,
                   "%d readers: %llu bytes whole and %llu from byte %llu equal one pread's, counted once", readers[k],
                   (unsigned long long)t->nbytes, (unsigned long long)n, (unsigned long long)off);
    }
    const int cut = t && truncate(p, (off_t)(t->nbytes / 2)) == 0;
    const sdc_status st = cut ? sdc_index_read_range_par(idx, t, 0, t->nbytes, a, 4) : SDC_OK;
    const char *e = test_last_error(), *again = strstr(e, "file changed");
    test_check(cut && st == SDC_ERR_IO && again && !strstr(again + 1, "file changed"),
               "truncated: %s, logged once (\"%s\")", sdc_status_str(st), e);
    sdc_index_free(idx);
    sdc_st_writer_free(w);
    unlink(p);
    free(p);
    free(v);
    free(a);
    free(b);
}

/* What the project's writer (st_writer.c) writes reads back bit for bit, names with JSON escapes
 * included, with every tensor 8-byte aligned when the data section starts aligned. */
static void test_writer_files(void) {
    enum {
        N = 3 * 5 * 7
    };
    float a[N];
    uint16_t b[N];
    test_fill_normal(a, N, 21, 2.0f);
    sdc_convert_from_f32(b, SDC_DTYPE_BF16, a, N);
    sdc_st_writer *w = sdc_st_writer_new(test_capture_logger());
    sdc_st_writer_add(w, "a \"quoted\" name\\", SDC_DTYPE_F32, 3, (int64_t[]){3, 5, 7}, a);
    sdc_st_writer_add(w, "b", SDC_DTYPE_BF16, 2, (int64_t[]){N, 1}, b);
    sdc_st_writer_add(w, "empty", SDC_DTYPE_F16, 1, (int64_t[]){0}, b); /* 0 bytes of b */
    char *p = tmp_path("written.safetensors");
    sdc_status st = sdc_st_writer_write(w, p);
    sdc_st_writer_free(w);
    sdc_model_index *idx = sdc_index_new(test_capture_logger());
    if (st == SDC_OK) st = sdc_index_add_file(idx, p, NULL, NULL, NULL);
    const sdc_tensor_info *ta = sdc_index_find(idx, "a \"quoted\" name\\"), *tb = sdc_index_find(idx, "b");
    float ra[N];
    uint16_t rb[N];
    int ok = st == SDC_OK && ta && tb && sdc_index_count(idx) == 3 && ta->ndim == 3 && ta->ne[2] == 7 &&
        ta->offset % 8 == 0 && sdc_index_read_raw(idx, ta, ra) == SDC_OK && sdc_index_read_raw(idx, tb, rb) == SDC_OK &&
        memcmp(ra, a, sizeof a) == 0 && memcmp(rb, b, sizeof b) == 0;
    test_check(ok, "st_writer file reads back (F32, BF16, empty; a name with quotes and a backslash): %s \"%s\"",
               sdc_status_str(st), test_last_error());
    sdc_index_free(idx);
    unlink(p);
    free(p);
}

/* The reference UNet in f32 and fp16: every tensor reads; fp16 = f32 rounded, exactly. */
static void test_reference_unet(void) {
    const char *p32 = test_ref_path("tiny-sd1/unet/diffusion_pytorch_model.safetensors");
    const char *p16 = test_ref_path("tiny-sd1/unet/diffusion_pytorch_model.fp16.safetensors");
    sdc_model_index *i32 = sdc_index_new(test_logger()), *i16 = sdc_index_new(test_logger());
    sdc_status st = sdc_index_add_file(i32, p32, NULL, NULL, NULL);
    if (st == SDC_OK) st = sdc_index_add_file(i16, p16, NULL, NULL, NULL);
    test_check(st == SDC_OK && sdc_index_count(i32) > 0 && sdc_index_count(i32) == sdc_index_count(i16),
               "index the reference unet f32 and fp16: %zu and %zu tensors", sdc_index_count(i32),
               sdc_index_count(i16));
    test_check(sdc_index_bytes_read(i32) == 0 && sdc_index_bytes_read(i16) == 0,
               "indexing reads headers only (bytes_read 0 after add_file)");
    if (st != SDC_OK) goto done;

    uint64_t want32 = 0, want16 = 0, n_values = 0, mismatched = 0, wrong_f32 = 0, min_off = UINT64_MAX;
    int shapes_ok = 1, dtypes_ok = 1, all_read = 1;
    struct stat s32;
    stat(p32, &s32);
    for (size_t i = 0; i < sdc_index_count(i32); i++) {
        const sdc_tensor_info *a = sdc_index_at(i32, i), *b = sdc_index_find(i16, a->name);
        if (!b) {
            shapes_ok = 0;
            continue;
        }
        shapes_ok = shapes_ok && a->ndim == b->ndim && memcmp(a->ne, b->ne, sizeof a->ne[0] * (size_t)a->ndim) == 0;
        dtypes_ok = dtypes_ok && a->dtype == SDC_DTYPE_F32 && b->dtype == SDC_DTYPE_F16;
        size_t n = (size_t)sdc_tensor_info_nelem(a);
        float *x = malloc(n * 4 + 1), *y = malloc(n * 4 + 1);
        uint16_t *h = malloc(n * 2 + 1);
        if (!x || !y || !h || sdc_index_read_f32(i32, a, x) != SDC_OK || sdc_index_read_raw(i16, b, h) != SDC_OK ||
            sdc_index_read_f32(i16, b, y) != SDC_OK) {
            all_read = 0;
        } else {
            for (size_t k = 0; k < n; k++) {
                mismatched += h[k] != sdc_f32_to_f16(x[k]);
                wrong_f32 += y[k] != sdc_f16_to_f32(h[k]);
            }
            n_values += n;
        }
        want32 += a->nbytes;
        if (a->offset < min_off) min_off = a->offset;
        want16 += 2 * b->nbytes;
        free(x);
        free(y);
        free(h);
    }
    test_check(shapes_ok && dtypes_ok, "the fp16 file has the same names and shapes, dtypes F32 / F16");
    test_check(all_read, "every tensor of both files reads");
    test_check(mismatched == 0, "fp16 values == sdc_f32_to_f16(f32 values), exactly: %llu of %llu differ",
               (unsigned long long)mismatched, (unsigned long long)n_values);
    test_check(wrong_f32 == 0, "read_f32 of the fp16 file == sdc_f16_to_f32 of its bits: %llu differ",
               (unsigned long long)wrong_f32);
    test_check(sdc_index_bytes_read(i32) == want32 && sdc_index_bytes_read(i16) == want16,
               "bytes_read: %llu == %llu (f32), %llu == %llu (fp16, read twice)",
               (unsigned long long)sdc_index_bytes_read(i32), (unsigned long long)want32,
               (unsigned long long)sdc_index_bytes_read(i16), (unsigned long long)want16);
    /* the reference writer packs tensors: they cover the data section exactly */
    test_check(min_off + want32 == (uint64_t)s32.st_size, "f32 tensors cover the data section: %llu + %llu == %llu",
               (unsigned long long)min_off, (unsigned long long)want32, (unsigned long long)s32.st_size);
done:
    sdc_index_free(i32);
    sdc_index_free(i16);
}

/* A header with no tensors is a valid, empty file (found by fuzz_single_file: the index sorted a NULL array,
 * undefined behaviour that UBSan stops on). */
static void test_empty_header(void) {
    char *p = tmp_path("empty.safetensors");
    write_st(p, 2, "{}", NULL, 0);
    expect_add(p, SDC_OK, "header {} (no tensors)");
    remove(p);
    free(p);
}

int main(void) {
    printf("test_safetensors\n");
    if (!mkdtemp(tmpdir)) {
        test_check(0, "mkdtemp");
        return test_finish();
    }
    test_malformed();
    test_empty_header();
    test_hand_made();
    test_name_map();
    test_changed_file();
    test_parallel_reads();
    test_writer_files();
    test_reference_unet();
    rmdir(tmpdir);
    return test_finish();
}
