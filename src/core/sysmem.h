/* sysmem.h - what the operating system tells: available RAM, this process's peak RSS, a monotonic clock. */
#ifndef SDC_CORE_SYSMEM_H
#define SDC_CORE_SYSMEM_H

#include <stddef.h>
#include <stdint.h>

/* MemAvailable from /proc/meminfo in bytes; -1 when unknown. */
int64_t sdc_sys_mem_available(void);
/* This process's peak resident set (VmHWM) in bytes; 0 when unknown. */
size_t sdc_sys_peak_rss(void);
/* Restarts the peak-RSS window (Linux: "5" into /proc/self/clear_refs). Returns 0 when it worked. */
int sdc_sys_peak_rss_reset(void);
/* Seconds on a monotonic clock (CLOCK_MONOTONIC); only differences mean anything. */
double sdc_now(void);

#endif
