/* test_prefetch.c - weights from host memory (pipeline/host_tier.h) on tiny-sd1 and tiny-flux-schnell:
 *   - cross-phase prefetch (prefetch_mem): under phased and sequential, every component loaded after the
 *     first phase takes all its bytes from host memory, read behind the phase before (0 file bytes at
 *     its load); a prefetch budget smaller than a component prefetches part of it; the default (0) only
 *     asks the OS to read the next phase's files ahead (every byte of every load, the second job's
 *     included, still from the files);
 *   - the host tier (host_cache): the second job on a context reads no file byte at all, under phased and
 *     under stream with a window of one block (every block load an upload from host memory);
 *   - a refused page-locked allocation (fail injection; CUDA only has one) falls back to pageable memory;
 * and in every mode the raw latents and the PNG bytes are identical to `all` without either.
 * Runs on $SDC_TEST_DEVICE (default cpu). Prints the hash table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "pipeline/ctx.h"
#include "sdc.h"
#include "test_pipeline_util.h"
#include "test_util.h"

#define MIB ((int64_t)1 << 20)

typedef struct model_case {
    const char *model;
    float cfg;
    const char *first; /* a component loaded in the first phase (its prefetch has no phase before it) */
} model_case;

typedef struct mode {
    const char *name;
    sdc_load_policy policy;
    int64_t prefetch_mem, host_cache;
    int window, jobs, fail_pinned;
} mode;

/* What one job's report says of one component. */
typedef struct comp_out {
    double loads, read, host, hidden;
} comp_out;

typedef struct job_out {
    uint64_t lat, png;
    double block_read, block_host; /* the streamed denoiser's block loads */
    int n;
    char name[8][32];
    comp_out comp[8];
} job_out;

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static sdc_status generate(sdc_ctx *ctx, const model_case *mc, job_out *o) {
    memset(o, 0, sizeof *o);
    sdc_gen_params p;
    sdc_gen_params_init(&p);
    p.prompt = "a red house by a lake";
    p.width = p.height = 64;
    p.steps = 2;
    p.cfg_scale = mc->cfg;
    p.seed = 11;
    sdc_status st = test_generate_hashed(ctx, &p, mc->model, &o->lat, &o->png);
    if (st == SDC_OK) {
        cJSON *rep = cJSON_Parse(sdc_last_report_json(ctx));
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(rep, "components")) {
            if (o->n == 8) break;
            snprintf(o->name[o->n], sizeof o->name[o->n], "%s", c->string);
            o->comp[o->n++] =
                (comp_out){num(c, "loads"), num(c, "bytes_read"), num(c, "bytes_from_host"), num(c, "bytes_hidden")};
        }
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(rep, "phases"), "denoise"), "stream");
        if (s) {
            o->block_read = num(s, "block_bytes_read");
            o->block_host = num(s, "block_bytes_from_host");
        }
        cJSON_Delete(rep);
    }
    return st;
}

/* Runs md->jobs jobs on one context; out[j] for each. 0 when the context or a job failed (checked). */
static int run(const model_case *mc, const mode *md, job_out *out) {
    sdc_ctx_params cp;
    sdc_ctx_params_init(&cp);
    cp.model_path = test_ref_path(mc->model);
    cp.device = (sdc_device)test_env_device();
    cp.n_threads = 2;
    cp.load_policy = md->policy;
    cp.prefetch_mem = md->prefetch_mem;
    cp.host_cache = md->host_cache;
    cp.stream_window = md->window;
    cp.log_fn = sdc_log_stderr;
    cp.log_level = SDC_LOG_WARN;
    sdc_ctx *ctx = sdc_ctx_new(&cp);
    int ok = test_check(ctx != NULL, "%s %s: context", mc->model, md->name);
    if (ok && md->fail_pinned) ctx->m->be->fail.pinned = 1;
    for (int j = 0; ok && j < md->jobs; j++) {
        sdc_status st = generate(ctx, mc, &out[j]);
        ok = test_check(st == SDC_OK, "%s %s job %d: %s", mc->model, md->name, j + 1, sdc_status_str(st));
    }
    sdc_ctx_free(ctx);
    return ok;
}

static void print_row(const model_case *mc, const mode *md, int j, const job_out *o) {
    printf("  %-18s %-26s job %d  lat %016llx  png %016llx ", mc->model, md->name, j + 1, (unsigned long long)o->lat,
           (unsigned long long)o->png);
    for (int c = 0; c < o->n; c++)
        if (o->comp[c].loads > 0)
            printf(" %s read %.0f host %.0f hidden %.0f;", o->name[c], o->comp[c].read, o->comp[c].host,
                   o->comp[c].hidden);
    if (o->block_read >= 0 && (o->block_read > 0 || o->block_host > 0))
        printf(" blocks read %.0f host %.0f", o->block_read, o->block_host);
    printf("\n");
}

