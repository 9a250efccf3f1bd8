/* test_gguf.c - the GGUF reader (io/gguf.h) and GGUF files in the model index:
 *  - tests/data/gguf/meta.gguf (tools/make_gguf_fixtures.py, written by the gguf package): every metadata
 *    type and arrays read back exactly; general.alignment; tensors of several types and ranks indexed in
 *    torch order with their known values; a Q8_0 tensor's bytes and block scales;
 *  - files built here, valid (v2 and v3) and broken one way each: truncated at every length, an unknown
 *    type id, data past the end, a misaligned offset, a 2^40-byte string, a tensor count of 2^60,
 *    duplicate names and keys, overlapping tensors, a row that is not whole blocks, version 1 and a
 *    big-endian file: each SDC_ERR_FORMAT with a message naming the problem;
 *  - sdc.conv_shape.NAME (sdc convert --quantize-convs): a 2-D [Co, Ci*KH*KW] tensor indexed as its kernel
 *    [Co, Ci, KH, KW], same bytes; a key that names no tensor, a malformed value or a shape that does not
 *    fit: SDC_ERR_FORMAT naming it;
 *  - the llama.cpp-named T5 GGUF (tests/data/gguf/tiny-t5-f32.gguf) through the T5 name map: every tensor
 *    and the encoder's output equal to the safetensors file's, bit for bit; and given as --t5xxl to the
 *    tiny Flux schnell folder, the same image as the safetensors T5. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/dtype.h"
#include "core/quant.h"
#include "io/config.h"
#include "io/gguf.h"
#include "io/model_index.h"
#include "io/t5_gguf_names.h"
#include "model/t5.h"
#include "sdc.h"
#include "test_util.h"

#define DATA SDC_SOURCE_DIR "/tests/data/gguf/"

/* --- a tiny GGUF writer for the crafted files ---------------------------------------------------- */

typedef struct buf {
    unsigned char *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void put_u32(buf *b, uint32_t v) {
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    put(b, x, 4);
}
static void put_u64(buf *b, uint64_t v) {
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}
static void put_str(buf *b, const char *s) {
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}

/* One tensor of a crafted file: name, GGUF dims (innermost first), ggml type id, data offset. */
typedef struct craft_tensor {
    const char *name;
    int nd;
    uint64_t ne[8]; /* up to 8: a case writes 5 dims to be refused */
    uint32_t type;
    uint64_t offset;
} craft_tensor;

/* A file: version, metadata (one string key "general.architecture" plus, when str_len is set, a string
 * whose length field says str_len), general.alignment when align, the tensors, padding, data_bytes
 * of data. n_tensors_field overrides the tensor count written (0: the real one). */
typedef struct craft {
    uint32_t version;
    uint32_t align;
    uint64_t str_len;
    int dup_key;
    uint64_t n_tensors_field;
    const char *extra_key, *extra_val; /* one more STRING pair when set */
    const craft_tensor *t;
    int n_t;
    uint64_t data_bytes;
} craft;

static buf build(const craft *c) {
    buf b = {0};
    put(&b, "GGUF", 4);
    put_u32(&b, c->version);
    put_u64(&b, c->n_tensors_field ? c->n_tensors_field : (uint64_t)c->n_t);
    put_u64(&b, 1 + (c->align != 0) + (c->str_len != 0) + (c->dup_key != 0) + (c->extra_key != NULL));
    put_str(&b, "general.architecture");
    put_u32(&b, SDC_GGUF_STRING);
    put_str(&b, "test");
    if (c->dup_key) {
        put_str(&b, "general.architecture");
        put_u32(&b, SDC_GGUF_STRING);
        put_str(&b, "again");
    }
    if (c->extra_key) {
        put_str(&b, c->extra_key);
        put_u32(&b, SDC_GGUF_STRING);
        put_str(&b, c->extra_val);
    }
    if (c->align) {
        put_str(&b, "general.alignment");
        put_u32(&b, SDC_GGUF_UINT32);
        put_u32(&b, c->align);
    }
    if (c->str_len) {
        put_str(&b, "t.long");
        put_u32(&b, SDC_GGUF_STRING);
        put_u64(&b, c->str_len);
        put(&b, "abcdefgh", 8);
    }
    for (int i = 0; i < c->n_t; i++) {
        put_str(&b, c->t[i].name);
        put_u32(&b, (uint32_t)c->t[i].nd);
        for (int d = 0; d < c->t[i].nd; d++) put_u64(&b, c->t[i].ne[d]);
        put_u32(&b, c->t[i].type);
        put_u64(&b, c->t[i].offset);
    }
    const uint32_t a = c->align ? c->align : 32;
    while (b.n % a) put(&b, "\0", 1);
    for (uint64_t i = 0; i < c->data_bytes; i++) {
        const unsigned char x = (unsigned char)(i * 7 + 1);
        put(&b, &x, 1);
    }
    return b;
}

static const char *write_tmp(const char *name, const void *p, size_t n) {
    const char *path = test_tmp_path(name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n)) abort();
    fclose(f);
    return path;
}

