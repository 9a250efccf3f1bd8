/* unigram_load.c - tokenizer.json -> sdc_unigram: the Unigram model (vocab of [piece, score], unk_id),
 * added tokens, normalizer, pre-tokenizer and post-processor (see unigram.h for what each does and
 * which types are read). Everything read is bounded (unigram_internal.h); anything else is refused. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "tokenizer/clip_text.h"
#include "tokenizer/unigram_internal.h"

#define FAIL(st, ...)                     \
    do {                                  \
        SDC_LOGE(&tok->log, __VA_ARGS__); \
        return (st);                      \
    } while (0)

void sdc_unigram_free(sdc_unigram *tok) {
    if (!tok) return;
    for (int k = 0; k < tok->n_norm; k++) {
        free(tok->norm[k].pat);
        free(tok->norm[k].with);
    }
    for (size_t i = 0; i < tok->n_added; i++) free(tok->added[i].text);
    free(tok->added);
    free(tok->score);
    sdc_byte_trie_free(tok->trie);
    free(tok);
}

/* s as a malloc'd code point array (*n entries; never NULL unless out of memory). */
static uint32_t *to_cps(const char *s, size_t *n) {
    const size_t len = strlen(s);
    char *valid = malloc(3 * len + 1);
    uint32_t *cp = malloc((3 * len + 1) * sizeof *cp);
    if (!valid || !cp) {
        free(valid);
        free(cp);
        return NULL;
    }
    *n = sdc_utf8_decode(valid, sdc_utf8_sanitize(s, len, valid), cp);
    free(valid);
    return cp;
}

/* The id of a piece's exact text, or -1. */
static int32_t piece_id(const sdc_unigram *tok, const char *s) {
    int32_t node = 0;
    for (const char *p = s; *p && node >= 0; p++) node = sdc_byte_trie_child(tok->trie, node, (uint8_t)*p);
    return node >= 0 && *s ? sdc_byte_trie_value(tok->trie, node) : -1;
}

static sdc_status parse_model(sdc_unigram *tok, const cJSON *model) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "Unigram") != 0)
        FAIL(SDC_ERR_UNSUPPORTED, "unigram_load: model type %s, not Unigram",
             cJSON_IsString(type) ? type->valuestring : "(none)");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const int n = cJSON_IsArray(vocab) ? cJSON_GetArraySize(vocab) : 0;
    if (n < 1 || n > UNI_MAX_PIECES)
        FAIL(SDC_ERR_FORMAT, "unigram_load: vocab of %d pieces (want 1..%d)", n, UNI_MAX_PIECES);
    const cJSON *bf = cJSON_GetObjectItemCaseSensitive(model, "byte_fallback");
    if (cJSON_IsTrue(bf)) FAIL(SDC_ERR_UNSUPPORTED, "unigram_load: byte_fallback is not supported");
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_id");
    if (!cJSON_IsNumber(unk) || unk->valuedouble < 0 || unk->valuedouble >= n ||
        unk->valuedouble != (int)unk->valuedouble)
        FAIL(SDC_ERR_UNSUPPORTED, "unigram_load: unk_id missing or outside the vocab of %d", n);
    tok->unk = (int32_t)unk->valuedouble;
    tok->n_pieces = n;
    tok->score = malloc((size_t)n * sizeof *tok->score);
    tok->trie = sdc_byte_trie_new();
    if (!tok->score || !tok->trie) FAIL(SDC_ERR_OOM, "unigram_load: out of memory for %d pieces", n);
    double min_score = INFINITY;
    int32_t id = 0;
    for (const cJSON *e = vocab->child; e; e = e->next, id++) {
        const cJSON *p = cJSON_GetArrayItem(e, 0), *s = cJSON_GetArrayItem(e, 1);
        if (!cJSON_IsArray(e) || !cJSON_IsString(p) || !cJSON_IsNumber(s) || !isfinite(s->valuedouble))
            FAIL(SDC_ERR_FORMAT, "unigram_load: vocab entry %d is not [piece, finite score]", id);
        const size_t len = strlen(p->valuestring);
        if (len > UNI_MAX_PIECE_BYTES)
            FAIL(SDC_ERR_FORMAT, "unigram_load: piece %d has %zu bytes (at most %d)", id, len, UNI_MAX_PIECE_BYTES);
        tok->score[id] = s->valuedouble;
        if (s->valuedouble < min_score) min_score = s->valuedouble;
        if (len && sdc_byte_trie_insert(tok->trie, p->valuestring, len, id) != 0)
            FAIL(SDC_ERR_OOM, "unigram_load: out of memory for the trie");
    }
    tok->unk_score = min_score - 10.0; /* tokenizers' K_UNK_PENALTY */
    tok->n_vocab = n;
    return SDC_OK;
}

