/* test_png - PNG writing and reading: pixel round trips on fresh random images, the text chunk (tEXt
 * for Latin-1 text, iTXt otherwise, checked with libpng itself), every colour type and bit depth
 * converted to 8-bit RGB as documented, atomic writes that leave nothing behind on failure, and
 * clean errors (never a crash) for truncated, corrupt and non-PNG input. */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "io/atomic_file.h"
#include "io/png.h"
#include "test_util.h"

static const char *tmpdir;   // test_make_tmp_dir

static int exists(const char *path) { return access(path, F_OK) == 0; }

static uint8_t *random_bytes(size_t n, uint64_t seed) {
    float *f = malloc(n * sizeof *f);
    uint8_t *p = malloc(n);
    test_fill_uniform(f, n, seed, 0.0f, 256.0f);
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(f[i] >= 255.0f ? 255 : (int)f[i]);
    free(f);
    return p;
}

static int write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

static void test_round_trip(void) {
    const int sizes[][2] = {{1, 1}, {37, 23}, {64, 48}, {3, 200}};
    for (int s = 0; s < 4; s++) {
        int w = sizes[s][0], h = sizes[s][1];
        uint8_t *img = random_bytes((size_t)w * h * 3, 1000 + (uint64_t)s);
        const char *path = test_tmp_path("rt.png");
        sdc_status st = sdc_png_write(path, img, w, h, NULL, NULL, test_logger());
        uint8_t *back = NULL;
        int bw = 0, bh = 0;
        sdc_status st2 = st == SDC_OK ? sdc_png_read(path, &back, &bw, &bh, test_logger()) : st;
        size_t diff = 0;
        if (st2 == SDC_OK && bw == w && bh == h)
            for (size_t i = 0; i < (size_t)w * h * 3; i++) diff += back[i] != img[i];
        test_check(st == SDC_OK && st2 == SDC_OK && bw == w && bh == h && diff == 0,
                   "round trip %dx%d: write %s, read %s, %dx%d back, %zu bytes differ", w, h, sdc_status_str(st),
                   sdc_status_str(st2), bw, bh, diff);
        free(img);
        free(back);
    }
    /* writing over an existing image replaces it */
    uint8_t *a = random_bytes(8 * 8 * 3, 5), *b = random_bytes(8 * 8 * 3, 6), *back = NULL;
    int bw, bh;
    sdc_png_write(test_tmp_path("over.png"), a, 8, 8, NULL, NULL, test_logger());
    sdc_status st = sdc_png_write(test_tmp_path("over.png"), b, 8, 8, NULL, NULL, test_logger());
    st = st == SDC_OK ? sdc_png_read(test_tmp_path("over.png"), &back, &bw, &bh, test_logger()) : st;
    test_check(st == SDC_OK && memcmp(back, b, 8 * 8 * 3) == 0, "overwriting an existing image: %s",
               sdc_status_str(st));
    free(a);
    free(b);
    free(back);
    test_check(test_count_temporaries(tmpdir) == 0, "no temporary files left after successful writes");
}

/* Reads the only text chunk of path with libpng: key, text (as stored) and compression field. */
static int read_text_chunk(const char *path, char *key, char *text, size_t text_size, int *compression) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    int ok = 0;
    if (setjmp(png_jmpbuf(png)) == 0) {
        png_init_io(png, f);
        png_read_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
        png_textp t;
        int n = 0;
        png_get_text(png, info, &t, &n);
        if (n == 1) {
            snprintf(key, 80, "%s", t[0].key);
            snprintf(text, text_size, "%s", t[0].text);
            *compression = t[0].compression;
            ok = 1;
        }
    }
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    return ok;
}

static const char *chunk_name(int compression) {
    return compression == PNG_ITXT_COMPRESSION_NONE ? "iTXt"
        : compression == PNG_TEXT_COMPRESSION_NONE  ? "tEXt"
                                                    : "other";
}

