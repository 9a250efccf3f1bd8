/* test_stream.c - the stream load policy (block streaming of the denoiser): on tiny-sd1 (UNet: down, mid
 * and up blocks) and tiny-flux-schnell (double and single blocks), with windows of every block, half of
 * them, 2 and 1 (stream_window), and windows from the budget (the default budget; the smallest budget the
 * window-1 plan fits):
 *   - raw latents and PNG bytes are identical to `all` (streaming changes when weights load, never which
 *     kernels run on which data in which order);
 *   - the plan's window is the one asked for, the measured peak is within the plan (and the budget) and
 *     below `all`'s, the denoiser's measured resident weights within the plan's, and the measured block
 *     loads are what the window implies (every block once with a window of all of them; otherwise every
 *     block in the first denoiser call, then all but the window's sticky blocks in each later one);
 *   - the expectation per call (plan table and report): a sampling step is one denoiser call, the plan's
 *     FLOPs per call are the profile's measured ones over the run's calls (rel. 1e-9), and the expected
 *     bytes, transfer, compute and call times are the plan's bytes and FLOPs at the rates the report
 *     names (rel. 1e-12; the plan table's printed figures to their digits);
 *   - a budget one byte below the window-1 plan is a clear error naming the plan: no crash, no image, no
 *     weight read;
 *   - the UNet's weight file changing while its blocks stream (during the denoise phase) fails that
 *     generation (no image), and once the file is back, the same context makes `all`'s image again.
 * Under stream Flux's T5 streams its layers too (condition_2), so these identities cover it.
 * On these tiny models the VAE decode, not the denoiser, sets the peak of the smaller windows' plans: the
 * budget alone gives a window below every block only on tiny-sd1 (4 of 9); stream_window caps it.
 * Runs on $SDC_TEST_DEVICE (default cpu; scripts/cuda_check.sh runs it on cuda too).
 * Prints the hash table: model, budget, window, latents and PNG hashes, measured peak, denoise weights
 * (measured resident, planned), block loads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/file.h"
#include "model/stream.h"
#include "pipeline/ctx.h"
#include "pipeline/plan.h"
#include "sdc.h"
#include "test_pipeline_util.h"
#include "test_util.h"

typedef struct model_case {
    const char *model; /* in the reference bundle */
    sdc_sampler sampler;
    float cfg;
    int steps, images;
} model_case;

typedef struct run_out {
    uint64_t lat, png;
    size_t peak;                     /* the allocator's peak over the run */
    int window;                      /* the denoise phase's planned window (0: not streamed) */
    int blocks;                      /* and its blocks */
    int lookahead;                   /* 1: block k + 1 uploads while block k computes (CUDA) */
    double loads;                    /* block loads measured */
    double t5_loads;                 /* Flux: T5's layer loads (condition_2 streams it too) */
    double read;                     /* file bytes they read */
    size_t plan_peak;                /* the plan's peak */
    size_t den_weights, den_planned; /* the denoise phase's resident weights: measured, planned */
    /* the denoise phase's calls (progress steps), its planned read per call, and its FLOPs per call:
     * planned (the counting backend) and measured (the profile's count over its calls) */
    double calls, read_planned, flops_planned, flops_measured;
    /* the report's expectation per call and the rates it used */
    double h2d, rate, x_read, x_transfer, x_flops, x_compute, x_call;
    int rates_measured;
} run_out;

static sdc_ctx *open_ctx(const model_case *mc, sdc_load_policy pol, int64_t budget, int window, const sdc_logger *log) {
    sdc_ctx_params cp;
    sdc_ctx_params_init(&cp);
    cp.model_path = test_ref_path(mc->model);
    cp.device = (sdc_device)test_env_device();
    cp.n_threads = 2;
    cp.load_policy = pol;
    cp.mem_budget = budget;
    cp.stream_window = window;
    cp.prefetch_mem = -1;   /* blocks read from the file (test_prefetch covers them from host memory) */
    cp.stream_prefetch = 1; /* the lookahead where the backend has asynchronous copies (CUDA) */
    cp.profile = 1;         /* each phase's FLOPs, against the plan's (synchronises after each op: same results) */
    cp.log_fn = log ? log->fn : sdc_log_stderr;
    cp.log_level = SDC_LOG_WARN;
    return sdc_ctx_new(&cp);
}

