#include "io/atomic_file.h"

#include "io/path_check.h"

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

/* The final path may be absent or a regular file; anything else (a device, FIFO, folder, symlink) would
 * be replaced by the rename, so it is refused. Symlinks are refused rather than followed: writing
 * through one would let whoever controls the link choose which file is replaced. */
static sdc_status check_target(const char *path, const char *what, const sdc_logger *log) {
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) return SDC_OK;
        SDC_LOGE(log, "%s: cannot write %s: %s", what, path, strerror(errno));
        return SDC_ERR_IO;
    }
    if (S_ISREG(st.st_mode)) return SDC_OK;
    const char *kind = sdc_mode_kind(st.st_mode);
    SDC_LOGE(log, "%s: refusing to replace %s: it is %s (only a regular file or a new name is written)", what, path,
             kind);
    return SDC_ERR_IO;
}

sdc_status sdc_atomic_check_target(const char *path, const char *what, const sdc_logger *log) {
    return check_target(path, what, log);
}

sdc_status sdc_atomic_open(sdc_atomic_file *af, const char *path, const char *what, const sdc_logger *log) {
    static const char suffix[] = ".tmp-XXXXXX";
    memset(af, 0, sizeof *af);
    sdc_status cst = check_target(path, what, log);
    if (cst != SDC_OK) return cst;
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
        SDC_LOGE(log, "%s: write error on %s%s%s", what, af->tmp_path, cerr ? ": " : "", cerr ? strerror(errno) : "");
        unlink(af->tmp_path);
        reset(af);
        return SDC_ERR_IO;
    }
    sdc_status cst = check_target(af->path, what, log); /* again: it may have changed while writing */
    if (cst != SDC_OK) {
        unlink(af->tmp_path);
        reset(af);
        return cst;
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
