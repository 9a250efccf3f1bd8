#include "io/path_check.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int missing_errno(int e) { return e == ENOENT || e == ENOTDIR; }

const char *sdc_path_kind(const char *path, char *buf, size_t size) {
    struct stat st;
    if (stat(path, &st) != 0) {
        if (missing_errno(errno)) return "missing";
        if (errno == ELOOP) return "a symlink loop";
        snprintf(buf, size, "unreadable (%s)", strerror(errno));
        return buf;
    }
    return sdc_mode_kind(st.st_mode);
}

const char *sdc_mode_kind(unsigned mode) {
    if (S_ISREG(mode)) return "a regular file";
    if (S_ISLNK(mode)) return "a symbolic link";
    if (S_ISDIR(mode)) return "a folder";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

sdc_status sdc_path_need(const char *path, int want_dir, const char *fn, const char *what, const sdc_logger *log) {
    struct stat st;
    const int rc = stat(path, &st), e = errno;
    if (rc == 0 && (want_dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode))) return SDC_OK;
    if (rc != 0 && missing_errno(e)) {
        SDC_LOGE(log, "%s: missing %s %s", fn, what, path);
        return SDC_ERR_NOT_FOUND;
    }
    char buf[128];
    SDC_LOGE(log, "%s: %s %s is %s, not %s", fn, what, path, sdc_path_kind(path, buf, sizeof buf),
             want_dir ? "a folder" : "a regular file");
    return SDC_ERR_IO;
}
