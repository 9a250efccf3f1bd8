/* cmd_mkmodel.c - `sdc mkmodel`: write a random-weight model. */
#include <stdio.h>

#include "cli/cli.h"

int sdc_cmd_mkmodel(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "sdc: mkmodel is not wired yet\n");
    return 2;
}
