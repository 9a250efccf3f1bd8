/* test_residency.c - the residency planner: every load policy gives bit-identical output (raw floats and
 * PNG bytes), for txt2img and img2img with several samplers, across repeated runs in one context and
 * across thread counts; the plan matches the measured peaks; auto picks by budget; a budget below every
 * plan fails before any weight is read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/file.h"
#include "pipeline/ctx.h"
#include "pipeline/plan.h"
#include "sdc.h"
#include "test_util.h"

typedef struct run_out {
    uint64_t lat_hash, pix_hash, png_hash;
    size_t peak_device, planned_peak;
    char policy[16];
} run_out;

static uint64_t fnv(const void *p, size_t n, uint64_t h) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* fp16: the folder's .fp16 files (the CPU keeps their matrix weights 16-bit) */
static sdc_ctx *open_ctx_variant(sdc_load_policy pol, int threads, int64_t budget, int fp16) {
    sdc_ctx_params cp;
    sdc_ctx_params_init(&cp);
    cp.model_path = test_ref_path("tiny-sd1");
    cp.prefer_fp16 = fp16;
    cp.n_threads = threads;
    cp.load_policy = pol;
    cp.mem_budget = budget;
    cp.log_fn = sdc_log_stderr;
    cp.log_level = SDC_LOG_WARN;
    return sdc_ctx_new(&cp);
}

static sdc_ctx *open_ctx(sdc_load_policy pol, int threads, int64_t budget) {
    return open_ctx_variant(pol, threads, budget, 0);
}

typedef struct job {
    const char *name;
    sdc_sampler sampler;
    int img2img;
    int batch;
} job;

static sdc_image *init_img;

/* Runs the job on ctx; hashes latents, pixels and the PNG files of every image. */
static int run(sdc_ctx *ctx, const job *j, run_out *o) {
    sdc_gen_params p;
    sdc_gen_params_init(&p);
    p.prompt = "a red fox in the snow";
    p.negative_prompt = "blurry";
    p.width = p.height = 64;
    p.steps = 4;
    p.seed = 11;
    p.sampler = j->sampler;
    p.batch_count = j->batch;
    if (j->img2img) {
        p.init_image = init_img;
        p.strength = 0.6f;
    }
    size_t nl = (size_t)j->batch * 4 * 8 * 8, np = (size_t)j->batch * 64 * 64 * 3;
    float *lat = malloc(sizeof(float) * nl), *pix = malloc(sizeof(float) * np);
    p.latents_out = lat;
    p.pixels_out = pix;
    sdc_image *imgs = NULL;
    int n = 0;
    sdc_status st = sdc_generate(ctx, &p, &imgs, &n);
    memset(o, 0, sizeof *o);
    if (st == SDC_OK) {
        o->lat_hash = fnv(lat, sizeof(float) * nl, 0xcbf29ce484222325ull);
        o->pix_hash = fnv(pix, sizeof(float) * np, 0xcbf29ce484222325ull);
        o->png_hash = 0xcbf29ce484222325ull;
        char path[] = "/tmp/sdc-residency-XXXXXX";
        int fd = mkstemp(path);
        close(fd);
        for (int i = 0; i < n; i++) {
            char *buf;
            size_t len;
            if (sdc_image_save(&imgs[i], path, NULL, NULL) == SDC_OK &&
                sdc_read_file(path, NULL, &buf, &len) == SDC_OK) {
                o->png_hash = fnv(buf, len, o->png_hash);
                free(buf);
            }
        }
        unlink(path);
        o->peak_device = ctx->m->be->stats.peak_total;
    }
    sdc_image_free(imgs, n);
    free(lat);
    free(pix);
    return st == SDC_OK;
}

static void policies_agree(const job *j, int threads, run_out *ref_out) {
    run_out first = {0};
    int have = 0;
    for (int pol = SDC_LOAD_AUTO; pol < SDC_LOAD_POLICY_COUNT; pol++) {
        sdc_ctx *ctx = open_ctx((sdc_load_policy)pol, threads, 0);
        run_out a, b;
        int ok = ctx && run(ctx, j, &a) && run(ctx, j, &b);
        char what[160];
        snprintf(what, sizeof what, "%s, %d thread(s), %s", j->name, threads,
                 sdc_load_policy_name((sdc_load_policy)pol));
        if (!test_check(ok, "%s: two runs in one context", what)) {
            sdc_ctx_free(ctx);
            continue;
        }
        test_check(a.lat_hash == b.lat_hash && a.pix_hash == b.pix_hash && a.png_hash == b.png_hash,
                   "%s: repeated run bit-identical", what);
        if (!have) {
            first = a;
            have = 1;
        } else {
            test_check(a.lat_hash == first.lat_hash && a.pix_hash == first.pix_hash && a.png_hash == first.png_hash,
                       "%s: latents %016llx pixels %016llx png %016llx same as %s", what,
                       (unsigned long long)a.lat_hash, (unsigned long long)a.pix_hash, (unsigned long long)a.png_hash,
                       "auto");
        }
        sdc_ctx_free(ctx);
    }
    *ref_out = first;
}

