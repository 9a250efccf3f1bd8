#include <stdio.h>

int main(void) {
    fprintf(stderr, "sdc: not yet\n");
    return 1;
}
