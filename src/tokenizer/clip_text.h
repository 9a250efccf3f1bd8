/* clip_text.h - the text side of the CLIP tokenizer (internal): lossy UTF-8 decoding, the
 * normaliser (NFC, whitespace runs -> one space, lowercase) and the two split regexes.
 * Unicode properties come from utf8proc. */
#ifndef SDC_TOKENIZER_CLIP_TEXT_H
#define SDC_TOKENIZER_CLIP_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "sdc.h"

/* Copies s[0..n) into out as valid UTF-8, each maximal invalid subpart replaced by U+FFFD (as
 * Python's errors="replace" and Rust's from_utf8_lossy do). out needs room for 3 * n bytes.
 * Returns the bytes written. */
size_t sdc_utf8_sanitize(const char *s, size_t n, char *out);
/* Decodes valid UTF-8 (as sdc_utf8_sanitize writes) into code points; returns how many.
 * out needs room for n code points. */
size_t sdc_utf8_decode(const char *s, size_t n, uint32_t *out);
/* Appends the UTF-8 encoding of cp (1..4 bytes) at out; returns the byte count. */
size_t sdc_utf8_encode(uint32_t cp, char *out);

/* The normaliser of valid UTF-8 s[0..n): NFC, then every run of whitespace to one ' ', then
 * lowercase as Rust's char::to_lowercase (full mapping: U+0130 becomes "i" + U+0307). *out is a
 * malloc'd code point array of *n_out entries (free it). SDC_ERR_OOM on allocation failure. */
sdc_status sdc_clip_normalize(const char *s, size_t n, uint32_t **out, size_t *n_out);

/* The CLIP split regex, applied after normalisation and with the matches kept:
 *   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 * Finds the next match at or after *pos in cp[0..n): returns 1 and sets [*start, *end) and
 * *pos = *end, or returns 0 when none is left (only whitespace remains). */
int sdc_clip_split_next(const uint32_t *cp, size_t n, size_t *pos, size_t *start, size_t *end);
/* The ByteLevel pre-tokeniser's GPT-2 regex inside one CLIP piece (which holds no whitespace):
 *   's|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}+|[^\s\p{L}\p{N}]+
 * Returns the length of the first match of cp[0..n) (n >= 1; always >= 1). */
size_t sdc_gpt2_split_len(const uint32_t *cp, size_t n);

#endif
