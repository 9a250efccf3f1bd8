/* clip_internal.h - the tokenizer object, shared by clip_load.c (files -> object) and
 * clip_tokenizer.c (text -> ids). Not a public header. */
#ifndef SDC_TOKENIZER_CLIP_INTERNAL_H
#define SDC_TOKENIZER_CLIP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "tokenizer/bpe.h"
#include "tokenizer/clip_tokenizer.h"

/* An added token: matched in the text before the model sees it and emitted as one id. Tokens with
 * normalized == 0 match the raw text; the others match the normalised text (norm = the content
 * after the normaliser). */
typedef struct clip_added {
    char *text;
    size_t len;
    uint32_t *norm;
    size_t norm_len;
    int32_t id;
    int normalized;
} clip_added;

struct sdc_clip_tokenizer {
    sdc_logger log;
    sdc_bpe *bpe;
    clip_added *added;
    size_t n_added;
    int n_normalized; /* how many added tokens match the normalised text */
    int32_t bos, eos, pad, unk;
    int32_t n_vocab; /* 1 + the largest id of the vocabulary and the added tokens */
};

#endif
