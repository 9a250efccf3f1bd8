/* sdc.h - the one public header of libsdc, Stable Diffusion in C.
 *
 * Errors come in three tiers:
 *   - what a user can cause (bad file, missing model part, out of memory) returns an sdc_status;
 *     sdc_status_str() names it and the log callback carries the details;
 *   - constructors return NULL and log the reason;
 *   - programmer bugs (wrong shapes between internal ops) are asserts.
 * The library never calls exit() and never prints: all text goes through the log callback of the
 * object that produced it. Callbacks are per object, never global.
 */
#ifndef SDC_H
#define SDC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sdc_status {
    SDC_OK = 0,
    SDC_ERR_INVALID_ARG, /* a parameter is out of range or malformed */
    SDC_ERR_IO,          /* a file could not be opened, read or written */
    SDC_ERR_FORMAT,      /* a file is not what it claims to be (corrupt header, bad JSON, ...) */
    SDC_ERR_NOT_FOUND,   /* a tensor, config key, file or component is missing */
    SDC_ERR_UNSUPPORTED, /* valid input that sdc does not handle (architecture, dtype) */
    SDC_ERR_OOM,         /* an allocation failed or would exceed the budget */
    SDC_ERR_BACKEND,     /* the compute backend failed */
    SDC_ERR_CANCELLED,   /* the progress callback asked to stop, or sdc_job_cancel */
    SDC_ERR_NONFINITE,   /* a phase produced NaN or Inf (broken weights, an absurd config value, or
                             fp16 overflow); nothing is written */
    SDC_STATUS_COUNT
} sdc_status;

/* Short English name of a status; never NULL. */
const char *sdc_status_str(sdc_status status);

typedef enum sdc_log_level {
    SDC_LOG_DEBUG = 0,
    SDC_LOG_INFO,
    SDC_LOG_WARN,
    SDC_LOG_ERROR,
    SDC_LOG_LEVEL_COUNT
} sdc_log_level;

/* Receives one line (no trailing newline). Called on the thread that called into libsdc. */
typedef void (*sdc_log_fn)(sdc_log_level level, const char *msg, void *user);

/* ---------------------------------------------------------------------------------------------
 * Enumerations shared by the CLI and the library
 * ------------------------------------------------------------------------------------------- */

typedef enum sdc_device {
    SDC_DEVICE_AUTO = -1, /* CUDA when built in and a device is present, else the CPU (logged) */
    SDC_DEVICE_CPU = 0,
    SDC_DEVICE_CUDA, /* only when built with -DSDC_CUDA=ON */
    SDC_DEVICE_COUNT
} sdc_device;

typedef enum sdc_sampler {
    SDC_SAMPLER_DEFAULT = -1, /* the model's scheduler_config.json (euler when it names another class) */
    SDC_SAMPLER_EULER = 0,    /* EulerDiscreteScheduler */
    SDC_SAMPLER_EULER_A,      /* EulerAncestralDiscreteScheduler */
    SDC_SAMPLER_HEUN,         /* HeunDiscreteScheduler */
    SDC_SAMPLER_LMS,          /* LMSDiscreteScheduler */
    SDC_SAMPLER_DDIM,         /* DDIMScheduler */
    SDC_SAMPLER_PNDM,         /* PNDMScheduler (PLMS) */
    SDC_SAMPLER_DPMPP_2M,     /* DPMSolverMultistepScheduler, dpmsolver++ order 2 */
    SDC_SAMPLER_COUNT
} sdc_sampler;

/* Which components are resident in which phase (condition, encode, denoise, decode). Output is
 * bit-identical under every policy; only when weights are loaded changes. */