/* The plan's weights, activations and workspace against the allocator's measured peaks, per phase: exact
 * (bound 0), and every phase's planned total >= its measured peak. */
static void plan_vs_measured_one(sdc_load_policy pol, const job *jp, int fp16) {
    sdc_ctx *ctx = open_ctx_variant(pol, 2, 0, fp16);
    job j = *jp;
    if (fp16) j.name = j.img2img ? "img2img fp16 files" : "txt2img fp16 files";
    run_out o;
    if (!test_check(ctx && run(ctx, &j, &o), "%s %s run for the plan check", sdc_load_policy_name(pol), j.name)) {
        sdc_ctx_free(ctx);
        return;
    }
    cJSON *rep = cJSON_Parse(sdc_last_report_json(ctx));
    const cJSON *phases = cJSON_GetObjectItemCaseSensitive(rep, "phases"), *ph;
    cJSON_ArrayForEach(ph, phases) {
        const cJSON *pk = cJSON_GetObjectItemCaseSensitive(ph, "peak_bytes");
        const cJSON *pl = cJSON_GetObjectItemCaseSensitive(ph, "planned_bytes");
        double mw = cJSON_GetObjectItemCaseSensitive(pk, "weights")->valuedouble;
        double pw = cJSON_GetObjectItemCaseSensitive(pl, "weights")->valuedouble;
        double ma = cJSON_GetObjectItemCaseSensitive(pk, "activations")->valuedouble;
        double pa = cJSON_GetObjectItemCaseSensitive(pl, "activations")->valuedouble;
        double mws = cJSON_GetObjectItemCaseSensitive(pk, "workspace")->valuedouble;
        double pws = cJSON_GetObjectItemCaseSensitive(pl, "workspace")->valuedouble;
        double mt = cJSON_GetObjectItemCaseSensitive(pk, "total")->valuedouble;
        double pt = cJSON_GetObjectItemCaseSensitive(pl, "total")->valuedouble;
        char what[160];
        snprintf(what, sizeof what, "%s %s: plan %s weights (%.0f planned, %.0f measured)", sdc_load_policy_name(pol),
                 j.name, ph->string, pw, mw);
        test_check_err(what, "rel diff", mw > 0 ? (pw - mw) / mw : 1, 0.0);
        snprintf(what, sizeof what, "%s %s: plan %s activations (%.0f planned, %.0f measured)",
                 sdc_load_policy_name(pol), j.name, ph->string, pa, ma);
        test_check_err(what, "|rel diff|", ma > 0 ? (pa > ma ? pa - ma : ma - pa) / ma : 1, 0.0);
        snprintf(what, sizeof what, "%s %s: plan %s workspace (%.0f planned, %.0f measured)", sdc_load_policy_name(pol),
                 j.name, ph->string, pws, mws);
        test_check_err(what, "|diff| bytes", pws > mws ? pws - mws : mws - pws, 0.0);
        snprintf(what, sizeof what, "%s %s: plan %s total >= measured (%.0f planned, %.0f measured)",
                 sdc_load_policy_name(pol), j.name, ph->string, pt, mt);
        test_check(pt >= mt, "%s", what);
    }
    cJSON_Delete(rep);
    sdc_ctx_free(ctx);
}

static void plan_vs_measured(void) {
    const job img2img = {"img2img euler", SDC_SAMPLER_EULER, 1, 1},
              batch = {"txt2img dpm++2m b2", SDC_SAMPLER_DPMPP_2M, 0, 2};
    plan_vs_measured_one(SDC_LOAD_PHASED, &img2img, 0);
    plan_vs_measured_one(SDC_LOAD_ALL, &img2img, 0);
    plan_vs_measured_one(SDC_LOAD_SEQUENTIAL, &batch, 0);
    plan_vs_measured_one(SDC_LOAD_PHASED, &batch, 0);
    plan_vs_measured_one(SDC_LOAD_ALL, &img2img, 1);
    plan_vs_measured_one(SDC_LOAD_PHASED, &batch, 1);
}

