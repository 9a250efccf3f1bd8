/* sampler.h - the denoising loop: diffusers' schedulers, with their exact arithmetic, on host f32 latents.
 *
 * The pipeline owns the network; this module owns the math around it. A schedule is built once from a
 * diffusers scheduler_config.json (the noise schedule: betas, spacing, prediction type) and a sampler
 * choice (the algorithm); sdc_sample() then calls the model once per entry of schedule.timesteps.
 *
 *   sampler      diffusers class                      karras
 *   euler        EulerDiscreteScheduler               sigmas over the spaced range, timesteps unrounded
 *   euler_a      EulerAncestralDiscreteScheduler      as euler (diffusers has no karras option here)
 *   heun         HeunDiscreteScheduler                as euler
 *   lms          LMSDiscreteScheduler (order 4)       as euler
 *   ddim         DDIMScheduler (eta 0)                error
 *   pndm         PNDMScheduler, PLMS steps only       error
 *   dpm++2m      DPMSolverMultistepScheduler          sigmas over the full training range, timesteps
 *                (dpmsolver++, solver_order 2)        rounded
 *
 * Everything diffusers computes in float32 (betas, alphas_cumprod, sigmas, the per-step scalar
 * coefficients) is computed here in float32 in the same order; numpy's float64 steps (interpolation,
 * Karras ramps, sigma -> t) in double. Per-element updates run in double over float latents.
 *
 * Config keys that are absent or null take the diffusers default of the chosen class. The config's
 * use_karras_sigmas is not read: karras is the caller's choice.
 *
 * Threading: a schedule is immutable after building; several sdc_sample() calls may share one. */
#ifndef SDC_SAMPLER_H
#define SDC_SAMPLER_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "core/log.h"
#include "sdc.h"

/* The sampler kinds are the public enum sdc_sampler of include/sdc.h (SDC_SAMPLER_EULER ...
 * SDC_SAMPLER_DPMPP_2M); SDC_SAMPLER_DEFAULT is resolved by the pipeline before it gets here. */

typedef enum sdc_prediction_type {
    SDC_PREDICT_EPSILON = 0, /* the model predicts the noise */
    SDC_PREDICT_V,           /* v-prediction (SD 2.x 768): v = alpha_t * eps - sigma_t * x0 */
    SDC_PREDICT_COUNT
} sdc_prediction_type;

/* User-facing name: "euler", "euler_a", "heun", "lms", "ddim", "pndm", "dpm++2m"; never NULL. */
const char *sdc_sampler_kind_name(sdc_sampler kind);
/* Parses a sampler name (the names above; also "dpmpp_2m" and "euler_ancestral"). SDC_ERR_INVALID_ARG
 * (logged with the list of names) for anything else. */
sdc_status sdc_sampler_kind_from_name(const char *name, sdc_sampler *out, const sdc_logger *log);
/* The sampler of a diffusers scheduler class name (scheduler_config.json's _class_name, e.g.
 * "EulerDiscreteScheduler"). An unknown or NULL class sets *out = SDC_SAMPLER_EULER (the fallback, for
 * compatibility), logs a warning naming the class, and returns SDC_ERR_UNSUPPORTED. */
sdc_status sdc_sampler_kind_from_class(const char *cls, sdc_sampler *out, const sdc_logger *log);
/* Parses a sigma schedule name: "discrete" -> 0, "karras" -> 1. SDC_ERR_INVALID_ARG otherwise. */
sdc_status sdc_sigma_schedule_from_name(const char *name, int *karras, const sdc_logger *log);

typedef struct sdc_sampler_params {
    sdc_sampler kind;
    int karras; /* 1: Karras sigmas (not with ddim or pndm) */
    int steps;  /* inference steps, >= 1 */
} sdc_sampler_params;

/* euler, discrete, 20 steps */
void sdc_sampler_params_init(sdc_sampler_params *p);

/* A built schedule. The caller owns the struct; sdc_schedule_free() releases what it points to. */
typedef struct sdc_schedule {
    sdc_sampler kind;
    int karras;
    int steps;              /* inference steps asked for */
    int n;                  /* model evaluations of the full schedule = entries of timesteps
                                  (heun: 2*steps-1, pndm: steps+1 from 2 steps on, others: steps) */
    int begin;              /* first evaluation that sdc_sample() runs: 0, or what
                                  sdc_schedule_truncate_for_strength() set */
    float *timesteps;       /* [n] the timestep handed to the UNet at each evaluation */
    float *sigmas;          /* [n + 1] noise level of each evaluation, then the final one: for euler,
                                  euler_a, heun, lms, dpm++2m. NULL for ddim and pndm. */
    float init_noise_sigma; /* std of the starting noise: sdc_schedule_scale_noise() multiplies by it */
    sdc_prediction_type prediction;

    /* constants of the training schedule that the steps read */
    int num_train_timesteps;
    float *alphas_cumprod;     /* [num_train_timesteps] */
    float final_alpha_cumprod; /* ddim, pndm: alpha_cumprod used below timestep 0 */
    int clip_sample;           /* ddim, heun: clamp the predicted x0 to +-clip_sample_range */
    float clip_sample_range;
    int timestep_step;         /* ddim, pndm: num_train_timesteps / steps (integer division) */
    int dpm_lower_order_final; /* dpm++2m: use a first-order last step (diffusers' condition, resolved) */
    int dpm_solver_heun;       /* dpm++2m: solver_type "heun" instead of "midpoint" */
    int flow;                  /* flow matching (kind euler): sdc_flow_schedule_build made it */
} sdc_schedule;

