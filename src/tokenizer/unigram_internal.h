/* unigram_internal.h - the Unigram tokenizer object, shared by unigram_load.c (tokenizer.json ->
 * object), unigram_norm.c (normalizer and pre-tokenizer) and unigram.c (text -> ids). Not public. */
#ifndef SDC_TOKENIZER_UNIGRAM_INTERNAL_H
#define SDC_TOKENIZER_UNIGRAM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "tokenizer/byte_trie.h"
#include "tokenizer/unigram.h"

/* Limits a tokenizer.json must keep (bigger ones are refused as malformed). */
#define UNI_MAX_PIECES (1 << 21) /* mT5 has 250k */
#define UNI_MAX_PIECE_BYTES 256  /* T5's longest piece is 16 characters */
#define UNI_MAX_ADDED 4096       /* T5: 3 + 100 <extra_id_N> */
#define UNI_MAX_NORM 16          /* normalizer steps */
#define UNI_MAX_SPECIAL 8        /* post-processor tokens before and after the text */

typedef enum uni_norm_kind {
    UNI_NORM_NMT = 0,
    UNI_NORM_NFKC,
    UNI_NORM_NFC,
    UNI_NORM_NFKD,
    UNI_NORM_NFD,
    UNI_NORM_LOWERCASE,
    UNI_NORM_STRIP,
    UNI_NORM_REPLACE,
} uni_norm_kind;

/* One normalizer step. REPLACE: min_run 0 replaces each occurrence of pat (left to right, not
 * overlapping); min_run >= 1 replaces each run of at least min_run copies of the one character pat[0].
 * STRIP: left / right. */
typedef struct uni_norm {
    uni_norm_kind kind;
    uint32_t *pat, *with;
    size_t pat_len, with_len;
    int min_run;
    int left, right;
} uni_norm;

typedef enum uni_prepend {
    UNI_PREPEND_ALWAYS = 0,
    UNI_PREPEND_FIRST,
    UNI_PREPEND_NEVER
} uni_prepend;

/* An added token: its text matched in the raw input, emitted as id. */
typedef struct uni_added {
    char *text;
    size_t len;
    int32_t id;
} uni_added;

struct sdc_unigram {
    sdc_logger log;
    int32_t n_pieces;
    double *score; /* [n_pieces] */
    double unk_score;
    sdc_byte_trie *trie; /* piece bytes -> id (a repeated piece: its last id) */
    int32_t unk, pad, n_vocab;
    uni_norm norm[UNI_MAX_NORM];
    int n_norm;
    int metaspace; /* a Metaspace pre-tokenizer is there */
    int ws_split;  /* WhitespaceSplit before it */
    uint32_t replacement;
    uni_prepend prepend;
    int split;
    uni_added *added;
    size_t n_added;
    int32_t prefix[UNI_MAX_SPECIAL], suffix[UNI_MAX_SPECIAL];
    int n_prefix, n_suffix;
};

/* --- unigram_norm.c --- */

/* A growable code point buffer. */
typedef struct uni_cps {
    uint32_t *cp;
    size_t n, cap;
} uni_cps;

/* Applies the tokenizer's normalizer steps to s in place. -1 when out of memory. */
int uni_normalize(const sdc_unigram *tok, uni_cps *s);
/* The Metaspace pre-tokenizer on a normalised section: calls piece(user, utf8, n) for each piece, in
 * order. first: the section starts the input (prepend_scheme "first"). -1 when out of memory or when
 * piece returns non-zero. */
int uni_pre_tokenize(const sdc_unigram *tok, const uni_cps *s, int first,
                     int (*piece)(void *user, const char *utf8, size_t n), void *user);
/* Unicode White_Space (Rust's char::is_whitespace). */
int uni_is_whitespace(uint32_t c);

#endif