/* Indexes the bytes as a file; the status, the index's messages in test_last_error(). */
static sdc_status index_bytes(const void *p, size_t n) {
    const char *path = write_tmp("crafted.bin", p, n);
    sdc_model_index *idx = sdc_index_new(test_capture_logger());
    const sdc_status st = sdc_index_add_file(idx, path, "", NULL, NULL);
    sdc_index_free(idx);
    return st;
}

/* A valid file: an F32 [4, 2] (GGUF ne {2, 4}), an F16 [3], a Q8_0 [2, 64]: 32 + 32 (6 bytes, padded) + 136. */
static const craft_tensor good_t[] = {
    {"a.weight", 2, {2, 4}, 0, 0},
    {"b.bias", 1, {3}, 1, 32},
    {"q.weight", 2, {64, 2}, 8, 64},
};

static void expect_refused(const char *what, const craft *c, const char *needle) {
    buf b = build(c);
    const sdc_status st = index_bytes(b.p, b.n);
    const char *msg = test_last_error();
    test_check(st == SDC_ERR_FORMAT && strstr(msg, needle), "%s: SDC_ERR_FORMAT (%s), message '%.160s' names '%s'",
               what, sdc_status_str(st), msg, needle);
    free(b.p);
}

static void test_crafted(void) {
    craft ok = {.version = 3, .t = good_t, .n_t = 3, .data_bytes = 200};
    for (uint32_t v = 2; v <= 3; v++) {
        ok.version = v;
        buf b = build(&ok);
        const char *path = write_tmp("good.gguf", b.p, b.n);
        sdc_model_index *idx = sdc_index_new(test_logger());
        const sdc_status st = sdc_index_add_file(idx, path, "p.", NULL, NULL);
        const sdc_tensor_info *a = sdc_index_find(idx, "p.a.weight"), *q = sdc_index_find(idx, "p.q.weight");
        test_check(st == SDC_OK && a && q && a->ndim == 2 && a->ne[0] == 4 && a->ne[1] == 2 &&
                       a->dtype == SDC_DTYPE_F32 && a->nbytes == 32 && q->dtype == SDC_DTYPE_Q8_0 && q->nbytes == 136 &&
                       q->ne[0] == 2 && q->ne[1] == 64,
                   "v%u file: indexed in torch order, a [4, 2] F32 32 bytes, q [2, 64] Q8_0 136 bytes", v);
        unsigned char got[136];
        test_check(q && sdc_index_read_raw(idx, q, got) == SDC_OK && !memcmp(got, b.p + b.n - 200 + 64, 136),
                   "v%u file: the Q8_0 tensor's 136 bytes read raw", v);
        sdc_index_free(idx);
        /* every shorter file is refused, none crashes */
        int refused = 0;
        for (size_t n = 0; n < b.n; n++) refused += index_bytes(b.p, n) == SDC_ERR_FORMAT;
        test_check(refused == (int)b.n, "v%u file cut at each of %zu lengths: %d refused (SDC_ERR_FORMAT)", v, b.n,
                   refused);
        index_bytes(b.p, 40);
        test_check(strstr(test_last_error(), "truncated") != NULL, "a cut header's message says truncated: '%.160s'",
                   test_last_error());
        index_bytes(b.p, b.n - 1);
        test_check(strstr(test_last_error(), "runs past the end") != NULL,
                   "a cut data section's message says the tensor runs past the end: '%.160s'", test_last_error());
        free(b.p);
    }
    ok.version = 3;

    craft c = ok;
    craft_tensor t[3];
    memcpy(t, good_t, sizeof t);
    c.t = t;
    t[1].type = 99;
    expect_refused("unknown type id 99", &c, "ggml type 99");
    t[1].type = 16; /* IQ2_XXS: a ggml type sdc does not read */
    expect_refused("ggml type 16 (IQ2_XXS)", &c, "ggml type 16");
    memcpy(t, good_t, sizeof t);
    t[2].offset = 96; /* 96 + 136 > 200 */
    expect_refused("data past the end", &c, "runs past the end");
    t[2].offset = 64;
    t[1].offset = 36;
    expect_refused("misaligned offset", &c, "not a multiple of the alignment 32");
    memcpy(t, good_t, sizeof t);
    t[0].ne[1] = 8; /* a: 64 bytes at 0; b at 32 */
    expect_refused("overlapping tensors", &c, "overlap");
    memcpy(t, good_t, sizeof t);
    t[1].name = "a.weight";
    expect_refused("duplicate tensor names", &c, "two tensors are named 'a.weight'");
    memcpy(t, good_t, sizeof t);
    t[2].ne[0] = 48, t[2].ne[1] = 2;
    expect_refused("Q8_0 rows of 48 elements", &c, "not whole 32-element blocks");
    memcpy(t, good_t, sizeof t);
    t[0].nd = 5;
    expect_refused("5 dimensions", &c, "5 dimensions");
    t[0].nd = 2;
    t[0].ne[0] = (uint64_t)1 << 62, t[0].ne[1] = 8;
    expect_refused("2^65 elements", &c, "too many elements");
    memcpy(t, good_t, sizeof t);
    t[0].nd = 3;
    t[0].ne[0] = 0, t[0].ne[1] = (uint64_t)1 << 62, t[0].ne[2] = 8; /* fuzz_st_file's finding (session 9) */
    expect_refused("a zero dimension beside 2^65 elements", &c, "too many elements");
    memcpy(t, good_t, sizeof t);

    c = ok;
    c.str_len = (uint64_t)1 << 40;
    expect_refused("a 2^40-byte string", &c, "1099511627776 bytes");
    c = ok;
    c.n_tensors_field = (uint64_t)1 << 60;
    expect_refused("a tensor count of 2^60", &c, "1152921504606846976 tensor infos cannot fit");
    c = ok;
    c.dup_key = 1;
    expect_refused("duplicate metadata keys", &c, "appears twice");
    c = ok;
    c.align = 48;
    expect_refused("alignment 48", &c, "power of two");
    c = ok;
    c.version = 1;
    expect_refused("version 1", &c, "version 1");
    c.version = 0x03000000u;
    expect_refused("a big-endian file", &c, "big-endian");

    /* alignment 64 moves the data section and the offsets must follow it */
    c = ok;
    c.align = 64;
    memcpy(t, good_t, sizeof t);
    c.t = t;
    t[1].offset = 64, t[2].offset = 128;
    c.data_bytes = 264;
    buf b = build(&c);
    test_check(index_bytes(b.p, b.n) == SDC_OK, "alignment 64: offsets 0, 64, 128 accepted");
    free(b.p);
    t[1].offset = 32;
    expect_refused("alignment 64, an offset of 32", &c, "not a multiple of the alignment 64");
    /* not GGUF, not safetensors */
    test_check(index_bytes("GGU", 3) == SDC_ERR_FORMAT, "a 3-byte file is refused");
}

