/* byte_trie.h - a trie over byte strings, for the common-prefix search of the Unigram tokenizer: from
 * a start position, walk the text's bytes one at a time and collect every vocabulary piece the walk
 * passes. Nodes are int32 indices (the root is 0); the edges live in one open-addressing hash table
 * keyed by (node, byte), so a step is one probe on average whatever the fan-out. */
#ifndef SDC_TOKENIZER_BYTE_TRIE_H
#define SDC_TOKENIZER_BYTE_TRIE_H

#include <stddef.h>
#include <stdint.h>

typedef struct sdc_byte_trie sdc_byte_trie;

sdc_byte_trie *sdc_byte_trie_new(void);    /* NULL when out of memory */
void sdc_byte_trie_free(sdc_byte_trie *t); /* NULL is harmless */
/* Stores value (>= 0) for the n-byte string s (n >= 1), replacing an earlier value for the same
 * string. 0, or -1 when out of memory (the trie is then unchanged but may hold unused nodes). */
int sdc_byte_trie_insert(sdc_byte_trie *t, const char *s, size_t n, int32_t value);
/* The child of node along byte b, or -1. */
int32_t sdc_byte_trie_child(const sdc_byte_trie *t, int32_t node, uint8_t b);
/* The value stored at node, or -1 when no string ends there. */
int32_t sdc_byte_trie_value(const sdc_byte_trie *t, int32_t node);

#endif
