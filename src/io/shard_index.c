/* shard_index.c - see shard_index.h. */
#include "io/shard_index.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "io/config.h"

void sdc_shard_list_free(char **files, int n_files) {
    for (int i = 0; i < n_files; i++) free(files[i]);
    free(files);
}

/* The folder part of path ("." when it has none), malloc'd. */
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    const size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

sdc_status sdc_shard_list(const char *path, const sdc_logger *log, char ***files, int *n_files) {
    *files = NULL;
    *n_files = 0;
    cJSON *root = NULL;
    sdc_status st = sdc_json_load(path, log, &root);
    if (st != SDC_OK) return st;
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    const int n_map = cJSON_IsObject(map) ? cJSON_GetArraySize(map) : 0;
    char *dir = dir_of(path);
    char **names = n_map > 0 ? calloc((size_t)n_map, sizeof *names) : NULL;
    int n = 0;
    if (n_map == 0) {
        SDC_LOGE(log, "%s: no weight_map (or an empty one) in a shard index", path);
        st = SDC_ERR_FORMAT;
    } else if (!dir || !names) {
        st = SDC_ERR_OOM;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, map) {
        if (st != SDC_OK) break;
        const char *shard = cJSON_IsString(e) ? e->valuestring : NULL;
        if (!shard || !*shard || strchr(shard, '/') || !strcmp(shard, ".") || !strcmp(shard, "..")) {
            SDC_LOGE(log, "%s: weight_map[\"%s\"] is not a file name in the index's folder", path, e->string);
            st = SDC_ERR_FORMAT;
            break;
        }
        int seen = 0;
        for (int i = 0; i < n && !seen; i++) seen = strcmp(strrchr(names[i], '/') + 1, shard) == 0;
        if (!seen && !(names[n++] = sdc_path_join(dir, shard))) st = SDC_ERR_OOM;
    }
    free(dir);
    cJSON_Delete(root);
    if (st != SDC_OK) {
        sdc_shard_list_free(names, n);
        return st;
    }
    *files = names;
    *n_files = n;
    return SDC_OK;
}
