/* cli.h - the sdc command: subcommands over the public API (include/sdc.h). */
#ifndef SDC_CLI_H
#define SDC_CLI_H

#include <stdio.h>

#include "sdc.h"

int sdc_cmd_generate(int argc, char **argv);
int sdc_cmd_mkmodel(int argc, char **argv);
int sdc_cmd_convert(int argc, char **argv);

/* stderr log callback honouring the verbosity the user asked for (user: a const int *min level) */
void cli_log(sdc_log_level level, const char *msg, void *user);
/* progress bar on stderr for the phases of sdc_generate */
int cli_progress(const char *phase, int step, int total, void *user);

/* strtol/strtod with the whole string checked; print "sdc: bad value for --x: 'v'" on failure */
int cli_int(const char *opt, const char *v, long lo, long hi, long *out);
int cli_float(const char *opt, const char *v, double *out);

/* `sdc generate`'s parsed command line. Strings point into argv. */
typedef struct cli_generate_opts {
    sdc_ctx_params cp;
    sdc_gen_params gp;
    const char *out;         /* -o, default "output.png" */
    const char *init_path;   /* -i, or NULL */
    const char *report_path; /* --report-json, or NULL */
    int size_given, verbose, plan_only;
    int cfg_given;           /* --cfg-scale or --negative-prompt was given (Flux warns that it ignores them) */
    const char *prompt_file; /* --prompt-file, or NULL */
    int prompt_given;        /* -p was given */
} cli_generate_opts;

/* Parses argv (argv[0] is the command name) into *o and applies the checks that touch no file: values and
 * ranges, seed + batch_count - 1 fitting int64, prompts valid UTF-8 (refused otherwise, never
 * rewritten), no empty output path. Returns 0, 1 when --help was printed (exit 0), or 2 after printing
 * the error (a usage error). No model or file is read; it can run any number of times. */
int cli_generate_parse(int argc, char **argv, cli_generate_opts *o);
void cli_generate_usage(FILE *f);
/* A --prompt-file's text (NUL-terminated; modified in place, and the list points into it) into
 * *list[*n] (malloc'd): one entry per line that is not blank or a # comment, each `[seed=N |]
 * [negative=TEXT |] PROMPT` (prompt_file.c); seed and negative default to o's --seed and
 * --negative-prompt. 0, or -1 after printing the error with path and line number. */
int cli_prompt_file_parse(char *text, const char *path, const cli_generate_opts *o, sdc_prompt **list, int *n);
/* Byte offset of the first invalid UTF-8 sequence in s, or -1 when s is valid UTF-8. */
long cli_utf8_invalid_at(const char *s);

#endif
