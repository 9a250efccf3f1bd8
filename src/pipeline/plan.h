/* plan.h - the residency planner: which components are resident in each phase under a policy, and
 * the peak device memory that implies, computed from the model's real shapes before any weight is read.
 * It iterates the family's component and phase tables; it knows no component by name.
 *
 *   policy      a phase's resident components
 *   all         every component some phase of the job needs, loaded before the first phase
 *   sequential  once-per-job phases: their own; per-image phases: the union of every per-image
 *               phase's components (SD: text encoder, then UNet + VAE decoder together)
 *   phased      only its own
 *   stream      only its own, and a streamable component (the denoiser: model/stream.h) holds its rest and
 *               at most W of its units (blocks): W - slots that stay, spread over the forward, and one
 *               or two slots the others cycle through, read before their forward and evicted after; W
 *               is the most units whose phase total fits the budget, at least 1 and at most the model's
 *               stream_window (--stream-window)
 *
 * A phase's planned peak = the weights resident in it (from the index) + its activation and workspace
 * peaks, measured by running the job's own phases (the family's bodies, the components' loaders and
 * forwards) on a counting backend shaped like the model's: no memory, no work, exact counts. */
#ifndef SDC_PIPELINE_PLAN_H
#define SDC_PIPELINE_PLAN_H

#include "pipeline/model.h"

typedef struct sdc_phase_plan {
    int runs;          /* 0: the phase does not occur in this job (encode in txt2img) */
    unsigned resident; /* bit c set: component c is resident during the phase */
    size_t bytes[SDC_MEM_KIND_COUNT];
    size_t total;
    /* stream: the streamed component (window > 0), its units resident at most of n_units, the weights it
     * holds at most (sdc_stream_held), and the unit bytes loaded per denoiser call once the first call has
     * run (0: every unit stays) */
    int stream_comp, window, n_units;
    size_t stream_resident, stream_read;
    int stream_lookahead; /* stream: unit k + 1 uploads while unit k computes (a backend with async copies) */
    /* FLOPs of one call of the phase's forward (products: linear, convolution, attention; the profile's
     * count, backend/ops.c) on the counting backend, the phase run once with one sampling step divided by
     * the calls it made (its progress steps). A call of the denoiser is one sampling step: CFG's rows and
     * the group's images ride in its batch. */
    double flops_per_call;
} sdc_phase_plan;

typedef struct sdc_plan {
    sdc_load_policy policy; /* a concrete policy, never AUTO */
    int n_phases;
    sdc_phase_plan phase[SDC_MAX_PHASES];
    size_t peak;   /* the largest phase total */
    size_t budget; /* what stream sized its window for */
} sdc_plan;

/* The weights a component streamed with a window of w units holds at most: its rest, its sticky units
 * (model/stream.h) and its slots, each as large as its largest cycling unit; *read_per_call (may be NULL):
 * the cycling units' bytes, read again by each call after the first. */
size_t sdc_stream_held(const sdc_stream_shape *sh, int w, int lookahead, size_t *read_per_call);

/* What one call of a streamed phase is expected to take at the backend's rates (sdc_backend_rates_get):
 * for the plan table and the run report only, nothing is scheduled by it. */
typedef struct sdc_stream_expect {
    double read;     /* bytes uploaded per call once the first call has run: pp->stream_read */
    double transfer; /* seconds: read / the host -> device rate */
    double flops;    /* pp->flops_per_call */
    double compute;  /* seconds: flops / the linear's rate (a floor: every op at the GEMM's rate) */
    double call;     /* seconds: max(transfer, compute) with the lookahead (uploads behind compute), else
                      * their sum (loads before compute) */
} sdc_stream_expect;
void sdc_stream_expect_at(const sdc_phase_plan *pp, const sdc_backend_rates *rates, sdc_stream_expect *e);
/* The expectation as one line of text at m's backend's rates (timing them, once per process, the first
 * time: plan table and report only). */
void sdc_stream_expect_line(const sdc_model *m, const sdc_phase_plan *pp, char *out, size_t size);

void sdc_job_shape_from_params(const sdc_gen_params *p, sdc_job_shape *job);
/* The plan under policy (stream: its window sized for the model's budget). A stream plan whose peak is
 * above its budget cannot run (a budget too small for one block and the activations). */
void sdc_plan_make(sdc_model *m, const sdc_job_shape *job, sdc_load_policy policy, sdc_plan *plan);
/* The policy auto picks: the first of all, sequential, phased, stream whose peak fits budget (stream: its
 * window sized for budget); writes its plan and a one-line reason. SDC_ERR_OOM when none fits.
 * sdc_plan_choose_from: the same, trying only first and the policies after it. */
sdc_status sdc_plan_choose_from(sdc_model *m, const sdc_job_shape *job, sdc_load_policy first, size_t budget,
                                sdc_plan *plan, char *why, size_t why_size);
sdc_status sdc_plan_choose(sdc_model *m, const sdc_job_shape *job, size_t budget, sdc_plan *plan, char *why,
                           size_t why_size);
/* The default budget of the model's backend (CPU: MemAvailable - 1 GiB). */
size_t sdc_plan_default_budget(const sdc_model *m);
/* A table of every policy's per-phase plan, as a malloc'd string. */
char *sdc_plan_table(sdc_model *m, const sdc_job_shape *job);
/* The model's kept measurements: made at open (sdc_model_open; none when there is no memory for them),
 * freed with the model. */
void sdc_plan_memo_new(sdc_model *m);
void sdc_plan_memo_free(sdc_model *m);

#endif
