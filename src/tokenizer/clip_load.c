/* clip_load.c - files -> sdc_clip_tokenizer: vocab.json + merges.txt or tokenizer.json for the BPE
 * model, then the special tokens that tokenizer_config.json and special_tokens_map.json name.
 *
 * As transformers does, every named special token (bos, eos, unk, pad) becomes an added token
 * that is matched in the text before normalisation (or after it, when its "normalized" flag is
 * set). For SD 2.x, whose pad token is "!", that makes each "!" in a prompt a token of its own. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "tokenizer/clip_internal.h"
#include "tokenizer/clip_text.h"

enum {
    SP_BOS,
    SP_EOS,
    SP_UNK,
    SP_PAD,
    SP_COUNT
};
static const char *const sp_key[SP_COUNT] = {"bos_token", "eos_token", "unk_token", "pad_token"};
static const char *const sp_default[SP_COUNT] = {"<|startoftext|>", "<|endoftext|>", "<|endoftext|>", "<|endoftext|>"};
_Static_assert(sizeof sp_key / sizeof sp_key[0] == SP_COUNT, "one key per special token");

/* A special token as the config files name it; content is malloc'd. */
typedef struct special {
    char *content;
    int normalized;
} special;

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static sdc_status parse_json_file(const char *path, const sdc_logger *log, cJSON **out) {
    char *text;
    size_t len;
    *out = NULL;
    sdc_status st = sdc_read_file(path, log, &text, &len);
    if (st != SDC_OK) return st;
    *out = cJSON_ParseWithLength(text, len);
    free(text);
    if (!*out) {
        SDC_LOGE(log, "clip_tokenizer_load: %s is not valid JSON", path);
        return SDC_ERR_FORMAT;
    }
    return SDC_OK;
}

static sdc_clip_tokenizer *tok_new(const sdc_logger *log) {
    sdc_clip_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) return NULL;
    if (log) tok->log = *log;
    tok->bpe = sdc_bpe_new();
    if (!tok->bpe) {
        free(tok);
        return NULL;
    }
    tok->bos = tok->eos = tok->pad = tok->unk = -1;
    return tok;
}

void sdc_clip_tokenizer_free(sdc_clip_tokenizer *tok) {
    if (!tok) return;
    for (size_t i = 0; i < tok->n_added; i++) {
        free(tok->added[i].text);
        free(tok->added[i].norm);
    }
    free(tok->added);
    sdc_bpe_free(tok->bpe);
    free(tok);
}

/* Adds an added token unless one with the same text exists (the first definition wins). */
static sdc_status add_token(sdc_clip_tokenizer *tok, const char *text, int32_t id, int normalized) {
    size_t len = strlen(text);
    for (size_t i = 0; i < tok->n_added; i++)
        if (tok->added[i].len == len && memcmp(tok->added[i].text, text, len) == 0) return SDC_OK;
    clip_added *a = realloc(tok->added, (tok->n_added + 1) * sizeof *a);
    if (!a) return SDC_ERR_OOM;
    tok->added = a;
    char *t = dup_n(text, len);
    if (!t) return SDC_ERR_OOM;
    a[tok->n_added++] = (clip_added){.text = t, .len = len, .id = id, .normalized = normalized};
    return SDC_OK;
}

/* The id of a token text: an added token first, then the vocabulary; -1 if neither has it. */
static int32_t token_id(const sdc_clip_tokenizer *tok, const char *text) {
    size_t len = strlen(text);
    for (size_t i = 0; i < tok->n_added; i++)
        if (tok->added[i].len == len && memcmp(tok->added[i].text, text, len) == 0) return tok->added[i].id;
    return sdc_bpe_token_id(tok->bpe, text, len);
}

