/* config.c - typed getters over the JSON config files of a diffusers model.
 *
 * A NULL obj behaves as an empty object, so an optional config that is absent gives every *_or
 * getter its default. A JSON null counts as absent. */
#include "io/config.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* A strict JSON checker that allocates nothing, to tell why cJSON returned NULL: cJSON reports an
 * allocation failure and a syntax error alike. It accepts only what cJSON surely parses given memory
 * (RFC 8259 with cJSON's limits: nesting below CJSON_NESTING_LIMIT, numbers shorter than its 64-byte
 * number buffer, \u escapes that are valid UTF-16), so "valid here, NULL from cJSON" means out of
 * memory; anything it doubts counts as a syntax error, as before. */
typedef struct json_scan {
    const char *p, *end;
    int depth;
} json_scan;

static void scan_ws(json_scan *s) {
    while (s->p < s->end && is_space(*s->p)) s->p++;
}

static int scan_lit(json_scan *s, const char *lit) {
    size_t n = strlen(lit);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n)) return 0;
    s->p += n;
    return 1;
}

static int scan_digits(json_scan *s) {
    const char *a = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
    return s->p > a;
}

static int scan_number(json_scan *s) {
    const char *a = s->p;
    if (s->p < s->end && *s->p == '-') s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (!scan_digits(s))
        return 0;
    if (s->p < s->end && *s->p == '.' && (s->p++, !scan_digits(s))) return 0;
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) s->p++;
        if (!scan_digits(s)) return 0;
    }
    return s->p - a < 63;
}

static int scan_hex4(json_scan *s, unsigned *u) {
    *u = 0;
    for (int i = 0; i < 4; i++, s->p++) {
        if (s->p >= s->end) return 0;
        char c = *s->p;
        int d = c >= '0' && c <= '9' ? c - '0'
            : c >= 'a' && c <= 'f'   ? c - 'a' + 10
            : c >= 'A' && c <= 'F'   ? c - 'A' + 10
                                     : -1;
        if (d < 0) return 0;
        *u = *u * 16 + (unsigned)d;
    }
    return 1;
}

static int scan_string(json_scan *s) {
    s->p++; /* the opening quote */
    while (s->p < s->end && *s->p != '"') {
        unsigned char c = (unsigned char)*s->p++;
        if (c < 0x20) return 0;
        if (c != '\\') continue;
        if (s->p >= s->end) return 0;
        char e = *s->p++;
        if (e == 'u') {
            unsigned u, lo;
            if (!scan_hex4(s, &u) || (u >= 0xDC00 && u <= 0xDFFF)) return 0;
            if (u >= 0xD800 && u <= 0xDBFF &&
                !(scan_lit(s, "\\u") && scan_hex4(s, &lo) && lo >= 0xDC00 && lo <= 0xDFFF))
                return 0;
        } else if (!strchr("\"\\/bfnrt", e) || !e) {
            return 0;
        }
    }
    if (s->p >= s->end) return 0;
    s->p++;
    return 1;
}

static int scan_value(json_scan *s) {
    scan_ws(s);
    if (s->p >= s->end) return 0;
    char c = *s->p;
    if (c == '"') return scan_string(s);
    if (c == '-' || (c >= '0' && c <= '9')) return scan_number(s);
    if (c != '{' && c != '[') return scan_lit(s, "true") || scan_lit(s, "false") || scan_lit(s, "null");
    if (++s->depth >= 1000) return 0; /* CJSON_NESTING_LIMIT */
    const char close = c == '{' ? '}' : ']';
    s->p++;
    scan_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        s->depth--;
        return 1;
    }
    for (;;) {
        if (close == '}') {
            scan_ws(s);
            if (s->p >= s->end || *s->p != '"' || !scan_string(s)) return 0;
            scan_ws(s);
            if (!scan_lit(s, ":")) return 0;
        }
        if (!scan_value(s)) return 0;
        scan_ws(s);
        if (s->p >= s->end) return 0;
        char d = *s->p++;
        if (d == close) break;
        if (d != ',') return 0;
    }
    s->depth--;
    return 1;
}

/* 1 when text[0, len) is one JSON value (with white space around it) that cJSON parses given memory. */
static int json_well_formed(const char *text, size_t len) {
    json_scan s = {text, text + len, 0};
    if (!scan_value(&s)) return 0;
    scan_ws(&s);
    return s.p == s.end;
}

