/* unigram.c - text -> ids for the Unigram tokenizer (see unigram.h): added tokens, then per section
 * the normalizer and pre-tokenizer (unigram_norm.c), then Viterbi over each piece. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/clip_text.h"
#include "tokenizer/unigram_internal.h"

int32_t sdc_unigram_pad(const sdc_unigram *tok) { return tok->pad; }
int32_t sdc_unigram_unk(const sdc_unigram *tok) { return tok->unk; }
int32_t sdc_unigram_n_vocab(const sdc_unigram *tok) { return tok->n_vocab; }

/* A growable id list. */
typedef struct id_list {
    int32_t *id;
    size_t n, cap;
} id_list;

static int push(id_list *l, int32_t id) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        int32_t *p = realloc(l->id, cap * sizeof *p);
        if (!p) return -1;
        l->id = p;
        l->cap = cap;
    }
    l->id[l->n++] = id;
    return 0;
}

/* The best path ending at a byte position: its score, where its last piece starts (-1: not reached)
 * and that piece's id. */
typedef struct best_node {
    double score;
    int64_t from;
    int32_t id;
} best_node;

static size_t utf8_len(uint8_t b) { return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4; }

/* Offers the path ending at `to` through piece id starting at `from` (score s): kept when the node has
 * none yet or s is strictly better, so among equal scores the earliest offer wins. */
static void offer(best_node *b, size_t from, size_t to, double s, int32_t id) {
    if (b[to].from < 0 || s > b[to].score) {
        b[to].score = s;
        b[to].from = (int64_t)from;
        b[to].id = id;
    }
}

/* Viterbi over one piece u[0..n) (valid UTF-8): from each character start in order, every vocabulary
 * piece that begins there (shortest first), then <unk> over one character when no piece covers
 * exactly that character. Appends the best path's ids, runs of <unk> fused into one. */
typedef struct viterbi_ctx {
    const sdc_unigram *tok;
    id_list *out;
} viterbi_ctx;

static int viterbi_piece(void *user, const char *u, size_t n) {
    viterbi_ctx *v = user;
    const sdc_unigram *tok = v->tok;
    best_node *b = malloc((n + 1) * sizeof *b);
    int32_t *rev = malloc((n + 1) * sizeof *rev);
    if (!b || !rev) {
        free(b);
        free(rev);
        return -1;
    }
    for (size_t i = 0; i <= n; i++) b[i] = (best_node){0.0, -1, -1};
    b[0].from = 0;
    for (size_t i = 0; i < n;) {
        const size_t ml = utf8_len((uint8_t)u[i]) <= n - i ? utf8_len((uint8_t)u[i]) : n - i;
        const double base = b[i].score;
        int single = 0;
        int32_t node = 0;
        for (size_t j = i; j < n; j++) {
            node = sdc_byte_trie_child(tok->trie, node, (uint8_t)u[j]);
            if (node < 0) break;
            const int32_t id = sdc_byte_trie_value(tok->trie, node);
            if (id < 0) continue;
            offer(b, i, j + 1, base + tok->score[id], id);
            single |= j + 1 - i == ml;
        }
        if (!single) offer(b, i, i + ml, base + tok->unk_score, tok->unk);
        i += ml;
    }
    size_t k = 0; /* the path's ids, last first, <unk> runs fused */
    for (size_t e = n; e > 0; e = (size_t)b[e].from) {
        const int32_t id = b[e].id;
        if (!(id == tok->unk && k > 0 && rev[k - 1] == tok->unk)) rev[k++] = id;
    }
    int rc = 0;
    while (k > 0 && rc == 0) rc = push(v->out, rev[--k]);
    free(b);
    free(rev);
    return rc;
}

/* The longest added token at s[i..n), or NULL. */
static const uni_added *added_at(const sdc_unigram *tok, const char *s, size_t n, size_t i) {
    const uni_added *best = NULL;
    for (size_t a = 0; a < tok->n_added; a++) {
        const uni_added *t = &tok->added[a];
        if (t->len <= n - i && (!best || t->len > best->len) && memcmp(s + i, t->text, t->len) == 0) best = t;
    }
    return best;
}

