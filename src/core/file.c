#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What a path that is not a regular file is, for the error message. */
static const char *file_kind(mode_t m) {
    return S_ISDIR(m) ? "a directory"
        : S_ISFIFO(m) ? "a FIFO"
        : S_ISCHR(m)  ? "a character device"
        : S_ISBLK(m)  ? "a block device"
        : S_ISSOCK(m) ? "a socket"
                      : "not a regular file";
}

sdc_status sdc_read_file(const char *path, const sdc_logger *log, char **out, size_t *len) {
    *out = NULL;
    *len = 0;
    /* O_NONBLOCK: opening a FIFO with no writer must not block; anything but a regular file is
     * refused below, before a byte is read */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        SDC_LOGE(log, "read_file: cannot open %s: %s", path, strerror(e));
        return e == ENOENT ? SDC_ERR_NOT_FOUND : SDC_ERR_IO;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        SDC_LOGE(log, "read_file: cannot stat %s: %s", path, strerror(e));
        close(fd);
        return SDC_ERR_IO;
    }
    if (!S_ISREG(sb.st_mode)) {
        SDC_LOGE(log, "read_file: %s is %s, not a regular file", path, file_kind(sb.st_mode));
        close(fd);
        return SDC_ERR_IO;
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        close(fd);
        SDC_LOGE(log, "read_file: cannot open %s: %s", path, strerror(e));
        return e == ENOMEM ? SDC_ERR_OOM : SDC_ERR_IO;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int err = ferror(f);
    fclose(f);
    if (!buf || err) {
        free(buf);
        SDC_LOGE(log, "read_file: cannot read %s", path);
        return buf ? SDC_ERR_IO : SDC_ERR_OOM;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return SDC_OK;
}

int sdc_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int sdc_dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *sdc_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}
