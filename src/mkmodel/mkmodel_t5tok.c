/* mkmodel_t5tok.c - the T5 tokenizer a generated Flux folder carries (tokenizer_2/): sdc's own small
 * SentencePiece Unigram tokenizer in the tokenizers library's tokenizer.json layout, since no real T5
 * vocabulary is available here. Pieces: <pad> 0, </s> 1, <unk> 2, then every printable ASCII character
 * with and without the Metaspace word-start mark (U+2581), and the marked lowercase letters' pairs
 * ("▁th", ...) so that the segmentation has choices to make. Scores fall with the piece index: a
 * deterministic unigram language model. The layout (normalizer, Metaspace pre-tokenizer, </s>
 * appended) is T5's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mkmodel/mkmodel_internal.h"

#define MARK "\xe2\x96\x81" /* U+2581, the Metaspace replacement */

static cJSON *special(int id, const char *content) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", id);
    cJSON_AddStringToObject(o, "content", content);
    cJSON_AddBoolToObject(o, "single_word", 0);
    cJSON_AddBoolToObject(o, "lstrip", 0);
    cJSON_AddBoolToObject(o, "rstrip", 0);
    cJSON_AddBoolToObject(o, "normalized", 0);
    cJSON_AddBoolToObject(o, "special", 1);
    return o;
}

static void add_piece(cJSON *vocab, const char *piece, double score) {
    cJSON *p = cJSON_CreateArray();
    cJSON_AddItemToArray(p, cJSON_CreateString(piece));
    cJSON_AddItemToArray(p, cJSON_CreateNumber(score));
    cJSON_AddItemToArray(vocab, p);
}

static cJSON *metaspace(void) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "type", "Metaspace");
    cJSON_AddStringToObject(m, "replacement", MARK);
    cJSON_AddStringToObject(m, "prepend_scheme", "always");
    cJSON_AddBoolToObject(m, "split", 1);
    return m;
}

static cJSON *tokenizer_json(void) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    static const char *const specials[] = {"<pad>", "</s>", "<unk>"};
    for (int i = 0; i < 3; i++) cJSON_AddItemToArray(added, special(i, specials[i]));
    cJSON *norm = cJSON_AddObjectToObject(root, "normalizer");
    cJSON_AddStringToObject(norm, "type", "Sequence");
    cJSON *norms = cJSON_AddArrayToObject(norm, "normalizers");
    cJSON *nfkc = cJSON_CreateObject();
    cJSON_AddStringToObject(nfkc, "type", "NFKC");
    cJSON_AddItemToArray(norms, nfkc);
    cJSON *spaces = cJSON_CreateObject();
    cJSON_AddStringToObject(spaces, "type", "Replace");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(spaces, "pattern"), "Regex", " {2,}");
    cJSON_AddStringToObject(spaces, "content", " ");
    cJSON_AddItemToArray(norms, spaces);
    cJSON_AddItemToObject(root, "pre_tokenizer", metaspace());
    cJSON *post = cJSON_AddObjectToObject(root, "post_processor");
    cJSON_AddStringToObject(post, "type", "TemplateProcessing");
    cJSON *single = cJSON_AddArrayToObject(post, "single");
    cJSON *seq = cJSON_CreateObject(), *eos = cJSON_CreateObject();
    cJSON *sa = cJSON_AddObjectToObject(seq, "Sequence"), *se = cJSON_AddObjectToObject(eos, "SpecialToken");
    cJSON_AddStringToObject(sa, "id", "A");
    cJSON_AddNumberToObject(sa, "type_id", 0);
    cJSON_AddStringToObject(se, "id", "</s>");
    cJSON_AddNumberToObject(se, "type_id", 0);
    /* pair: A </s> B </s> with B's type id 1, as T5's tokenizer.json has it (the tokenizers library
     * requires the field) */
    cJSON *pair = cJSON_AddArrayToObject(post, "pair");
    for (int k = 0; k < 2; k++) {
        cJSON_AddItemToArray(pair, cJSON_Duplicate(seq, 1));
        cJSON_AddItemToArray(pair, cJSON_Duplicate(eos, 1));
    }
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(cJSON_GetArrayItem(pair, 2), "Sequence"), "id",
                              cJSON_CreateString("B"));
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(cJSON_GetArrayItem(pair, 2), "Sequence"), "type_id",
                              cJSON_CreateNumber(1));
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(cJSON_GetArrayItem(pair, 3), "SpecialToken"), "type_id",
                              cJSON_CreateNumber(1));
    cJSON_AddItemToArray(single, seq);
    cJSON_AddItemToArray(single, eos);
    cJSON *sp = cJSON_AddObjectToObject(cJSON_AddObjectToObject(post, "special_tokens"), "</s>");
    cJSON_AddStringToObject(sp, "id", "</s>");
    cJSON_AddItemToObject(sp, "ids", cJSON_CreateIntArray((const int[]){1}, 1));
    cJSON_AddItemToObject(sp, "tokens", cJSON_CreateStringArray((const char *const[]){"</s>"}, 1));
    cJSON_AddItemToObject(root, "decoder", metaspace());
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "Unigram");
    cJSON_AddNumberToObject(model, "unk_id", 2);
    cJSON *vocab = cJSON_AddArrayToObject(model, "vocab");
    for (int i = 0; i < 3; i++) add_piece(vocab, specials[i], 0.0);
    int k = 0;
    char piece[16];
    add_piece(vocab, MARK, -2.0);
    for (int c = 0x21; c < 0x7f; c++, k++) { /* "a", then "▁a": a word-start letter is a piece of its own */
        snprintf(piece, sizeof piece, "%c", c);
        add_piece(vocab, piece, -3.0 - 0.01 * k);
        snprintf(piece, sizeof piece, MARK "%c", c);
        add_piece(vocab, piece, -3.5 - 0.01 * k);
    }
    for (int a = 'a'; a <= 'z'; a++)
        for (int b = 'a'; b <= 'z'; b += 5, k++) {
            snprintf(piece, sizeof piece, MARK "%c%c", a, b);
            add_piece(vocab, piece, -5.0 - 0.001 * k);
        }
    cJSON_AddBoolToObject(model, "byte_fallback", 0);
    return root;
}

static cJSON *tokenizer_config_json(void) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "eos_token", "</s>");
    cJSON_AddNumberToObject(o, "model_max_length", 512);
    cJSON_AddStringToObject(o, "pad_token", "<pad>");
    cJSON_AddStringToObject(o, "tokenizer_class", "T5TokenizerFast");
    cJSON_AddStringToObject(o, "unk_token", "<unk>");
    return o;
}

sdc_status sdc_mk_write_t5_tokenizer(const char *dir, const sdc_logger *log) {
    sdc_status st = sdc_mk_write_json(dir, "tokenizer.json", tokenizer_json(), log);
    if (st == SDC_OK) st = sdc_mk_write_json(dir, "tokenizer_config.json", tokenizer_config_json(), log);
    return st;
}