static void test_text_chunk(void) {
    struct {
        const char *what, *utf8, *stored;
        int compression;
    } cases[] = {
        {"ASCII", "a photo of an astronaut\nSteps: 20, Sampler: Euler, CFG scale: 7.5, Seed: 42",
         "a photo of an astronaut\nSteps: 20, Sampler: Euler, CFG scale: 7.5, Seed: 42", PNG_TEXT_COMPRESSION_NONE},
        {"Latin-1", "caf\xc3\xa9 \xc3\x97 na\xc3\xafve \xc2\xbd \xc3\xbf", "caf\xe9 \xd7 na\xefve \xbd \xff",
         PNG_TEXT_COMPRESSION_NONE},
        {"CJK and emoji", "\xe7\x8c\xab caf\xc3\xa9 \xf0\x9f\x90\xb1", "\xe7\x8c\xab caf\xc3\xa9 \xf0\x9f\x90\xb1",
         PNG_ITXT_COMPRESSION_NONE},
        {"U+0100 (first beyond Latin-1)", "\xc4\x80", "\xc4\x80", PNG_ITXT_COMPRESSION_NONE},
        {"empty", "", "", PNG_TEXT_COMPRESSION_NONE},
    };
    uint8_t *img = random_bytes(16 * 8 * 3, 77);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *path = test_tmp_path("text.png");
        sdc_status st = sdc_png_write(path, img, 16, 8, "parameters", cases[c].utf8, test_logger());
        char key[80] = "", text[512] = "";
        int comp = -99;
        int ok = st == SDC_OK && read_text_chunk(path, key, text, sizeof text, &comp);
        int same = ok && strcmp(text, cases[c].stored) == 0;
        test_check(ok && strcmp(key, "parameters") == 0 && same && comp == cases[c].compression,
                   "text chunk %s: key '%s', stored as %s (want %s), text %s", cases[c].what, key, chunk_name(comp),
                   chunk_name(cases[c].compression), same ? "equal" : "differs");
    }
    sdc_status st =
        sdc_png_write(test_tmp_path("bad.png"), img, 16, 8, "parameters", "bad \xc3\x28 utf8", test_capture_logger());
    test_check(st == SDC_ERR_INVALID_ARG && !exists(test_tmp_path("bad.png")), "invalid UTF-8 text rejected: %s (%s)",
               sdc_status_str(st), test_last_error());
    st = sdc_png_write(test_tmp_path("bad.png"), img, 16, 8, "", "x", test_capture_logger());
    test_check(st == SDC_ERR_INVALID_ARG && !exists(test_tmp_path("bad.png")), "empty key rejected: %s",
               sdc_status_str(st));
    free(img);
}

/* ---- every colour type, written by libpng directly ---- */

typedef struct raw_png {
    int w, h, color_type, depth, interlace;
    uint8_t *data; /* rows of rowbytes, libpng's packing (16-bit big-endian) */
    size_t rowbytes;
    png_color pal[256];
    int n_pal;
    uint8_t trans[256];
    int n_trans;
} raw_png;

static int channels_of(int color_type) {
    switch (color_type) {
    case PNG_COLOR_TYPE_GRAY: return 1;
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_RGB: return 3;
    case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
    default: return 1; /* palette */
    }
}

static int write_raw_png(const char *path, const raw_png *r) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_bytep *rows = malloc((size_t)r->h * sizeof *rows);
    int ok = 0;
    if (setjmp(png_jmpbuf(png)) == 0) {
        png_init_io(png, f);
        png_set_IHDR(png, info, (png_uint_32)r->w, (png_uint_32)r->h, r->depth, r->color_type, r->interlace,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        if (r->n_pal) png_set_PLTE(png, info, r->pal, r->n_pal);
        if (r->n_trans) png_set_tRNS(png, info, r->trans, r->n_trans, NULL);
        png_write_info(png, info);
        for (int y = 0; y < r->h; y++) rows[y] = r->data + (size_t)y * r->rowbytes;
        png_write_image(png, rows);
        png_write_end(png, info);
        ok = 1;
    }
    png_destroy_write_struct(&png, &info);
    free(rows);
    return fclose(f) == 0 && ok;
}

