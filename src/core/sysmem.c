#include "core/sysmem.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* The number after "key:" in a /proc file of "key: value kB" lines, in bytes; -1 when absent. */
static int64_t proc_kb(const char *path, const char *key) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[256];
    int64_t v = -1;
    size_t n = strlen(key);
    while (fgets(line, sizeof line, f)) {
        long long kb;
        if (!strncmp(line, key, n) && line[n] == ':' && sscanf(line + n + 1, "%lld", &kb) == 1) {
            v = (int64_t)kb * 1024;
            break;
        }
    }
    fclose(f);
    return v;
}

int64_t sdc_sys_mem_available(void) { return proc_kb("/proc/meminfo", "MemAvailable"); }

/* The current window of this thread: the process's VmHWM and VmRSS when it was opened. */
static _Thread_local int64_t window_hwm = -1, window_rss = -1;

int sdc_sys_peak_rss_reset(void) {
    window_hwm = proc_kb("/proc/self/status", "VmHWM");
    window_rss = proc_kb("/proc/self/status", "VmRSS");
    return window_hwm < 0 || window_rss < 0 ? -1 : 0;
}

size_t sdc_sys_peak_rss(void) {
    int64_t hwm = proc_kb("/proc/self/status", "VmHWM"), rss = proc_kb("/proc/self/status", "VmRSS");
    if (hwm < 0) return 0;
    if (window_hwm < 0 || hwm > window_hwm) return (size_t)hwm; /* the peak was reached in the window */
    int64_t v = rss > window_rss ? rss : window_rss;
    return v < 0 ? 0 : (size_t)v;
}

int64_t sdc_sys_address_room(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return -1;
    int64_t vm = proc_kb("/proc/self/status", "VmSize");
    if (vm < 0) return -1;
    return (int64_t)rl.rlim_cur > vm ? (int64_t)rl.rlim_cur - vm : 0;
}

double sdc_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
