/* report.h - the measured side of the planner: what each phase really took (time, loads, bytes read,
 * peak memory by kind, peak RSS), next to what was planned; printed as a table and as JSON. */
#ifndef SDC_PIPELINE_REPORT_H
#define SDC_PIPELINE_REPORT_H

#include "pipeline/plan.h"

typedef struct sdc_phase_report {
    int runs;                        /* times the phase ran (per image for per-image phases) */
    double wall;                     /* seconds, loads included, the device's queued work finished */
    double load;                     /* seconds spent loading components */
    uint64_t bytes_read;             /* weight bytes read from disk */
    size_t resident_weights;         /* largest weight bytes resident during the phase */
    size_t peak[SDC_MEM_KIND_COUNT]; /* largest peak of each kind */
    size_t peak_total;               /* largest peak of all kinds together */
    size_t peak_rss;                 /* largest process RSS during the phase (0: unknown) */
    size_t driver_peak;              /* device memory in use as the driver reports it (0: not known) */
    /* stream: the streamed component's block loads and the file bytes they read, since it was loaded */
    uint64_t block_loads, block_bytes_read, block_bytes_host;
    double block_seconds;
    sdc_op_profile ops; /* with profiling on: the ops run since the previous phase ended (loads included) */
    int calls;          /* its progress steps: the calls of its forward (the denoiser's: its sampling steps) */
} sdc_phase_report;

typedef struct sdc_component_report {
    int loads;
    double seconds;
    uint64_t bytes_read;
    /* from host memory (pipeline/host_tier.h): file bytes its loads took from host memory, and of those
     * the ones read before the load began; the prefetcher's read time (behind the phase before) and how
     * long the loads waited for it */
    uint64_t bytes_host, bytes_hidden;
    double prefetch_seconds, prefetch_wait;
} sdc_component_report;

typedef struct sdc_report {
    sdc_plan plan; /* the policy run and its plan */
    char why[256]; /* why this policy */
    size_t budget;
    int images;
    double seconds; /* the whole job */
    sdc_phase_report phase[SDC_MAX_PHASES];
    sdc_component_report component[SDC_MAX_COMPONENTS];
    size_t peak_device;      /* allocator peak over the run */
    size_t peak_rss;         /* process peak RSS over the run */
    size_t driver_peak;      /* driver-reported device use over the run, above the baseline */
    sdc_op_profile ops_mark; /* the backend's profile when the last phase ended */
} sdc_report;

/* Applies the plan's residency for phase ph (residency.c): frees the components the phase does not
 * keep, hands cached memory back, opens the phase's measuring window, and loads the ones it needs
 * (each load recorded in r). Then waits for the device's uploads, except where a component loaded whole
 * has its blocks uploaded behind compute (SDC_WINDOW_WHOLE): its forward waits for each block's own. */
sdc_status sdc_residency_enter(sdc_model *m, sdc_report *r, int ph);

/* The phase's measuring window: peaks from here on are the phase's. */
void sdc_report_window_open(sdc_model *m);
/* Records one load of component c in phase ph (tl: what it took from host memory). */
void sdc_report_load(sdc_report *r, int ph, int c, double seconds, uint64_t bytes_read, const sdc_tier_load *tl);
/* Ends one run of phase ph begun at t0: records its wall time and peaks. The caller has synchronised
 * the backend (sdc_backend_sync), so the phase's queued device work is billed to it. */
void sdc_report_phase_end(sdc_model *m, sdc_report *r, int ph, double t0);

/* Logs the per-phase table (info level) and returns the report as malloc'd JSON. */
void sdc_report_log(const sdc_model *m, const sdc_report *r);
char *sdc_report_json(const sdc_model *m, const sdc_report *r);

#endif