static sdc_status parse_added(sdc_unigram *tok, const cJSON *added) {
    const int n = cJSON_IsArray(added) ? cJSON_GetArraySize(added) : 0;
    if (n > UNI_MAX_ADDED) FAIL(SDC_ERR_FORMAT, "unigram_load: %d added tokens (at most %d)", n, UNI_MAX_ADDED);
    if (n == 0) return SDC_OK;
    tok->added = calloc((size_t)n, sizeof *tok->added);
    if (!tok->added) FAIL(SDC_ERR_OOM, "unigram_load: out of memory");
    for (const cJSON *a = added->child; a; a = a->next) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(a, "id"),
                    *c = cJSON_GetObjectItemCaseSensitive(a, "content");
        if (!cJSON_IsNumber(id) || !cJSON_IsString(c) || id->valuedouble < 0 ||
            id->valuedouble >= (double)tok->n_pieces + UNI_MAX_ADDED || id->valuedouble != (int32_t)id->valuedouble)
            FAIL(SDC_ERR_FORMAT, "unigram_load: an added token without a content string or a valid id");
        const size_t len = strlen(c->valuestring);
        if (len == 0 || len > UNI_MAX_PIECE_BYTES) continue; /* never matched */
        uni_added *t = &tok->added[tok->n_added];
        t->text = malloc(len + 1);
        if (!t->text) FAIL(SDC_ERR_OOM, "unigram_load: out of memory");
        memcpy(t->text, c->valuestring, len + 1);
        t->len = len;
        t->id = (int32_t)id->valuedouble;
        tok->n_added++;
        if (t->id >= tok->n_vocab) tok->n_vocab = t->id + 1;
    }
    return SDC_OK;
}

/* A Replace pattern: {"String": s} (a literal) or {"Regex": "c{n,}" | "c+"} with c one plain
 * character (the only regexes T5-style tokenizers use). */
static sdc_status parse_replace(sdc_unigram *tok, const cJSON *j, uni_norm *r) {
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(j, "pattern"),
                *with = cJSON_GetObjectItemCaseSensitive(j, "content");
    const cJSON *lit = cJSON_GetObjectItemCaseSensitive(pat, "String"),
                *re = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
    if (!cJSON_IsString(with) || (!cJSON_IsString(lit) && !cJSON_IsString(re)))
        FAIL(SDC_ERR_FORMAT, "unigram_load: Replace without a String/Regex pattern and a content string");
    r->with = to_cps(with->valuestring, &r->with_len);
    r->pat = to_cps(cJSON_IsString(lit) ? lit->valuestring : re->valuestring, &r->pat_len);
    if (!r->with || !r->pat) FAIL(SDC_ERR_OOM, "unigram_load: out of memory");
    if (cJSON_IsString(lit)) {
        if (r->pat_len == 0) FAIL(SDC_ERR_FORMAT, "unigram_load: Replace of an empty string");
        return SDC_OK;
    }
    /* the character, then "+" or "{n,}" */
    const uint32_t c = r->pat_len ? r->pat[0] : 0;
    const size_t off = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    const int plain = c && off <= strlen(re->valuestring) && !strchr(".^$*+?()[]{}|\\", (int)(c < 128 ? c : 'a'));
    const char *rest = plain ? re->valuestring + off : "";
    long lo = 0;
    if (strcmp(rest, "+") == 0) {
        lo = 1;
    } else if (rest[0] == '{') {
        char *end = NULL;
        lo = strtol(rest + 1, &end, 10);
        if (end == rest + 1 || strcmp(end, ",}") != 0 || lo > 1000000) lo = 0;
        if (end != rest + 1 && strcmp(end, ",}") == 0 && lo < 1) lo = 1;
    }
    if (lo < 1)
        FAIL(SDC_ERR_UNSUPPORTED, "unigram_load: Replace regex \"%s\" (only \"c{n,}\" and \"c+\" are supported)",
             re->valuestring);
    r->min_run = (int)lo;
    return SDC_OK;
}

