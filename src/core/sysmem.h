/* sysmem.h - what the operating system tells: available RAM, the address-space limit, this process's
 * peak RSS, a monotonic clock. */
#ifndef SDC_CORE_SYSMEM_H
#define SDC_CORE_SYSMEM_H

#include <stddef.h>
#include <stdint.h>

/* MemAvailable from /proc/meminfo in bytes; -1 when unknown. */
int64_t sdc_sys_mem_available(void);
/* Peak RSS per window, without touching process-wide state: sdc_sys_peak_rss_reset opens a window
 * for the calling thread (it records the process's VmHWM and VmRSS; it no longer writes
 * /proc/self/clear_refs, so the process's VmHWM is never reset under other users). Returns 0 when
 * /proc answered. */
int sdc_sys_peak_rss_reset(void);
/* The largest RSS of the calling thread's current window, in bytes: exact when the window raised the
 * process's high-water mark (VmHWM grew since the window opened: the new VmHWM); otherwise the larger
 * of VmRSS at its start and now (a lower bound: a peak below an earlier one cannot be seen without
 * a reset). With no window open, the process's VmHWM. 0 when unknown. */
size_t sdc_sys_peak_rss(void);
/* Bytes of address space this process may still map under RLIMIT_AS (the limit less VmSize, 0 when
 * over); -1 when there is no limit or it is unknown. */
int64_t sdc_sys_address_room(void);
/* Seconds on a monotonic clock (CLOCK_MONOTONIC); only differences mean anything. */
double sdc_now(void);

#endif
