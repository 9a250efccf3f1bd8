/* unigram.h - the SentencePiece Unigram tokenizer of T5 (Flux's tokenizer_2), as HF tokenizers runs a
 * tokenizer.json whose model is "Unigram":
 *   1. added tokens (</s>, <pad>, <unk>, <extra_id_N>, ...) are matched in the raw text, longest first,
 *      and emitted as their ids; the text between them is processed alone;
 *   2. the normalizer: a sequence of Nmt (drop control characters, odd spaces -> ' '), NFKC / NFC /
 *      NFKD / NFD (utf8proc), Lowercase, Strip, Replace (a literal, or a run "c{n,}" / "c+" of one
 *      character); "Precompiled" (sentencepiece's nmt_nfkc charsmap) is taken as Nmt + NFKC, which it
 *      was compiled from (logged at load);
 *   3. the pre-tokenizer: Metaspace (' ' -> U+2581, the replacement prepended per prepend_scheme
 *      always / first / never, split before each replacement when split), optionally after
 *      WhitespaceSplit in a Sequence;
 *   4. Viterbi over each piece: the segmentation into vocabulary pieces with the largest sum of
 *      scores; a character no piece starts with costs (lowest score - 10) as <unk>, and runs of
 *      <unk> fuse into one (the library's rules);
 *   5. the post-processor's special tokens (T5: </s> after the text); truncation keeps room for them,
 *      padding uses the pad token.
 * Invalid UTF-8 becomes U+FFFD (which Nmt turns into a space); any bytes are safe. */
#ifndef SDC_TOKENIZER_UNIGRAM_H
#define SDC_TOKENIZER_UNIGRAM_H

#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "sdc.h"

typedef struct sdc_unigram sdc_unigram;

/* dir/tokenizer.json; the pad token is dir/tokenizer_config.json's pad_token when it names one, else
 * "<pad>", else id 0. SDC_ERR_NOT_FOUND without tokenizer.json; SDC_ERR_FORMAT / SDC_ERR_UNSUPPORTED
 * (logged) for a file that is not a Unigram tokenizer sdc can run. */
sdc_status sdc_unigram_load(const char *dir, const sdc_logger *log, sdc_unigram **out);
/* The same from the text of a tokenizer.json (len bytes, need not be NUL-terminated); pad as above
 * without a tokenizer_config.json. */
sdc_status sdc_unigram_parse(const char *json, size_t len, const sdc_logger *log, sdc_unigram **out);
void sdc_unigram_free(sdc_unigram *tok); /* NULL is harmless */

int32_t sdc_unigram_pad(const sdc_unigram *tok);
int32_t sdc_unigram_unk(const sdc_unigram *tok);
/* One more than the largest id of the vocabulary and the added tokens: the rows an embedding needs. */
int32_t sdc_unigram_n_vocab(const sdc_unigram *tok);

/* The ids of text[0..len) without the post-processor's special tokens. Writes at most max ids (ids may
 * be NULL when max is 0) and sets *n_total to how many the text has. SDC_ERR_OOM when out of memory.
 * The tokenizer is only read: calls may run from several threads. */
sdc_status sdc_unigram_tokenize(const sdc_unigram *tok, const char *text, size_t len, int32_t *ids, size_t max,
                                size_t *n_total);
/* The model input of max_length ids (>= 1), as tokenizer(text, padding="max_length", truncation=True,
 * max_length=...) gives it: the text's ids cut to leave room for the special tokens, the special
 * tokens (T5: </s>), then pad ids. *n_cut (may be NULL): the text ids that were cut off. */
sdc_status sdc_unigram_encode(const sdc_unigram *tok, const char *text, int32_t *ids, int max_length, size_t *n_cut);

#endif
