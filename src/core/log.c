#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const status_names[] = {
    [SDC_OK] = "ok",
    [SDC_ERR_INVALID_ARG] = "invalid argument",
    [SDC_ERR_IO] = "I/O error",
    [SDC_ERR_FORMAT] = "bad file format",
    [SDC_ERR_NOT_FOUND] = "not found",
    [SDC_ERR_UNSUPPORTED] = "unsupported",
    [SDC_ERR_OOM] = "out of memory",
    [SDC_ERR_BACKEND] = "backend failure",
    [SDC_ERR_CANCELLED] = "cancelled",
    [SDC_ERR_NONFINITE] = "non-finite values (NaN or Inf)",
};
_Static_assert(sizeof(status_names) / sizeof(status_names[0]) == SDC_STATUS_COUNT, "status names");

const char *sdc_status_str(sdc_status status) {
    if ((unsigned)status >= SDC_STATUS_COUNT) return "unknown status";
    return status_names[status];
}

void sdc_log(const sdc_logger *lg, sdc_log_level level, const char *fmt, ...) {
    if (!lg || !lg->fn || level < lg->min_level) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    lg->fn(level, buf, lg->user);
}

void sdc_log_stderr(sdc_log_level level, const char *msg, void *user) {
    (void)user;
    static const char *const tag[] = {"debug", "info", "warn", "error"};
    _Static_assert(sizeof(tag) / sizeof(tag[0]) == SDC_LOG_LEVEL_COUNT, "level tags");
    fprintf(stderr, "[%s] %s\n", tag[level < SDC_LOG_LEVEL_COUNT ? level : SDC_LOG_ERROR], msg);
}
