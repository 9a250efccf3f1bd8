/* status.h - sticky statuses: an object that runs many operations without returning a status from each
 * (a backend's ops) keeps the first error, logs it once, and reports it when asked. */
#ifndef SDC_CORE_STATUS_H
#define SDC_CORE_STATUS_H

#include "core/log.h"
#include "sdc.h"

/* Records st (not SDC_OK) in *sticky unless an error is already there: the first wins. The first is
 * logged at error level as "<who>: <file>:<line>: <call> failed: <what>", later ones at debug level.
 * file is shortened to its name. Returns st. */
sdc_status sdc_sticky_fail(sdc_status *sticky, const sdc_logger *lg, const char *who, sdc_status st, const char *file,
                           int line, const char *call, const char *fmt, ...) __attribute__((format(printf, 8, 9)));

#endif