/* Sample c of pixel x in a packed row, at the row's bit depth (16-bit: the high byte). */
static int sample(const uint8_t *row, int x, int c, int channels, int depth) {
    if (depth == 16) return row[((size_t)x * channels + c) * 2];
    if (depth == 8) return row[(size_t)x * channels + c];
    int per_byte = 8 / depth, i = x * channels + c;
    return (row[i / per_byte] >> (8 - depth * (i % per_byte + 1))) & ((1 << depth) - 1);
}

static void test_color_types(void) {
    static const struct {
        const char *what;
        int color_type, depth, interlace, n_pal, n_trans;
    } cases[] = {
        {"gray 1-bit", PNG_COLOR_TYPE_GRAY, 1, 0, 0, 0},
        {"gray 2-bit", PNG_COLOR_TYPE_GRAY, 2, 0, 0, 0},
        {"gray 4-bit", PNG_COLOR_TYPE_GRAY, 4, 0, 0, 0},
        {"gray 8-bit", PNG_COLOR_TYPE_GRAY, 8, 0, 0, 0},
        {"gray 16-bit", PNG_COLOR_TYPE_GRAY, 16, 0, 0, 0},
        {"gray+alpha 8-bit", PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0, 0, 0},
        {"gray+alpha 16-bit", PNG_COLOR_TYPE_GRAY_ALPHA, 16, 0, 0, 0},
        {"RGB 16-bit", PNG_COLOR_TYPE_RGB, 16, 0, 0, 0},
        {"RGBA 8-bit", PNG_COLOR_TYPE_RGB_ALPHA, 8, 0, 0, 0},
        {"RGBA 16-bit", PNG_COLOR_TYPE_RGB_ALPHA, 16, 0, 0, 0},
        {"palette 2-bit", PNG_COLOR_TYPE_PALETTE, 2, 0, 4, 0},
        {"palette 8-bit + tRNS", PNG_COLOR_TYPE_PALETTE, 8, 0, 256, 100},
        {"RGB 8-bit Adam7", PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_ADAM7, 0, 0},
        {"palette 4-bit Adam7 + tRNS", PNG_COLOR_TYPE_PALETTE, 4, PNG_INTERLACE_ADAM7, 16, 16},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        raw_png r;
        memset(&r, 0, sizeof r);
        r.w = 29;
        r.h = 13;
        r.color_type = cases[k].color_type;
        r.depth = cases[k].depth;
        r.interlace = cases[k].interlace;
        r.n_pal = cases[k].n_pal;
        r.n_trans = cases[k].n_trans;
        int ch = channels_of(r.color_type);
        r.rowbytes = ((size_t)r.w * ch * r.depth + 7) / 8;
        r.data = random_bytes(r.rowbytes * r.h, 300 + k);
        uint8_t *pal = random_bytes(256 * 3 + 256, 400 + k);
        for (int i = 0; i < r.n_pal; i++) r.pal[i] = (png_color){pal[3 * i], pal[3 * i + 1], pal[3 * i + 2]};
        memcpy(r.trans, pal + 768, 256);
        const char *path = test_tmp_path("ct.png");
        int written = write_raw_png(path, &r);
        uint8_t *rgb = NULL;
        int w = 0, h = 0;
        sdc_status st = written ? sdc_png_read(path, &rgb, &w, &h, test_logger()) : SDC_ERR_IO;
        size_t bad = 0;
        if (st == SDC_OK && w == r.w && h == r.h) {
            for (int y = 0; y < h; y++) {
                const uint8_t *row = r.data + (size_t)y * r.rowbytes;
                for (int x = 0; x < w; x++) {
                    int want[3];
                    if (r.color_type == PNG_COLOR_TYPE_PALETTE) {
                        png_color c = r.pal[sample(row, x, 0, 1, r.depth)];
                        want[0] = c.red, want[1] = c.green, want[2] = c.blue;
                    } else if (ch <= 2) {
                        int g = sample(row, x, 0, ch, r.depth);
                        if (r.depth < 8) g = g * 255 / ((1 << r.depth) - 1);
                        want[0] = want[1] = want[2] = g;
                    } else {
                        for (int c = 0; c < 3; c++) want[c] = sample(row, x, c, ch, r.depth);
                    }
                    const uint8_t *got = rgb + ((size_t)y * w + x) * 3;
                    bad += got[0] != want[0] || got[1] != want[1] || got[2] != want[2];
                }
            }
        }
        test_check(st == SDC_OK && w == r.w && h == r.h && bad == 0, "read %s as RGB: %s, %dx%d, %zu wrong pixels",
                   cases[k].what, sdc_status_str(st), w, h, bad);
        free(rgb);
        free(r.data);
        free(pal);
    }
}

