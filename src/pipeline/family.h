/* family.h - a model family as data: its components, its phases, and a few hooks.
 *
 * The generic pipeline (model.c, plan.c, run.c, report.c) knows no component or phase by name. It opens
 * the files, asks each registered family whether they are its own (probe), and from then on iterates
 * the family's tables:
 *
 *   components  what loads and frees independently (name, tensor-name prefixes, config, load/free);
 *   phases      what runs in order (name, components needed, once per job or once per image,
 *               img2img only), each with its body.
 *
 * Phases are the outer loop: a job runs phase 0 for every prompt, then phase 1 for every image (or group
 * of images: the denoiser's rows), ... so under `phased` each component is loaded once per job, whatever
 * the number of prompts and images. Everything a family
 * carries between phases (its conditioning, the latents of every image, the schedule) lives in its
 * job state, an opaque object the pipeline only creates, passes along and frees.
 *
 * Adding a family = one file with these tables and hooks + one line in family_registry.c. */
#ifndef SDC_PIPELINE_FAMILY_H
#define SDC_PIPELINE_FAMILY_H

#include <cjson/cJSON.h>

#include "backend/backend.h"
#include "io/model_files.h"
#include "io/model_index.h"
#include "model/stream.h"
#include "model/weights.h"
#include "sdc.h"

#define SDC_MAX_COMPONENTS 8
#define SDC_MAX_PHASES 8

typedef struct sdc_model sdc_model;
typedef struct sdc_run sdc_run;

/* What the planner needs of a job: sizes and mode. */
typedef struct sdc_job_shape {
    int width, height; /* pixels */
    int cfg;           /* 1: two conditioning rows (negative + prompt) */
    int img2img;
    int batch; /* images per denoiser call (the job's max_batch, at most its images); <= 0: 1 */
} sdc_job_shape;

typedef struct sdc_component_def {
    const char *name;            /* "text_encoder", "unet", "vae_decoder", ... (report, logs) */
    const char *const *prefixes; /* NULL-terminated tensor-name prefixes in the model index that this
                                         component owns: the planner sums their bytes */
    const char *source_prefix;   /* the weight source's prefix its loader reads under ("vae.") */
    /* Loads the component from src (index, prefix, backend, logger, precision). *out is an opaque
     * object that only the family's phases use. fam is the family's opened state (its configs). */
    sdc_status (*load)(const void *fam, const sdc_weight_source *src, void **out);
    void (*free)(void *obj);
    /* the precision this component computes in (backend/backend.h: F32 for a VAE whose config says
     * force_upcast, BF16 for Flux's transformer); NULL: SDC_PREC_AUTO. --precision f32 overrides it. */
    sdc_prec (*precision)(const void *fam);
    /* A component that can stream its blocks (the denoisers; model/stream.h): the stream of obj when it
     * was loaded with src->window > 0, else NULL. NULL here: the component always loads whole. */
    sdc_weight_stream *(*stream)(void *obj);
} sdc_component_def;

typedef struct sdc_phase_def {
    const char *name;          /* "condition", "denoise", ... (progress, report) */
    unsigned needs;            /* bit c: components[c] must be resident while it runs */
    unsigned per_image : 1;    /* 1: run once per image of the job, else once per job */
    unsigned img2img_only : 1; /* 1: only when the job has an init image */
    /* The phase body, for image i (per-image phases) or i = -1. Components it needs are resident:
     * sdc_run_component(r, c) gives them. */
    sdc_status (*run)(sdc_run *r, int image);
    /* per-image phases: 1: run once per group of r->group images i, i + 1, ... (at most the job's
     * max_batch), which it computes together (the denoiser's rows); else r->group is 1 */
    unsigned batched : 1;
} sdc_phase_def;

typedef struct sdc_family {
    const char *name; /* "sd1" */
    /* 1: the opened files are this family's (a diffusers folder's classes, a single file's keys) */
    int (*probe)(const sdc_model_files *mf);
    /* Parses the configs and opens what the family needs besides weights (tokenizers): *fam is its
     * opened state. tokenizer_dir overrides the model's own (NULL: the model's). A single file's tensors
     * are indexed here, under the names the family maps them to (mf->index is filled). */
    sdc_status (*open)(sdc_model_files *mf, const char *tokenizer_dir, const sdc_logger *log, void **fam);
    void (*close)(void *fam);
    const sdc_component_def *components;
    int n_components;
    const sdc_phase_def *phases;
    int n_phases;
    /* The raw latents of one image for a width x height job: ne[0..3] = {1, C, h, w}. */
    void (*latent_shape)(const void *fam, int width, int height, int64_t ne[4]);
    /* The job state (schedule, conditioning, latents of every image ...) for p; freed by job_free. */
    sdc_status (*job_new)(sdc_run *r, void **state);
    void (*job_free)(void *state);
} sdc_family;

/* What a phase body sees of its job. */
struct sdc_run {
    const sdc_family *family;
    const void *fam; /* the family's opened state */
    const sdc_model_files *mf;
    sdc_backend *be; /* where the components live and the phase computes */
    const sdc_logger *log;
    const sdc_gen_params *p;
    const char *model_name; /* for the PNG parameters text */
    void *state;            /* the family's job state */
    void **components;      /* [n_components]: the resident ones, else NULL */
    const sdc_prec *prec;   /* [n_components]: the precision each component runs at */
    sdc_image *images;      /* [sdc_job_n_images(p)]: the images the decode phase makes */
    int dry;                /* 1: a planning run on a counting backend (no values: no checks,
                                         no images) */
    /* progress: returns nonzero when the job should stop */
    int (*progress)(sdc_run *r, const char *phase, int step, int total);
    void *progress_user;
    int group; /* images in this call of a batched phase (image, image + 1, ...); else 1 */
};

static inline void *sdc_run_component(const sdc_run *r, int c) { return r->components[c]; }

/* The families sdc knows, in probe order; NULL-terminated. */
extern const sdc_family *const sdc_families[];
extern const sdc_family sdc_family_sd1;
extern const sdc_family sdc_family_sdxl;
extern const sdc_family sdc_family_flux;

#endif
