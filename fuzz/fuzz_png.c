/* fuzz_png.c - libFuzzer: arbitrary bytes as an init image, through sdc_png_read_max with a 512 x 512
 * limit (the size check comes before any pixel is allocated) and through sdc_png_read. */
#include "fuzz_util.h"
#include "io/png.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_path("in.png");
    fuzz_write(path, data, size);
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    if (sdc_png_read_max(path, 512, 512, &rgb, &w, &h, NULL) == SDC_OK) {
        if (!rgb || w < 1 || h < 1 || w > 512 || h > 512) abort();
        volatile uint8_t sink = rgb[(size_t)w * (size_t)h * 3 - 1]; /* the whole buffer is there */
        (void)sink;
    } else if (rgb) {
        abort();
    }
    free(rgb);
    return 0;
}
