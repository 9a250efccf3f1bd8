/* pipeline.h - the pieces of a job that are not the phases themselves. Internal. */
#ifndef SDC_PIPELINE_PIPELINE_H
#define SDC_PIPELINE_PIPELINE_H

#include "pipeline/family.h"
#include "sampler/sampler.h"

/* Validates what every family shares in p (sizes, steps, batch, guidance, rng, init image, strength,
 * sampler): a clear logged error, SDC_ERR_INVALID_ARG, else SDC_OK. */
sdc_status sdc_pipeline_check_params(const sdc_gen_params *p, const sdc_logger *log);
/* A job's entries and images (sdc_gen_params.prompts, or the single prompt as a list of one): entries,
 * images (entries x batch_count), entry e's texts (prompt never NULL; negative "" when none) and seed,
 * and image k's entry and seed (entry k / batch_count, its seed + k % batch_count). */
int sdc_job_n_prompts(const sdc_gen_params *p);
int sdc_job_n_images(const sdc_gen_params *p);
sdc_prompt sdc_job_prompt(const sdc_gen_params *p, int e);
int sdc_job_image_prompt(const sdc_gen_params *p, int k);
int64_t sdc_job_image_seed(const sdc_gen_params *p, int k);
/* SDC_OK when x[n] is all finite; else logs "<phase>: image <i>: <what> has <k> NaN/Inf values ..." and
 * returns SDC_ERR_NONFINITE. */
sdc_status sdc_pipeline_check_finite(const sdc_logger *log, const char *phase, int image, const char *what,
                                     const float *x, size_t n);
/* Image k's 8-bit RGB image + A1111 parameters text (its prompt and seed) from pixels [H, W, 3] in [0, 1]. */
sdc_status sdc_pipeline_make_image(const sdc_run *r, const sdc_schedule *sched, int k, const float *pixels, int W,
                                   int H, sdc_image *img);

#endif
