/* bpe.c - vocabulary / merge-rank hash maps and the byte-level BPE merge loop. */
#include "tokenizer/bpe.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* Vocabulary slot: the text lives in the pool at [off, off + len). id < 0 marks an empty slot. */
typedef struct str_slot {
    uint32_t hash, off, len;
    int32_t id;
} str_slot;

/* The tables (open addressing, linear probing) double before n entries would fill more than 4/5 of
 * them: CLIP's 49408 tokens and 48894 merges fit 65536 slots each (75%), 1 MiB per table for the
 * model's lifetime where a half-full bound took 2 MiB. At that load a lookup of an absent key probes
 * about 9 slots of 16 bytes on average (a few cache lines; prompts are short). */
static int over_load(size_t n, size_t cap) { return n * 5 > cap * 4; }

/* Merge slot: key = (left id << 32) | right id; PAIR_EMPTY marks an empty slot. */
typedef struct pair_slot {
    uint64_t key;
    int32_t rank, new_id;
} pair_slot;
#define PAIR_EMPTY UINT64_MAX

struct sdc_bpe {
    char *pool; /* token texts, back to back */
    size_t pool_n, pool_cap;
    str_slot *tok; /* [tok_cap], a power of two, at most 4/5 full (over_load) */
    size_t tok_cap, tok_n;
    pair_slot *mrg; /* [mrg_cap], a power of two, at most 4/5 full (over_load) */
    size_t mrg_cap, mrg_n;
    int32_t n_ranks;      /* merges added so far = the next rank */
    int32_t byte_id[256]; /* id of the byte's character inside a word, -1 if none */
    int32_t end_id[256];  /* id of the byte's character + end-of-word suffix, -1 if none */
    int32_t unk;
    int32_t max_id;
};

/* One symbol of the word being merged (a doubly linked list over an array). len 0 = merged away. */
typedef struct bpe_sym {
    int32_t id, prev, next, len;
} bpe_sym;

/* A candidate merge of the symbol at pos with its right neighbour. */
typedef struct bpe_cand {
    int32_t rank, pos, new_id;
} bpe_cand;

static uint32_t hash_bytes(const char *s, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static uint64_t hash_pair(uint64_t k) {
    k ^= k >> 33; /* a 64-bit finaliser: consecutive ids spread over the whole table */
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    return k ^ (k >> 33);
}

sdc_bpe *sdc_bpe_new(void) {
    sdc_bpe *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->unk = b->max_id = -1;
    for (int i = 0; i < 256; i++) b->byte_id[i] = b->end_id[i] = -1;
    return b;
}

void sdc_bpe_free(sdc_bpe *b) {
    if (!b) return;
    free(b->pool);
    free(b->tok);
    free(b->mrg);
    free(b);
}

static str_slot *tok_find(const sdc_bpe *b, const char *s, size_t n, uint32_t h) {
    size_t mask = b->tok_cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        str_slot *e = &b->tok[i];
        if (e->id < 0) return e;
        /* an empty token has no bytes in the pool (which may still be NULL): nothing to compare */
        if (e->hash == h && e->len == n && (n == 0 || memcmp(b->pool + e->off, s, n) == 0)) return e;
    }
}

static sdc_status tok_grow(sdc_bpe *b) {
    size_t cap = b->tok_cap ? b->tok_cap * 2 : 1024;
    str_slot *old = b->tok, *t = malloc(cap * sizeof *t);
    if (!t) return SDC_ERR_OOM;
    for (size_t i = 0; i < cap; i++) t[i].id = -1;
    size_t old_cap = b->tok_cap;
    b->tok = t;
    b->tok_cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].id < 0) continue;
        size_t mask = cap - 1, j = old[i].hash & mask;
        while (t[j].id >= 0) j = (j + 1) & mask;
        t[j] = old[i];
    }
    free(old);
    return SDC_OK;
}

sdc_status sdc_bpe_set_token(sdc_bpe *b, const char *s, size_t n, int32_t id) {
    assert(id >= 0);
    if (n > UINT32_MAX / 2 || b->pool_n + n > UINT32_MAX) return SDC_ERR_OOM;
    if (over_load(b->tok_n + 1, b->tok_cap) && tok_grow(b) != SDC_OK) return SDC_ERR_OOM;
    uint32_t h = hash_bytes(s, n);
    str_slot *e = tok_find(b, s, n, h);
    if (id > b->max_id) b->max_id = id;
    if (e->id >= 0) {
        e->id = id;
        return SDC_OK;
    }
    if (b->pool_n + n > b->pool_cap) {
        size_t cap = b->pool_cap ? b->pool_cap : 1 << 16;
        while (cap < b->pool_n + n) cap *= 2;
        char *p = realloc(b->pool, cap);
        if (!p) return SDC_ERR_OOM;
        b->pool = p;
        b->pool_cap = cap;
    }
    if (n) memcpy(b->pool + b->pool_n, s, n);
    *e = (str_slot){.hash = h, .off = (uint32_t)b->pool_n, .len = (uint32_t)n, .id = id};
    b->pool_n += n;
    b->tok_n++;
    return SDC_OK;
}

