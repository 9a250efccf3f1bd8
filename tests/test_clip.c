/* test_clip.c - the CLIP text encoder against diffusers/transformers (tiny-sd1-golden/text_encoder). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "backend/backend.h"
#include "io/model_files.h"
#include "model/clip.h"
#include "test_golden.h"
#include "test_model_golden.h"
#include "test_util.h"

static void run_variant(sdc_weight_variant variant, const char *label, double bound, int n_threads) {
    printf("%s weights, %d thread(s):\n", label, n_threads);
    const sdc_logger *log = test_logger();
    sdc_model_files *mf = test_open_tiny_sd1(variant, label);
    if (!mf) return;
    sdc_clip_config cfg;
    sdc_backend *be = sdc_backend_cpu_new(n_threads, log);
    sdc_status st = sdc_clip_config_parse(sdc_model_files_config(mf, "text_encoder"), log, &cfg);
    test_check(st == SDC_OK, "parse text_encoder config");
    sdc_clip *m = NULL;
    st = sdc_clip_load(&cfg, &(sdc_weight_source){mf->index, "text_encoder.", be, log, 0, 0, NULL, 0}, &m);
    if (!test_check(m != NULL, "load text encoder: %s", sdc_status_str(st))) {
        sdc_backend_free(be);
        sdc_model_files_free(mf);
        return;
    }

    sdc_model_index *g = test_golden_open("tiny-sd1-golden/text_encoder.safetensors");
    int B = 0, T = 0;
    int32_t *ids = test_golden_ids(g, "te.input_ids", &B, &T);
    const size_t n = (size_t)B * T * cfg.hidden;

    test_hidden_capture cap;
    test_hidden_capture_init(&cap, cfg.n_layers + 1, n);
    sdc_tensor *out = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 3, (int64_t[]){B, T, cfg.hidden});
    float *pooled = malloc(sizeof(float) * (size_t)(B * cfg.hidden));
    float *last = malloc(sizeof(float) * n);
    st = sdc_clip_forward(m, ids, B, T, 0, out, pooled, test_on_hidden, &cap);
    test_check(st == SDC_OK, "forward: %s", sdc_status_str(st));
    sdc_tensor_get_f32(out, last);

    char name[64], what[96];
    int n_ref = 0;
    for (int i = 0;; i++) {
        snprintf(name, sizeof name, "te.hidden_states.%d", i);
        if (!sdc_index_find(g, name)) break;
        snprintf(what, sizeof what, "%s %s", label, name);
        if (i < cap.n)
            test_golden_compare_f32(g, name, cap.h[i], n, what, bound);
        else
            test_check(0, "%s: model has only %d hidden states", what, cap.n);
        n_ref++;
    }
    test_check(n_ref == cfg.n_layers + 1, "reference has %d hidden states, model %d", n_ref, cfg.n_layers + 1);
    snprintf(what, sizeof what, "%s last_hidden_state", label);
    test_golden_compare_f32(g, "te.last_hidden_state", last, n, what, bound);
    snprintf(what, sizeof what, "%s pooler_output", label);
    test_golden_compare_f32(g, "te.pooler_output", pooled, (size_t)(B * cfg.hidden), what, bound);

    /* clip skip: running k layers yields the same hidden state k, and the final norm on top of it */
    int k = cfg.n_layers - 1;
    if (k >= 1) {
        float *skip = malloc(sizeof(float) * n);
        sdc_clip_forward(m, ids, B, T, k, out, NULL, NULL, NULL);
        sdc_tensor_get_f32(out, skip);
        /* reference: final norm of hidden_states[k], computed here in double */
        float *want = malloc(sizeof(float) * n);
        const sdc_tensor_info *wi;
        float *lw = test_golden_f32(mf->index, "text_encoder.text_model.final_layer_norm.weight", &wi);
        float *lb = test_golden_f32(mf->index, "text_encoder.text_model.final_layer_norm.bias", NULL);
        for (size_t r = 0; r < n / (size_t)cfg.hidden; r++) {
            const float *x = cap.h[k] + r * (size_t)cfg.hidden;
            double mean = 0, var = 0;
            for (int c = 0; c < cfg.hidden; c++) mean += x[c];
            mean /= cfg.hidden;
            for (int c = 0; c < cfg.hidden; c++) var += (x[c] - mean) * (x[c] - mean);
            var /= cfg.hidden;
            for (int c = 0; c < cfg.hidden; c++)
                want[r * (size_t)cfg.hidden + c] = (float)((x[c] - mean) / sqrt(var + cfg.eps) * lw[c] + lb[c]);
        }
        snprintf(what, sizeof what, "%s clip skip 2 (final norm of hidden_states[%d])", label, k);
        test_check_err(what, "rel err", test_rel_err(skip, want, n), 1e-5);
        free(lw);
        free(lb);
        free(want);
        free(skip);
    }

    /* bad input: an id outside the vocabulary is an error, not a crash */
    int32_t bad[2] = {0, cfg.vocab};
    test_check(sdc_clip_forward(m, bad, 1, 2, 0, out, NULL, NULL, NULL) == SDC_ERR_INVALID_ARG,
               "out-of-vocabulary id rejected");

    sdc_tensor_free(out);
    size_t wbytes = sdc_clip_weights(m)->bytes_resident;
    test_check(be->stats.cur[SDC_MEM_WEIGHTS] == wbytes && be->stats.cur[SDC_MEM_ACTIVATIONS] == 0,
               "allocator: %zu weight bytes resident, 0 activation bytes after forward", wbytes);
    sdc_clip_free(m);
    test_check(be->stats.cur_total == 0, "allocator back to 0 after free");
    test_hidden_capture_free(&cap);
    free(pooled);
    free(last);
    free(ids);
    sdc_index_free(g);
    sdc_backend_free(be);
    sdc_model_files_free(mf);
}

static void missing_tensor(void) {
    /* the unet file has no text_model tensors: loading must fail cleanly */
    sdc_model_files *mf = NULL;
    if (sdc_model_files_open(test_ref_path("tiny-sd1"), SDC_VARIANT_F32, test_logger(), &mf) != SDC_OK) return;
    if (sdc_model_files_use_all(mf, test_logger()) != SDC_OK) {
        sdc_model_files_free(mf);
        return;
    }
    sdc_clip_config cfg;
    sdc_clip_config_parse(sdc_model_files_config(mf, "text_encoder"), test_logger(), &cfg);
    sdc_backend *be = sdc_backend_cpu_new(1, test_logger());
    sdc_clip *m = NULL;
    sdc_status st =
        sdc_clip_load(&cfg, &(sdc_weight_source){mf->index, "unet.", be, test_capture_logger(), 0, 0, NULL, 0}, &m);
    test_check(!m && st == SDC_ERR_NOT_FOUND && strstr(test_last_error(), "missing tensor"),
               "missing tensors: %s (\"%s\")", sdc_status_str(st), test_last_error());
    test_check(be->stats.cur_total == 0, "nothing left allocated after a failed load");
    sdc_backend_free(be);
    sdc_model_files_free(mf);
}

int main(void) {
    run_variant(SDC_VARIANT_F32, "f32", 1e-5, 1);
    run_variant(SDC_VARIANT_F32, "f32", 1e-5, 2);
    run_variant(SDC_VARIANT_FP16, "fp16", 2e-3, 2);
    missing_tensor();
    return test_finish();
}