static sdc_status parse_norm(sdc_unigram *tok, const cJSON *j) {
    if (!j || cJSON_IsNull(j)) return SDC_OK;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    const char *t = cJSON_IsString(type) ? type->valuestring : "";
    if (strcmp(t, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "normalizers");
        if (!cJSON_IsArray(list)) FAIL(SDC_ERR_FORMAT, "unigram_load: normalizer Sequence without a list");
        for (const cJSON *e = list->child; e; e = e->next) {
            if (cJSON_GetObjectItemCaseSensitive(e, "normalizers"))
                FAIL(SDC_ERR_UNSUPPORTED, "unigram_load: nested normalizer Sequence");
            sdc_status st = parse_norm(tok, e);
            if (st != SDC_OK) return st;
        }
        return SDC_OK;
    }
    static const struct {
        const char *name;
        uni_norm_kind kind;
    } simple[] = {{"Nmt", UNI_NORM_NMT},   {"NFKC", UNI_NORM_NFKC}, {"NFC", UNI_NORM_NFC},
                  {"NFKD", UNI_NORM_NFKD}, {"NFD", UNI_NORM_NFD},   {"Lowercase", UNI_NORM_LOWERCASE}};
    const int precompiled = strcmp(t, "Precompiled") == 0;
    if (tok->n_norm + 1 + precompiled > UNI_MAX_NORM)
        FAIL(SDC_ERR_FORMAT, "unigram_load: more than %d normalizers", UNI_MAX_NORM);
    uni_norm *r = &tok->norm[tok->n_norm];
    if (precompiled) {
        SDC_LOGI(&tok->log,
                 "unigram_load: the Precompiled normalizer is run as Nmt + NFKC (the nmt_nfkc rules it holds)");
        r[0].kind = UNI_NORM_NMT;
        r[1].kind = UNI_NORM_NFKC;
        tok->n_norm += 2;
        return SDC_OK;
    }
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++)
        if (strcmp(t, simple[i].name) == 0) {
            r->kind = simple[i].kind;
            tok->n_norm++;
            return SDC_OK;
        }
    if (strcmp(t, "Strip") == 0) {
        r->kind = UNI_NORM_STRIP;
        r->left = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "strip_left"));
        r->right = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "strip_right"));
        tok->n_norm++;
        return SDC_OK;
    }
    if (strcmp(t, "Replace") == 0) {
        r->kind = UNI_NORM_REPLACE;
        tok->n_norm++; /* counted first: its strings are freed with the tokenizer either way */
        return parse_replace(tok, j, r);
    }
    FAIL(SDC_ERR_UNSUPPORTED, "unigram_load: normalizer type \"%s\" is not supported", t);
}