static void params(const model_case *mc, sdc_gen_params *p) {
    sdc_gen_params_init(p);
    p->prompt = "a red house by a lake";
    p->negative_prompt = "blurry";
    p->width = p->height = 64;
    p->steps = mc->steps;
    p->cfg_scale = mc->cfg;
    p->sampler = mc->sampler;
    p->seed = 7;
    p->batch_count = mc->images;
}

/* The number at key of a report object (the report always writes the keys read here). */
static double num(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key)->valuedouble; }

/* One generation on ctx; hashes, peaks and the denoise phase's stream figures into o. */
static sdc_status generate(sdc_ctx *ctx, const model_case *mc, run_out *o) {
    memset(o, 0, sizeof *o);
    sdc_gen_params p;
    params(mc, &p);
    sdc_status st = test_generate_hashed(ctx, &p, mc->model, &o->lat, &o->png);
    if (st == SDC_OK) {
        cJSON *rep = cJSON_Parse(sdc_last_report_json(ctx));
        o->peak = (size_t)num(rep, "peak_device_bytes");
        o->plan_peak = (size_t)num(rep, "planned_peak_bytes");
        const cJSON *den = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(rep, "phases"), "denoise");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(den, "stream");
        o->den_weights = (size_t)num(den, "resident_weight_bytes");
        o->den_planned = (size_t)num(cJSON_GetObjectItemCaseSensitive(den, "planned_bytes"), "weights");
        const cJSON *fl = cJSON_GetObjectItemCaseSensitive(den, "op_flops"), *f;
        cJSON_ArrayForEach(f, fl) o->flops_measured += f->valuedouble;
        if (s) {
            const cJSON *x = cJSON_GetObjectItemCaseSensitive(s, "expected_per_call");
            o->calls = num(s, "calls");
            o->read_planned = num(s, "planned_read_bytes_per_call");
            o->flops_planned = num(s, "planned_flops_per_call");
            if (x) { /* a profiled run's (the report times the rates only for one) */
                o->rates_measured = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(x, "rates_measured"));
                o->h2d = num(x, "h2d_bytes_per_second");
                o->rate = num(x, "linear_flops_per_second");
                o->x_read = num(x, "read_bytes");
                o->x_transfer = num(x, "transfer_seconds");
                o->x_flops = num(x, "flops");
                o->x_compute = num(x, "compute_seconds");
                o->x_call = num(x, "call_seconds");
            }
            o->window = (int)num(s, "window");
            o->blocks = (int)num(s, "blocks");
            o->loads = num(s, "block_loads");
            o->read = num(s, "block_bytes_read");
            o->lookahead = (int)num(s, "lookahead");
        }
        const cJSON *t5 = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(rep, "phases"), "condition_2"), "stream");
        if (t5) o->t5_loads = num(t5, "block_loads");
        cJSON_Delete(rep);
    }
    return st;
}

static int run(const model_case *mc, sdc_load_policy pol, int64_t budget, int window, run_out *o) {
    sdc_ctx *ctx = open_ctx(mc, pol, budget, window, NULL);
    sdc_status st = ctx ? generate(ctx, mc, o) : SDC_ERR_BACKEND;
    if (st != SDC_OK)
        test_check(0, "%s %s budget %lld: %s", mc->model, sdc_load_policy_name(pol), (long long)budget,
                   sdc_status_str(st));
    sdc_ctx_free(ctx);
    return st == SDC_OK;
}

/* The file the progress callback changes at the first denoise step. */
static const char *change_file;

static int change_at_denoise(const char *phase, int step, int total, void *user) {
    (void)total;
    int *changed = user;
    if (!strcmp(phase, "denoise") && step == 1 && !*changed) {
        FILE *f = fopen(change_file, "ab");
        if (f) {
            fputs("appended", f);
            fclose(f);
            *changed = 1;
        }
    }
    return 0;
}

/* The UNet's file changes after the first denoise step, while blocks stream with a window of one: that
 * generation fails with an I/O error and no image; the file restored (size and mtime), the same context
 * makes all's image. */
