/* unigram_norm.c - the Unigram tokenizer's normalizer steps and its Metaspace pre-tokenizer, on code
 * point arrays (utf8proc for the Unicode forms). */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/clip_text.h"
#include "tokenizer/unigram_internal.h"

int uni_is_whitespace(uint32_t c) {
    return (c >= 0x9 && c <= 0xD) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
        (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Room for n code points. -1 when out of memory. */
static int reserve(uni_cps *s, size_t n) {
    if (n <= s->cap) return 0;
    size_t cap = s->cap ? s->cap : 16;
    while (cap < n) cap *= 2;
    uint32_t *cp = realloc(s->cp, cap * sizeof *cp);
    if (!cp) return -1;
    s->cp = cp;
    s->cap = cap;
    return 0;
}

/* Nmt: ASCII/C1 control characters dropped, other spaces (tab, newlines, U+200B..U+200F, U+2581,
 * BOM, U+FFFD, ...) turned into ' ' (tokenizers' normalizers/unicode.rs). */
static void nmt(uni_cps *s) {
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        const uint32_t c = s->cp[i];
        if ((c >= 0x1 && c <= 0x8) || c == 0xB || (c >= 0xE && c <= 0x1F) || c == 0x7F || c == 0x8F || c == 0x9F)
            continue;
        const int space = c == 0x9 || c == 0xA || c == 0xC || c == 0xD || c == 0x1680 || (c >= 0x200B && c <= 0x200F) ||
            c == 0x2028 || c == 0x2029 || c == 0x2581 || c == 0xFEFF || c == 0xFFFD;
        s->cp[k++] = space ? ' ' : c;
    }
    s->n = k;
}

/* A Unicode normal form through utf8proc. -1 when out of memory; any other utf8proc error (which valid
 * input does not cause) leaves s as it was. */
static int unicode_form(uni_cps *s, utf8proc_option_t opt) {
    char *u = malloc(4 * s->n + 1);
    if (!u) return -1;
    size_t nb = 0;
    for (size_t i = 0; i < s->n; i++) nb += sdc_utf8_encode(s->cp[i], u + nb);
    utf8proc_uint8_t *m = NULL;
    const utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)u, (utf8proc_ssize_t)nb, &m, opt);
    free(u);
    if (r < 0) return r == UTF8PROC_ERROR_NOMEM ? -1 : 0;
    if (reserve(s, (size_t)r) != 0) {
        free(m);
        return -1;
    }
    s->n = sdc_utf8_decode((const char *)m, (size_t)r, s->cp);
    free(m);
    return 0;
}

static void lowercase(uni_cps *s) {
    for (size_t i = 0; i < s->n; i++) s->cp[i] = (uint32_t)utf8proc_tolower((utf8proc_int32_t)s->cp[i]);
}

static void strip(uni_cps *s, int left, int right) {
    size_t a = 0, b = s->n;
    while (left && a < b && uni_is_whitespace(s->cp[a])) a++;
    while (right && b > a && uni_is_whitespace(s->cp[b - 1])) b--;
    memmove(s->cp, s->cp + a, (b - a) * sizeof *s->cp);
    s->n = b - a;
}

/* The length of the match of the step's pattern at s[i], 0 when none. */
static size_t match_len(const uni_norm *r, const uni_cps *s, size_t i) {
    if (r->min_run > 0) {
        size_t j = i;
        while (j < s->n && s->cp[j] == r->pat[0]) j++;
        return j - i >= (size_t)r->min_run ? j - i : 0;
    }
    if (r->pat_len == 0 || s->n - i < r->pat_len) return 0;
    return memcmp(s->cp + i, r->pat, r->pat_len * sizeof *r->pat) == 0 ? r->pat_len : 0;
}