static sdc_status parse_metaspace(sdc_unigram *tok, const cJSON *j) {
    const cJSON *rep = cJSON_GetObjectItemCaseSensitive(j, "replacement");
    const cJSON *scheme = cJSON_GetObjectItemCaseSensitive(j, "prepend_scheme");
    const cJSON *add = cJSON_GetObjectItemCaseSensitive(j, "add_prefix_space");
    size_t n = 0;
    uint32_t *cp = cJSON_IsString(rep) ? to_cps(rep->valuestring, &n) : NULL;
    if (n != 1 || cp[0] == ' ') {
        free(cp);
        FAIL(SDC_ERR_FORMAT, "unigram_load: Metaspace replacement is not one character other than a space");
    }
    tok->replacement = cp[0];
    free(cp);
    tok->metaspace = 1;
    tok->split = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "split"));
    if (cJSON_IsString(scheme)) {
        const char *s = scheme->valuestring;
        tok->prepend = strcmp(s, "always") == 0 ? UNI_PREPEND_ALWAYS
            : strcmp(s, "first") == 0           ? UNI_PREPEND_FIRST
                                                : UNI_PREPEND_NEVER;
        if (tok->prepend == UNI_PREPEND_NEVER && strcmp(s, "never") != 0)
            FAIL(SDC_ERR_FORMAT, "unigram_load: Metaspace prepend_scheme \"%s\"", s);
    } else {
        tok->prepend = cJSON_IsFalse(add) ? UNI_PREPEND_NEVER : UNI_PREPEND_ALWAYS;
    }
    return SDC_OK;
}

static sdc_status parse_pre(sdc_unigram *tok, const cJSON *j) {
    if (!j || cJSON_IsNull(j)) return SDC_OK;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    const char *t = cJSON_IsString(type) ? type->valuestring : "";
    if (strcmp(t, "Metaspace") == 0) return parse_metaspace(tok, j);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "pretokenizers");
    const cJSON *a = cJSON_GetArrayItem(list, 0), *b = cJSON_GetArrayItem(list, 1);
    const cJSON *ta = cJSON_GetObjectItemCaseSensitive(a, "type"), *tb = cJSON_GetObjectItemCaseSensitive(b, "type");
    if (strcmp(t, "Sequence") == 0 && cJSON_GetArraySize(list) == 2 && cJSON_IsString(ta) && cJSON_IsString(tb) &&
        strcmp(ta->valuestring, "WhitespaceSplit") == 0 && strcmp(tb->valuestring, "Metaspace") == 0) {
        tok->ws_split = 1;
        return parse_metaspace(tok, b);
    }
    FAIL(SDC_ERR_UNSUPPORTED, "unigram_load: pre-tokenizer \"%s\" (want Metaspace, or WhitespaceSplit + Metaspace)", t);
}

/* TemplateProcessing's "single" template: special tokens before and after the sequence A. */
static sdc_status parse_post(sdc_unigram *tok, const cJSON *j) {
    if (!j || cJSON_IsNull(j)) return SDC_OK;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "TemplateProcessing") != 0)
        FAIL(SDC_ERR_UNSUPPORTED, "unigram_load: post-processor \"%s\" (want TemplateProcessing)",
             cJSON_IsString(type) ? type->valuestring : "?");
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(j, "single");
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(j, "special_tokens");
    int seen_a = 0;
    for (const cJSON *e = cJSON_IsArray(single) ? single->child : NULL; e; e = e->next) {
        if (cJSON_GetObjectItemCaseSensitive(e, "Sequence")) {
            seen_a = 1;
            continue;
        }
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e, "SpecialToken"), "id");
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(specials, cJSON_IsString(sp) ? sp->valuestring : ""), "ids");
        if (!cJSON_IsArray(ids))
            FAIL(SDC_ERR_FORMAT, "unigram_load: a template item that is neither A nor a known special token");
        for (const cJSON *i = ids->child; i; i = i->next) {
            int *n = seen_a ? &tok->n_suffix : &tok->n_prefix;
            if (!cJSON_IsNumber(i) || i->valuedouble < 0 || i->valuedouble >= tok->n_vocab || *n == UNI_MAX_SPECIAL)
                FAIL(SDC_ERR_FORMAT, "unigram_load: a special token id outside the vocabulary (or more than %d)",
                     UNI_MAX_SPECIAL);
            (seen_a ? tok->suffix : tok->prefix)[(*n)++] = (int32_t)i->valuedouble;
        }
    }
    if (!seen_a) FAIL(SDC_ERR_FORMAT, "unigram_load: the single template has no sequence");
    return SDC_OK;
}