static void file_changes_while_streaming(const model_case *mc, const run_out *all) {
    const char *dir = test_make_tmp_dir("stream-fault");
    char cmd[1024], model[512], unet[600];
    snprintf(model, sizeof model, "%s/%s", dir, mc->model); /* the PNG text names the folder */
    snprintf(unet, sizeof unet, "%s/unet/diffusion_pytorch_model.safetensors", model);
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", test_ref_path(mc->model), model);
    struct stat before;
    if (!test_check(system(cmd) == 0 && stat(unet, &before) == 0, "copy %s", mc->model)) return;
    change_file = unet;
    int changed = 0;
    sdc_ctx_params cp;
    sdc_ctx_params_init(&cp);
    cp.model_path = model;
    cp.device = (sdc_device)test_env_device();
    cp.n_threads = 2;
    cp.load_policy = SDC_LOAD_STREAM;
    cp.stream_window = 1;
    cp.prefetch_mem = -1; /* the file, not a prefetched copy of it, is what changes under the stream */
    cp.log_fn = test_capture_logger()->fn;
    cp.log_level = SDC_LOG_WARN;
    cp.progress_fn = change_at_denoise;
    cp.progress_user = &changed;
    sdc_ctx *ctx = sdc_ctx_new(&cp);
    run_out o;
    sdc_status st = ctx ? generate(ctx, mc, &o) : SDC_ERR_BACKEND;
    test_check(changed && st == SDC_ERR_IO && strstr(test_last_error(), "changed"),
               "%s: the UNet file changed while its blocks stream: %s (\"%s\")", mc->model, sdc_status_str(st),
               test_last_error());
    const struct timespec times[2] = {before.st_atim, before.st_mtim};
    const int restored = truncate(unet, before.st_size) == 0 && utimensat(AT_FDCWD, unet, times, 0) == 0;
    st = ctx && restored ? generate(ctx, mc, &o) : SDC_ERR_IO;
    test_check(st == SDC_OK && o.lat == all->lat && o.png == all->png,
               "%s: the file restored, the same context makes all's image again: %s, latents %016llx png %016llx",
               mc->model, sdc_status_str(st), (unsigned long long)o.lat, (unsigned long long)o.png);
    sdc_ctx_free(ctx);
    test_rm_tree(model);
}

/* The smallest budget whose stream plan has a window of w blocks: the largest phase total with the
 * denoiser holding what the planner says a window of w holds (sdc_stream_held). */
static int64_t budget_for(sdc_ctx *probe, const sdc_job_shape *js, int w, int *n_blocks) {
    sdc_model *m = probe->m;
    m->budget = (size_t)1 << 50;
    sdc_plan plan;
    sdc_plan_make(m, js, SDC_LOAD_STREAM, &plan);
    size_t need = 0;
    for (int ph = 0; ph < plan.n_phases; ph++) {
        const sdc_phase_plan *pp = &plan.phase[ph];
        if (!pp->runs) continue;
        size_t total = pp->total;
        if (pp->window > 0) {
            const sdc_stream_shape *sh = &m->stream[pp->stream_comp];
            const int lookahead = sdc_stream_lookahead(m->be, m->stream_prefetch, w, sh->n_units);
            total = total - pp->stream_resident + sdc_stream_held(sh, w, lookahead, NULL);
            *n_blocks = sh->n_units;
        }
        if (total > need) need = total;
    }
    return (int64_t)need;
}

static double rel(double a, double b) { return fabs(a - b) / (fabs(b) > 0 ? fabs(b) : 1.0); }

/* The report's expectation per denoiser call against the run: a sampling step is one call (CFG's rows
 * and the group's images ride in it), the plan's FLOPs per call are the profile's measured ones over the
 * calls, and the expected times are the bytes and FLOPs at the rates the report names. */
static void check_expectation(const char *what, const model_case *mc, const run_out *o) {
    const double calls = (double)mc->steps * mc->images; /* max_batch 1: one group per image */
    test_check(o->calls == calls, "%s: %.0f denoiser calls for %d steps x %d images: one call per step", what, o->calls,
               mc->steps, mc->images);
    test_check(o->flops_planned > 0 && rel(o->flops_measured / o->calls, o->flops_planned) <= 1e-9,
               "%s: planned %.6g FLOPs per call, measured %.6g over %.0f calls (rel. diff. %.2g <= 1e-9)", what,
               o->flops_planned, o->flops_measured / o->calls, o->calls,
               rel(o->flops_measured / o->calls, o->flops_planned));
    test_check(o->rates_measured && o->h2d > 0 && o->rate > 0, "%s: rates measured: %.3g B/s upload, %.3g FLOP/s", what,
               o->h2d, o->rate);
    const double want_call = o->lookahead ? fmax(o->x_transfer, o->x_compute) : o->x_transfer + o->x_compute;
    const double err = fmax(fmax(rel(o->x_read, o->read_planned * 1), rel(o->x_transfer, o->x_read / o->h2d)),
                            fmax(fmax(rel(o->x_flops, o->flops_planned), rel(o->x_compute, o->x_flops / o->rate)),
                                 rel(o->x_call, want_call)));
    test_check(err <= 1e-12,
               "%s: expected per step (1 call): %.0f bytes = the plan's read per call, %.3g s = bytes / %.3g B/s, "
               "%.4g FLOPs = the plan's, %.3g s = FLOPs / %.3g FLOP/s, call %.3g s = %s (rel. err. %.2g <= 1e-12)",
               what, o->x_read, o->x_transfer, o->h2d, o->x_flops, o->x_compute, o->rate, o->x_call,
               o->lookahead ? "max(transfer, compute)" : "transfer + compute", err);
}