static void check_model(const model_case *mc) {
    const mode base = {"all, nothing in host", SDC_LOAD_ALL, -1, 0, 0, 1, 0};
    job_out ref;
    if (!run(mc, &base, &ref)) return;
    print_row(mc, &base, 0, &ref);
    const mode modes[] = {
        {"phased, no prefetch", SDC_LOAD_PHASED, -1, 0, 0, 1, 0},
        {"phased, default", SDC_LOAD_PHASED, 0, 0, 0, 2, 0},
        {"phased, tier, read-ahead", SDC_LOAD_PHASED, 0, 1024 * MIB, 0, 2, 0},
        {"phased, prefetch 1 GiB", SDC_LOAD_PHASED, 1024 * MIB, 0, 0, 1, 0},
        {"sequential, prefetch 1 GiB", SDC_LOAD_SEQUENTIAL, 1024 * MIB, 0, 0, 1, 0},
        {"phased, prefetch 64 KiB", SDC_LOAD_PHASED, 64 << 10, 0, 0, 1, 0},
        {"phased, tier 1 GiB", SDC_LOAD_PHASED, -1, 1024 * MIB, 0, 2, 0},
        {"phased, tier + prefetch", SDC_LOAD_PHASED, 1024 * MIB, 1024 * MIB, 0, 2, 0},
        {"stream 1, tier 1 GiB", SDC_LOAD_STREAM, -1, 1024 * MIB, 1, 2, 0},
        {"phased, prefetch, no pin", SDC_LOAD_PHASED, 1024 * MIB, 1024 * MIB, 0, 1, 1},
    };
    for (size_t k = 0; k < sizeof modes / sizeof modes[0]; k++) {
        const mode *md = &modes[k];
        job_out out[2];
        if (!run(mc, md, out)) continue;
        for (int j = 0; j < md->jobs; j++) {
            const job_out *o = &out[j];
            print_row(mc, md, j, o);
            test_check(o->lat == ref.lat && o->png == ref.png, "%s %s job %d: latents and PNG identical to all's",
                       mc->model, md->name, j + 1);
            double read = 0, host = 0, hidden = 0, later_read = 0, later_host = 0;
            for (int c = 0; c < o->n; c++) {
                read += o->comp[c].read, host += o->comp[c].host, hidden += o->comp[c].hidden;
                if (strcmp(o->name[c], mc->first)) later_read += o->comp[c].read, later_host += o->comp[c].host;
            }
            if (md->prefetch_mem <= 0 && md->host_cache == 0) /* off, or the default's read-ahead */
                test_check(host == 0 && read > 0,
                           "%s %s job %d: nothing from host memory (%.0f bytes), all from the files (%.0f)", mc->model,
                           md->name, j + 1, host, read);
            else if (md->host_cache > 0 && j == 1)
                test_check(read == 0 && host > 0 && hidden == host && (md->window == 0 || o->block_read == 0) &&
                               (md->window == 0 || o->block_host > 0),
                           "%s %s job 2: no file byte read (read %.0f, blocks %.0f), all from the tier (%.0f, blocks "
                           "%.0f), all of it held before the loads (%.0f)",
                           mc->model, md->name, read, o->block_read, host, o->block_host, hidden);
            else if (md->prefetch_mem >= 1024 * MIB && md->policy != SDC_LOAD_ALL)
                test_check(later_read == 0 && later_host > 0,
                           "%s %s: the later phases' components read no file byte (%.0f) and came from the "
                           "prefetcher (%.0f bytes)",
                           mc->model, md->name, later_read, later_host);
            else if (md->prefetch_mem > 0)
                test_check(later_read > 0 && later_host > 0 && later_host < 64 * 1024 * o->n,
                           "%s %s: part of the later components prefetched (%.0f bytes, at most the budget per "
                           "component), the rest read (%.0f)",
                           mc->model, md->name, later_host, later_read);
        }
    }
}

int main(void) {
    static const model_case cases[] = {{"tiny-sd1", 7.5f, "text_encoder"}, {"tiny-flux-schnell", 1.0f, "text_encoder"}};
    printf("model, mode, job: raw latents and PNG hashes; per component: file bytes read, bytes from host memory, "
           "bytes held before the load\n");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_model(&cases[i]);
    return test_finish();
}
