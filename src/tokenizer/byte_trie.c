/* byte_trie.c - see byte_trie.h. Edge keys are (node << 8 | byte) + 1, so that 0 marks an empty slot;
 * linear probing, the table doubled whenever it would pass half full. */
#include "tokenizer/byte_trie.h"

#include <stdlib.h>

struct sdc_byte_trie {
    int32_t *value; /* [n_nodes] */
    size_t n_nodes, cap_nodes;
    uint64_t *key;  /* [cap_edges]: 0 empty */
    int32_t *child; /* [cap_edges] */
    size_t n_edges, cap_edges;
};

static uint64_t edge_key(int32_t node, uint8_t b) { return ((uint64_t)(uint32_t)node << 8 | b) + 1; }

static size_t slot_of(uint64_t key, size_t cap) {
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 17) & (cap - 1);
}

sdc_byte_trie *sdc_byte_trie_new(void) {
    sdc_byte_trie *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->cap_nodes = 64;
    t->cap_edges = 128;
    t->value = malloc(t->cap_nodes * sizeof *t->value);
    t->key = calloc(t->cap_edges, sizeof *t->key);
    t->child = malloc(t->cap_edges * sizeof *t->child);
    if (!t->value || !t->key || !t->child) {
        sdc_byte_trie_free(t);
        return NULL;
    }
    t->value[0] = -1;
    t->n_nodes = 1;
    return t;
}

void sdc_byte_trie_free(sdc_byte_trie *t) {
    if (!t) return;
    free(t->value);
    free(t->key);
    free(t->child);
    free(t);
}

int32_t sdc_byte_trie_child(const sdc_byte_trie *t, int32_t node, uint8_t b) {
    const uint64_t k = edge_key(node, b);
    for (size_t i = slot_of(k, t->cap_edges);; i = (i + 1) & (t->cap_edges - 1)) {
        if (t->key[i] == k) return t->child[i];
        if (t->key[i] == 0) return -1;
    }
}

int32_t sdc_byte_trie_value(const sdc_byte_trie *t, int32_t node) { return t->value[node]; }

/* Doubles the edge table. -1 when out of memory (the old table stays). */
static int grow_edges(sdc_byte_trie *t) {
    const size_t cap = t->cap_edges * 2;
    uint64_t *key = calloc(cap, sizeof *key);
    int32_t *child = malloc(cap * sizeof *child);
    if (!key || !child) {
        free(key);
        free(child);
        return -1;
    }
    for (size_t j = 0; j < t->cap_edges; j++) {
        if (!t->key[j]) continue;
        size_t i = slot_of(t->key[j], cap);
        while (key[i]) i = (i + 1) & (cap - 1);
        key[i] = t->key[j];
        child[i] = t->child[j];
    }
    free(t->key);
    free(t->child);
    t->key = key;
    t->child = child;
    t->cap_edges = cap;
    return 0;
}

/* A new child of node along b. -1 when out of memory. */
static int32_t add_child(sdc_byte_trie *t, int32_t node, uint8_t b) {
    if (t->n_nodes >= INT32_MAX) return -1;
    if (t->n_nodes == t->cap_nodes) {
        int32_t *v = realloc(t->value, 2 * t->cap_nodes * sizeof *v);
        if (!v) return -1;
        t->value = v;
        t->cap_nodes *= 2;
    }
    if (2 * (t->n_edges + 1) > t->cap_edges && grow_edges(t) != 0) return -1;
    const int32_t c = (int32_t)t->n_nodes++;
    t->value[c] = -1;
    const uint64_t k = edge_key(node, b);
    size_t i = slot_of(k, t->cap_edges);
    while (t->key[i]) i = (i + 1) & (t->cap_edges - 1);
    t->key[i] = k;
    t->child[i] = c;
    t->n_edges++;
    return c;
}

int sdc_byte_trie_insert(sdc_byte_trie *t, const char *s, size_t n, int32_t value) {
    int32_t node = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t c = sdc_byte_trie_child(t, node, (uint8_t)s[i]);
        if (c < 0) c = add_child(t, node, (uint8_t)s[i]);
        if (c < 0) return -1;
        node = c;
    }
    t->value[node] = value;
    return 0;
}
