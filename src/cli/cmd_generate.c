/* cmd_generate.c - `sdc generate`: parse flags into sdc_ctx_params / sdc_gen_params, run, save PNGs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"

/* Fails early (before any work) when out's folder is not writable; probes with a temporary file. */
static int check_writable(const char *out) {
    size_t n = strlen(out);
    char *probe = malloc(n + 32);
    if (!probe) return -1;
    snprintf(probe, n + 32, "%s.probe-XXXXXX", out);
    int fd = mkstemp(probe);
    if (fd < 0) {
        fprintf(stderr, "sdc: error: cannot write the output %s: %s\n", out, strerror(errno));
        free(probe);
        return -1;
    }
    close(fd);
    unlink(probe);
    free(probe);
    return 0;
}

/* out.png -> out-<i>.png (i from 1) when there are several images */
static char *output_name(const char *out, int i, int n) {
    size_t len = strlen(out) + 16;
    char *name = malloc(len);
    if (!name) return NULL;
    if (n == 1) {
        snprintf(name, len, "%s", out);
        return name;
    }
    const char *slash = strrchr(out, '/');
    const char *dot = strrchr(out, '.');
    if (!dot || (slash && dot < slash)) dot = out + strlen(out);
    snprintf(name, len, "%.*s-%d%s", (int)(dot - out), out, i, dot);
    return name;
}

/* What is at path, for a message; "" when it is a regular file or absent. lstat: a symlink is named as one. */
static const char *special_kind(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0 || S_ISREG(st.st_mode)) return "";
    return S_ISLNK(st.st_mode) ? "a symbolic link"
        : S_ISDIR(st.st_mode)  ? "a folder"
        : S_ISFIFO(st.st_mode) ? "a FIFO"
        : S_ISCHR(st.st_mode)  ? "a character device"
        : S_ISBLK(st.st_mode)  ? "a block device"
        : S_ISSOCK(st.st_mode) ? "a socket"
                               : "not a regular file";
}

/* Every output image (n of them): a new name or a regular file (a symlink is refused, as the writer refuses
 * it), in a folder we can write to. */
static int check_outputs(const cli_generate_opts *o, int n) {
    for (int i = 1; i <= n; i++) {
        char *name = output_name(o->out, i, n);
        const char *kind = name ? special_kind(name) : "";
        int bad = !name;
        if (name && (*kind || name[strlen(name) - 1] == '/')) {
            fprintf(stderr,
                    "sdc: error: the output %s is %s; sdc writes only a new file or replaces a regular "
                    "file\n",
                    name, *kind ? kind : "a folder name");
            bad = 1;
        }
        if (!bad) bad = check_writable(name) != 0;
        free(name);
        if (bad) return -1;
    }
    return 0;
}

/* The report's folder must exist and the path must not be a folder (a device such as /dev/stdout is fine). */
static int check_report(const char *path) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "sdc: error: --report-json %s is a folder\n", path);
        return -1;
    }
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    int ok = dir && stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
    if (!ok) fprintf(stderr, "sdc: error: --report-json %s: the folder %s does not exist\n", path, dir ? dir : "?");
    free(dir);
    return ok ? 0 : -1;
}

/* The init image, before it is read: a regular file (a FIFO is never opened, so it cannot block), whose PNG
 * header gives a size the run can use (W x H when they were given, else at most 16384 each). */
static int check_init(const cli_generate_opts *o) {
    struct stat st;
    if (stat(o->init_path, &st) != 0) {
        fprintf(stderr, "sdc: error: cannot use %s as the init image: %s\n", o->init_path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        fprintf(stderr, "sdc: error: the init image %s is %s, not a regular file\n", o->init_path,
                S_ISDIR(st.st_mode)        ? "a folder"
                    : S_ISFIFO(st.st_mode) ? "a FIFO"
                                           : "a device or special file");
        return -1;
    }
    unsigned char h[24];
    FILE *f = fopen(o->init_path, "rb");
    size_t n = f ? fread(h, 1, sizeof h, f) : 0;
    if (f) fclose(f);
    if (n < sizeof h || memcmp(h, "\x89PNG\r\n\x1a\n", 8) != 0 || memcmp(h + 12, "IHDR", 4) != 0)
        return 0; /* not a PNG: the reader says so */
    const unsigned long w = (unsigned long)h[16] << 24 | (unsigned long)h[17] << 16 | (unsigned long)h[18] << 8 | h[19];
    const unsigned long hh =
        (unsigned long)h[20] << 24 | (unsigned long)h[21] << 16 | (unsigned long)h[22] << 8 | h[23];
    if (o->size_given ? (w != (unsigned long)o->gp.width || hh != (unsigned long)o->gp.height)
                      : (w > 16384 || hh > 16384)) {
        if (o->size_given)
            fprintf(stderr, "sdc: error: the init image %s is %lux%lu, not the %dx%d asked for (-W/-H)\n", o->init_path,
                    w, hh, o->gp.width, o->gp.height);
        else
            fprintf(stderr, "sdc: error: the init image %s is %lux%lu, larger than 16384x16384\n", o->init_path, w, hh);
        return -1;
    }
    return 0;
}

/* --prompt-file: the whole file (a regular file of text, no NUL bytes) into *text, parsed into the
 * job's list. 0, or -1 after the error. */
static int load_prompt_file(const cli_generate_opts *o, char **text, sdc_prompt **list, int *n) {
    struct stat st;
    *text = NULL;
    const int found = stat(o->prompt_file, &st) == 0;
    if (!found || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "sdc: error: cannot read the prompt file %s: %s\n", o->prompt_file,
                found ? "not a regular file" : strerror(errno));
        return -1;
    }
    FILE *f = fopen(o->prompt_file, "rb");
    char *buf = f && st.st_size < (1 << 28) ? malloc((size_t)st.st_size + 1) : NULL;
    size_t len = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    int bad = !buf || ferror(f);
    if (f) fclose(f);
    if (bad) {
        fprintf(stderr, "sdc: error: cannot read the prompt file %s\n", o->prompt_file);
        free(buf);
        return -1;
    }
    buf[len] = 0;
    if (memchr(buf, 0, len)) {
        fprintf(stderr, "sdc: error: the prompt file %s holds a NUL byte (not text)\n", o->prompt_file);
        free(buf);
        return -1;
    }
    if (cli_prompt_file_parse(buf, o->prompt_file, o, list, n) != 0) {
        free(buf);
        return -1;
    }
    *text = buf;
    return 0;
}

