/* report.h - the measured side of the planner: what each phase really took (time, loads, bytes read,
 * peak memory by kind, peak RSS), next to what was planned; printed as a table and as JSON. */
#ifndef SDC_PIPELINE_REPORT_H
#define SDC_PIPELINE_REPORT_H

#include "pipeline/plan.h"

typedef struct sdc_phase_report {
    int runs;                            /* times the phase ran (per image for all but condition) */
    double wall;                         /* seconds, loads included */
    double load;                         /* seconds spent loading components */
    uint64_t bytes_read;                 /* weight bytes read from disk */
    size_t resident_weights;             /* largest weight bytes resident during the phase */
    size_t peak[SDC_MEM_KIND_COUNT];     /* largest peak of each kind */
    size_t peak_total;                   /* largest peak of all kinds together */
    size_t peak_rss;                     /* largest process RSS during the phase (0: unknown) */
    size_t driver_peak;                  /* device memory in use as the driver reports it (0: not known) */
} sdc_phase_report;

typedef struct sdc_part_report {
    int loads;
    double seconds;
    uint64_t bytes_read;
} sdc_part_report;

typedef struct sdc_report {
    sdc_plan plan;                       /* the policy run and its plan */
    char why[256];                       /* why this policy */
    size_t budget;
    int images;
    double seconds;                      /* the whole sdc_generate */
    sdc_phase_report phase[SDC_PHASE_COUNT];
    sdc_part_report part[SDC_PART_COUNT];
    size_t peak_device;                  /* allocator peak over the run */
    size_t peak_rss;                     /* process peak RSS over the run */
    size_t driver_peak;                  /* driver-reported device use over the run, above the baseline */
} sdc_report;

/* Phase bracket. begin frees the components the plan does not keep in this phase, starts a new peak
 * window, and loads the ones it needs; end records the phase's figures. */
sdc_status sdc_phase_begin(sdc_ctx *ctx, sdc_report *r, sdc_phase ph, double *t0);
void sdc_phase_end(sdc_ctx *ctx, sdc_report *r, sdc_phase ph, double t0);

/* Logs the per-phase table (info level) and returns the report as malloc'd JSON. */
void sdc_report_log(const sdc_ctx *ctx, const sdc_report *r);
char *sdc_report_json(const sdc_ctx *ctx, const sdc_report *r);

#endif