/* ---- failures ---- */

static void test_write_failures(void) {
    uint8_t *img = random_bytes(8 * 8 * 3, 9);
    const char *path = "/nonexistent-sdc-dir/out.png";
    sdc_status st = sdc_png_write(path, img, 8, 8, "parameters", "x", test_capture_logger());
    test_check(st == SDC_ERR_IO && strstr(test_last_error(), "nonexistent-sdc-dir") && !exists(path),
               "write into a missing directory: %s, message '%s'", sdc_status_str(st), test_last_error());

    const char *dir = test_tmp_path("a-directory");
    mkdir(dir, 0755);
    st = sdc_png_write(dir, img, 8, 8, NULL, NULL, test_capture_logger());
    struct stat sb;
    test_check(st == SDC_ERR_IO && stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode) && test_count_temporaries(tmpdir) == 0,
               "write over a directory: %s, directory intact, %d temporaries left ('%s')", sdc_status_str(st),
               test_count_temporaries(tmpdir), test_last_error());

    if (geteuid() != 0) { /* root writes anywhere */
        const char *ro = test_tmp_path("read-only");
        mkdir(ro, 0555);
        char p[600];
        snprintf(p, sizeof p, "%s/x.png", ro);
        st = sdc_png_write(p, img, 8, 8, NULL, NULL, test_capture_logger());
        test_check(st == SDC_ERR_IO && !exists(p) && test_count_temporaries(ro) == 0,
                   "write into a read-only directory: %s ('%s')", sdc_status_str(st), test_last_error());
        rmdir(ro);
    }
    st = sdc_png_write(test_tmp_path("zero.png"), img, 0, 8, NULL, NULL, test_capture_logger());
    test_check(st == SDC_ERR_INVALID_ARG && !exists(test_tmp_path("zero.png")), "zero width rejected: %s",
               sdc_status_str(st));
    rmdir(dir);
    free(img);
}