static sdc_status read_vocab(sdc_clip_tokenizer *tok, const cJSON *vocab, const char *path) {
    if (!cJSON_IsObject(vocab)) {
        SDC_LOGE(&tok->log, "clip_tokenizer_load: %s: the vocabulary is not a JSON object", path);
        return SDC_ERR_FORMAT;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        double v = e->valuedouble;
        if (!cJSON_IsNumber(e) || !(v >= 0 && v < INT32_MAX) || (double)(int32_t)v != v) {
            SDC_LOGE(&tok->log, "clip_tokenizer_load: %s: token '%s' has no valid id", path, e->string);
            return SDC_ERR_FORMAT;
        }
        sdc_status st = sdc_bpe_set_token(tok->bpe, e->string, strlen(e->string), (int32_t)v);
        if (st != SDC_OK) return st;
    }
    if (sdc_bpe_vocab_size(tok->bpe) == 0) {
        SDC_LOGE(&tok->log, "clip_tokenizer_load: %s: empty vocabulary", path);
        return SDC_ERR_FORMAT;
    }
    return SDC_OK;
}

static sdc_status add_merge(sdc_clip_tokenizer *tok, const char *a, size_t alen, const char *b, size_t blen,
                            const char *path) {
    sdc_status st = sdc_bpe_add_merge(tok->bpe, a, alen, b, blen);
    if (st == SDC_ERR_NOT_FOUND) {
        SDC_LOGE(&tok->log, "clip_tokenizer_load: %s: merge %zu '%.*s %.*s' uses a token missing from the vocabulary",
                 path, sdc_bpe_merge_count(tok->bpe) + 1, (int)alen, a, (int)blen, b);
        return SDC_ERR_FORMAT;
    }
    return st;
}

/* merges.txt: one "a b" per line; lines starting with "#version" and empty lines are skipped. */
static sdc_status read_merges_txt(sdc_clip_tokenizer *tok, const char *text, size_t len, const char *path) {
    const char *p = text, *end = text + len;
    for (size_t line = 1; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *q = nl ? nl : end;
        if (q > p && q[-1] == '\r') q--;
        size_t n = (size_t)(q - p);
        if (n > 0 && !(n >= 8 && memcmp(p, "#version", 8) == 0)) {
            const char *sp = memchr(p, ' ', n);
            if (!sp) {
                SDC_LOGE(&tok->log, "clip_tokenizer_load: %s: line %zu is not 'a b'", path, line);
                return SDC_ERR_FORMAT;
            }
            sdc_status st = add_merge(tok, p, (size_t)(sp - p), sp + 1, (size_t)(q - sp - 1), path);
            if (st != SDC_OK) return st;
        }
        p = nl ? nl + 1 : end;
    }
    return SDC_OK;
}

/* tokenizer.json merges: "a b" strings or ["a", "b"] pairs. */
static sdc_status read_merges_json(sdc_clip_tokenizer *tok, const cJSON *merges, const char *path) {
    if (!cJSON_IsArray(merges)) {
        SDC_LOGE(&tok->log, "clip_tokenizer_load: %s: model.merges is not an array", path);
        return SDC_ERR_FORMAT;
    }
    const cJSON *m;
    cJSON_ArrayForEach(m, merges) {
        const char *a = NULL, *b = NULL, *sp;
        size_t alen = 0;
        if (cJSON_IsString(m) && (sp = strchr(m->valuestring, ' '))) {
            a = m->valuestring;
            alen = (size_t)(sp - a);
            b = sp + 1;
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
                   cJSON_IsString(m->child->next)) {
            a = m->child->valuestring;
            alen = strlen(a);
            b = m->child->next->valuestring;
        }
        if (!a) {
            SDC_LOGE(&tok->log, "clip_tokenizer_load: %s: merge %zu is neither \"a b\" nor [a, b]", path,
                     sdc_bpe_merge_count(tok->bpe) + 1);
            return SDC_ERR_FORMAT;
        }
        sdc_status st = add_merge(tok, a, alen, b, strlen(b), path);
        if (st != SDC_OK) return st;
    }
    return SDC_OK;
}