/* A plan from the model's kept measurement of a job shape (plan.c) equals one measured afresh: four shapes
 * planned twice on one model, with others in between (more than it keeps, so some are measured again),
 * against a fresh model each. */
static int same_plan(const sdc_plan *a, const sdc_plan *b) {
    int same = a->peak == b->peak && a->n_phases == b->n_phases;
    for (int ph = 0; same && ph < a->n_phases; ph++) {
        same = a->phase[ph].runs == b->phase[ph].runs && a->phase[ph].total == b->phase[ph].total &&
            a->phase[ph].flops_per_call == b->phase[ph].flops_per_call;
        for (int k = 0; same && k < SDC_MEM_KIND_COUNT; k++) same = a->phase[ph].bytes[k] == b->phase[ph].bytes[k];
    }
    return same;
}

static void plan_memo(void) {
    const sdc_job_shape shapes[] = {{64, 64, 1, 0, 1}, {96, 64, 1, 0, 1}, {64, 64, 0, 0, 1},
                                    {64, 64, 1, 1, 2}, {64, 96, 1, 0, 1}, {128, 64, 1, 0, 1}};
    const int n = sizeof shapes / sizeof shapes[0], order[] = {0, 1, 2, 3, 0, 1, 4, 5, 2, 3, 0};
    sdc_ctx *kept = open_ctx(SDC_LOAD_ALL, 1, 0);
    if (!kept) return;
    sdc_plan fresh[6];
    for (int i = 0; i < n; i++) {
        sdc_ctx *f = open_ctx(SDC_LOAD_ALL, 1, 0);
        if (!f) break;
        sdc_plan_make(f->m, &shapes[i], SDC_LOAD_PHASED, &fresh[i]);
        sdc_ctx_free(f);
    }
    int differ = 0;
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
        sdc_plan p;
        sdc_plan_make(kept->m, &shapes[order[k]], SDC_LOAD_PHASED, &p);
        differ += !same_plan(&p, &fresh[order[k]]);
    }
    test_check(!same_plan(&fresh[0], &fresh[1]) && !same_plan(&fresh[0], &fresh[3]),
               "the shapes' plans differ from one another");
    test_check_err("plans from kept measurements", "plans unlike a fresh model's", differ, 0);
    sdc_ctx_free(kept);
}

/* auto under budgets: roomy -> all; between -> sequential or phased; below phased -> stream (a window of
 * the UNet's blocks); too small even for stream's one block -> error, nothing loaded */
static void auto_budget(void) {
    sdc_ctx *probe = open_ctx(SDC_LOAD_ALL, 1, 0);
    if (!probe) return;
    sdc_job_shape js = {64, 64, 1, 0, 1};
    sdc_plan all, phased, stream;
    sdc_plan_make(probe->m, &js, SDC_LOAD_ALL, &all);
    sdc_plan_make(probe->m, &js, SDC_LOAD_PHASED, &phased);
    probe->m->budget = 0; /* stream's plan with a window of one block */
    sdc_plan_make(probe->m, &js, SDC_LOAD_STREAM, &stream);
    sdc_ctx_free(probe);
    test_check(phased.peak < all.peak, "phased plans less than all (%zu < %zu bytes)", phased.peak, all.peak);
    test_check(stream.peak < phased.peak, "stream (one block) plans less than phased (%zu < %zu bytes)", stream.peak,
               phased.peak);
    const struct {
        int64_t budget;
        const char *want;
    } cases[] = {{(int64_t)all.peak, "all"}, {(int64_t)phased.peak, "phased"}, {(int64_t)phased.peak - 1, "stream"}};
    job j = {"txt2img", SDC_SAMPLER_EULER, 0, 1};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sdc_ctx *ctx = open_ctx(SDC_LOAD_AUTO, 1, cases[i].budget);
        run_out o;
        int ok = ctx && run(ctx, &j, &o);
        cJSON *rep = ok ? cJSON_Parse(sdc_last_report_json(ctx)) : NULL;
        const cJSON *pol = cJSON_GetObjectItemCaseSensitive(rep, "policy");
        test_check(ok && cJSON_IsString(pol) && !strcmp(pol->valuestring, cases[i].want),
                   "auto with budget %lld picks %s (got %s)", (long long)cases[i].budget, cases[i].want,
                   cJSON_IsString(pol) ? pol->valuestring : "nothing");
        test_check(ok && o.peak_device <= (size_t)cases[i].budget, "measured peak %zu within budget %lld",
                   o.peak_device, (long long)cases[i].budget);
        cJSON_Delete(rep);
        sdc_ctx_free(ctx);
    }
    sdc_ctx *ctx = open_ctx(SDC_LOAD_AUTO, 1, (int64_t)stream.peak - 1);
    sdc_gen_params p;
    sdc_gen_params_init(&p);
    p.width = p.height = 64;
    sdc_image *imgs = NULL;
    int n = 0;
    sdc_status st = ctx ? sdc_generate(ctx, &p, &imgs, &n) : SDC_ERR_BACKEND;
    test_check(st == SDC_ERR_OOM && ctx->m->be->stats.peak[SDC_MEM_WEIGHTS] == 0 &&
                   sdc_index_bytes_read(ctx->m->mf->index) == 0,
               "budget below the smallest plan: %s, no weight loaded or read", sdc_status_str(st));
    sdc_ctx_free(ctx);
}