/* sdc.conv_shape.NAME (sdc convert --quantize-convs): the 2-D tensor [Co, Ci*KH*KW] is indexed as the
 * kernel [Co, Ci, KH, KW] with the same bytes; a key that does not fit its tensor is refused. */
static void test_conv_shape(void) {
    craft c = {.version = 3, .t = good_t, .n_t = 3, .data_bytes = 200};
    c.extra_key = SDC_GGUF_CONV_SHAPE_KEY "q.weight";
    c.extra_val = "2,16,2,2";
    buf b = build(&c);
    const char *path = write_tmp("conv.gguf", b.p, b.n);
    sdc_model_index *idx = sdc_index_new(test_logger());
    const sdc_status st = sdc_index_add_file(idx, path, "", NULL, NULL);
    const sdc_tensor_info *q = sdc_index_find(idx, "q.weight");
    test_check(st == SDC_OK && q && q->ndim == 4 && q->ne[0] == 2 && q->ne[1] == 16 && q->ne[2] == 2 && q->ne[3] == 2 &&
                   q->dtype == SDC_DTYPE_Q8_0 && q->nbytes == 136,
               "sdc.conv_shape.q.weight = \"2,16,2,2\": the Q8_0 [2, 64] is indexed as the kernel [2, 16, 2, 2], "
               "136 bytes (got %d-D [%lld, %lld, ...], %llu bytes)",
               q ? q->ndim : 0, q ? (long long)q->ne[0] : 0LL, q ? (long long)q->ne[1] : 0LL,
               q ? (unsigned long long)q->nbytes : 0ULL);
    unsigned char got[136];
    float f[128];
    test_check(q && sdc_index_read_raw(idx, q, got) == SDC_OK && !memcmp(got, b.p + b.n - 200 + 64, 136) &&
                   sdc_index_read_f32(idx, q, f) == SDC_OK,
               "the kernel's 136 bytes read raw and as 128 floats");
    sdc_index_free(idx);
    free(b.p);
    c.extra_key = SDC_GGUF_CONV_SHAPE_KEY "a.weight"; /* any 2-D dtype: the F32 [4, 2] as [4, 2, 1, 1] */
    c.extra_val = "4,2,1,1";
    b = build(&c);
    test_check(index_bytes(b.p, b.n) == SDC_OK, "an F32 [4, 2] as the 1x1 kernel [4, 2, 1, 1]: accepted");
    free(b.p);
    static const struct {
        const char *key, *val, *needle;
    } bad[] = {
        {SDC_GGUF_CONV_SHAPE_KEY "q.weight", "2,16,3,3",
         "says the kernel [2, 16, 3, 3], but the tensor is 2-D [2, 64]"},
        {SDC_GGUF_CONV_SHAPE_KEY "q.weight", "4,8,2,2", "says the kernel [4, 8, 2, 2]"},
        {SDC_GGUF_CONV_SHAPE_KEY "b.bias", "3,1,1,1", "the tensor is 1-D"},
        {SDC_GGUF_CONV_SHAPE_KEY "q.weight", "2,16,4", "is not a STRING \"Co,Ci,KH,KW\""},
        {SDC_GGUF_CONV_SHAPE_KEY "q.weight", "2,16,2,2,1", "is not a STRING"},
        {SDC_GGUF_CONV_SHAPE_KEY "q.weight", "2,0,2,2", "is not a STRING"},
        {SDC_GGUF_CONV_SHAPE_KEY "q.weight", "2,-16,2,2", "is not a STRING"},
        {SDC_GGUF_CONV_SHAPE_KEY "q.weight", "2,16,2,99999999999", "is not a STRING"},
        {SDC_GGUF_CONV_SHAPE_KEY "zz.weight", "2,16,2,2", "names no tensor"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c.extra_key = bad[i].key;
        c.extra_val = bad[i].val;
        char what[160];
        snprintf(what, sizeof what, "%s = \"%s\"", bad[i].key, bad[i].val);
        expect_refused(what, &c, bad[i].needle);
    }
}

/* --- meta.gguf: metadata and tensors written by the gguf package -------------------------------- */

static void test_meta(void) {
    sdc_gguf *g = NULL;
    sdc_status st = sdc_gguf_read_file(DATA "meta.gguf", test_logger(), &g);
    if (!test_check(st == SDC_OK, "read meta.gguf: %s", sdc_status_str(st))) return;
    test_check(sdc_gguf_version(g) == 3 && sdc_gguf_alignment(g) == 64 && sdc_gguf_data_start(g) % 64 == 0,
               "version 3, alignment 64, data at %llu", (unsigned long long)sdc_gguf_data_start(g));
    const char *arch = sdc_gguf_get_str(g, "general.architecture");
    test_check(arch && !strcmp(arch, "test"), "general.architecture = '%s'", arch ? arch : "(none)");
    static const struct {
        const char *key;
        int64_t v;
    } ints[] = {{"t.u8", 200},           {"t.i8", -100},         {"t.u16", 60000},        {"t.i16", -30000},
                {"t.u32", 4000000000LL}, {"t.i32", -2000000000}, {"t.i64", -(1LL << 40)}, {"t.bool", 1}};
    int bad = 0;
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        int64_t v = 0;
        bad += sdc_gguf_get_int(g, ints[i].key, &v) != 0 || v != ints[i].v;
    }
    test_check(bad == 0, "8 integer and bool values: %d wrong", bad);
    double f = 0, u64 = 0, f64 = 0;
    int64_t iv;
    test_check(sdc_gguf_get_float(g, "t.f32", &f) == 0 && f == 0.15625 && sdc_gguf_get_float(g, "t.u64", &u64) == 0 &&
                   u64 == 9223372036854775813.0 && sdc_gguf_get_int(g, "t.u64", &iv) == -1 &&
                   sdc_gguf_get_float(g, "t.f64", &f64) == 0 && f64 == -2.5e300,
               "f32 0.15625, u64 2^63 + 5 (no int64), f64 -2.5e300");
    const char *s = sdc_gguf_get_str(g, "t.str");
    test_check(s && !strcmp(s, "h\xc3\xa9llo") && !sdc_gguf_get_str(g, "t.u8") && sdc_gguf_get_int(g, "t.str", &iv),
               "string 'héllo'; asking for another type than stored fails");
    sdc_gguf_value_type et;
    double d0, d1, d2;
    test_check(sdc_gguf_get_arr(g, "t.arr_i32", &et) == 3 && et == SDC_GGUF_INT32 &&
                   !sdc_gguf_arr_num(g, "t.arr_i32", 0, &d0) && !sdc_gguf_arr_num(g, "t.arr_i32", 1, &d1) &&
                   !sdc_gguf_arr_num(g, "t.arr_i32", 2, &d2) && d0 == 1 && d1 == -2 && d2 == 3 &&
                   sdc_gguf_arr_num(g, "t.arr_i32", 3, &d0) == -1,
               "INT32 array [1, -2, 3]");
    const char *a0 = sdc_gguf_arr_str(g, "t.arr_str", 0), *a1 = sdc_gguf_arr_str(g, "t.arr_str", 1),
               *a2 = sdc_gguf_arr_str(g, "t.arr_str", 2);
    test_check(sdc_gguf_get_arr(g, "t.arr_str", &et) == 3 && et == SDC_GGUF_STRING && a0 && a1 && a2 &&
                   !strcmp(a0, "a") && !strcmp(a1, "") &&
                   !strcmp(a2,
                           "\xc3\xbc"
                           "ber") &&
                   !sdc_gguf_arr_str(g, "t.arr_str", 3),
               "STRING array ['a', '', 'über']");
    test_check(!sdc_gguf_arr_num(g, "t.arr_f32", 1, &d0) && d0 == 1.5, "FLOAT32 array [0.5, 1.5]");
    test_check(sdc_gguf_get_arr(g, "t.arr_arr", &et) == 2 && et == SDC_GGUF_ARRAY, "array of 2 arrays");
    test_check(sdc_gguf_find(g, "t.none") == -1 && !sdc_gguf_get_str(g, "t.none"), "an absent key");
    sdc_gguf_free(g);

    /* the same file in the index: torch order, known values */
    sdc_model_index *idx = sdc_index_new(test_logger());
    st = sdc_index_add_file(idx, DATA "meta.gguf", "m.", NULL, NULL);
    if (!test_check(st == SDC_OK && sdc_index_count(idx) == 5, "index meta.gguf: %s, %zu tensors", sdc_status_str(st),
                    sdc_index_count(idx))) {
        sdc_index_free(idx);
        return;
    }
    static const struct {
        const char *name;
        sdc_dtype dt;
        int nd;
        int64_t ne[3];
    } want[] = {{"m.f32", SDC_DTYPE_F32, 2, {3, 5}},
                {"m.f16", SDC_DTYPE_F16, 2, {2, 32}},
                {"m.q8_0", SDC_DTYPE_Q8_0, 2, {2, 64}},
                {"m.vec", SDC_DTYPE_F32, 1, {7}},
                {"m.cube", SDC_DTYPE_F32, 3, {2, 3, 4}}};
    float v[128];
    for (size_t i = 0; i < 5; i++) {
        const sdc_tensor_info *t = sdc_index_find(idx, want[i].name);
        int ok = t && t->dtype == want[i].dt && t->ndim == want[i].nd && t->offset % 64 == 0;
        for (int d = 0; ok && d < want[i].nd; d++) ok = t->ne[d] == want[i].ne[d];
        test_check(ok, "%s: %s, torch-order shape, 64-aligned", want[i].name, sdc_dtype_name(want[i].dt));
    }
    const sdc_tensor_info *t = sdc_index_find(idx, "m.f32");
    bad = !t || sdc_index_read_f32(idx, t, v) != SDC_OK;
    for (int i = 0; !bad && i < 15; i++) bad += v[i] != (float)i / 8;
    t = sdc_index_find(idx, "m.f16");
    bad += !t || sdc_index_read_f32(idx, t, v) != SDC_OK;
    for (int i = 0; !bad && i < 64; i++) bad += v[i] != ((float)i - 20) / 4;
    t = sdc_index_find(idx, "m.cube");
    bad += !t || sdc_index_read_f32(idx, t, v) != SDC_OK;
    for (int i = 0; !bad && i < 24; i++) bad += v[i] != (float)i;
    t = sdc_index_find(idx, "m.vec");
    bad += !t || sdc_index_read_f32(idx, t, v) != SDC_OK;
    for (int i = 0; !bad && i < 7; i++) bad += v[i] != -(float)i;
    test_check(bad == 0, "f32, f16, cube and vec read back exactly (%d wrong)", bad);
    /* Q8_0: 4 blocks of (f16 scale, 32 int8); the scale is max |x| / 127 of its 32 values (ggml's rule) */
    t = sdc_index_find(idx, "m.q8_0");
    unsigned char q[136];
    bad = !t || t->nbytes != 136 || sdc_index_read_raw(idx, t, q) != SDC_OK;
    double worst = 0;
    for (int blk = 0; !bad && blk < 4; blk++) {
        float amax = 0;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(sinf((float)(blk * 32 + i)) / 2));
        const float d = sdc_f16_to_f32((uint16_t)(q[blk * 34] | q[blk * 34 + 1] << 8));
        worst = fmax(worst, fabs(d - amax / 127) / (amax / 127));
        for (int i = 0; i < 32; i++) { /* each quant times the scale is within half a step of the value */
            const float x = sinf((float)(blk * 32 + i)) / 2, y = d * (float)(signed char)q[blk * 34 + 2 + i];
            bad += fabsf(x - y) > 0.5f * d * 1.001f + 1e-7f;
        }
    }
    test_check(bad == 0, "Q8_0 tensor: 136 raw bytes, every quant within half a step (%d off)", bad);
    test_check_err("Q8_0 block scales vs max|x|/127", "rel err", worst, 1e-3); /* f16 rounding of the scale */
    test_check(sdc_index_transpose(idx, "m.q8_0") == SDC_ERR_FORMAT, "a Q8_0 tensor cannot be viewed transposed");
    sdc_index_free(idx);
}

