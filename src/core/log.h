/* log.h - per-object logging. Every library object carries an sdc_logger; nothing logs globally. */
#ifndef SDC_CORE_LOG_H
#define SDC_CORE_LOG_H

#include "sdc.h"

typedef struct sdc_logger {
    sdc_log_fn fn; /* NULL: messages are dropped */
    void *user;
    sdc_log_level min_level;
} sdc_logger;

/* printf-style; lg may be NULL. Messages are one line: "function: what happened". */
void sdc_log(const sdc_logger *lg, sdc_log_level level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define SDC_LOGE(lg, ...) sdc_log((lg), SDC_LOG_ERROR, __VA_ARGS__)
#define SDC_LOGW(lg, ...) sdc_log((lg), SDC_LOG_WARN, __VA_ARGS__)
#define SDC_LOGI(lg, ...) sdc_log((lg), SDC_LOG_INFO, __VA_ARGS__)
#define SDC_LOGD(lg, ...) sdc_log((lg), SDC_LOG_DEBUG, __VA_ARGS__)

/* A log callback that writes "[level] msg" to stderr. For the CLI, tests and examples; the library
 * itself never installs it. */
void sdc_log_stderr(sdc_log_level level, const char *msg, void *user);

#endif