typedef enum sdc_load_policy {
    SDC_LOAD_AUTO = 0,   /* the first of all, sequential, phased, stream whose planned peak fits the budget */
    SDC_LOAD_ALL,        /* every component loaded before the first phase (the classic path) */
    SDC_LOAD_SEQUENTIAL, /* text encoder (and VAE encoder) loaded, run, freed; then UNet + VAE decoder */
    SDC_LOAD_PHASED,     /* each component resident only during its own phase */
    SDC_LOAD_STREAM,     /* phased, and the denoiser streams its blocks: at most a window of them resident,
                            each read from the weight files before its forward (the window from the budget) */
    SDC_LOAD_POLICY_COUNT
} sdc_load_policy;

/* The compute type (sdc_model_params.precision, --precision). */
typedef enum sdc_precision {
    SDC_PRECISION_AUTO = 0, /* the backend's: CUDA f16 with f32 sums (bf16 for Flux, f32 for a VAE whose
                               config says force_upcast, and T5); the CPU f32 */
    SDC_PRECISION_F32 = 1,  /* f32 everywhere, a GPU too (for checking) */
    SDC_PRECISION_BF16 = 2  /* bf16 operands, f32 sums, every component: CUDA computes in bf16; the CPU
                               rounds both operands of every linear and convolution to bf16 (oneDNN's
                               AMX / AVX-512 BF16 kernels where the CPU has them; the log names the
                               kernel) and keeps those weights in bf16; its other ops stay f32 */
} sdc_precision;

/* The names users type for each enumerated choice: one table, shared by the library and the CLI. */
typedef enum sdc_name_list {
    SDC_NAMES_SAMPLER = 0, /* sdc_sampler: "euler", "euler_a", "heun", "lms", "ddim", "pndm", "dpm++2m"
                               (aliases "euler_ancestral", "dpmpp_2m") */
    SDC_NAMES_SCHEDULER,   /* karras flag: "discrete" 0, "karras" 1 */
    SDC_NAMES_RNG,         /* sdc_rng_type: "cpu", "cuda" */
    SDC_NAMES_DEVICE,      /* sdc_device: "cpu", "cuda", "auto" */
    SDC_NAMES_PRECISION,   /* sdc_precision: "fp16" (aliases "f16", "auto"), "f32", "bf16" */
    SDC_NAMES_LOAD_POLICY, /* sdc_load_policy: "auto", "all", "sequential", "phased", "stream" */
    SDC_NAMES_COUNT
} sdc_name_list;
/* 0 and *value set, or -1 for a name not in the list. */
int sdc_name_to_value(sdc_name_list list, const char *name, int *value);
/* The canonical name of a value ("?" when none). */
const char *sdc_value_name(sdc_name_list list, int value);
/* Every canonical name of the list, comma-separated, for help and error texts. */
const char *sdc_names(sdc_name_list list);

/* "auto", "all", "sequential", "phased"; parsing returns 0 or -1. */
const char *sdc_load_policy_name(sdc_load_policy p);
int sdc_load_policy_from_name(const char *name, sdc_load_policy *out);

typedef enum sdc_rng_type {
    SDC_RNG_TYPE_CPU = 0, /* torch.Generator('cpu'): diffusers' default on any device */
    SDC_RNG_TYPE_CUDA,    /* torch.Generator('cuda') (Philox), as A1111 uses; computed on the CPU */
    SDC_RNG_TYPE_COUNT
} sdc_rng_type;

/* ---------------------------------------------------------------------------------------------
 * Model: files opened on a device (configs, tokenizers, weight-file headers; no weights yet), shared
 * by the jobs that run on it. A model runs one job at a time (sdc_job_run waits for the previous one);
 * different models are independent and may be used from different threads at once.
 * ------------------------------------------------------------------------------------------- */

typedef struct sdc_model sdc_model;