/* --- the llama.cpp-named T5 against the safetensors one ---------------------------------------- */

static float *t5_run(sdc_model_index *idx, const sdc_t5_config *cfg, const int32_t *ids, int T) {
    sdc_backend *be = sdc_backend_cpu_new(1, test_logger());
    sdc_t5 *m = NULL;
    float *host = NULL;
    sdc_status st =
        be ? sdc_t5_load(cfg, &(sdc_weight_source){idx, "", be, test_logger(), 0, 0, NULL, 0}, &m) : SDC_ERR_OOM;
    if (test_check(st == SDC_OK, "T5 load: %s", sdc_status_str(st))) {
        sdc_tensor *out = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 3, (int64_t[]){1, T, cfg->d_model});
        host = malloc(sizeof(float) * (size_t)(T * cfg->d_model));
        st = sdc_t5_forward(m, ids, 1, T, out);
        if (st == SDC_OK) st = sdc_backend_sync(be);
        if (st == SDC_OK) sdc_tensor_get_f32(out, host);
        test_check(st == SDC_OK, "T5 forward: %s", sdc_status_str(st));
        sdc_tensor_free(out);
    }
    sdc_t5_free(m);
    sdc_backend_free(be);
    return host;
}

static void test_t5_gguf(void) {
    sdc_model_index *st_idx = sdc_index_new(test_logger()), *gg = sdc_index_new(test_logger());
    int gated = 1;
    sdc_status s1 =
        sdc_index_add_file(st_idx, SDC_SOURCE_DIR "/tests/data/tiny-flux-t5/model.safetensors", "", NULL, NULL);
    sdc_status s2 = sdc_index_add_file(gg, DATA "tiny-t5-f32.gguf", "", sdc_t5_gguf_name_map, &gated);
    if (!test_check(s1 == SDC_OK && s2 == SDC_OK, "index the T5 safetensors and GGUF files")) goto done;
    int same = 0, n = 0;
    for (size_t i = 0; i < sdc_index_count(gg); i++) {
        const sdc_tensor_info *a = sdc_index_at(gg, i), *b = sdc_index_find(st_idx, a->name);
        if (!b && !strcmp(a->name, "shared.weight")) b = sdc_index_find(st_idx, "encoder.embed_tokens.weight");
        n++;
        if (!b || a->nbytes != b->nbytes || a->ndim != b->ndim || memcmp(a->ne, b->ne, sizeof a->ne[0] * a->ndim))
            continue;
        float *x = malloc(a->nbytes), *y = malloc(b->nbytes);
        same += x && y && sdc_index_read_f32(gg, a, x) == SDC_OK && sdc_index_read_f32(st_idx, b, y) == SDC_OK &&
            !memcmp(x, y, a->nbytes);
        free(x);
        free(y);
    }
    test_check(n == 21 && same == n, "GGUF T5 tensors under HF names: %d of %d equal to the safetensors ones (want 21)",
               same, n);
    cJSON *j = NULL;
    sdc_t5_config cfg;
    sdc_status st = sdc_json_load(SDC_SOURCE_DIR "/tests/data/tiny-flux-t5/config.json", test_logger(), &j);
    st = st == SDC_OK ? sdc_t5_config_parse(j, test_logger(), &cfg) : st;
    cJSON_Delete(j);
    if (!test_check(st == SDC_OK, "tiny-flux-t5/config.json: %s", sdc_status_str(st))) goto done;
    int32_t ids[24];
    for (int i = 0; i < 24; i++) ids[i] = (i * 379 + 11) % 2000;
    float *a = t5_run(st_idx, &cfg, ids, 24), *b = t5_run(gg, &cfg, ids, 24);
    if (a && b) test_check_err("T5 from GGUF vs from safetensors", "max |d|", test_max_abs(b, a, 24 * 32), 0);
    free(a);
    free(b);
done:
    sdc_index_free(st_idx);
    sdc_index_free(gg);
}