/* A weights file that changes between indexing and a deferred load is an error, not a crash. */
static void file_changed_before_deferred_load(void) {
    char dir[] = "/tmp/sdc-changed-XXXXXX";
    if (!mkdtemp(dir)) return;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s/m'", test_ref_path("tiny-sd1"), dir);
    if (system(cmd) != 0) {
        test_check(0, "copy the model");
        return;
    }
    sdc_ctx_params cp;
    sdc_ctx_params_init(&cp);
    char model[300], unet[400];
    snprintf(model, sizeof model, "%s/m", dir);
    snprintf(unet, sizeof unet, "%s/m/unet/diffusion_pytorch_model.safetensors", dir);
    cp.model_path = model;
    cp.load_policy = SDC_LOAD_PHASED;
    cp.n_threads = 1;
    cp.log_fn = test_capture_logger()->fn;
    sdc_ctx *ctx = sdc_ctx_new(&cp);
    /* after indexing, before the UNet's deferred load: the file grows */
    FILE *f = fopen(unet, "ab");
    if (f) {
        fputs("appended", f);
        fclose(f);
    }
    sdc_gen_params p;
    sdc_gen_params_init(&p);
    p.width = p.height = 64;
    p.steps = 2;
    sdc_image *imgs = NULL;
    int n = 0;
    sdc_status st = ctx ? sdc_generate(ctx, &p, &imgs, &n) : SDC_ERR_BACKEND;
    test_check(st == SDC_ERR_IO && !imgs && strstr(test_last_error(), "changed"),
               "weights file changed before the deferred UNet load: %s (\"%s\")", sdc_status_str(st),
               test_last_error());
    test_check(ctx && !ctx->m->comp[1], "no UNet half-loaded after the failure");
    sdc_ctx_free(ctx);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) test_check(0, "clean up %s", dir);
}

/* auto, told the device is big, plans all; the device then turns out smaller (mem_limit: sequential's
 * measured peak): the run runs out of memory, frees everything, replans to the first lower policy whose
 * plan fits what the failed run got (its allocator peak, below the limit: so not sequential, whose plan
 * is its measured peak or more) and makes the same image. */