static sdc_status read_vocab_merges(sdc_clip_tokenizer *tok, const char *vocab_json, const char *merges_txt) {
    cJSON *vocab;
    sdc_status st = parse_json_file(vocab_json, &tok->log, &vocab);
    if (st != SDC_OK) return st;
    st = read_vocab(tok, vocab, vocab_json);
    cJSON_Delete(vocab);
    if (st != SDC_OK) return st;
    char *text;
    size_t len;
    st = sdc_read_file(merges_txt, &tok->log, &text, &len);
    if (st != SDC_OK) return st;
    st = read_merges_txt(tok, text, len, merges_txt);
    free(text);
    return st;
}

/* tokenizer.json: model.{vocab, merges, unk_token, end_of_word_suffix} and added_tokens.
 * *suffix and *unk (malloc'd, or NULL) return the model's word-end suffix and unknown token. */
static sdc_status read_tokenizer_json(sdc_clip_tokenizer *tok, const char *path, char **suffix, char **unk) {
    cJSON *root;
    sdc_status st = parse_json_file(path, &tok->log, &root);
    if (st != SDC_OK) return st;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(model, "continuing_subword_prefix");
    const cJSON *sfx = cJSON_GetObjectItemCaseSensitive(model, "end_of_word_suffix");
    const cJSON *unk_tok = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    if (!cJSON_IsObject(model)) {
        SDC_LOGE(&tok->log, "clip_tokenizer_load: %s has no model object", path);
        st = SDC_ERR_FORMAT;
    } else if ((type && !(cJSON_IsString(type) && strcmp(type->valuestring, "BPE") == 0)) ||
               (cJSON_IsString(prefix) && prefix->valuestring[0])) {
        SDC_LOGE(&tok->log, "clip_tokenizer_load: %s: only BPE models without a subword prefix are supported", path);
        st = SDC_ERR_UNSUPPORTED;
    }
    if (st == SDC_OK) st = read_vocab(tok, cJSON_GetObjectItemCaseSensitive(model, "vocab"), path);
    if (st == SDC_OK) st = read_merges_json(tok, cJSON_GetObjectItemCaseSensitive(model, "merges"), path);
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), *a;
    cJSON_ArrayForEach(a, added) {
        if (st != SDC_OK) break;
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(a, "id");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(a, "content");
        const cJSON *norm = cJSON_GetObjectItemCaseSensitive(a, "normalized");
        if (!cJSON_IsNumber(id) || !(id->valuedouble >= 0 && id->valuedouble < INT32_MAX) || !cJSON_IsString(content)) {
            SDC_LOGE(&tok->log, "clip_tokenizer_load: %s: an added token has no id or content", path);
            st = SDC_ERR_FORMAT;
            break;
        }
        st = add_token(tok, content->valuestring, (int32_t)id->valuedouble, cJSON_IsTrue(norm));
    }
    if (st == SDC_OK) {
        *suffix =
            dup_n(cJSON_IsString(sfx) ? sfx->valuestring : "", cJSON_IsString(sfx) ? strlen(sfx->valuestring) : 0);
        if (cJSON_IsString(unk_tok)) *unk = dup_n(unk_tok->valuestring, strlen(unk_tok->valuestring));
        if (!*suffix || (cJSON_IsString(unk_tok) && !*unk)) st = SDC_ERR_OOM;
    }
    cJSON_Delete(root);
    return st;
}

/* A config entry "x_token": "text" or {"content": "text", "normalized": bool}; others are ignored. */
static sdc_status read_special(const cJSON *item, special *sp) {
    const cJSON *content = cJSON_IsObject(item) ? cJSON_GetObjectItemCaseSensitive(item, "content") : item;
    if (!cJSON_IsString(content)) return SDC_OK;
    char *c = dup_n(content->valuestring, strlen(content->valuestring));
    if (!c) return SDC_ERR_OOM;
    free(sp->content);
    sp->content = c;
    sp->normalized = cJSON_IsObject(item) && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(item, "normalized"));
    return SDC_OK;
}

