/* pipeline.h - the pieces of sdc_generate that are not the phases themselves. Internal. */
#ifndef SDC_PIPELINE_PIPELINE_H
#define SDC_PIPELINE_PIPELINE_H

#include "pipeline/ctx.h"

/* Validates p against the model (sizes, steps, strength, sampler) and builds the schedule (truncated
 * for img2img). Every problem is a clear logged error, SDC_ERR_INVALID_ARG or SDC_ERR_UNSUPPORTED. */
sdc_status sdc_pipeline_check_params(sdc_ctx *ctx, const sdc_gen_params *p, sdc_schedule *sched);
/* 8-bit RGB image + A1111 parameters text from pixels [H, W, 3] in [0, 1]. */
sdc_status sdc_pipeline_make_image(sdc_ctx *ctx, const sdc_gen_params *p, const sdc_schedule *sched, int64_t seed,
                                   const float *pixels, int W, int H, sdc_image *img);

#endif
