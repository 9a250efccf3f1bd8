/* bpe.h - byte-level BPE (internal to the tokenizer): the vocabulary and the merge ranks in
 * open-addressing hash maps, and the merge loop of one pre-tokenised word.
 *
 * A word is raw UTF-8 bytes; each byte becomes one character of the GPT-2 byte-to-unicode
 * alphabet, the last one carries the end-of-word suffix ("</w>" for CLIP). Merges are applied
 * lowest rank first, leftmost first among equal ranks, exactly as the tokenizers library does. */
#ifndef SDC_TOKENIZER_BPE_H
#define SDC_TOKENIZER_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "sdc.h"

typedef struct sdc_bpe sdc_bpe;

/* A growable list of token ids. */
typedef struct sdc_ids {
    int32_t *v;
    size_t n, cap;
} sdc_ids;

/* Reusable buffers of sdc_bpe_encode_word; zero-initialise, release with sdc_bpe_scratch_free. */
typedef struct sdc_bpe_scratch {
    void *sym, *heap; /* [cap] symbols, [3 * cap] merge candidates */
    size_t cap;
} sdc_bpe_scratch;

sdc_bpe *sdc_bpe_new(void); /* NULL on OOM */
void sdc_bpe_free(sdc_bpe *bpe);

/* Adds text -> id, or replaces the id of text already there. id >= 0. */
sdc_status sdc_bpe_set_token(sdc_bpe *bpe, const char *text, size_t len, int32_t id);
/* -1 when text is not in the vocabulary. */
int32_t sdc_bpe_token_id(const sdc_bpe *bpe, const char *text, size_t len);
size_t sdc_bpe_vocab_size(const sdc_bpe *bpe);
/* The largest id in the vocabulary (-1 when empty). */
int32_t sdc_bpe_max_id(const sdc_bpe *bpe);

/* Appends the merge "a b" with the next rank (a later duplicate replaces the earlier rank).
 * SDC_ERR_NOT_FOUND when a, b or a+b is not in the vocabulary. */
sdc_status sdc_bpe_add_merge(sdc_bpe *bpe, const char *a, size_t alen, const char *b, size_t blen);
size_t sdc_bpe_merge_count(const sdc_bpe *bpe);

/* Sets the end-of-word suffix and the unknown-token id (-1: unknown characters are dropped).
 * Call after the vocabulary is complete and before encoding. */
sdc_status sdc_bpe_set_word_end(sdc_bpe *bpe, const char *suffix, int32_t unk_id);

/* Appends the ids of one word (bytes[0..n), n >= 1) to out. SDC_ERR_OOM on allocation failure. */
sdc_status sdc_bpe_encode_word(const sdc_bpe *bpe, sdc_bpe_scratch *scratch, const uint8_t *bytes, size_t n,
                               sdc_ids *out);
void sdc_bpe_scratch_free(sdc_bpe_scratch *scratch);

/* Appends one id; SDC_ERR_OOM on allocation failure. */
sdc_status sdc_ids_push(sdc_ids *ids, int32_t id);

#endif