/* The schnell folder with --t5xxl path: one 64x64 step's decoded pixels (malloc'd), NULL on failure. */
static float *generate_with_t5(const char *t5) {
    sdc_ctx_params cp;
    sdc_ctx_params_init(&cp);
    cp.model_path = test_ref_path("tiny-flux-schnell");
    cp.t5xxl_path = t5;
    cp.n_threads = 2;
    cp.log_fn = sdc_log_stderr;
    cp.log_level = SDC_LOG_WARN;
    sdc_ctx *ctx = sdc_ctx_new(&cp);
    sdc_gen_params p;
    sdc_gen_params_init(&p);
    p.prompt = "a photo of an astronaut riding a horse";
    p.width = p.height = 64;
    p.steps = 2;
    p.seed = 3;
    float *pix = malloc(sizeof(float) * 64 * 64 * 3);
    p.pixels_out = pix;
    sdc_image *im = NULL;
    int n = 0;
    const sdc_status st = ctx ? sdc_generate(ctx, &p, &im, &n) : SDC_ERR_INVALID_ARG;
    test_check(st == SDC_OK, "generate with --t5xxl %s: %s", t5, sdc_status_str(st));
    sdc_image_free(im, n);
    sdc_ctx_free(ctx);
    if (st == SDC_OK) return pix;
    free(pix);
    return NULL;
}