/* One file or folder of a model and what it is. Roles read today:
 *   "model"      a diffusers folder, or a single-file .safetensors checkpoint (CompVis/LDM, SGM, or a
 *                Black Forest Labs Flux transformer: double_blocks.N..., optionally under
 *                model.diffusion_model.) (required, unless "diffusion_model" is given)
 *   "config"     single files: a diffusers folder whose config.json files describe the architecture
 *                (Flux: also where the text encoders, VAE and tokenizers come from when not given as
 *                files; the T5 tokenizer always comes from its tokenizer_2/: sdc ships none)
 *   "tokenizer"  a CLIP tokenizer folder (default: the model's tokenizer/, else the one sdc ships)
 * Flux components as separate files (the names of stable-diffusion.cpp's flags), each replacing that
 * component of "model" (the one without "model": the model is this file):
 *   "diffusion_model"  the transformer: BFL names (flux1-dev.safetensors) or diffusers names
 *   "clip_l"           CLIP-L text encoder, transformers names (text_model.*)
 *   "t5xxl"            T5 encoder, transformers names (encoder.block.N.layer.M..., shared.weight)
 *   "vae"              the VAE: BFL ae.safetensors names (LDM: encoder.down.N..., decoder.up.N...) or
 *                      diffusers names
 * A component file's architecture comes from the config folder's (or the model folder's) config.json
 * for that part and must agree with the file's shapes; without one it is inferred from the shapes
 * (transformer: blocks, widths, guidance_in -> dev; heads from the q/k norm width; T5: widths, layers,
 * heads; CLIP: widths, layers, heads = width / 64; VAE: Flux's latent scaling 0.3611, shift 0.1159).
 * A family that takes no such file refuses it. An unknown role is an error, not ignored. */
typedef struct sdc_component_path {
    const char *role;
    const char *path;
} sdc_component_path;

typedef struct sdc_model_params {
    const sdc_component_path *paths; /* [n_paths]; copied by sdc_model_open */
    int n_paths;
    sdc_device device; /* SDC_DEVICE_CPU */
    int n_threads;     /* <= 0: all cores */
    int prefer_fp16;   /* 1: the .fp16 weight files when both exist (default 0: f32 first) */
    sdc_log_fn log_fn; /* NULL: silent */
    void *log_user;
    sdc_log_level log_level;     /* SDC_LOG_INFO */
    sdc_load_policy load_policy; /* SDC_LOAD_AUTO */
    int64_t mem_budget;          /* bytes of device memory auto may plan for; <= 0: the backend's default
                                   (CPU: MemAvailable - 1 GiB, capped by what an address-space limit
                                   leaves after OpenBLAS's per-thread buffers; CUDA: free memory - 512 MiB) */
    sdc_precision precision;     /* SDC_PRECISION_AUTO (default), _F32 or _BF16: the compute type (sdc_precision) */
    int profile;                 /* 1: time every op and count its FLOPs by family and phase (synchronising
                                   after each, so slower) */
    const char *prediction_type; /* "epsilon" or "v_prediction": overrides the scheduler config's (SD 2.x
                                   single files are taken as v_prediction, as diffusers does; SD 2.x base
                                   needs "epsilon"); NULL: the model's */
    int stream_window;           /* load policy stream: at most this many denoiser blocks resident (fewer when the
                          budget allows fewer); <= 0: as many as the budget allows */
    int64_t prefetch_mem;        /* host bytes the next phase's weights may be read into while the current phase
                             computes (page-locked on CUDA; the load is then an upload, its disk read hidden);
                             0: the default: its files are only asked into the OS page cache ahead (an image
                             cost more than it saved once the loader read with 4 threads: README); < 0: off */
    int64_t host_cache;          /* host bytes that keep components' weights after they leave the device (page-locked
                             on CUDA), so their later loads in this process are uploads, not file reads;
                             0 (default): none */
    int stream_prefetch;         /* load policy stream on CUDA: the next block that is not resident uploads on the
                             copy stream while the current ones compute (bit-identical: test_stream on an
                             H100); 0 (default) or > 0: on; < 0: off (every block load synchronous). > 0 also
                             loads a streamable component that any other policy loads whole with all its
                             blocks' uploads enqueued at once, its first forward starting while later blocks
                             still upload (opt-in: not yet measured on a GPU) */
} sdc_model_params;