/* The plan table's stream denoise row carries the expectation line, its figures consistent to their
 * printed digits. */
static void check_plan_table(sdc_ctx *ctx, const model_case *mc) {
    sdc_gen_params p;
    params(mc, &p);
    char *text = NULL;
    const sdc_status st = sdc_plan_memory(ctx, &p, &text);
    const char *row = text ? strstr(text, "\nstream      denoise") : NULL; /* the denoiser's, not T5's */
    const char *x = row ? strstr(row, "expected per call: ") : NULL;
    double mib_read = -1, tr = -1, gbs = -1, comp = -1, gflop = -1, gflops = -1;
    const int got = x ? sscanf(x,
                               "expected per call: %lf MiB read, transfer %lf s at %lf GB/s; compute >= %lf s, %lf "
                               "GFLOP at %lf GFLOP/s",
                               &mib_read, &tr, &gbs, &comp, &gflop, &gflops)
                      : 0;
    /* printed to 4 decimals of a second, 3 digits of the rates: within 1e-4 s + 1% */
    const double want_tr = gbs > 0 ? mib_read * 1048576.0 / (gbs * 1e9) : -1,
                 want_comp = gflops > 0 ? gflop / gflops : -1;
    test_check(st == SDC_OK && got == 6 && fabs(tr - want_tr) <= 1e-4 + 0.01 * want_tr &&
                   fabs(comp - want_comp) <= 1e-4 + 0.01 * want_comp,
               "%s: the plan's stream row expects per call %.1f MiB -> %.4f s at %.2f GB/s (bytes / rate: %.4f), "
               "%.3f GFLOP -> %.4f s at %.1f GFLOP/s (%.4f)",
               mc->model, mib_read, tr, gbs, want_tr, gflop, comp, gflops, want_comp);
    free(text);
}

static void print_row(const char *model, const char *pol, int64_t budget, const run_out *o) {
    printf("  %-18s %-7s %10.3f %3d/%-3d %016llx %016llx %9.3f %9.3f %9.3f %6.0f\n", model, pol,
           budget > 0 ? (double)budget / 1048576.0 : 0.0, o->window, o->blocks, (unsigned long long)o->lat,
           (unsigned long long)o->png, (double)o->peak / 1048576.0, (double)o->den_weights / 1048576.0,
           (double)o->den_planned / 1048576.0, o->loads);
}

/* A budget one byte below the window-1 plan: a clear error, before any weight is read. */
static void too_small(const model_case *mc, int64_t budget) {
    sdc_ctx *ctx = open_ctx(mc, SDC_LOAD_STREAM, budget, 0, test_capture_logger());
    sdc_gen_params p;
    params(mc, &p);
    sdc_image *imgs = NULL;
    int n = 0;
    sdc_status st = ctx ? sdc_generate(ctx, &p, &imgs, &n) : SDC_ERR_BACKEND;
    test_check(ctx && st == SDC_ERR_OOM && !imgs && n == 0 && ctx->m->be->stats.peak[SDC_MEM_WEIGHTS] == 0 &&
                   sdc_index_bytes_read(ctx->m->mf->index) == 0 && strstr(test_last_error(), "window of one block"),
               "%s: stream with a budget of %lld bytes (one below one block's plan): %s, no image, nothing read "
               "(\"%s\")",
               mc->model, (long long)budget, sdc_status_str(st), test_last_error());
    sdc_image_free(imgs, n);
    sdc_ctx_free(ctx);
}