static void expect_format_error(const char *what, const void *data, size_t n) {
    const char *path = test_tmp_path("bad-input.png");
    write_file(path, data, n);
    uint8_t *rgb = (uint8_t *)1;
    int w = -1, h = -1;
    sdc_status st = sdc_png_read(path, &rgb, &w, &h, test_capture_logger());
    test_check(st == SDC_ERR_FORMAT && rgb == NULL && w == 0 && h == 0 && test_last_error()[0], "%s -> %s ('%s')", what,
               sdc_status_str(st), test_last_error());
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static void test_read_failures(void) {
    uint8_t *img = random_bytes(64 * 64 * 3, 11);
    const char *good = test_tmp_path("good.png");
    sdc_png_write(good, img, 64, 64, "parameters", "some text", test_logger());
    FILE *f = fopen(good, "rb");
    uint8_t *file = malloc(1 << 16);
    size_t len = fread(file, 1, 1 << 16, f);
    fclose(f);

    size_t cuts[] = {0, 4, 8, 20, 33, len / 2, len - 13, len - 1};
    const char *names[] = {"empty file",           "4 bytes",           "signature only",        "truncated in IHDR",
                           "truncated after IHDR", "truncated in IDAT", "truncated before IEND", "truncated in IEND"};
    for (int i = 0; i < 8; i++) expect_format_error(names[i], file, cuts[i]);

    uint8_t *corrupt = malloc(len);
    memcpy(corrupt, file, len);
    corrupt[len / 2] ^= 0x40; /* inside IDAT: CRC mismatch */
    expect_format_error("flipped bit in IDAT", corrupt, len);

    uint8_t *garbage = random_bytes(4096, 12);
    expect_format_error("random bytes", garbage, 4096);
    memcpy(garbage, file, 8);
    expect_format_error("PNG signature then random bytes", garbage, 4096);

    /* a header claiming 100000 x 100000 pixels, with a valid CRC: refused before any allocation */
    memcpy(corrupt, file, len);
    put_be32(corrupt + 16, 100000);
    put_be32(corrupt + 20, 100000);
    put_be32(corrupt + 29, (uint32_t)crc32(0, corrupt + 12, 17));
    expect_format_error("100000x100000 header", corrupt, len);

    uint8_t *rgb = NULL;
    int w, h;
    sdc_status st = sdc_png_read(test_tmp_path("does-not-exist.png"), &rgb, &w, &h, test_capture_logger());
    test_check(st == SDC_ERR_NOT_FOUND && !rgb, "missing file -> %s", sdc_status_str(st));
    free(img);
    free(file);
    free(corrupt);
    free(garbage);
}

/* The img2img input of the reference bundle, against libpng's simplified reader. */
static void test_reference_image(void) {
    const char *path = test_ref_path("tiny-sd1-golden/inputs/gradient64.png");
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    sdc_status st = sdc_png_read(path, &rgb, &w, &h, test_logger());
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    uint8_t *ref = NULL;
    int ref_ok = 0;
    if (png_image_begin_read_from_file(&im, path)) {
        im.format = PNG_FORMAT_RGB;
        ref = malloc(PNG_IMAGE_SIZE(im));
        ref_ok = png_image_finish_read(&im, NULL, ref, 0, NULL);
    }
    size_t diff = 0;
    if (st == SDC_OK && ref_ok && (int)im.width == w && (int)im.height == h)
        for (size_t i = 0; i < (size_t)w * h * 3; i++) diff += rgb[i] != ref[i];
    test_check(st == SDC_OK && ref_ok && diff == 0 && w == (int)im.width && h == (int)im.height,
               "gradient64.png: %s, %dx%d, %zu bytes differ from libpng's simplified reader", sdc_status_str(st), w, h,
               diff);
    if (st == SDC_OK && w > 1 && h > 1) {
        int mono = 1; /* a gradient: red grows along x, green along y */
        for (int y = 0; y < h; y++)
            for (int x = 1; x < w; x++) mono &= rgb[((size_t)y * w + x) * 3] >= rgb[((size_t)y * w + x - 1) * 3];
        for (int y = 1; y < h; y++)
            for (int x = 0; x < w; x++)
                mono &= rgb[((size_t)y * w + x) * 3 + 1] >= rgb[((size_t)(y - 1) * w + x) * 3 + 1];
        test_check(mono, "gradient64.png: red rises along x and green along y");
    }
    png_image_free(&im);
    free(ref);
    free(rgb);
}

/* Issue 13 item 2: the writer replaces only a regular file (or writes a new name). A symlink, a FIFO or
 * a device at the path is refused and left as it was (as root, -o /dev/null used to become a PNG). */
static void test_special_targets(void) {
    uint8_t *img = random_bytes(8 * 8 * 3, 11);
    const char *target = test_tmp_path("link-target.png"), *link = test_tmp_path("link.png");
    FILE *f = fopen(target, "wb");
    if (f) fputs("not a png", f), fclose(f);
    unlink(link);
    int made = symlink(target, link) == 0;
    sdc_status st = sdc_png_write(link, img, 8, 8, NULL, NULL, test_capture_logger());
    struct stat sb;
    int still_link = lstat(link, &sb) == 0 && S_ISLNK(sb.st_mode);
    int target_same = stat(target, &sb) == 0 && sb.st_size == 9;
    test_check(made && st == SDC_ERR_IO && still_link && target_same && strstr(test_last_error(), "symbolic link"),
               "write to a symlink: %s, still a link %d, target untouched %d, message '%s'", sdc_status_str(st),
               still_link, target_same, test_last_error());
    unlink(link);
    unlink(target);

    const char *fifo = test_tmp_path("out.fifo");
    made = mkfifo(fifo, 0644) == 0;
    st = sdc_png_write(fifo, img, 8, 8, NULL, NULL, test_capture_logger());
    test_check(made && st == SDC_ERR_IO && lstat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode) &&
                   strstr(test_last_error(), "a FIFO"),
               "write to a FIFO: %s, still a FIFO, message '%s'", sdc_status_str(st), test_last_error());

    /* reading a FIFO must not block (nobody writes to it) */
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    double t0 = test_now();
    st = sdc_png_read(fifo, &rgb, &w, &h, test_capture_logger());
    double secs = test_now() - t0;
    test_check(st == SDC_ERR_IO && !rgb && secs < 1.0 && strstr(test_last_error(), "a FIFO"),
               "read a FIFO: %s in %.3f s (bound 1), message '%s'", sdc_status_str(st), secs, test_last_error());
    unlink(fifo);

    st = sdc_atomic_check_target("/dev/null", "png_write", test_capture_logger());
    test_check(st == SDC_ERR_IO && strstr(test_last_error(), "character device"),
               "/dev/null is refused as an output: %s, message '%s'", sdc_status_str(st), test_last_error());
    free(img);
}