void sdc_model_params_init(sdc_model_params *p);
/* NULL on error; the reason goes to p->log_fn. */
sdc_model *sdc_model_open(const sdc_model_params *p);
void sdc_model_free(sdc_model *m); /* NULL is harmless; no job may be running on it */
/* The family that opened the files: "sd1" (SD 1.x and 2.x). */
const char *sdc_model_family(const sdc_model *m);
/* The shape of one image's raw latents (latents_in / latents_out) for a width x height job:
 * ne = {1, channels, height / f, width / f} (SD 1.x/2.x: 4 channels, f = 8). */
sdc_status sdc_model_latent_shape(const sdc_model *m, int width, int height, int64_t ne[4]);
/* The first error message logged through the model since it opened or since the last sdc_job_new /
 * sdc_job_run began ("" when none): the cause, for bindings. */
const char *sdc_model_last_error(const sdc_model *m);

/* ---------------------------------------------------------------------------------------------
 * Context: the one-call compatibility layer over a model and its jobs (sdc_ctx_new opens a model,
 * sdc_generate runs one job). A context is used by one thread at a time.
 * ------------------------------------------------------------------------------------------- */

typedef struct sdc_ctx sdc_ctx;

/* Called during long work: phase is "condition", "encode", "denoise" or "decode"; step counts from 1
 * to total within the phase. Return nonzero to cancel (sdc_generate then returns SDC_ERR_CANCELLED). */
typedef int (*sdc_progress_fn)(const char *phase, int step, int total, void *user);

typedef struct sdc_ctx_params {
    const char *model_path;    /* a diffusers folder, or a single-file (CompVis/LDM) .safetensors checkpoint */
    const char *config_dir;    /* single files: a diffusers folder whose config.json files describe the
                                   architecture (overrides detection); NULL: detect */
    const char *tokenizer_dir; /* NULL: the model's tokenizer/ folder, else the CLIP tokenizer sdc ships */
    sdc_device device;         /* SDC_DEVICE_CPU */
    int n_threads;             /* <= 0: all cores */
    int prefer_fp16;           /* 1: the .fp16 weight files when both exist (default 0: f32 first) */
    sdc_log_fn log_fn;         /* NULL: silent */
    void *log_user;
    sdc_log_level log_level;     /* SDC_LOG_INFO */
    sdc_progress_fn progress_fn; /* NULL: none */
    void *progress_user;
    sdc_load_policy load_policy; /* SDC_LOAD_AUTO */
    int64_t mem_budget;          /* bytes of device memory auto may plan for; <= 0: the backend's default
                                   (CPU: MemAvailable - 1 GiB, capped by what an address-space limit
                                   leaves after OpenBLAS's per-thread buffers; CUDA: free memory - 512 MiB) */
    sdc_precision precision;     /* SDC_PRECISION_AUTO (default), _F32 or _BF16: the compute type (sdc_precision) */
    int profile;                 /* 1: time every op and count its FLOPs (synchronising after each, so
                                   slower); the report then breaks compute time and GFLOP/s down per
                                   phase and op family (JSON: op_seconds, op_flops) */
    const char *prediction_type; /* sdc_model_params' */
    /* Flux components as separate files (sdc_model_params' roles of the same names); NULL: none */
    const char *diffusion_model_path; /* the transformer (replaces model_path's, or stands for it) */
    const char *clip_l_path;
    const char *t5xxl_path;
    const char *vae_path;
    int stream_window;    /* sdc_model_params' */
    int64_t prefetch_mem; /* sdc_model_params' */
    int64_t host_cache;   /* sdc_model_params' */
    int stream_prefetch;  /* sdc_model_params' */
} sdc_ctx_params;

void sdc_ctx_params_init(sdc_ctx_params *p);
/* Opens the model (reads configs and weight-file headers, no weights yet). NULL on error; the reason
 * goes to p->log_fn. The context copies what it needs from p (strings included). */