static void model(const model_case *mc, run_out *all_out) {
    run_out all;
    if (!run(mc, SDC_LOAD_ALL, 0, 0, &all)) return;
    *all_out = all;
    print_row(mc->model, "all", 0, &all);
    sdc_ctx *probe = open_ctx(mc, SDC_LOAD_STREAM, 0, 0, NULL);
    if (!test_check(probe != NULL, "%s: open", mc->model)) return;
    sdc_gen_params p;
    params(mc, &p);
    sdc_job_shape js;
    sdc_job_shape_from_params(&p, &js);
    int n = 0;
    budget_for(probe, &js, 1, &n);
    if (!test_check(n >= 3, "%s: the denoiser streams in %d blocks", mc->model, n)) {
        sdc_ctx_free(probe);
        return;
    }
    const int64_t one = budget_for(probe, &js, 1, &n);
    probe->m->budget = (size_t)one;
    probe->m->stream_window = 2;
    check_plan_table(probe, mc);
    sdc_ctx_free(probe);
    /* a window asked for (stream_window, the default budget), then windows from the budget alone */
    const struct {
        int window;
        int64_t budget;
    } cases[] = {{n, 0}, {n / 2, 0}, {2, 0}, {1, 0}, {0, 0}, {0, one}};
    double calls = 0; /* denoiser calls: block loads / blocks under a window smaller than every block */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int64_t budget = cases[i].budget;
        run_out o;
        if (!run(mc, SDC_LOAD_STREAM, budget, cases[i].window, &o)) continue;
        print_row(mc->model, "stream", budget, &o);
        if (!strcmp(mc->model, "tiny-flux-schnell"))
            test_check(o.t5_loads > 0, "%s stream: T5's layers streamed too (%.0f layer loads)", mc->model, o.t5_loads);
        char what[160];
        snprintf(what, sizeof what, "%s stream budget %.3f MiB (0: default) stream_window %d: window %d/%d", mc->model,
                 (double)budget / 1048576.0, cases[i].window, o.window, o.blocks);
        test_check(o.lat == all.lat && o.png == all.png,
                   "%s: latents %016llx png %016llx identical to all's (%016llx %016llx)", what,
                   (unsigned long long)o.lat, (unsigned long long)o.png, (unsigned long long)all.lat,
                   (unsigned long long)all.png);
        test_check(o.peak < all.peak, "%s: measured peak %zu below all's %zu", what, o.peak, all.peak);
        test_check(o.peak <= o.plan_peak, "%s: measured peak %zu within the plan's %zu", what, o.peak, o.plan_peak);
        test_check(o.den_weights <= o.den_planned, "%s: denoise weights %zu within the plan's %zu", what, o.den_weights,
                   o.den_planned);
        check_expectation(what, mc, &o);
        if (cases[i].window > 0 || !budget)
            test_check(o.window == (cases[i].window ? cases[i].window : n), "%s: the window asked for", what);
        if (budget)
            test_check(o.window >= 1 && o.peak <= (size_t)budget, "%s: measured peak %zu within the budget %lld", what,
                       o.peak, (long long)budget);
        if (o.window == n) {
            test_check(o.loads == n, "%s: every block loaded once (%.0f loads)", what, o.loads);
        } else {
            /* the first call loads every block; each later one all but the window - 1 sticky ones (with the
             * lookahead of a backend with asynchronous copies, window - 2: two slots cycle) */
            const double per = n - o.window + 1 + o.lookahead;
            if (calls == 0) calls = 1 + (o.loads - n) / per;
            test_check(calls >= 2 && o.loads == n + (calls - 1) * per && o.read > 0,
                       "%s: every block loaded by the first denoiser call, then %.0f per call (%.0f loads, %.0f calls, "
                       "%.0f bytes read)",
                       what, per, o.loads, calls, o.read);
        }
    }
    too_small(mc, one - 1);
}

int main(void) {
    const model_case cases[] = {
        {"tiny-sd1", SDC_SAMPLER_EULER_A, 7.5f, 3, 2},
        {"tiny-flux-schnell", SDC_SAMPLER_DEFAULT, 1.0f, 2, 1},
    };
    printf("  %-18s %-7s %10s %7s %16s %16s %9s %9s %9s %6s\n", "model", "policy", "budget MiB", "window", "latents",
           "png", "peak MiB", "den. wts", "planned", "loads");
    run_out all[2] = {{0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) model(&cases[i], &all[i]);
    if (all[0].png) file_changes_while_streaming(&cases[0], &all[0]);
    return test_finish();
}
