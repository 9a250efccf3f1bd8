/* util.c - what the subcommands share: logging, the progress bar, number parsing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

void cli_log(sdc_log_level level, const char *msg, void *user) {
    int min = user ? *(const int *)user : SDC_LOG_INFO;
    if ((int)level < min) return;
    static const char *const tag[] = {"debug", "info", "warning", "error"};
    if (isatty(STDERR_FILENO)) fprintf(stderr, "\r\033[K"); /* clear a progress bar line */
    if (level >= SDC_LOG_WARN)
        fprintf(stderr, "sdc: %s: %s\n", tag[level], msg);
    else
        fprintf(stderr, "sdc: %s\n", msg);
}

int cli_progress(const char *phase, int step, int total, void *user) {
    (void)user;
    if (!isatty(STDERR_FILENO)) {
        if (step == total && !strcmp(phase, "denoise"))
            fprintf(stderr, "sdc: denoise: %d/%d steps done\n", step, total);
        return 0;
    }
    const int width = 30;
    int filled = total > 0 ? step * width / total : width;
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\r\033[K%-9s [%s] %d/%d", phase, bar, step, total);
    if (step == total) fprintf(stderr, "\n");
    fflush(stderr);
    return 0;
}

int cli_int(const char *opt, const char *v, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "sdc: bad value for %s: '%s' (an integer in [%ld, %ld])\n", opt, v, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

int cli_float(const char *opt, const char *v, double *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end) {
        fprintf(stderr, "sdc: bad value for %s: '%s' (a number)\n", opt, v);
        return -1;
    }
    *out = x;
    return 0;
}