int sdc_cmd_generate(int argc, char **argv) {
    cli_generate_opts o;
    int prc = cli_generate_parse(argc, argv, &o);
    if (prc != 0) return prc == 1 ? 0 : 2;
    sdc_ctx_params cp = o.cp;
    sdc_gen_params gp = o.gp;
    const char *out = o.out, *init_path = o.init_path, *report_path = o.report_path;
    const int size_given = o.size_given, verbose = o.verbose, plan_only = o.plan_only;
    char *prompt_text = NULL;
    sdc_prompt *prompts = NULL;
    if (o.prompt_file) {
        if (load_prompt_file(&o, &prompt_text, &prompts, &gp.n_prompts) != 0) return 2;
        gp.prompts = prompts;
    }
    const int n_images = (gp.n_prompts > 0 ? gp.n_prompts : 1) * gp.batch_count;
    /* everything that can be checked before a weight is read: the outputs, the report, the init image */
    int rc = 0;
    if (!plan_only && (check_outputs(&o, n_images) != 0 || (report_path && check_report(report_path) != 0))) rc = 2;
    if (rc == 0 && init_path && check_init(&o) != 0) rc = 2;
    if (rc != 0) {
        free(prompts);
        free(prompt_text);
        return rc;
    }
    int min_level = verbose ? SDC_LOG_DEBUG : SDC_LOG_WARN;
    cp.log_fn = cli_log;
    cp.log_user = &min_level;
    cp.log_level = SDC_LOG_DEBUG;
    cp.progress_fn = cli_progress;
    sdc_image *init = NULL;
    if (init_path) {
        if (sdc_image_load(init_path, &init, cli_log, &min_level) != SDC_OK) {
            fprintf(stderr, "sdc: error: cannot use %s as the init image\n", init_path);
            free(prompts);
            free(prompt_text);
            return 1;
        }
        if (!size_given) {
            gp.width = init->width;
            gp.height = init->height;
        }
        gp.init_image = init;
    }
    sdc_ctx *ctx = sdc_ctx_new(&cp);
    if (!ctx) {
        sdc_image_free(init, 1);
        free(prompts);
        free(prompt_text);
        return 1;
    }
    if (o.cfg_given && strcmp(sdc_ctx_family(ctx), "flux") == 0)
        fprintf(stderr,
                "sdc: warning: Flux has no classifier-free guidance: --cfg-scale and --negative-prompt are "
                "ignored (dev takes --guidance)\n");
    if (plan_only) {
        char *text = NULL;
        sdc_status st = sdc_plan_memory(ctx, &gp, &text);
        if (text) fputs(text, stdout);
        free(text);
        sdc_image_free(init, 1);
        sdc_ctx_free(ctx);
        free(prompts);
        free(prompt_text);
        return st == SDC_OK ? 0 : 1;
    }
    sdc_image *images = NULL;
    int n = 0;
    sdc_status st = sdc_generate(ctx, &gp, &images, &n);
    rc = st == SDC_OK ? 0 : 1;
    /* the images first: a report that cannot be written must not cost them */
    for (int i = 0; i < n && rc == 0; i++) {
        char *name = output_name(out, i + 1, n);
        if (!name || sdc_image_save(&images[i], name, cli_log, &min_level) != SDC_OK)
            rc = 1;
        else
            fprintf(stderr, "sdc: wrote %s (%dx%d, seed %lld)\n", name, images[i].width, images[i].height,
                    (long long)images[i].seed);
        free(name);
    }
    if (rc == 0 && report_path) {
        const char *json = sdc_last_report_json(ctx);
        FILE *f = fopen(report_path, "w");
        int bad = !f || !json || fputs(json, f) < 0 || fputc('\n', f) < 0;
        if (f && fclose(f) != 0) bad = 1;
        if (bad) {
            fprintf(stderr, "sdc: error: cannot write the report %s (the images were written)\n", report_path);
            rc = 1;
        }
    }
    sdc_image_free(images, n);
    sdc_image_free(init, 1);
    sdc_ctx_free(ctx);
    free(prompts);
    free(prompt_text);
    return rc;
}
