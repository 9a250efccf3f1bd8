#include "core/sysmem.h"

#include <stdio.h>
#include <string.h>
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

size_t sdc_sys_peak_rss(void) {
    int64_t v = proc_kb("/proc/self/status", "VmHWM");
    return v < 0 ? 0 : (size_t)v;
}

int sdc_sys_peak_rss_reset(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return -1;
    int ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

double sdc_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