sdc_status sdc_json_parse(const char *text, size_t len, const char *what, const sdc_logger *log, cJSON **out) {
    *out = NULL;
    if (!what) what = "json";
    /* a NUL-terminated copy: the parser never reads past it */
    char *buf = malloc(len + 1);
    if (!buf) {
        SDC_LOGE(log, "%s: out of memory for a copy of %zu bytes of JSON", what, len);
        return SDC_ERR_OOM;
    }
    if (len) memcpy(buf, text, len);
    buf[len] = 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    size_t pos = end ? (size_t)(end - buf) : 0;
    if (root) {
        while (pos < len && is_space(buf[pos])) pos++;
        if (pos == len) {
            free(buf);
            *out = root;
            return SDC_OK;
        }
        cJSON_Delete(root);
    } else if (json_well_formed(buf, len)) {
        SDC_LOGE(log, "%s: out of memory parsing %zu bytes of JSON", what, len);
        free(buf);
        return SDC_ERR_OOM;
    }
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos && i < len; i++) {
        if (buf[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    SDC_LOGE(log, "%s: %s at line %zu, column %zu (byte %zu of %zu)", what,
             root ? "unexpected text after the JSON value" : "not valid JSON", line, col, pos, len);
    free(buf);
    return SDC_ERR_FORMAT;
}

sdc_status sdc_json_load(const char *path, const sdc_logger *log, cJSON **out) {
    char *text;
    size_t len;
    *out = NULL;
    sdc_status st = sdc_read_file(path, log, &text, &len);
    if (st != SDC_OK) return st;
    st = sdc_json_parse(text, len, path, log, out);
    free(text);
    return st;
}

/* Looks key up. SDC_ERR_NOT_FOUND (logged when required) for an absent or null value. */
static sdc_status lookup(const cJSON *obj, const char *key, const char *what, const sdc_logger *log, int required,
                         const cJSON **out) {
    *out = NULL;
    if (obj && !cJSON_IsObject(obj)) {
        SDC_LOGE(log, "%s: looking for key '%s' in something that is not a JSON object", what, key);
        return SDC_ERR_FORMAT;
    }
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (!v || cJSON_IsNull(v)) {
        if (required) SDC_LOGE(log, "%s: missing key '%s'%s", what, key, v ? " (it is null)" : "");
        return SDC_ERR_NOT_FOUND;
    }
    *out = v;
    return SDC_OK;
}

static int to_int(const cJSON *v, int *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= INT_MIN && d <= INT_MAX) || d != floor(d)) return -1;
    *out = (int)d;
    return 0;
}

static sdc_status wrong_type(const char *what, const char *key, const char *want, const sdc_logger *log) {
    SDC_LOGE(log, "%s: key '%s' is not %s", what, key, want);
    return SDC_ERR_FORMAT;
}

#define WHAT (what ? what : "config")

static sdc_status get_int(const cJSON *obj, const char *key, const char *what, const sdc_logger *log, int required,
                          int *out) {
    const cJSON *v;
    sdc_status st = lookup(obj, key, WHAT, log, required, &v);
    if (st != SDC_OK) return st;
    return to_int(v, out) == 0 ? SDC_OK : wrong_type(WHAT, key, "an integer (in int range)", log);
}

static sdc_status get_float(const cJSON *obj, const char *key, const char *what, const sdc_logger *log, int required,
                            double *out) {
    const cJSON *v;
    sdc_status st = lookup(obj, key, WHAT, log, required, &v);
    if (st != SDC_OK) return st;
    if (!cJSON_IsNumber(v)) return wrong_type(WHAT, key, "a number", log);
    *out = v->valuedouble;
    return SDC_OK;
}

static sdc_status get_bool(const cJSON *obj, const char *key, const char *what, const sdc_logger *log, int required,
                           int *out) {
    const cJSON *v;
    sdc_status st = lookup(obj, key, WHAT, log, required, &v);
    if (st != SDC_OK) return st;
    if (!cJSON_IsBool(v)) return wrong_type(WHAT, key, "true or false", log);
    *out = cJSON_IsTrue(v);
    return SDC_OK;
}

static sdc_status get_string(const cJSON *obj, const char *key, const char *what, const sdc_logger *log, int required,
                             const char **out) {
    const cJSON *v;
    sdc_status st = lookup(obj, key, WHAT, log, required, &v);
    if (st != SDC_OK) return st;
    if (!cJSON_IsString(v)) return wrong_type(WHAT, key, "a string", log);
    *out = v->valuestring;
    return SDC_OK;
}

sdc_status sdc_cfg_int(const cJSON *obj, const char *key, const char *what, const sdc_logger *log, int *out) {
    return get_int(obj, key, what, log, 1, out);
}

sdc_status sdc_cfg_float(const cJSON *obj, const char *key, const char *what, const sdc_logger *log, double *out) {
    return get_float(obj, key, what, log, 1, out);
}

