/* common.c - phase code the families share: the VAE decode of one image. */
#include "family/common.h"

#include <stdlib.h>
#include <string.h>

#include "model/activations.h"
#include "pipeline/pipeline.h"

sdc_status fam_per_prompt(sdc_run *r, const char *phase, int n, sdc_status (*entry)(sdc_run *r, int e, void *user),
                          void *user) {
    for (int e = 0; e < n; e++) {
        if (fam_progress(r, phase, e, n)) return SDC_ERR_CANCELLED;
        sdc_status st = entry(r, e, user);
        if (st != SDC_OK) return st;
    }
    return fam_progress(r, phase, n, n) ? SDC_ERR_CANCELLED : SDC_OK;
}

/* pixels [H, W, 3] in [0, 1] from latents [C, h, w] */
static sdc_status decode_latents(sdc_run *r, sdc_vae_decoder *dec, const sdc_vae_config *vc, const float *lat,
                                 int64_t h, int64_t w, int image, float *pixels) {
    const int64_t f = sdc_vae_downscale(vc), H = h * f, W = w * f;
    const size_t n = (size_t)(vc->latent_channels * h * w);
    float *z = malloc(sizeof(float) * n), *img = malloc(sizeof(float) * (size_t)(3 * H * W));
    const sdc_dtype dt = sdc_vae_decoder_act_dtype(dec);
    sdc_tensor *tz = sdc_act_new(r->be, dt, 4, (int64_t[]){1, vc->latent_channels, h, w}); /* [1, L, h, w] */
    /* [1, 3, H, W]; a tiled decode writes the host image directly */
    sdc_tensor *ti = r->p->vae_tiling ? NULL : sdc_act_new(r->be, dt, 4, (int64_t[]){1, vc->out_channels, H, W});
    sdc_status st = z && img && tz && (ti || r->p->vae_tiling) ? SDC_OK : SDC_ERR_OOM;
    if (st == SDC_OK) {
        for (size_t i = 0; i < n; i++) {
            z[i] = lat[i] / vc->scaling_factor;
            if (vc->has_shift_factor) z[i] += vc->shift_factor;
        }
        sdc_tensor_set_f32(tz, z);
        st = ti ? sdc_vae_decode(dec, tz, ti, NULL, NULL) : sdc_vae_decode_tiled(dec, tz, img, 0);
    }
    if (st == SDC_OK) {
        if (ti) sdc_tensor_get_f32(ti, img);
        st = sdc_backend_status(r->be);
        const size_t npix = (size_t)(H * W);
        if (st == SDC_OK && !r->dry)
            st = sdc_pipeline_check_finite(r->log, "decode", image, "the image", img, 3 * npix);
        for (int ch = 0; ch < 3; ch++) { /* a plane at a time: sequential reads */
            const float *plane = img + (size_t)ch * npix;
            for (size_t i = 0; i < npix; i++) {
                float v = plane[i] / 2.0f + 0.5f;
                pixels[i * 3 + (size_t)ch] = !(v > 0.0f) ? 0.0f : v > 1.0f ? 1.0f : v; /* NaN-safe clamp */
            }
        }
    }
    free(z);
    free(img);
    sdc_tensor_free(tz);
    sdc_tensor_free(ti);
    return st;
}

sdc_status fam_decode(sdc_run *r, sdc_vae_decoder *dec, const sdc_vae_config *vc, const sdc_schedule *sched,
                      const float *lat, int64_t h, int64_t w, int i) {
    const int64_t f = sdc_vae_downscale(vc), H = h * f, W = w * f;
    const size_t npix = (size_t)(H * W * 3);
    float *pixels = malloc(sizeof(float) * npix);
    if (!pixels) return SDC_ERR_OOM;
    sdc_status st = fam_progress(r, "decode", 0, 1) ? SDC_ERR_CANCELLED : SDC_OK;
    if (st == SDC_OK) st = decode_latents(r, dec, vc, lat, h, w, i, pixels);
    if (st == SDC_OK && fam_progress(r, "decode", 1, 1)) st = SDC_ERR_CANCELLED;
    if (st == SDC_OK && !r->dry) {
        if (r->p->pixels_out) memcpy(r->p->pixels_out + (size_t)i * npix, pixels, sizeof(float) * npix);
        st = sdc_pipeline_make_image(r, sched, i, pixels, (int)W, (int)H, &r->images[i]);
    }
    free(pixels);
    return st;
}