/* dir/name, when present: its special-token names override sp; with decoder set, its
 * "added_tokens_decoder" entries become added tokens. */
static sdc_status read_config(sdc_clip_tokenizer *tok, const char *dir, const char *name, special *sp, int decoder) {
    char *path = sdc_path_join(dir, name);
    if (!path) return SDC_ERR_OOM;
    cJSON *root = NULL;
    sdc_status st = sdc_file_exists(path) ? parse_json_file(path, &tok->log, &root) : SDC_OK;
    for (int i = 0; root && st == SDC_OK && i < SP_COUNT; i++)
        st = read_special(cJSON_GetObjectItemCaseSensitive(root, sp_key[i]), &sp[i]);
    const cJSON *dec = decoder && root ? cJSON_GetObjectItemCaseSensitive(root, "added_tokens_decoder") : NULL, *e;
    if (!cJSON_IsObject(dec)) dec = NULL;
    cJSON_ArrayForEach(e, dec) {
        if (st != SDC_OK) break;
        char *endp;
        long id = strtol(e->string, &endp, 10);
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (*endp || id < 0 || id >= INT32_MAX || !cJSON_IsString(content)) {
            SDC_LOGE(&tok->log, "clip_tokenizer_load: %s: bad added_tokens_decoder entry '%s'", path, e->string);
            st = SDC_ERR_FORMAT;
            break;
        }
        st = add_token(tok, content->valuestring, (int32_t)id,
                       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "normalized")));
    }
    cJSON_Delete(root);
    free(path);
    return st;
}

/* Registers the special tokens, resolves their ids, prepares the BPE word ends and the normalised
 * forms of the added tokens. */
static sdc_status finish(sdc_clip_tokenizer *tok, const special *sp, const char *suffix) {
    int32_t id[SP_COUNT];
    for (int i = 0; i < SP_COUNT; i++) {
        id[i] = token_id(tok, sp[i].content);
        if (id[i] < 0 && i != SP_UNK) {
            SDC_LOGE(&tok->log, "clip_tokenizer_load: the %s '%s' is not in the vocabulary", sp_key[i], sp[i].content);
            return i == SP_PAD ? SDC_ERR_NOT_FOUND : SDC_ERR_FORMAT;
        }
        sdc_status st = id[i] < 0 ? SDC_OK : add_token(tok, sp[i].content, id[i], sp[i].normalized);
        if (st != SDC_OK) return st;
    }
    tok->bos = id[SP_BOS];
    tok->eos = id[SP_EOS];
    tok->unk = id[SP_UNK];
    tok->pad = id[SP_PAD];
    tok->n_vocab = sdc_bpe_max_id(tok->bpe) + 1;
    for (size_t i = 0; i < tok->n_added; i++)
        if (tok->added[i].id >= tok->n_vocab) tok->n_vocab = tok->added[i].id + 1;
    sdc_status st = sdc_bpe_set_word_end(tok->bpe, suffix, tok->unk);
    for (size_t i = 0; st == SDC_OK && i < tok->n_added; i++) {
        clip_added *a = &tok->added[i];
        if (!a->normalized) continue;
        char *clean = malloc(3 * a->len + 1);
        if (!clean) return SDC_ERR_OOM;
        st = sdc_clip_normalize(clean, sdc_utf8_sanitize(a->text, a->len, clean), &a->norm, &a->norm_len);
        free(clean);
        tok->n_normalized++;
    }
    SDC_LOGD(&tok->log, "clip_tokenizer_load: %zu tokens, %zu merges, %zu added tokens, pad %d",
             sdc_bpe_vocab_size(tok->bpe), sdc_bpe_merge_count(tok->bpe), tok->n_added, (int)tok->pad);
    return st;
}