/* Issue 13 item 7: a small file whose header claims 32768 x 32768 is refused from its header when the
 * caller can use at most 64 x 64: nothing decoded, nothing allocated (it used to malloc 3 GiB). */
static void test_header_limit(void) {
    uint8_t png[8 + 25 + 12 + 12];
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memcpy(png, sig, 8);
    put_be32(png + 8, 13);
    memcpy(png + 12, "IHDR", 4);
    put_be32(png + 16, 32768);
    put_be32(png + 20, 32768);
    png[24] = 8, png[25] = 2, png[26] = 0, png[27] = 0, png[28] = 0; /* 8-bit RGB */
    put_be32(png + 29, (uint32_t)crc32(0, png + 12, 17));
    for (int c = 0; c < 2; c++) { /* an empty IDAT, then IEND */
        uint8_t *chunk = png + 33 + 12 * c;
        put_be32(chunk, 0);
        memcpy(chunk + 4, c ? "IEND" : "IDAT", 4);
        put_be32(chunk + 8, (uint32_t)crc32(0, chunk + 4, 4));
    }
    const char *path = test_tmp_path("huge-header.png");
    FILE *f = fopen(path, "wb");
    int written = f && fwrite(png, 1, sizeof png, f) == sizeof png;
    if (f) fclose(f);
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    sdc_status st = written ? sdc_png_read_max(path, 64, 64, &rgb, &w, &h, test_capture_logger()) : SDC_ERR_IO;
    test_check(st == SDC_ERR_INVALID_ARG && !rgb && strstr(test_last_error(), "32768x32768") &&
                   strstr(test_last_error(), "64x64"),
               "a %zu-byte PNG claiming 32768x32768 against a 64x64 limit: %s, message '%s'", sizeof png,
               sdc_status_str(st), test_last_error());
    unlink(path);
}

int main(void) {
    tmpdir = test_make_tmp_dir("test-png");
    test_special_targets();
    test_header_limit();
    test_round_trip();
    test_text_chunk();
    test_color_types();
    test_write_failures();
    test_read_failures();
    test_reference_image();
    test_check(test_count_temporaries(tmpdir) == 0, "no temporary files left in %s", tmpdir);
    const char *files[] = {"rt.png", "over.png", "text.png", "ct.png", "good.png", "bad-input.png"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) unlink(test_tmp_path(files[i]));
    rmdir(tmpdir);
    return test_finish();
}