/* --t5xxl with the llama.cpp-named GGUF: the pipeline's image equals the one with the safetensors T5. */
static void test_t5xxl_flag(void) {
    float *a = generate_with_t5(SDC_SOURCE_DIR "/tests/data/tiny-flux-t5/model.safetensors");
    float *b = generate_with_t5(DATA "tiny-t5-f32.gguf");
    if (a && b)
        test_check_err("Flux image, --t5xxl GGUF vs safetensors", "max |d|", test_max_abs(b, a, 64 * 64 * 3), 0);
    free(a);
    free(b);
}

/* The reference Q8_0 Flux GGUF rewritten stable-diffusion.cpp style: every name under
 * "model.diffusion_model.", the same data; its path. */
static const char *write_sdcpp_flux(void) {
    sdc_gguf *g = NULL;
    const char *src = test_ref_path("tiny-flux-schnell-q8_0.gguf");
    if (!test_check(sdc_gguf_read_file(src, test_logger(), &g) == SDC_OK, "read %s", src)) return NULL;
    FILE *f = fopen(src, "rb");
    fseek(f, 0, SEEK_END);
    const long size = ftell(f);
    unsigned char *all = malloc((size_t)size);
    fseek(f, 0, SEEK_SET);
    if (fread(all, 1, (size_t)size, f) != (size_t)size) abort();
    fclose(f);
    buf b = {0};
    put(&b, "GGUF", 4);
    put_u32(&b, 3);
    put_u64(&b, sdc_gguf_tensor_count(g));
    put_u64(&b, 1);
    put_str(&b, "general.architecture");
    put_u32(&b, SDC_GGUF_STRING);
    put_str(&b, "flux");
    const uint64_t start = sdc_gguf_data_start(g);
    for (size_t i = 0; i < sdc_gguf_tensor_count(g); i++) {
        const sdc_tensor_info *t = sdc_gguf_tensor(g, i);
        char name[256];
        snprintf(name, sizeof name, "model.diffusion_model.%s", t->name);
        put_str(&b, name);
        put_u32(&b, (uint32_t)t->ndim);
        for (int d = t->ndim - 1; d >= 0; d--) put_u64(&b, (uint64_t)t->ne[d]); /* back to innermost first */
        uint32_t type = 0;
        sdc_dtype_to_ggml(t->dtype, &type);
        put_u32(&b, type);
        put_u64(&b, t->offset - start);
    }
    while (b.n % 32) put(&b, "\0", 1);
    put(&b, all + start, (size_t)size - start);
    const char *path = write_tmp("sdcpp-flux-q8_0.gguf", b.p, b.n);
    free(b.p);
    free(all);
    sdc_gguf_free(g);
    return path;
}

