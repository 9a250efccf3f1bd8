#include "io/atomic_file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void reset(sdc_atomic_file *af) {
    free(af->path);
    free(af->tmp_path);
    af->f = NULL;
    af->path = NULL;
    af->tmp_path = NULL;
}

sdc_status sdc_atomic_open(sdc_atomic_file *af, const char *path, const char *what, const sdc_logger *log) {
    static const char suffix[] = ".tmp-XXXXXX";
    memset(af, 0, sizeof *af);
    size_t n = strlen(path);
    af->path = malloc(n + 1);
    af->tmp_path = malloc(n + sizeof suffix);
    if (!af->path || !af->tmp_path) {
        reset(af);
        SDC_LOGE(log, "%s: out of memory", what);
        return SDC_ERR_OOM;
    }
    memcpy(af->path, path, n + 1);
    memcpy(af->tmp_path, path, n);
    memcpy(af->tmp_path + n, suffix, sizeof suffix);
    int fd = mkstemp(af->tmp_path);
    if (fd < 0) {
        SDC_LOGE(log, "%s: cannot create %s: %s", what, af->tmp_path, strerror(errno));
        reset(af);
        return SDC_ERR_IO;
    }
    if (fchmod(fd, 0644) != 0 || !(af->f = fdopen(fd, "wb"))) {
        SDC_LOGE(log, "%s: cannot open %s: %s", what, af->tmp_path, strerror(errno));
        close(fd);
        unlink(af->tmp_path);
        reset(af);
        return SDC_ERR_IO;
    }
    return SDC_OK;
}

sdc_status sdc_atomic_commit(sdc_atomic_file *af, const char *what, const sdc_logger *log) {
    int werr = ferror(af->f);
    int cerr = fclose(af->f);
    af->f = NULL;
    if (werr || cerr != 0) {
        SDC_LOGE(log, "%s: write error on %s%s%s", what, af->tmp_path, cerr ? ": " : "",
                 cerr ? strerror(errno) : "");
        unlink(af->tmp_path);
        reset(af);
        return SDC_ERR_IO;
    }
    if (rename(af->tmp_path, af->path) != 0) {
        SDC_LOGE(log, "%s: cannot rename %s to %s: %s", what, af->tmp_path, af->path, strerror(errno));
        unlink(af->tmp_path);
        reset(af);
        return SDC_ERR_IO;
    }
    reset(af);
    return SDC_OK;
}

void sdc_atomic_abort(sdc_atomic_file *af) {
    if (af->f) fclose(af->f);
    if (af->tmp_path) unlink(af->tmp_path);
    reset(af);
}