/* The common tail of the loaders: specials from dir's config files (dir may be NULL), finish. */
static sdc_status complete(sdc_clip_tokenizer *tok, sdc_status st, const char *dir, const char *suffix, const char *unk,
                           sdc_clip_tokenizer **out) {
    special sp[SP_COUNT] = {{0}};
    for (int i = 0; i < SP_COUNT && st == SDC_OK; i++) {
        const char *def = i == SP_UNK && unk ? unk : sp_default[i];
        if (!(sp[i].content = dup_n(def, strlen(def)))) st = SDC_ERR_OOM;
    }
    if (st == SDC_OK && dir) st = read_config(tok, dir, "tokenizer_config.json", sp, 1);
    if (st == SDC_OK && dir) st = read_config(tok, dir, "special_tokens_map.json", sp, 0);
    if (st == SDC_OK) st = finish(tok, sp, suffix);
    for (int i = 0; i < SP_COUNT; i++) free(sp[i].content);
    if (st != SDC_OK) {
        if (st == SDC_ERR_OOM) SDC_LOGE(&tok->log, "clip_tokenizer_load: out of memory");
        sdc_clip_tokenizer_free(tok);
        tok = NULL;
    }
    *out = tok;
    return st;
}

sdc_status sdc_clip_tokenizer_load_files(const char *vocab_json, const char *merges_txt, const sdc_logger *log,
                                         sdc_clip_tokenizer **out) {
    *out = NULL;
    sdc_clip_tokenizer *tok = tok_new(log);
    if (!tok) return SDC_ERR_OOM;
    return complete(tok, read_vocab_merges(tok, vocab_json, merges_txt), NULL, "</w>", NULL, out);
}

sdc_status sdc_clip_tokenizer_load_json(const char *tokenizer_json, const sdc_logger *log, sdc_clip_tokenizer **out) {
    *out = NULL;
    sdc_clip_tokenizer *tok = tok_new(log);
    if (!tok) return SDC_ERR_OOM;
    char *suffix = NULL, *unk = NULL;
    sdc_status st = read_tokenizer_json(tok, tokenizer_json, &suffix, &unk);
    st = complete(tok, st, NULL, suffix, unk, out);
    free(suffix);
    free(unk);
    return st;
}

sdc_status sdc_clip_tokenizer_load(const char *dir, const sdc_logger *log, sdc_clip_tokenizer **out) {
    *out = NULL;
    char *vocab = sdc_path_join(dir, "vocab.json"), *merges = sdc_path_join(dir, "merges.txt");
    char *json = sdc_path_join(dir, "tokenizer.json"), *suffix = NULL, *unk = NULL;
    sdc_clip_tokenizer *tok = tok_new(log);
    sdc_status st = SDC_OK;
    if (!vocab || !merges || !json || !tok) {
        st = SDC_ERR_OOM;
    } else if (sdc_file_exists(vocab) && sdc_file_exists(merges)) {
        st = read_vocab_merges(tok, vocab, merges);
        if (!(suffix = dup_n("</w>", 4))) st = SDC_ERR_OOM;
    } else if (sdc_file_exists(json)) {
        st = read_tokenizer_json(tok, json, &suffix, &unk);
    } else {
        SDC_LOGE(log, "clip_tokenizer_load: %s holds neither vocab.json + merges.txt nor tokenizer.json", dir);
        st = SDC_ERR_NOT_FOUND;
    }
    if (tok) st = complete(tok, st, dir, suffix ? suffix : "", unk, out);
    free(vocab);
    free(merges);
    free(json);
    free(suffix);
    free(unk);
    return st;
}

sdc_status sdc_clip_tokenizer_set_pad(sdc_clip_tokenizer *tok, const char *pad_token) {
    int32_t id = token_id(tok, pad_token);
    if (id < 0) {
        SDC_LOGE(&tok->log, "clip_tokenizer_set_pad: '%s' is not in the vocabulary", pad_token);
        return SDC_ERR_NOT_FOUND;
    }
    tok->pad = id;
    return SDC_OK;
}
