/* model.h - what an sdc_model holds: the opened files, the family that owns them and its opened state,
 * the backend, and whichever components are resident right now. Internal to libsdc.
 *
 * A model runs one job at a time (sdc_job_run takes its lock); different models are independent and
 * may run in different threads at once. */
#ifndef SDC_PIPELINE_MODEL_H
#define SDC_PIPELINE_MODEL_H

#include <pthread.h>

#include "backend/backend.h"
#include "io/model_files.h"
#include "pipeline/family.h"
#include "pipeline/host_tier.h"
#include "sdc.h"

#define SDC_MAX_STREAM_UNITS 128
/* The window of a streamable component loaded whole on a backend with asynchronous copies (any policy but
 * stream; opt-in: sdc_model_params.stream_prefetch > 0, m->upload_behind): every block stays, and the blocks' uploads are all enqueued at
 * its load without waiting, so its first forward starts on block 0 while later blocks still upload
 * (sdc_stream_preload). The same bytes, tensors and kernels as a whole load: only when they land moves. */
#define SDC_WINDOW_WHOLE SDC_MAX_STREAM_UNITS

/* A streamable component's weights in units (model/stream.h): backend bytes from its own loader on a
 * counting backend, each unit acquired once. */
typedef struct sdc_stream_shape {
    int n_units; /* 0: the component does not stream */
    size_t rest; /* always resident */
    size_t unit[SDC_MAX_STREAM_UNITS];
} sdc_stream_shape;

struct sdc_model {
    sdc_logger log; /* the caller's logger, wrapped to keep the last error */
    sdc_log_fn user_log;
    void *user_log_user;
    char last_error[512]; /* the first error logged since open or the last job began */
    pthread_mutex_t lock; /* held while a job runs */
    sdc_backend *be;
    sdc_model_files *mf;
    const sdc_family *family;
    void *fam;        /* the family's opened state (configs, tokenizers) */
    char *model_name; /* for the PNG parameters text */
    int n_components;
    void *comp[SDC_MAX_COMPONENTS];             /* resident components; NULL when not loaded */
    sdc_prec prec[SDC_MAX_COMPONENTS];          /* the precision component c computes in */
    size_t comp_bytes[SDC_MAX_COMPONENTS];      /* backend bytes of each component's weights (from the index) */
    int comp_tensors[SDC_MAX_COMPONENTS];       /* and their tensor counts */
    size_t comp_file_bytes[SDC_MAX_COMPONENTS]; /* and their bytes in the files */
    int comp_converts[SDC_MAX_COMPONENTS];      /* the backend stores some of them in another dtype */
    char comp_dtypes[SDC_MAX_COMPONENTS][96];   /* and their file dtypes: "Q8_0 x 56, F32 x 24" */
    /* the window component c loads with next, and the one it was loaded with while resident (0: whole;
     * SDC_WINDOW_WHOLE: whole, its blocks uploaded behind compute) */
    int window[SDC_MAX_COMPONENTS];
    sdc_stream_shape stream[SDC_MAX_COMPONENTS]; /* each component's units (n_units 0: it loads whole) */
    sdc_load_policy policy;                      /* as asked; AUTO is resolved per job */
    size_t budget;                               /* bytes auto plans for */
    int stream_window;                           /* stream: at most this many blocks resident (0: no cap) */
    int stream_prefetch;                         /* stream: block k + 1 uploads behind block k (async copies) */
    int upload_behind;                           /* whole loads of streamable components: SDC_WINDOW_WHOLE */
    sdc_host_tier tier;                          /* components in host memory: prefetch and the pinned tier */
    struct sdc_plan_memo *plan_memo;             /* the planner's measurements of recent job shapes (plan.c) */
};

/* sdc_model_open with the family given instead of probed (NULL: probe the registry). For tests that
 * add a family without touching the library. */
sdc_model *sdc_model_open_as(const sdc_model_params *p, const sdc_family *family);

/* Loads component c unless it is resident, with m->window[c] (0: whole; else its units streamed). */
sdc_status sdc_model_load_component(sdc_model *m, int c);
void sdc_model_free_component(sdc_model *m, int c);
/* Every component unloaded and cached device memory returned: the state before a job's first phase. */
void sdc_model_unload_all(sdc_model *m);
const char *sdc_model_component_name(const sdc_model *m, int c);

/* Whether the index tensor `name` belongs to the component (is under one of its prefixes). */
int sdc_component_owns(const sdc_component_def *def, const char *name);

/* Backend bytes of component c's weights at its precision, exact and without reading data: the
 * component loaded on a counting backend shaped like m's (a weight's dtype depends on whether it feeds
 * a linear or a convolution, which only the loader knows). *n_tensors: the index tensors under its
 * prefixes. A component that cannot be loaded is counted from the index, every tensor as a non-matrix
 * weight (its real load fails anyway). */
size_t sdc_component_weight_bytes(sdc_model *m, int c, int *n_tensors);
/* The file dtypes of the component's index tensors as a histogram, block types first ("Q8_0 x 56, F32 x
 * 24"), into out (cut to size). */
void sdc_component_dtypes(const sdc_model_index *idx, const sdc_component_def *def, char *out, size_t size);

/* Loads component c onto another backend (the planner's counting backend) into *out, at c's precision. */
sdc_status sdc_model_load_component_on(sdc_model *m, int c, sdc_backend *be, const sdc_logger *log, void **out);

#endif
