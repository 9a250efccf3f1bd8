/* ctx.h - the compatibility context: one model, the progress callback of sdc_ctx_params, and the
 * report of the last sdc_generate. Internal to libsdc (tests reach the model through ctx->m). */
#ifndef SDC_PIPELINE_CTX_H
#define SDC_PIPELINE_CTX_H

#include "pipeline/model.h"

struct sdc_ctx {
    sdc_model *m;
    sdc_progress_fn progress;
    void *progress_user;
    char *last_report; /* JSON of the last sdc_generate */
};

#endif
