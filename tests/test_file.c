/* test_file.c - sdc_read_file on what is not a regular file (issue 13, item 10): a FIFO with no
 * writer, a directory and /dev/zero are refused at once, with a message naming what the path is. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"
#include "test_util.h"

static void refused(const char *path, const char *kind) {
    char *text = NULL;
    size_t len = 0;
    double t0 = test_now();
    alarm(20); /* a blocking open would end the test here, as a failure */
    sdc_status st = sdc_read_file(path, test_capture_logger(), &text, &len);
    alarm(0);
    double dt = test_now() - t0;
    test_check(st == SDC_ERR_IO && !text && strstr(test_last_error(), kind) != NULL && dt < 1.0,
               "%s: status %d (bound SDC_ERR_IO=%d) in %.3f s (bound 1 s), message names \"%s\": %s", path, (int)st,
               (int)SDC_ERR_IO, dt, kind, test_last_error());
    free(text);
}

int main(void) {
    test_make_tmp_dir("file");
    const char *fifo = test_tmp_path("vocab.json");
    test_check(mkfifo(fifo, 0600) == 0, "mkfifo %s", fifo);
    refused(fifo, "a FIFO");
    refused(test_make_tmp_dir("file"), "a directory");
    refused("/dev/zero", "a character device");
    /* a regular file still reads whole */
    const char *reg = test_tmp_path("merges.txt");
    FILE *f = fopen(reg, "w");
    fputs("#version: 0.2\na b\n", f);
    fclose(f);
    char *text = NULL;
    size_t len = 0;
    sdc_status st = sdc_read_file(reg, test_logger(), &text, &len);
    test_check(st == SDC_OK && len == 18 && text && !strcmp(text, "#version: 0.2\na b\n"),
               "regular file: status %d, %zu bytes (bound 18)", (int)st, len);
    free(text);
    unlink(fifo);
    unlink(reg);
    return test_finish();
}
