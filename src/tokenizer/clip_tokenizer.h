/* clip_tokenizer.h - CLIP byte-level BPE tokenizer, as transformers' CLIPTokenizer (tokenizers
 * backend) runs it for diffusers: NFC, whitespace runs -> one space, lowercase, literal
 * <|startoftext|> / <|endoftext|> matched as special tokens, the CLIP split regex
 * (\p{L}+ | single \p{N} | runs of other non-space), byte-level BPE with '</w>' word ends.
 * No ftfy, no html unescape. Invalid UTF-8 becomes U+FFFD; arbitrary bytes never crash it. */
#ifndef SDC_TOKENIZER_CLIP_TOKENIZER_H
#define SDC_TOKENIZER_CLIP_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "sdc.h"

typedef struct sdc_clip_tokenizer sdc_clip_tokenizer;

/* dir holds vocab.json + merges.txt, or tokenizer.json (tried in that order); an optional
 * tokenizer_config.json names the pad token (default: <|endoftext|>), and special_tokens_map.json
 * overrides it. As in transformers, the special tokens the config names become added tokens that
 * the text is split on (SD 2.x's pad "!" is then always a token of its own). */
sdc_status sdc_clip_tokenizer_load(const char *dir, const sdc_logger *log, sdc_clip_tokenizer **out);
sdc_status sdc_clip_tokenizer_load_files(const char *vocab_json, const char *merges_txt, const sdc_logger *log,
                                         sdc_clip_tokenizer **out);
sdc_status sdc_clip_tokenizer_load_json(const char *tokenizer_json, const sdc_logger *log, sdc_clip_tokenizer **out);
/* Sets the pad token by its text (e.g. "!" for SD 2.x). SDC_ERR_NOT_FOUND if not in the vocabulary. */
sdc_status sdc_clip_tokenizer_set_pad(sdc_clip_tokenizer *tok, const char *pad_token);
void sdc_clip_tokenizer_free(sdc_clip_tokenizer *tok); /* NULL is harmless */

int32_t sdc_clip_tokenizer_bos(const sdc_clip_tokenizer *tok);
int32_t sdc_clip_tokenizer_eos(const sdc_clip_tokenizer *tok);
int32_t sdc_clip_tokenizer_pad(const sdc_clip_tokenizer *tok);
/* One more than the largest token id: the rows a token embedding table needs. */
int32_t sdc_clip_tokenizer_n_vocab(const sdc_clip_tokenizer *tok);

/* Token ids of text[0..len) without BOS/EOS. Writes at most max ids and returns how many the text
 * has in total (which may exceed max); ids may be NULL when max is 0. The tokenizer is only read:
 * calls on one tokenizer may run from several threads. */
size_t sdc_clip_tokenize(const sdc_clip_tokenizer *tok, const char *text, size_t len, int32_t *ids, size_t max);
/* The model input: BOS, the first n_ctx-2 tokens, EOS, then pad tokens up to n_ctx. Returns the
 * number of prompt tokens that were cut off (0 when the prompt fit). */
size_t sdc_clip_encode_prompt(const sdc_clip_tokenizer *tok, const char *text, int32_t *ids, int n_ctx);

#endif
