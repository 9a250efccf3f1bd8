/* prompt_file.c - `sdc generate --prompt-file FILE`: one prompt per line, into a list of sdc_prompt.
 *
 *   # a comment                           (lines whose first non-blank character is '#' are skipped)
 *   a red fox in the snow                 (the prompt; seed --seed, negative --negative-prompt)
 *   seed=7 | a lighthouse at dusk         (its own seed)
 *   seed=7 | negative=blurry, dark | a cat
 *   negative= | a cat                     (no negative prompt, whatever --negative-prompt says)
 *
 * A line is zero or more options, each `seed=N` or `negative=TEXT` followed by `|`, then the prompt.
 * Options are recognised only at the start of the line, so a prompt may contain '|' and '=' freely (but
 * a negative prompt cannot contain '|'). Spaces around each part are trimmed; blank lines are skipped. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "io/checked.h"

static char *trim(char *s, char *end) {
    while (s < end && (*s == ' ' || *s == '\t')) s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t')) end--;
    *end = 0;
    return s;
}

/* One line (NUL-terminated, no newline): 1 and *q filled, 0 when it is blank or a comment, -1 after the
 * error (naming path and line). */
static int parse_line(char *line, const char *path, int lineno, const cli_generate_opts *o, sdc_prompt *q) {
    char *s = trim(line, line + strlen(line));
    if (!*s || *s == '#') return 0;
    long at = cli_utf8_invalid_at(s);
    if (at >= 0) {
        fprintf(stderr, "sdc: error: %s:%d: invalid UTF-8 at byte %ld of the line\n", path, lineno, at + 1);
        return -1;
    }
    q->prompt = NULL;
    q->negative_prompt = o->gp.negative_prompt;
    q->seed = o->gp.seed;
    int have_seed = 0, have_neg = 0;
    for (;;) {
        const int is_seed = strncmp(s, "seed=", 5) == 0, is_neg = strncmp(s, "negative=", 9) == 0;
        if (!is_seed && !is_neg) break;
        char *bar = strchr(s, '|');
        if (!bar) {
            fprintf(stderr, "sdc: error: %s:%d: '%.*s' must be followed by '|' and the prompt\n", path, lineno,
                    is_seed ? 4 : 8, s);
            return -1;
        }
        char *value = trim(s + (is_seed ? 5 : 9), bar);
        if ((is_seed && have_seed) || (is_neg && have_neg)) {
            fprintf(stderr, "sdc: error: %s:%d: %s given twice\n", path, lineno, is_seed ? "seed" : "negative");
            return -1;
        }
        if (is_seed) {
            char *end;
            errno = 0;
            long long v = strtoll(value, &end, 10);
            int64_t last;
            if (!*value || *end || v < 0 || errno == ERANGE ||
                sdc_ckd_add_i64(v, (int64_t)o->gp.batch_count - 1, &last) != 0) {
                fprintf(stderr,
                        "sdc: error: %s:%d: bad seed '%s' (an integer 0 .. 2^63 - 1, and with --batch-count %d the "
                        "last seed must fit)\n",
                        path, lineno, value, o->gp.batch_count);
                return -1;
            }
            q->seed = v;
            have_seed = 1;
        } else {
            q->negative_prompt = value;
            have_neg = 1;
        }
        s = trim(bar + 1, bar + 1 + strlen(bar + 1));
    }
    if (!*s) {
        fprintf(stderr, "sdc: error: %s:%d: no prompt after the options\n", path, lineno);
        return -1;
    }
    q->prompt = s;
    return 1;
}

int cli_prompt_file_parse(char *text, const char *path, const cli_generate_opts *o, sdc_prompt **list, int *n) {
    *list = NULL;
    *n = 0;
    int cap = 0, lineno = 0;
    for (char *line = text; line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        size_t len = strlen(line);
        if (len && line[len - 1] == '\r') line[len - 1] = 0;
        lineno++;
        sdc_prompt q;
        int rc = parse_line(line, path, lineno, o, &q);
        if (rc < 0) goto fail;
        if (rc > 0) {
            if (*n == cap) {
                cap = cap ? 2 * cap : 16;
                sdc_prompt *grown = cap <= 65536 ? realloc(*list, sizeof **list * (size_t)cap) : NULL;
                if (!grown) {
                    fprintf(stderr, "sdc: error: %s: too many prompts (at most 65536)\n", path);
                    goto fail;
                }
                *list = grown;
            }
            (*list)[(*n)++] = q;
        }
        line = nl ? nl + 1 : NULL;
    }
    if (*n == 0) {
        fprintf(stderr, "sdc: error: %s has no prompt (only blank lines and # comments)\n", path);
        goto fail;
    }
    return 0;
fail:
    free(*list);
    *list = NULL;
    *n = 0;
    return -1;
}