/* GGUF transformers recognised by their magic: -m FILE.gguf with --config, and --diffusion-model with
 * sd.cpp's prefixed names (a name that does not end in .gguf). */
static void test_flux_open(void) {
    sdc_ctx_params cp;
    sdc_ctx_params_init(&cp);
    cp.model_path = test_ref_path("tiny-flux-schnell-q8_0.gguf");
    cp.config_dir = test_ref_path("tiny-flux-schnell");
    cp.log_fn = sdc_log_stderr;
    cp.log_level = SDC_LOG_WARN;
    sdc_ctx *ctx = sdc_ctx_new(&cp);
    test_check(ctx && !strcmp(sdc_ctx_family(ctx), "flux"), "-m tiny-flux-schnell-q8_0.gguf --config folder: flux");
    sdc_ctx_free(ctx);
    const char *p = write_sdcpp_flux();
    if (!p) return;
    char renamed[600];
    snprintf(renamed, sizeof renamed, "%s.bin", p);
    rename(p, renamed);
    sdc_ctx_params_init(&cp);
    cp.model_path = test_ref_path("tiny-flux-schnell");
    cp.diffusion_model_path = renamed;
    cp.log_fn = sdc_log_stderr;
    cp.log_level = SDC_LOG_WARN;
    ctx = sdc_ctx_new(&cp);
    test_check(ctx && !strcmp(sdc_ctx_family(ctx), "flux"),
               "folder + --diffusion-model sd.cpp-named Q8_0 GGUF (model.diffusion_model., a .bin name): flux");
    sdc_ctx_free(ctx);
}

int main(void) {
    test_make_tmp_dir("gguf");
    test_meta();
    test_crafted();
    test_conv_shape();
    test_t5_gguf();
    test_t5xxl_flag();
    test_flux_open();
    test_rm_tree(test_make_tmp_dir("gguf"));
    return test_finish();
}