static int replace(const uni_norm *r, uni_cps *s) {
    uni_cps out = {0};
    if (reserve(&out, s->n + 1) != 0) return -1;
    for (size_t i = 0; i < s->n;) {
        const size_t m = match_len(r, s, i);
        const size_t add = m ? r->with_len : 1;
        if (reserve(&out, out.n + add) != 0) {
            free(out.cp);
            return -1;
        }
        if (m) {
            memcpy(out.cp + out.n, r->with, r->with_len * sizeof *r->with);
            i += m;
        } else {
            out.cp[out.n] = s->cp[i++];
        }
        out.n += add;
    }
    free(s->cp);
    *s = out;
    return 0;
}

int uni_normalize(const sdc_unigram *tok, uni_cps *s) {
    for (int k = 0; k < tok->n_norm; k++) {
        const uni_norm *r = &tok->norm[k];
        int rc = 0;
        switch (r->kind) {
        case UNI_NORM_NMT: nmt(s); break;
        case UNI_NORM_NFKC: rc = unicode_form(s, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT); break;
        case UNI_NORM_NFC: rc = unicode_form(s, UTF8PROC_STABLE | UTF8PROC_COMPOSE); break;
        case UNI_NORM_NFKD: rc = unicode_form(s, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT); break;
        case UNI_NORM_NFD: rc = unicode_form(s, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE); break;
        case UNI_NORM_LOWERCASE: lowercase(s); break;
        case UNI_NORM_STRIP: strip(s, r->left, r->right); break;
        case UNI_NORM_REPLACE: rc = replace(r, s); break;
        }
        if (rc != 0) return -1;
    }
    return 0;
}

/* Metaspace on cp[0..n): spaces -> the replacement, the replacement prepended when the scheme asks
 * and cp does not start with one, then one piece per replacement (each piece starts with it) when
 * split. Nothing for an empty section. */
static int metaspace(const sdc_unigram *tok, const uint32_t *cp, size_t n, int first,
                     int (*piece)(void *user, const char *utf8, size_t n), void *user) {
    if (n == 0) return 0;
    const uint32_t rep = tok->replacement;
    const int starts = cp[0] == ' ' || cp[0] == rep;
    const int pre = !starts && (tok->prepend == UNI_PREPEND_ALWAYS || (tok->prepend == UNI_PREPEND_FIRST && first));
    char *u = malloc(4 * (n + 1));
    if (!u) return -1;
    size_t nb = 0, start = 0; /* start: the byte where the current piece began */
    if (pre) nb += sdc_utf8_encode(rep, u);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const uint32_t c = cp[i] == ' ' ? rep : cp[i];
        if (tok->split && c == rep && nb > start) {
            rc = piece(user, u + start, nb - start);
            start = nb;
        }
        nb += sdc_utf8_encode(c, u + nb);
    }
    if (rc == 0 && nb > start) rc = piece(user, u + start, nb - start);
    free(u);
    return rc;
}

int uni_pre_tokenize(const sdc_unigram *tok, const uni_cps *s, int first,
                     int (*piece)(void *user, const char *utf8, size_t n), void *user) {
    if (!tok->metaspace) { /* the whole section is one piece */
        char *u = malloc(4 * s->n + 1);
        if (!u) return -1;
        size_t nb = 0;
        for (size_t i = 0; i < s->n; i++) nb += sdc_utf8_encode(s->cp[i], u + nb);
        const int rc = nb ? piece(user, u, nb) : 0;
        free(u);
        return rc;
    }
    if (!tok->ws_split) return metaspace(tok, s->cp, s->n, first, piece, user);
    for (size_t i = 0; i < s->n;) { /* words between whitespace, each its own section */
        while (i < s->n && uni_is_whitespace(s->cp[i])) i++;
        size_t j = i;
        while (j < s->n && !uni_is_whitespace(s->cp[j])) j++;
        if (j > i && metaspace(tok, s->cp + i, j - i, first && i == 0, piece, user) != 0) return -1;
        i = j;
    }
    return 0;
}
