/* schedule.h - a scheduler_config.json read with the defaults of the diffusers class a sampler maps to,
 * and the training-time constants derived from it (internal to src/sampler). */
#ifndef SDC_SAMPLER_SCHEDULE_H
#define SDC_SAMPLER_SCHEDULE_H

#include <cjson/cJSON.h>

#include "core/log.h"
#include "sampler/sampler.h"
#include "sdc.h"

typedef enum sdc_beta_schedule {
    SDC_BETAS_LINEAR = 0,
    SDC_BETAS_SCALED_LINEAR,
    SDC_BETAS_SQUAREDCOS_CAP_V2,
    SDC_BETAS_TRAINED, /* trained_betas given as a list */
} sdc_beta_schedule;

typedef enum sdc_timestep_spacing {
    SDC_SPACING_LINSPACE = 0,
    SDC_SPACING_LEADING,
    SDC_SPACING_TRAILING,
} sdc_timestep_spacing;

typedef struct sdc_sched_config {
    int num_train_timesteps;
    double beta_start, beta_end;
    sdc_beta_schedule beta_schedule;
    float *trained_betas; /* [num_train_timesteps] when SDC_BETAS_TRAINED, else NULL */
    int rescale_betas_zero_snr;
    sdc_prediction_type prediction;
    sdc_timestep_spacing spacing;
    int steps_offset;
    int set_alpha_to_one; /* ddim, pndm */
    int clip_sample;      /* ddim, heun */
    double clip_sample_range;
    int final_sigma_min;              /* euler, dpm++2m: final_sigmas_type "sigma_min" instead of "zero" */
    int continuous_timesteps;         /* euler: timestep_type "continuous" */
    int has_sigma_min, has_sigma_max; /* euler: Karras range from the config */
    double sigma_min, sigma_max;
    int skip_prk_steps;                                 /* pndm */
    int lower_order_final, euler_at_final, solver_heun; /* dpm++2m */
    double lambda_min_clipped;                          /* dpm++2m */
} sdc_sched_config;

/* Reads cfg (may be NULL) with the defaults of kind's diffusers class. Logs and returns
 * SDC_ERR_FORMAT / SDC_ERR_UNSUPPORTED / SDC_ERR_OOM; on success free with sdc_sched_config_free. */
sdc_status sdc_sched_config_read(const cJSON *cfg, sdc_sampler kind, const sdc_logger *log, sdc_sched_config *out);
void sdc_sched_config_free(sdc_sched_config *c);

/* betas -> alphas_cumprod[num_train_timesteps] in float32, torch's order of operations, including
 * rescale_betas_zero_snr (and its 2^-24 floor where kind's class sets one). */
void sdc_alphas_cumprod(const sdc_sched_config *c, sdc_sampler kind, float *out);
/* ((1 - ac) / ac) ** 0.5 in float32, ascending in t. torch's float sqrt (a vector-library routine)
 * is one ulp off IEEE sqrt at a few t (6 of 1000 for SD 1.x betas); those sigmas differ by ~1e-7. */
void sdc_train_sigmas(const float *alphas_cumprod, int n, float *out);

#endif
