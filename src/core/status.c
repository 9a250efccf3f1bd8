#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

sdc_status sdc_sticky_fail(sdc_status *sticky, const sdc_logger *lg, const char *who, sdc_status st, const char *file,
                           int line, const char *call, const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *slash = strrchr(file, '/');
    const char *name = slash ? slash + 1 : file;
    const int first = *sticky == SDC_OK;
    if (first) *sticky = st;
    sdc_log(lg, first ? SDC_LOG_ERROR : SDC_LOG_DEBUG, "%s: %s:%d: %s failed: %s%s", who, name, line, call, what,
            first ? "" : " (after an earlier error)");
    return st;
}