/* The pad token's id: the text `name` as an added token or a piece; -1 when neither. */
static int32_t token_id(const sdc_unigram *tok, const char *name) {
    for (size_t i = 0; i < tok->n_added; i++)
        if (strcmp(tok->added[i].text, name) == 0) return tok->added[i].id;
    return piece_id(tok, name);
}

static sdc_status parse_root(sdc_unigram *tok, const cJSON *root) {
    if (!cJSON_IsObject(root)) FAIL(SDC_ERR_FORMAT, "unigram_load: tokenizer.json is not a JSON object");
    sdc_status st = parse_model(tok, cJSON_GetObjectItemCaseSensitive(root, "model"));
    if (st == SDC_OK) st = parse_added(tok, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"));
    if (st == SDC_OK) st = parse_norm(tok, cJSON_GetObjectItemCaseSensitive(root, "normalizer"));
    if (st == SDC_OK) st = parse_pre(tok, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"));
    if (st == SDC_OK) st = parse_post(tok, cJSON_GetObjectItemCaseSensitive(root, "post_processor"));
    if (st != SDC_OK) return st;
    const int32_t pad = token_id(tok, "<pad>");
    tok->pad = pad >= 0 ? pad : 0;
    return SDC_OK;
}

sdc_status sdc_unigram_parse(const char *json, size_t len, const sdc_logger *log, sdc_unigram **out) {
    *out = NULL;
    sdc_unigram *tok = calloc(1, sizeof *tok);
    if (!tok) return SDC_ERR_OOM;
    if (log) tok->log = *log;
    cJSON *root = cJSON_ParseWithLength(json, len);
    sdc_status st = root ? parse_root(tok, root) : SDC_ERR_FORMAT;
    if (!root) SDC_LOGE(&tok->log, "unigram_load: tokenizer.json is not valid JSON");
    cJSON_Delete(root);
    if (st != SDC_OK) {
        sdc_unigram_free(tok);
        return st;
    }
    *out = tok;
    return SDC_OK;
}

/* tokenizer_config.json's pad_token: a string or {"content": ...}; NULL when it names none. */
static const char *config_pad(const cJSON *cfg) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(cfg, "pad_token");
    if (cJSON_IsObject(p)) p = cJSON_GetObjectItemCaseSensitive(p, "content");
    return cJSON_IsString(p) ? p->valuestring : NULL;
}

sdc_status sdc_unigram_load(const char *dir, const sdc_logger *log, sdc_unigram **out) {
    *out = NULL;
    char *path = sdc_path_join(dir, "tokenizer.json"), *cfg_path = sdc_path_join(dir, "tokenizer_config.json");
    char *text = NULL;
    size_t len = 0;
    sdc_status st = path && cfg_path ? sdc_read_file(path, log, &text, &len) : SDC_ERR_OOM;
    if (st == SDC_OK) st = sdc_unigram_parse(text, len, log, out);
    free(text);
    text = NULL;
    if (st == SDC_OK && sdc_file_exists(cfg_path) && sdc_read_file(cfg_path, log, &text, &len) == SDC_OK) {
        cJSON *cfg = cJSON_ParseWithLength(text, len);
        const char *name = config_pad(cfg);
        const int32_t id = name ? token_id(*out, name) : -1;
        if (id >= 0) (*out)->pad = id;
        if (name && id < 0)
            SDC_LOGW(&(*out)->log, "unigram_load: pad_token \"%s\" is not a token; pad stays %d", name, (*out)->pad);
        cJSON_Delete(cfg);
    }
    free(text);
    free(path);
    free(cfg_path);
    return st;
}
