/* sdc.h - the one public header of libsdc, Stable Diffusion in C.
 *
 * Errors come in three tiers:
 *   - what a user can cause (bad file, missing model part, out of memory) returns an sdc_status;
 *     sdc_status_str() names it and the log callback carries the details;
 *   - constructors return NULL and log the reason;
 *   - programmer bugs (wrong shapes between internal ops) are asserts.
 * The library never calls exit() and never prints: all text goes through the log callback of the
 * object that produced it. Callbacks are per object, never global.
 */
#ifndef SDC_H
#define SDC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sdc_status {
    SDC_OK = 0,
    SDC_ERR_INVALID_ARG,  /* a parameter is out of range or malformed */
    SDC_ERR_IO,           /* a file could not be opened, read or written */
    SDC_ERR_FORMAT,       /* a file is not what it claims to be (corrupt header, bad JSON, ...) */
    SDC_ERR_NOT_FOUND,    /* a tensor, config key, file or component is missing */
    SDC_ERR_UNSUPPORTED,  /* valid input that sdc does not handle (architecture, dtype) */
    SDC_ERR_OOM,          /* an allocation failed or would exceed the budget */
    SDC_ERR_BACKEND,      /* the compute backend failed */
    SDC_ERR_CANCELLED,    /* the progress callback asked to stop */
    SDC_STATUS_COUNT
} sdc_status;

/* Short English name of a status; never NULL. */
const char *sdc_status_str(sdc_status status);

typedef enum sdc_log_level {
    SDC_LOG_DEBUG = 0,
    SDC_LOG_INFO,
    SDC_LOG_WARN,
    SDC_LOG_ERROR,
    SDC_LOG_LEVEL_COUNT
} sdc_log_level;

/* Receives one line (no trailing newline). Called on the thread that called into libsdc. */
typedef void (*sdc_log_fn)(sdc_log_level level, const char *msg, void *user);

#ifdef __cplusplus
}
#endif
#endif /* SDC_H */