/* Builds the schedule for params from a parsed scheduler_config.json object (scheduler_config may be
 * NULL: all class defaults). Errors, logged on one line: SDC_ERR_INVALID_ARG for steps < 1, karras with
 * ddim or pndm, more steps than the spacing allows, an out-of-range kind; SDC_ERR_FORMAT for a config
 * value of the wrong type or an unknown enum string; SDC_ERR_UNSUPPORTED for valid diffusers options
 * sdc does not implement (thresholding, log_linear interpolation, ...); SDC_ERR_OOM. On error *out
 * is left zeroed (safe to free). */
sdc_status sdc_schedule_build(const cJSON *scheduler_config, const sdc_sampler_params *params, const sdc_logger *log,
                              sdc_schedule *out);
void sdc_schedule_free(sdc_schedule *s); /* NULL and a zeroed struct are harmless */

/* FlowMatchEulerDiscreteScheduler's settings (scheduler_config.json; absent keys: diffusers' defaults). */
typedef struct sdc_flow_config {
    int num_train_timesteps; /* 1000 */
    double shift;            /* static shift (schnell 1) */
    int dynamic;             /* use_dynamic_shifting (dev): the shift follows the image's token count */
    double base_shift, max_shift;
    int base_seq_len, max_seq_len;
} sdc_flow_config;

/* Options sdc does not implement (stochastic sampling, Karras/exponential/beta sigmas, inverted
 * sigmas, shift_terminal, a linear time shift) are SDC_ERR_UNSUPPORTED; values out of range
 * SDC_ERR_FORMAT. cfg may be NULL (all defaults). */
sdc_status sdc_flow_config_parse(const cJSON *cfg, const sdc_logger *log, sdc_flow_config *out);
/* The dynamic shift's mu for an image of image_seq_len tokens (diffusers' calculate_shift). */
double sdc_flow_mu(const sdc_flow_config *c, int image_seq_len);
/* The flow-matching Euler schedule of FluxPipeline for steps steps on an image of image_seq_len packed
 * tokens: sigmas [steps + 1] ending in 0, timesteps = sigmas * num_train_timesteps, init_noise_sigma 1.
 * sdc_sample then hands the model x itself and steps x += (sigma_next - sigma) * v. */
sdc_status sdc_flow_schedule_build(const sdc_flow_config *c, int steps, int image_seq_len, const sdc_logger *log,
                                   sdc_schedule *out);

/* txt2img: multiplies fresh standard-normal latents x[n] by init_noise_sigma in float32, as the
 * diffusers pipeline does before the loop. */
void sdc_schedule_scale_noise(const sdc_schedule *s, float *x, size_t n);

/* img2img: starts the schedule part-way, as diffusers' img2img pipeline does:
 * init_timestep = min(int(steps * strength), steps), t_start = steps - init_timestep,
 * begin = t_start * order (order 2 for heun, else 1). SDC_ERR_INVALID_ARG for strength outside [0, 1]
 * or a strength so low that no step would run. */
sdc_status sdc_schedule_truncate_for_strength(sdc_schedule *s, double strength, const sdc_logger *log);
/* img2img: the scheduler's add_noise at the begin step, in float32:
 * sigma samplers x = x0 + noise * sigma[begin]; dpm++2m x = alpha * x0 + sigma_t * noise;
 * ddim, pndm x = sqrt(ac[t]) * x0 + sqrt(1 - ac[t]) * noise. x0, noise, out are [n]; out may alias x0. */
void sdc_schedule_add_noise(const sdc_schedule *s, const float *x0, const float *noise, float *out, size_t n);

/* The network: fills out[n] with its prediction (epsilon or v, per schedule.prediction) for the scaled
 * model input x_in[n] at timestep t. Anything but SDC_OK stops the loop and is returned. */
typedef sdc_status (*sdc_model_fn)(void *user, const float *x_in, float t, float *out);
/* Draws n standard normals into out (euler_a draws once per step, after the initial latents). */
typedef void (*sdc_noise_fn)(void *user, float *out, size_t n);
/* Called after each evaluation with done in 1..total; a nonzero return cancels the loop. */
typedef int (*sdc_sample_progress_fn)(void *user, int done, int total);

typedef struct sdc_sample_callbacks {
    sdc_model_fn model;
    void *model_user;
    sdc_noise_fn noise; /* needed by euler_a only; may be NULL otherwise */
    void *noise_user;
    sdc_sample_progress_fn progress; /* may be NULL */
    void *progress_user;
} sdc_sample_callbacks;

/* Runs evaluations begin..n-1 of the schedule on x[n] in place. x is the starting sample in the
 * scheduler's space: fresh noise already scaled by sdc_schedule_scale_noise(), or the output of
 * sdc_schedule_add_noise(). On return x holds the denoised latents (before the VAE's 1/scaling).
 * Errors: the model's status, SDC_ERR_CANCELLED, SDC_ERR_INVALID_ARG (euler_a without a noise
 * callback), SDC_ERR_OOM. */
sdc_status sdc_sample(const sdc_schedule *s, float *x, size_t n, const sdc_sample_callbacks *cb, const sdc_logger *log);

#endif