static void auto_replans_after_oom(void) {
    sdc_ctx *seq = open_ctx(SDC_LOAD_SEQUENTIAL, 1, 0);
    job j = {"txt2img euler", SDC_SAMPLER_EULER, 0, 1};
    run_out want, got;
    if (!seq || !run(seq, &j, &want)) {
        test_check(0, "sequential reference run");
        sdc_ctx_free(seq);
        return;
    }
    size_t seq_peak = seq->m->be->stats.peak_total;
    sdc_ctx_free(seq);
    sdc_ctx *ctx = open_ctx(SDC_LOAD_AUTO, 1, (int64_t)1 << 40);
    ctx->m->be->mem_limit = seq_peak;
    int ok = run(ctx, &j, &got);
    cJSON *rep = ok ? cJSON_Parse(sdc_last_report_json(ctx)) : NULL;
    const cJSON *pol = cJSON_GetObjectItemCaseSensitive(rep, "policy");
    const cJSON *why = cJSON_GetObjectItemCaseSensitive(rep, "why");
    test_check(ok && cJSON_IsString(pol) &&
                   (!strcmp(pol->valuestring, "phased") || !strcmp(pol->valuestring, "stream")),
               "auto out of memory under all (limit %zu bytes): replanned to %s (\"%s\")", seq_peak,
               cJSON_IsString(pol) ? pol->valuestring : "nothing", cJSON_IsString(why) ? why->valuestring : "");
    test_check(ok && got.png_hash == want.png_hash && got.lat_hash == want.lat_hash,
               "the replanned run's image is bit-identical to a sequential run");
    const cJSON *peak = cJSON_GetObjectItemCaseSensitive(rep, "peak_device_bytes");
    test_check(ok && cJSON_IsNumber(peak) && peak->valuedouble <= (double)seq_peak,
               "the replanned run's peak %.0f bytes within the limit %zu",
               cJSON_IsNumber(peak) ? peak->valuedouble : -1.0, seq_peak);
    cJSON_Delete(rep);
    /* a device below phased's measured peak: down to stream, its window sized for what all got */
    sdc_ctx *ph = open_ctx(SDC_LOAD_PHASED, 1, 0);
    size_t ph_peak = 0;
    if (ph && run(ph, &j, &want)) { /* the report's peak: the largest over the phases */
        cJSON *prep = cJSON_Parse(sdc_last_report_json(ph));
        const cJSON *pp = cJSON_GetObjectItemCaseSensitive(prep, "peak_device_bytes");
        ph_peak = cJSON_IsNumber(pp) ? (size_t)pp->valuedouble : 0;
        cJSON_Delete(prep);
    }
    sdc_ctx_free(ph);
    if (test_check(ph_peak > 0, "phased reference run: peak %zu bytes", ph_peak)) {
        ctx->m->be->mem_limit = ph_peak - 1;
        ok = run(ctx, &j, &got);
        rep = ok ? cJSON_Parse(sdc_last_report_json(ctx)) : NULL;
        pol = cJSON_GetObjectItemCaseSensitive(rep, "policy");
        peak = cJSON_GetObjectItemCaseSensitive(rep, "peak_device_bytes");
        test_check(
            ok && cJSON_IsString(pol) && !strcmp(pol->valuestring, "stream") && cJSON_IsNumber(peak) &&
                peak->valuedouble < (double)ph_peak && got.png_hash == want.png_hash && got.lat_hash == want.lat_hash,
            "a limit one byte below phased's peak %zu: replanned to %s, peak %.0f bytes, the same image", ph_peak,
            cJSON_IsString(pol) ? pol->valuestring : "nothing", cJSON_IsNumber(peak) ? peak->valuedouble : -1.0);
        cJSON_Delete(rep);
    }
    /* below every policy: a clean error, nothing left loaded */
    ctx->m->be->mem_limit = 1 << 20;
    ok = run(ctx, &j, &got);
    test_check(!ok && ctx->m->be->stats.cur_total == 0, "out of memory under every policy: an error, %zu bytes left",
               ctx->m->be->stats.cur_total);
    sdc_ctx_free(ctx);
}

int main(void) {
    if (sdc_image_load(test_ref_path("tiny-sd1-golden/inputs/gradient64.png"), &init_img, NULL, NULL) != SDC_OK) {
        test_check(0, "load the init image");
        return test_finish();
    }
    const job jobs[] = {
        {"txt2img euler", SDC_SAMPLER_EULER, 0, 1},       {"txt2img dpm++2m batch 2", SDC_SAMPLER_DPMPP_2M, 0, 2},
        {"txt2img euler_a", SDC_SAMPLER_EULER_A, 0, 1},   {"img2img ddim", SDC_SAMPLER_DDIM, 1, 1},
        {"img2img heun batch 2", SDC_SAMPLER_HEUN, 1, 2},
    };
    for (size_t i = 0; i < sizeof jobs / sizeof jobs[0]; i++) {
        run_out t1, t2;
        policies_agree(&jobs[i], 1, &t1);
        policies_agree(&jobs[i], 2, &t2);
        /* the CPU backend computes every element in one thread with a fixed order: thread count is
         * invisible in the output */
        test_check(t1.lat_hash == t2.lat_hash && t1.png_hash == t2.png_hash, "%s: 1 and 2 threads bit-identical",
                   jobs[i].name);
    }
    plan_vs_measured();
    plan_memo();
    auto_budget();
    file_changed_before_deferred_load();
    auto_replans_after_oom();
    sdc_image_free(init_img, 1);
    return test_finish();
}
