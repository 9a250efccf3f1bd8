/* make_model.c - the CLI entry point of the random-model generator. */
#include <stdlib.h>

#include "io/model_files.h"
#include "mkmodel/mkmodel.h"
#include "sdc.h"

sdc_status sdc_make_model(const char *arch, const char *out_path, int single_file, int fp16, uint64_t seed,
                          const char *tokenizer_dir, sdc_log_fn log_fn, void *log_user) {
    sdc_logger log = {log_fn, log_user, SDC_LOG_DEBUG};
    char *shipped = tokenizer_dir ? NULL : sdc_data_path("clip-tokenizer");
    sdc_status st = sdc_mkmodel(arch, out_path, single_file, fp16 ? SDC_DTYPE_F16 : SDC_DTYPE_F32, seed,
                                tokenizer_dir ? tokenizer_dir : shipped, &log);
    free(shipped);
    return st;
}
