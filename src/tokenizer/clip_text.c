/* clip_text.c - lossy UTF-8, the CLIP normaliser and the split regexes, on utf8proc's tables. */
#include "tokenizer/clip_text.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

size_t sdc_utf8_sanitize(const char *s, size_t n, char *out) {
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, o = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) {
            out[o++] = (char)c;
            i++;
            continue;
        }
        /* Sequence length and the allowed range of the second byte (Unicode table 3-7). */
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 3;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 4;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            need = 0;
        }
        size_t k = 1; /* bytes of the sequence that are valid so far */
        while (need && k < need && i + k < n) {
            uint8_t b = p[i + k];
            if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) break;
            k++;
        }
        if (need && k == need) {
            memcpy(out + o, p + i, k);
            o += k;
        } else { /* a maximal invalid subpart: one U+FFFD */
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
        }
        i += k;
    }
    return o;
}

size_t sdc_utf8_decode(const char *s, size_t n, uint32_t *out) {
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, m = 0;
    while (i < n) {
        uint32_t c = p[i];
        size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        if (len > 1) c &= 0x3Fu >> (len - 1);
        for (size_t k = 1; k < len && i + k < n; k++) c = (c << 6) | (p[i + k] & 0x3Fu);
        out[m++] = c;
        i += len;
    }
    return m;
}

size_t sdc_utf8_encode(uint32_t c, char *out) {
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

static int is_letter(uint32_t c) {
    if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
}

static int is_number(uint32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO;
}

/* \s of the regex engines (Oniguruma, Rust): the Unicode White_Space property, which is
 * U+0009..U+000D, U+0085 and the Zs, Zl, Zp categories. */
static int is_space(uint32_t c) {
    if (c < 0x80) return c == ' ' || (c >= 9 && c <= 13);
    if (c == 0x85) return 1;
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k == UTF8PROC_CATEGORY_ZS || k == UTF8PROC_CATEGORY_ZL || k == UTF8PROC_CATEGORY_ZP;
}

sdc_status sdc_clip_normalize(const char *s, size_t n, uint32_t **out, size_t *n_out) {
    *out = NULL;
    *n_out = 0;
    size_t ascii = 0;
    while (ascii < n && (uint8_t)s[ascii] < 0x80) ascii++;
    /* NFC leaves ASCII alone; anything else goes through utf8proc. */
    utf8proc_uint8_t *nfc = NULL;
    if (ascii < n) {
        utf8proc_ssize_t r =
            utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &nfc, UTF8PROC_COMPOSE | UTF8PROC_STABLE);
        if (r < 0) return SDC_ERR_OOM; /* the input is valid UTF-8: only allocation can fail */
        s = (const char *)nfc;
        n = (size_t)r;
    }
    /* Lowercasing turns at most one code point into two. */
    uint32_t *cp = malloc((n ? n : 1) * sizeof *cp), *res = malloc((2 * n + 1) * sizeof *res);
    if (!cp || !res) {
        free(cp);
        free(res);
        free(nfc);
        return SDC_ERR_OOM;
    }
    size_t m = sdc_utf8_decode(s, n, cp), k = 0;
    free(nfc);
    for (size_t i = 0; i < m; i++) {
        uint32_t c = cp[i];
        if (is_space(c)) {
            while (i + 1 < m && is_space(cp[i + 1])) i++;
            res[k++] = ' ';
        } else if (c == 0x130) { /* the one unconditional multi-character lowercase mapping */
            res[k++] = 'i';
            res[k++] = 0x307;
        } else {
            res[k++] = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
        }
    }
    free(cp);
    *out = res;
    *n_out = k;
    return SDC_OK;
}

static int starts_with(const uint32_t *cp, size_t n, const char *lit) {
    size_t len = strlen(lit);
    if (n < len) return 0;
    for (size_t i = 0; i < len; i++)
        if (cp[i] != (uint8_t)lit[i]) return 0;
    return 1;
}

/* 's 't 're 've 'm 'll 'd: the length of the contraction at cp, or 0. */
static size_t contraction_len(const uint32_t *cp, size_t n) {
    if (n < 2 || cp[0] != '\'') return 0;
    uint32_t a = cp[1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (n >= 3 && ((a == 'r' && cp[2] == 'e') || (a == 'v' && cp[2] == 'e') || (a == 'l' && cp[2] == 'l'))) return 3;
    return 0;
}

static size_t other_run(const uint32_t *cp, size_t n) {
    size_t k = 0;
    while (k < n && !is_space(cp[k]) && !is_letter(cp[k]) && !is_number(cp[k])) k++;
    return k;
}

static size_t letter_run(const uint32_t *cp, size_t n) {
    size_t k = 0;
    while (k < n && is_letter(cp[k])) k++;
    return k;
}

int sdc_clip_split_next(const uint32_t *cp, size_t n, size_t *pos, size_t *start, size_t *end) {
    size_t i = *pos;
    while (i < n && is_space(cp[i])) i++; /* no alternative matches at whitespace */
    if (i >= n) {
        *pos = n;
        return 0;
    }
    const uint32_t *p = cp + i;
    size_t left = n - i, len = contraction_len(p, left);
    if (starts_with(p, left, "<|startoftext|>"))
        len = 15;
    else if (starts_with(p, left, "<|endoftext|>"))
        len = 13;
    else if (len == 0)
        len = is_letter(p[0]) ? letter_run(p, left) : is_number(p[0]) ? 1 : other_run(p, left);
    *start = i;
    *end = *pos = i + len;
    return 1;
}

size_t sdc_gpt2_split_len(const uint32_t *cp, size_t n) {
    size_t len = contraction_len(cp, n);
    if (len) return len;
    if (is_letter(cp[0])) return letter_run(cp, n);
    if (is_number(cp[0])) {
        len = 0;
        while (len < n && is_number(cp[len])) len++;
        return len;
    }
    len = other_run(cp, n);
    return len ? len : 1;
}
