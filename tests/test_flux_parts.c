/* test_flux_parts.c - the parts Flux shares with Stable Diffusion, on the Flux bundle
 * (tiny-flux-schnell, tiny-flux-golden/components): the CLIP text encoder's pooled output (Flux's
 * vector conditioning) and the 16-channel VAE decoder without quant convs. */
#include <stdio.h>
#include <stdlib.h>

#include "backend/backend.h"
#include "io/model_files.h"
#include "model/clip.h"
#include "model/vae.h"
#include "test_golden.h"
#include "test_model_golden.h"
#include "test_util.h"

#define BOUND 1e-5

int main(void) {
    const sdc_logger *log = test_logger();
    sdc_model_files *mf = NULL;
    sdc_status st = sdc_model_files_open(test_ref_path("tiny-flux-schnell"), SDC_VARIANT_F32, log, &mf);
    if (st == SDC_OK) st = sdc_model_files_use(mf, "text_encoder", log);
    if (st == SDC_OK) st = sdc_model_files_use(mf, "vae", log);
    if (!test_check(st == SDC_OK, "open tiny-flux-schnell: %s", sdc_status_str(st))) return test_finish();
    sdc_backend *be = sdc_backend_cpu_new(2, log);
    sdc_model_index *g = test_golden_open("tiny-flux-golden/components.safetensors");

    /* CLIP: pooler_output of the golden ids */
    sdc_clip_config cc;
    sdc_clip *clip = NULL;
    st = sdc_clip_config_parse(sdc_model_files_config(mf, "text_encoder"), log, &cc);
    if (st == SDC_OK)
        st = sdc_clip_load(&cc, &(sdc_weight_source){mf->index, "text_encoder.", be, log, 0, 0, NULL, 0}, &clip);
    if (test_check(st == SDC_OK, "clip loaded: %s", sdc_status_str(st))) {
        int B = 0, T = 0;
        int32_t *ids = test_golden_ids(g, "clip.input_ids", &B, &T);
        float *pooled = malloc(sizeof(float) * (size_t)(B * cc.hidden));
        const sdc_clip_request req = {0, 1, NULL, pooled, NULL};
        st = sdc_clip_encode(clip, ids, B, T, &req, NULL, NULL);
        test_check(st == SDC_OK, "clip encode: %s", sdc_status_str(st));
        test_golden_compare_f32(g, "clip.pooler_output", pooled, (size_t)(B * cc.hidden), "clip pooler_output", BOUND);
        free(pooled);
        free(ids);
    }
    sdc_clip_free(clip);

    /* VAE decoder: 16 latent channels, no post_quant_conv */
    sdc_vae_config vc;
    sdc_vae_decoder *dec = NULL;
    st = sdc_vae_config_parse(sdc_model_files_config(mf, "vae"), log, &vc);
    if (st == SDC_OK)
        st = sdc_vae_decoder_load(&vc, &(sdc_weight_source){mf->index, "vae.", be, log, 0, 0, NULL, 0}, &dec);
    if (test_check(st == SDC_OK && vc.latent_channels == 16 && !vc.use_post_quant_conv && vc.has_shift_factor,
                   "vae: %s, %d latent channels, post_quant_conv %d, shift %g, scaling %g", sdc_status_str(st),
                   vc.latent_channels, vc.use_post_quant_conv, (double)vc.shift_factor, (double)vc.scaling_factor)) {
        sdc_tensor *z = test_golden_tensor(be, SDC_DTYPE_F32, g, "vae.decode.z");
        sdc_tensor *img = z
            ? sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 4, (int64_t[]){1, 3, z->ne[2] * 8, z->ne[3] * 8})
            : NULL;
        if (img) {
            st = sdc_vae_decode(dec, z, img, NULL, NULL);
            test_check(st == SDC_OK, "vae decode: %s", sdc_status_str(st));
            test_golden_compare(g, "vae.decode.image", img, "vae decode image", BOUND);
        }
        sdc_tensor_free(z);
        sdc_tensor_free(img);
    }
    sdc_vae_decoder_free(dec);
    sdc_index_free(g);
    sdc_backend_free(be);
    sdc_model_files_free(mf);
    return test_finish();
}
