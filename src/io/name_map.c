/* name_map.c - renaming tensors to their canonical diffusers names while a file is indexed. */
#include "io/name_map.h"

#include <stdio.h>
#include <string.h>

static int starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

const char *sdc_name_map_text_encoder(const char *name, char *out, size_t size, void *user) {
    (void)user;
    /* the roots of CLIPTextTransformer; anything else (e.g. text_projection) is left alone */
    static const char *const roots[] = {"embeddings.", "encoder.", "final_layer_norm."};
    const char *res = name;
    for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
        if (starts_with(name, roots[i])) {
            int n = snprintf(out, size, "text_model.%s", name);
            if (n > 0 && (size_t)n < size) res = out;
            break;
        }
    }
    if (strcmp(res, "text_model.embeddings.position_ids") == 0) return NULL;
    return res;
}

const char *sdc_name_map_vae(const char *name, char *out, size_t size, void *user) {
    (void)user;
    static const char *const from[] = {"query", "key", "value", "proj_attn"};
    static const char *const to[] = {"to_q", "to_k", "to_v", "to_out.0"};
    const char *anchor = "mid_block.attentions.";
    const char *p = strstr(name, anchor);
    if (!p || (p != name && p[-1] != '.')) return name;
    const char *seg = p + strlen(anchor);
    while (*seg >= '0' && *seg <= '9') seg++;
    if (seg == p + strlen(anchor) || *seg != '.') return name;
    seg++; /* the projection's segment: "query" in "...attentions.0.query.weight" */
    size_t len = strcspn(seg, ".");
    for (size_t i = 0; i < sizeof from / sizeof from[0]; i++) {
        if (len == strlen(from[i]) && strncmp(seg, from[i], len) == 0) {
            int n = snprintf(out, size, "%.*s%s%s", (int)(seg - name), name, to[i], seg + len);
            return n > 0 && (size_t)n < size ? out : name;
        }
    }
    return name;
}