int32_t sdc_bpe_token_id(const sdc_bpe *b, const char *s, size_t n) {
    if (!b->tok_cap) return -1;
    return tok_find(b, s, n, hash_bytes(s, n))->id;
}

size_t sdc_bpe_vocab_size(const sdc_bpe *b) { return b->tok_n; }
int32_t sdc_bpe_max_id(const sdc_bpe *b) { return b->max_id; }
size_t sdc_bpe_merge_count(const sdc_bpe *b) { return (size_t)b->n_ranks; }

static pair_slot *pair_find(const sdc_bpe *b, uint64_t key) {
    size_t mask = b->mrg_cap - 1;
    for (size_t i = hash_pair(key) & mask;; i = (i + 1) & mask)
        if (b->mrg[i].key == key || b->mrg[i].key == PAIR_EMPTY) return &b->mrg[i];
}

static sdc_status pair_grow(sdc_bpe *b) {
    size_t cap = b->mrg_cap ? b->mrg_cap * 2 : 1024, old_cap = b->mrg_cap;
    pair_slot *old = b->mrg, *t = malloc(cap * sizeof *t);
    if (!t) return SDC_ERR_OOM;
    for (size_t i = 0; i < cap; i++) t[i].key = PAIR_EMPTY;
    b->mrg = t;
    b->mrg_cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].key != PAIR_EMPTY) *pair_find(b, old[i].key) = old[i];
    free(old);
    return SDC_OK;
}

static const pair_slot *pair_get(const sdc_bpe *b, int32_t left, int32_t right) {
    if (!b->mrg_cap) return NULL;
    const pair_slot *e = pair_find(b, (uint64_t)(uint32_t)left << 32 | (uint32_t)right);
    return e->key == PAIR_EMPTY ? NULL : e;
}

sdc_status sdc_bpe_add_merge(sdc_bpe *b, const char *a, size_t alen, const char *bb, size_t blen) {
    int32_t ia = sdc_bpe_token_id(b, a, alen), ib = sdc_bpe_token_id(b, bb, blen);
    if (ia < 0 || ib < 0) return SDC_ERR_NOT_FOUND;
    char small[256], *joined = alen + blen <= sizeof small ? small : malloc(alen + blen);
    if (!joined) return SDC_ERR_OOM;
    memcpy(joined, a, alen);
    memcpy(joined + alen, bb, blen);
    int32_t inew = sdc_bpe_token_id(b, joined, alen + blen);
    if (joined != small) free(joined);
    if (inew < 0) return SDC_ERR_NOT_FOUND;
    if (b->n_ranks == INT32_MAX) return SDC_ERR_OOM;
    if (over_load(b->mrg_n + 1, b->mrg_cap) && pair_grow(b) != SDC_OK) return SDC_ERR_OOM;
    uint64_t key = (uint64_t)(uint32_t)ia << 32 | (uint32_t)ib;
    pair_slot *e = pair_find(b, key);
    if (e->key == PAIR_EMPTY) b->mrg_n++;
    *e = (pair_slot){.key = key, .rank = b->n_ranks++, .new_id = inew};
    return SDC_OK;
}

/* GPT-2's byte-to-unicode table: printable Latin-1 bytes map to themselves, the other 68 bytes
 * (controls, space, DEL, NBSP, soft hyphen) to U+0100.. in byte order. */
static uint32_t byte_char(int byte) {
    if ((byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || (byte >= 174 && byte <= 255))
        return (uint32_t)byte;
    int k = 0;
    for (int c = 0; c < byte; c++)
        if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174)) k++;
    return 256u + (uint32_t)k;
}