/* One section of text between added tokens: normalise, pre-tokenise, Viterbi. */
static int section(const sdc_unigram *tok, const char *s, size_t n, int first, id_list *out) {
    uni_cps cps = {malloc((n + 1) * sizeof(uint32_t)), 0, n + 1};
    if (!cps.cp) return -1;
    cps.n = sdc_utf8_decode(s, n, cps.cp);
    viterbi_ctx v = {tok, out};
    int rc = uni_normalize(tok, &cps);
    if (rc == 0) rc = uni_pre_tokenize(tok, &cps, first, viterbi_piece, &v);
    free(cps.cp);
    return rc;
}

/* Whether a section at the input's start counts as "first" for prepend_scheme "first": tokenizers asks
 * that its normalised text start at original offset 0, which fails when the normalizer drops the
 * first character (a control character, or whitespace that Strip or WhitespaceSplit removes). */
static int starts_input(const char *s, size_t n) {
    uint32_t c;
    if (n == 0 || sdc_utf8_decode(s, utf8_len((uint8_t)s[0]) <= n ? utf8_len((uint8_t)s[0]) : n, &c) != 1) return 0;
    return !uni_is_whitespace(c) && c >= 0x20 && !(c >= 0x7F && c < 0xA0);
}

/* All ids of valid UTF-8 s[0..n) into out. */
static int tokenize_valid(const sdc_unigram *tok, const char *s, size_t n, id_list *out) {
    size_t start = 0;
    for (size_t i = 0; i < n;) {
        const uni_added *a = tok->n_added ? added_at(tok, s, n, i) : NULL;
        if (!a) {
            i++;
            continue;
        }
        if (i > start && section(tok, s + start, i - start, start == 0 && starts_input(s, n), out) != 0) return -1;
        if (push(out, a->id) != 0) return -1;
        i += a->len;
        start = i;
    }
    return n > start ? section(tok, s + start, n - start, start == 0 && starts_input(s, n), out) : 0;
}

static sdc_status tokenize_all(const sdc_unigram *tok, const char *text, size_t len, id_list *out) {
    char *valid = malloc(3 * len + 1);
    if (!valid) return SDC_ERR_OOM;
    const size_t n = sdc_utf8_sanitize(text, len, valid);
    const int rc = tokenize_valid(tok, valid, n, out);
    free(valid);
    return rc == 0 ? SDC_OK : SDC_ERR_OOM;
}

sdc_status sdc_unigram_tokenize(const sdc_unigram *tok, const char *text, size_t len, int32_t *ids, size_t max,
                                size_t *n_total) {
    id_list l = {0};
    sdc_status st = tokenize_all(tok, text, len, &l);
    if (st == SDC_OK) {
        for (size_t i = 0; i < l.n && i < max; i++) ids[i] = l.id[i];
        *n_total = l.n;
    } else {
        SDC_LOGE(&tok->log, "sdc_unigram_tokenize: out of memory for %zu bytes of text", len);
        *n_total = 0;
    }
    free(l.id);
    return st;
}

sdc_status sdc_unigram_encode(const sdc_unigram *tok, const char *text, int32_t *ids, int max_length, size_t *n_cut) {
    if (max_length < 1 || !text) {
        SDC_LOGE(&tok->log, "sdc_unigram_encode: max_length %d (want >= 1) or no text", max_length);
        return SDC_ERR_INVALID_ARG;
    }
    id_list l = {0};
    sdc_status st = tokenize_all(tok, text, strlen(text), &l);
    if (st != SDC_OK) {
        SDC_LOGE(&tok->log, "sdc_unigram_encode: out of memory");
        free(l.id);
        return st;
    }
    const size_t room = (size_t)max_length, specials = (size_t)(tok->n_prefix + tok->n_suffix);
    const size_t keep = room > specials ? (l.n < room - specials ? l.n : room - specials) : 0;
    size_t k = 0;
    for (int i = 0; i < tok->n_prefix && k < room; i++) ids[k++] = tok->prefix[i];
    for (size_t i = 0; i < keep; i++) ids[k++] = l.id[i];
    for (int i = 0; i < tok->n_suffix && k < room; i++) ids[k++] = tok->suffix[i];
    while (k < room) ids[k++] = tok->pad;
    if (n_cut) *n_cut = l.n - keep;
    free(l.id);
    return SDC_OK;
}
