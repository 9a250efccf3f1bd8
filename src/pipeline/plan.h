/* plan.h - the residency planner: which components are resident in each phase under a policy, and
 * the peak device memory that implies, computed from the model's real shapes before any weight is read.
 *
 *   phase      needs            all          sequential         phased
 *   condition  text encoder     everything   text encoder       text encoder
 *   encode     VAE encoder      everything   VAE encoder        VAE encoder      (img2img only)
 *   denoise    UNet             everything   UNet + decoder     UNet
 *   decode     VAE decoder      everything   UNet + decoder     VAE decoder
 *
 * A phase's planned peak = the weights resident in it + its activation and workspace peaks, measured by
 * running the phase's component forward on a counting backend (backend/count) shaped like the context's. */
#ifndef SDC_PIPELINE_PLAN_H
#define SDC_PIPELINE_PLAN_H

#include "pipeline/ctx.h"

typedef enum sdc_phase {
    SDC_PHASE_CONDITION = 0,
    SDC_PHASE_ENCODE,
    SDC_PHASE_DENOISE,
    SDC_PHASE_DECODE,
    SDC_PHASE_COUNT
} sdc_phase;

const char *sdc_phase_name(sdc_phase ph);

typedef struct sdc_phase_plan {
    int runs;              /* 0: the phase does not occur in this job (encode in txt2img) */
    unsigned resident;     /* bit p set: part p is resident during the phase */
    size_t bytes[SDC_MEM_KIND_COUNT];
    size_t total;
} sdc_phase_plan;

typedef struct sdc_plan {
    sdc_load_policy policy;          /* a concrete policy, never AUTO */
    sdc_phase_plan phase[SDC_PHASE_COUNT];
    size_t peak;                     /* the largest phase total */
} sdc_plan;

/* What the planner needs of a job: sizes and mode. */
typedef struct sdc_job_shape {
    int width, height;   /* pixels */
    int cfg;             /* 1: two conditioning rows (negative + prompt) */
    int img2img;
} sdc_job_shape;

void sdc_job_shape_from_params(const sdc_gen_params *p, sdc_job_shape *job);
/* Backend bytes part p's weights take and how many tensors it has, from the index (no data read). */
size_t sdc_part_weight_bytes(const sdc_ctx *ctx, sdc_part p, int *n_tensors);
void sdc_plan_make(sdc_ctx *ctx, const sdc_job_shape *job, sdc_load_policy policy, sdc_plan *plan);
/* The policy auto picks: the first of all, sequential, phased whose peak fits budget; writes its plan
 * and a one-line reason. SDC_ERR_OOM when none fits. */
sdc_status sdc_plan_choose(sdc_ctx *ctx, const sdc_job_shape *job, size_t budget, sdc_plan *plan,
                           char *why, size_t why_size);
/* The default budget of the context's backend (CPU: MemAvailable - 1 GiB). */
size_t sdc_plan_default_budget(const sdc_ctx *ctx);
/* A table of every policy's per-phase plan, appended to a malloc'd string. */
char *sdc_plan_table(sdc_ctx *ctx, const sdc_job_shape *job);

#endif
