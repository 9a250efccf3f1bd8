/* sd1_plan.c - the SD family's activation and workspace figures per phase, for the planner. */
#include "family/sd1.h"

void sd1_plan_phase(const void *fam, const sdc_job_shape *job, int ph, size_t es, size_t *act, size_t *im2col,
                    int64_t *tokens) {
    const sd1_fam *f = fam;
    const int vs = sdc_vae_downscale(&f->vae);
    const int H = job->height, W = job->width, h = H / vs, w = W / vs, nb = job->cfg ? 2 : 1;
    const int T = f->clip.max_positions;
    /* the conditioning [nb, T, C] lives from condition to the last denoise; counted in the later phases at
     * the condition phase's element size (f32 on the CPU) */
    const size_t context = (size_t)nb * (size_t)T * (size_t)f->clip.hidden * es;
    int cu = 0, cv = 0;   /* widest channel counts: im2col bounds (3x3 kernels) */
    for (int i = 0; i < f->unet.n_blocks; i++)
        if (f->unet.block_out_channels[i] > cu) cu = f->unet.block_out_channels[i];
    for (int i = 0; i < f->vae.n_blocks; i++)
        if (f->vae.block_out_channels[i] > cv) cv = f->vae.block_out_channels[i];
    switch (ph) {
    case 0:   /* condition */
        *act = sdc_clip_activation_bytes_estimate(&f->clip, nb, T, es);
        *im2col = 0;
        *tokens = T;
        break;
    case 1:   /* encode */
        *act = context + sdc_vae_encode_activation_bytes_estimate(&f->vae, 1, H, W, es);
        *im2col = (size_t)9 * (size_t)cv * (size_t)H * (size_t)W;
        *tokens = (int64_t)h * w;
        break;
    case 2:   /* denoise */
        *act = sdc_unet_activation_bytes_estimate(&f->unet, nb, h, w, T, es);
        *im2col = (size_t)9 * 2 * (size_t)cu * (size_t)h * (size_t)w;
        *tokens = (int64_t)h * w;
        break;
    default:  /* decode */
        *act = context + sdc_vae_decode_activation_bytes_estimate(&f->vae, 1, h, w, es);
        *im2col = (size_t)9 * (size_t)cv * (size_t)H * (size_t)W;
        *tokens = (int64_t)h * w;
        break;
    }
}