sdc_status sdc_bpe_set_word_end(sdc_bpe *b, const char *suffix, int32_t unk_id) {
    size_t slen = strlen(suffix);
    char *buf = malloc(slen + 2);
    if (!buf) return SDC_ERR_OOM;
    for (int byte = 0; byte < 256; byte++) {
        uint32_t c = byte_char(byte);
        size_t n = 0; /* every character of the table is below U+0800: one or two UTF-8 bytes */
        if (c < 0x80) {
            buf[n++] = (char)c;
        } else {
            buf[n++] = (char)(0xC0 | (c >> 6));
            buf[n++] = (char)(0x80 | (c & 0x3F));
        }
        b->byte_id[byte] = sdc_bpe_token_id(b, buf, n);
        memcpy(buf + n, suffix, slen);
        b->end_id[byte] = sdc_bpe_token_id(b, buf, n + slen);
    }
    free(buf);
    b->unk = unk_id;
    return SDC_OK;
}

sdc_status sdc_ids_push(sdc_ids *ids, int32_t id) {
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        int32_t *v = realloc(ids->v, cap * sizeof *v);
        if (!v) return SDC_ERR_OOM;
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return SDC_OK;
}

void sdc_bpe_scratch_free(sdc_bpe_scratch *s) {
    free(s->sym);
    free(s->heap);
    *s = (sdc_bpe_scratch){0};
}

/* Min-heap on (rank, pos): the order in which the tokenizers library pops its merges. */
static int cand_less(bpe_cand a, bpe_cand b) { return a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos; }

static void heap_push(bpe_cand *h, size_t *n, bpe_cand c) {
    size_t i = (*n)++;
    while (i > 0 && cand_less(c, h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = c;
}

static bpe_cand heap_pop(bpe_cand *h, size_t *n) {
    bpe_cand top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && cand_less(h[c + 1], h[c])) c++;
        if (!cand_less(h[c], last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = last;
    return top;
}

static void push_pair(const sdc_bpe *b, const bpe_sym *sym, bpe_cand *heap, size_t *nh, int32_t pos) {
    const pair_slot *m = pair_get(b, sym[pos].id, sym[sym[pos].next].id);
    if (m) heap_push(heap, nh, (bpe_cand){.rank = m->rank, .pos = pos, .new_id = m->new_id});
}

sdc_status sdc_bpe_encode_word(const sdc_bpe *b, sdc_bpe_scratch *s, const uint8_t *bytes, size_t n, sdc_ids *out) {
    assert(n >= 1);
    if (n > INT32_MAX / 4) return SDC_ERR_OOM;
    if (n > s->cap) { /* each merge pushes at most two candidates: 3n bounds the heap */
        void *sym = realloc(s->sym, n * sizeof(bpe_sym)),
             *heap = sym ? realloc(s->heap, 3 * n * sizeof(bpe_cand)) : NULL;
        if (sym) s->sym = sym;
        if (heap) s->heap = heap;
        if (!sym || !heap) return SDC_ERR_OOM;
        s->cap = n;
    }
    bpe_sym *sym = s->sym;
    bpe_cand *heap = s->heap;
    /* Characters not in the vocabulary become unk (not fused); without unk they are dropped. */
    int32_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = i + 1 < n ? b->byte_id[bytes[i]] : b->end_id[bytes[i]];
        if (id < 0) id = b->unk;
        if (id < 0) continue;
        sym[m] = (bpe_sym){.id = id, .prev = m - 1, .next = m + 1, .len = 1};
        m++;
    }
    if (m == 0) return SDC_OK;
    sym[m - 1].next = -1;
    size_t nh = 0;
    for (int32_t i = 0; i + 1 < m; i++) push_pair(b, sym, heap, &nh, i);
    while (nh) {
        bpe_cand top = heap_pop(heap, &nh);
        bpe_sym *cur = &sym[top.pos];
        if (cur->len == 0 || cur->next < 0) continue;
        int32_t right = cur->next;
        /* A stale candidate: the pair at pos changed since it was queued. */
        const pair_slot *now = pair_get(b, cur->id, sym[right].id);
        if (!now || now->new_id != top.new_id) continue;
        cur->id = top.new_id;
        cur->len += sym[right].len;
        cur->next = sym[right].next;
        sym[right].len = 0;
        if (cur->next >= 0) sym[cur->next].prev = top.pos;
        if (cur->prev >= 0) push_pair(b, sym, heap, &nh, cur->prev);
        if (cur->next >= 0) push_pair(b, sym, heap, &nh, top.pos);
    }
    for (int32_t i = 0; i >= 0; i = sym[i].next)
        if (sdc_ids_push(out, sym[i].id) != SDC_OK) return SDC_ERR_OOM;
    return SDC_OK;
}