sdc_ctx *sdc_ctx_new(const sdc_ctx_params *p);
void sdc_ctx_free(sdc_ctx *ctx); /* NULL is harmless */

/* ---------------------------------------------------------------------------------------------
 * Generation
 * ------------------------------------------------------------------------------------------- */

typedef struct sdc_image {
    int width, height; /* pixels */
    int channels;      /* 3 (RGB) */
    uint8_t *data;     /* height * width * channels bytes, row-major */
    int64_t seed;      /* the seed this image was made from */
    char *parameters;  /* A1111-style "parameters" text (UTF-8) */
} sdc_image;

/* One entry of a many-prompt job (sdc_gen_params.prompts). */
typedef struct sdc_prompt {
    const char *prompt;          /* UTF-8; NULL: "" */
    const char *negative_prompt; /* NULL: the job's negative_prompt; "": none */
    int64_t seed;                /* the entry's image i uses seed + i */
} sdc_prompt;

typedef struct sdc_gen_params {
    const char *prompt;          /* UTF-8; "" allowed */
    const char *negative_prompt; /* NULL or "": the empty string is the unconditional prompt */
    int width, height;           /* multiples of 8; default 512 x 512 */
    int steps;                   /* >= 1; default 20 */
    float cfg_scale;             /* <= 1 skips the unconditional pass; default 7.5 */
    int64_t seed;                /* default 42; image i of a batch uses seed + i */
    int batch_count;             /* images to make; default 1 */
    sdc_sampler sampler;         /* default SDC_SAMPLER_DEFAULT */
    int karras;                  /* 1: Karras sigmas (not with ddim or pndm) */
    sdc_rng_type rng;            /* default SDC_RNG_TYPE_CPU */
    int clip_skip;               /* A1111 numbering: 1 = last layer, 2 = penultimate; <= 0 default */
    const sdc_image *init_image; /* img2img source (resized? no: must be width x height), or NULL */
    float strength;              /* img2img: in (0, 1]; default 0.75 */
    /* Optional raw buffers, for tests and tools (all may be NULL): */
    const float *latents_in; /* [batch, C, h, w] initial noise instead of drawing it (unscaled); the
                                   shape per image is sdc_model_latent_shape's */
    float *latents_out;      /* [batch, C, h, w] receives the final latents, before the VAE */
    float *pixels_out;       /* [batch, height, width, 3] receives the decoded image in [0, 1] */
    /* SDXL micro-conditioning (other families ignore them), in pixels; 0 = diffusers' default:
     * original = target = (width, height), crop (0, 0). Negative values are SDC_ERR_INVALID_ARG. */
    int original_width, original_height;
    int target_width, target_height;
    int crop_top, crop_left;
    int vae_tiling; /* 1: decode in tiles (bounded memory at any size); default 0 */
    /* Flux: guidance is embedded in the dev transformer (no classifier-free guidance: cfg_scale and the
     * negative prompt are ignored); schnell ignores it. Default 3.5. */
    float guidance;
    int t5_max_length; /* Flux: T5 tokens (padding / truncation); 0: the variant's (schnell 256, dev 512) */
    /* Many prompts in one job, phase-major: every entry is conditioned (the text encoders loaded once),
     * then every image denoised (the denoiser loaded once), then every image decoded. Each entry makes
     * batch_count images (its seed + i); the images come in list order: image k is entry
     * k / batch_count. On the CPU each image is bit-identical to the same prompt and seed run alone,
     * whatever max_batch is (the kernels are batch-invariant; CUDA: not guaranteed above max_batch 1).
     * NULL / 0: one entry made of prompt, negative_prompt and seed above. */
    const sdc_prompt *prompts; /* [n_prompts] */
    int n_prompts;
    /* Images per UNet / transformer call (each with its own CFG rows); <= 0: every image of the job in
     * one call. Default 1. More rows per call use the device better and need more activation memory
     * (the plan measures the group size used). */
    int max_batch;
} sdc_gen_params;

