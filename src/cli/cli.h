/* cli.h - the sdc command: subcommands over the public API (include/sdc.h). */
#ifndef SDC_CLI_H
#define SDC_CLI_H

#include "sdc.h"

int sdc_cmd_generate(int argc, char **argv);
int sdc_cmd_mkmodel(int argc, char **argv);

/* stderr log callback honouring the verbosity the user asked for (user: a const int *min level) */
void cli_log(sdc_log_level level, const char *msg, void *user);
/* progress bar on stderr for the phases of sdc_generate */
int cli_progress(const char *phase, int step, int total, void *user);

/* strtol/strtod with the whole string checked; print "sdc: bad value for --x: 'v'" on failure */
int cli_int(const char *opt, const char *v, long lo, long hi, long *out);
int cli_float(const char *opt, const char *v, double *out);

#endif
