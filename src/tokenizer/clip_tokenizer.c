/* clip_tokenizer.c - text -> token ids, in the order the tokenizers library runs its stages:
 *   1. invalid UTF-8 -> U+FFFD;
 *   2. added tokens (<|startoftext|>, <|endoftext|>, ...) cut out of the raw text;
 *   3. each remaining segment normalised (NFC, whitespace runs -> ' ', lowercase), then any
 *      "normalized" added tokens cut out of it;
 *   4. the CLIP split regex, then the ByteLevel pre-tokeniser's GPT-2 regex inside each piece;
 *   5. byte-level BPE of each word, '</w>' on its last character. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/clip_internal.h"
#include "tokenizer/clip_text.h"

/* The state of one sdc_clip_tokenize call. */
typedef struct encoder {
    const sdc_clip_tokenizer *tok;
    sdc_bpe_scratch scratch;
    sdc_ids ids;
    char *word; /* UTF-8 of the word being encoded */
    size_t word_cap;
    sdc_status st;
} encoder;

static void push_id(encoder *e, int32_t id) {
    if (e->st == SDC_OK) e->st = sdc_ids_push(&e->ids, id);
}

/* One word (a match of the GPT-2 regex): its UTF-8 bytes through BPE. */
static void encode_word(encoder *e, const uint32_t *cp, size_t n) {
    if (4 * n > e->word_cap) {
        char *w = realloc(e->word, 4 * n);
        if (!w) {
            e->st = SDC_ERR_OOM;
            return;
        }
        e->word = w;
        e->word_cap = 4 * n;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) m += sdc_utf8_encode(cp[i], e->word + m);
    e->st = sdc_bpe_encode_word(e->tok->bpe, &e->scratch, (const uint8_t *)e->word, m, &e->ids);
}

/* Normalised text cp[0..n) -> CLIP pieces -> GPT-2 words -> ids. */
static void pre_tokenize(encoder *e, const uint32_t *cp, size_t n) {
    size_t pos = 0, start, end;
    while (e->st == SDC_OK && sdc_clip_split_next(cp, n, &pos, &start, &end)) {
        for (size_t j = start; j < end && e->st == SDC_OK;) {
            size_t len = sdc_gpt2_split_len(cp + j, end - j);
            encode_word(e, cp + j, len);
            j += len;
        }
    }
}

/* The leftmost (then longest) raw-matched added token in s[0..n); *at = its offset. */
static const clip_added *find_raw(const sdc_clip_tokenizer *tok, const char *s, size_t n, size_t *at) {
    for (size_t i = 0; i < n; i++) {
        const clip_added *best = NULL;
        for (size_t k = 0; k < tok->n_added; k++) {
            const clip_added *a = &tok->added[k];
            if (a->normalized || a->len == 0 || a->len > n - i || a->text[0] != s[i]) continue;
            if (memcmp(s + i, a->text, a->len) == 0 && (!best || a->len > best->len)) best = a;
        }
        if (best) {
            *at = i;
            return best;
        }
    }
    return NULL;
}

/* The same for the added tokens that match normalised text, in code points. */
static const clip_added *find_normalized(const sdc_clip_tokenizer *tok, const uint32_t *cp, size_t n, size_t *at) {
    for (size_t i = 0; i < n; i++) {
        const clip_added *best = NULL;
        for (size_t k = 0; k < tok->n_added; k++) {
            const clip_added *a = &tok->added[k];
            if (!a->normalized || a->norm_len == 0 || a->norm_len > n - i) continue;
            if (memcmp(cp + i, a->norm, a->norm_len * sizeof *cp) == 0 && (!best || a->norm_len > best->norm_len))
                best = a;
        }
        if (best) {
            *at = i;
            return best;
        }
    }
    return NULL;
}

/* A segment of valid UTF-8 between raw added tokens. */
static void encode_segment(encoder *e, const char *s, size_t n) {
    if (e->st != SDC_OK || n == 0) return;
    uint32_t *cp;
    size_t m, pos = 0, at;
    e->st = sdc_clip_normalize(s, n, &cp, &m);
    if (e->st != SDC_OK) return;
    const clip_added *a;
    while (e->tok->n_normalized && e->st == SDC_OK && (a = find_normalized(e->tok, cp + pos, m - pos, &at))) {
        pre_tokenize(e, cp + pos, at);
        push_id(e, a->id);
        pos += at + a->norm_len;
    }
    pre_tokenize(e, cp + pos, m - pos);
    free(cp);
}

size_t sdc_clip_tokenize(const sdc_clip_tokenizer *tok, const char *text, size_t len, int32_t *ids, size_t max) {
    encoder e = {.tok = tok};
    char *clean = len <= (SIZE_MAX - 1) / 3 ? malloc(3 * len + 1) : NULL;
    if (!clean) e.st = SDC_ERR_OOM;
    size_t n = clean && len ? sdc_utf8_sanitize(text, len, clean) : 0, pos = 0, at;
    const clip_added *a;
    while (e.st == SDC_OK && (a = find_raw(tok, clean + pos, n - pos, &at))) {
        encode_segment(&e, clean + pos, at);
        push_id(&e, a->id);
        pos += at + a->len;
    }
    if (e.st == SDC_OK) encode_segment(&e, clean + pos, n - pos);
    size_t total = e.ids.n;
    if (e.st != SDC_OK) {
        SDC_LOGE(&tok->log, "clip_tokenize: out of memory on a %zu-byte text", len);
        total = 0;
    }
    size_t n_out = total < max ? total : max; /* ids may be NULL when max is 0 */
    if (n_out) memcpy(ids, e.ids.v, n_out * sizeof *ids);
    free(clean);
    free(e.word);
    free(e.ids.v);
    sdc_bpe_scratch_free(&e.scratch);
    return total;
}

size_t sdc_clip_encode_prompt(const sdc_clip_tokenizer *tok, const char *text, int32_t *ids, int n_ctx) {
    assert(n_ctx >= 2);
    size_t room = (size_t)n_ctx - 2;
    size_t total = text ? sdc_clip_tokenize(tok, text, strlen(text), ids + 1, room) : 0;
    size_t kept = total < room ? total : room;
    ids[0] = tok->bos;
    ids[1 + kept] = tok->eos;
    for (size_t i = kept + 2; i < (size_t)n_ctx; i++) ids[i] = tok->pad;
    return total - kept;
}

int32_t sdc_clip_tokenizer_bos(const sdc_clip_tokenizer *tok) { return tok->bos; }
int32_t sdc_clip_tokenizer_eos(const sdc_clip_tokenizer *tok) { return tok->eos; }
int32_t sdc_clip_tokenizer_pad(const sdc_clip_tokenizer *tok) { return tok->pad; }
int32_t sdc_clip_tokenizer_n_vocab(const sdc_clip_tokenizer *tok) { return tok->n_vocab; }