void sdc_gen_params_init(sdc_gen_params *p);
/* Makes n_prompts (at least 1) x batch_count images. On SDC_OK *images is an array of *n_images images that the caller frees
 * with sdc_image_free. On error *images is NULL and the reason is logged. */
sdc_status sdc_generate(sdc_ctx *ctx, const sdc_gen_params *p, sdc_image **images, int *n_images);
void sdc_image_free(sdc_image *images, int n_images); /* NULL is harmless */

/* ---------------------------------------------------------------------------------------------
 * Jobs: one request on a model (its parameters, progress, cancellation and report).
 * ------------------------------------------------------------------------------------------- */

typedef struct sdc_job sdc_job;

/* A job for p on m. p is copied, but not what it points to (prompts, init image, raw buffers): those
 * must stay valid until sdc_job_run returns. NULL (logged through m) on bad parameters. */
sdc_job *sdc_job_new(sdc_model *m, const sdc_gen_params *p);
/* Progress of the job's phases ("condition", "denoise", ... as the family names them). */
void sdc_job_set_progress(sdc_job *j, sdc_progress_fn fn, void *user);
/* Runs the job to the end: SDC_OK, or the error (logged through the model). A job runs once. */
sdc_status sdc_job_run(sdc_job *j);
/* Asks a running job to stop at the next step; callable from any thread. sdc_job_run then returns
 * SDC_ERR_CANCELLED. */
void sdc_job_cancel(sdc_job *j);
/* The images of a finished job; the caller owns them (sdc_image_free). NULL before success. */
sdc_image *sdc_job_take_images(sdc_job *j, int *n_images);
/* The run's report as JSON (as sdc_last_report_json), owned by the job; NULL before success. */
const char *sdc_job_report_json(const sdc_job *j);
void sdc_job_free(sdc_job *j); /* NULL is harmless; not while sdc_job_run runs */

/* Dry run on a model: as sdc_plan_memory. */
sdc_status sdc_model_plan_memory(sdc_model *m, const sdc_gen_params *p, char **text);

/* Dry run: the planned peak device memory of each phase under every policy, split into weights,
 * activations and workspace, for p's size, batch and mode, and which policy auto would pick under the
 * context's budget. Reads no weight data. On SDC_OK *text is a malloc'd table the caller frees. */
sdc_status sdc_plan_memory(sdc_ctx *ctx, const sdc_gen_params *p, char **text);

/* The family of ctx's model ("sd1", "sdxl", "flux"), as sdc_model_family. */
const char *sdc_ctx_family(const sdc_ctx *ctx);

/* The report of the last sdc_generate on ctx, as JSON (per phase: wall and load time, bytes read,
 * resident weights, peak bytes by kind; overall peak device bytes, peak RSS, the policy and why).
 * Owned by ctx, valid until the next sdc_generate or sdc_ctx_free; NULL before the first run. */
const char *sdc_last_report_json(const sdc_ctx *ctx);

/* PNG files. Loading converts any PNG to 8-bit RGB. Saving writes a temporary file in the same folder
 * and renames it into place, so a failure never leaves a half-written image; the image's parameters
 * text goes in a "parameters" text chunk (tEXt when Latin-1, else iTXt). Messages go to log_fn. */
sdc_status sdc_image_load(const char *path, sdc_image **out, sdc_log_fn log_fn, void *log_user);
sdc_status sdc_image_save(const sdc_image *img, const char *path, sdc_log_fn log_fn, void *log_user);

/* Parses "euler", "euler_a", "heun", "lms", "ddim", "pndm", "dpm++2m": returns 0 or -1. */
int sdc_sampler_from_name(const char *name, sdc_sampler *out);
const char *sdc_sampler_name(sdc_sampler s);

#ifdef __cplusplus
}
#endif
#endif /* SDC_H */