sdc_status sdc_cfg_bool(const cJSON *obj, const char *key, const char *what, const sdc_logger *log, int *out) {
    return get_bool(obj, key, what, log, 1, out);
}

sdc_status sdc_cfg_string(const cJSON *obj, const char *key, const char *what, const sdc_logger *log,
                          const char **out) {
    return get_string(obj, key, what, log, 1, out);
}

sdc_status sdc_cfg_int_list(const cJSON *obj, const char *key, const char *what, const sdc_logger *log, int *out,
                            int max, int *n) {
    const cJSON *v, *e;
    *n = 0;
    sdc_status st = lookup(obj, key, WHAT, log, 1, &v);
    if (st != SDC_OK) return st;
    if (cJSON_IsNumber(v)) {
        if (max < 1) return wrong_type(WHAT, key, "a list that fits (at most 0 values)", log);
        if (to_int(v, &out[0]) != 0) return wrong_type(WHAT, key, "an integer or a list of integers", log);
        *n = 1;
        return SDC_OK;
    }
    if (!cJSON_IsArray(v)) return wrong_type(WHAT, key, "an integer or a list of integers", log);
    int count = 0;
    cJSON_ArrayForEach(e, v) {
        if (count == max) {
            SDC_LOGE(log, "%s: key '%s' has more than %d values", WHAT, key, max);
            return SDC_ERR_FORMAT;
        }
        if (to_int(e, &out[count]) != 0) {
            SDC_LOGE(log, "%s: key '%s': entry %d is not an integer", WHAT, key, count);
            return SDC_ERR_FORMAT;
        }
        count++;
    }
    *n = count;
    return SDC_OK;
}

sdc_status sdc_cfg_string_list(const cJSON *obj, const char *key, const char *what, const sdc_logger *log,
                               const char **out, int max, int *n) {
    const cJSON *v, *e;
    *n = 0;
    sdc_status st = lookup(obj, key, WHAT, log, 1, &v);
    if (st != SDC_OK) return st;
    if (!cJSON_IsArray(v)) return wrong_type(WHAT, key, "a list of strings", log);
    int count = 0;
    cJSON_ArrayForEach(e, v) {
        if (count == max) {
            SDC_LOGE(log, "%s: key '%s' has more than %d values", WHAT, key, max);
            return SDC_ERR_FORMAT;
        }
        if (!cJSON_IsString(e)) {
            SDC_LOGE(log, "%s: key '%s': entry %d is not a string", WHAT, key, count);
            return SDC_ERR_FORMAT;
        }
        out[count++] = e->valuestring;
    }
    *n = count;
    return SDC_OK;
}

sdc_status sdc_cfg_int_or(const cJSON *obj, const char *key, int def, const char *what, const sdc_logger *log,
                          int *out) {
    sdc_status st = get_int(obj, key, what, log, 0, out);
    if (st == SDC_ERR_NOT_FOUND) *out = def;
    return st == SDC_ERR_NOT_FOUND ? SDC_OK : st;
}

sdc_status sdc_cfg_float_or(const cJSON *obj, const char *key, double def, const char *what, const sdc_logger *log,
                            double *out) {
    sdc_status st = get_float(obj, key, what, log, 0, out);
    if (st == SDC_ERR_NOT_FOUND) *out = def;
    return st == SDC_ERR_NOT_FOUND ? SDC_OK : st;
}

sdc_status sdc_cfg_bool_or(const cJSON *obj, const char *key, int def, const char *what, const sdc_logger *log,
                           int *out) {
    sdc_status st = get_bool(obj, key, what, log, 0, out);
    if (st == SDC_ERR_NOT_FOUND) *out = def;
    return st == SDC_ERR_NOT_FOUND ? SDC_OK : st;
}

sdc_status sdc_cfg_string_or(const cJSON *obj, const char *key, const char *def, const char *what,
                             const sdc_logger *log, const char **out) {
    sdc_status st = get_string(obj, key, what, log, 0, out);
    if (st == SDC_ERR_NOT_FOUND) *out = def;
    return st == SDC_ERR_NOT_FOUND ? SDC_OK : st;
}

sdc_status sdc_cfg_bound(const char *fn, const char *key, long long v, long long lo, long long hi,
                         const sdc_logger *log) {
    if (v >= lo && v <= hi) return SDC_OK;
    SDC_LOGE(log, "%s: %s = %lld is outside [%lld, %lld]%s", fn, key, v, lo, hi,
             v > hi ? " (larger than sdc handles)" : "");
    return v > hi ? SDC_ERR_UNSUPPORTED : SDC_ERR_FORMAT;
}
