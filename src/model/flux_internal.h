/* flux_internal.h - what the Flux transformer's files share (flux.c: the model; flux_blocks.c: the
 * double- and single-stream blocks). The architecture is described in flux.h. */
#ifndef SDC_MODEL_FLUX_INTERNAL_H
#define SDC_MODEL_FLUX_INTERNAL_H

#include "model/activations.h"
#include "model/flux.h"

#define SDC_FLUX_EPS 1e-6f /* every LayerNorm and RMSNorm of the model */

/* One stream of a double block: the image stream's weights (norm1, to_q/k/v, norm_q/k, to_out.0, ff)
 * or the text stream's (norm1_context, add_q/k/v_proj, norm_added_q/k, to_add_out, ff_context). */
typedef struct sdc_flux_stream {
    sdc_tensor *mod_w, *mod_b;         /* [6C, C], [6C]: shift, scale, gate (msa), shift, scale, gate (mlp) */
    sdc_tensor *q_w, *q_b, *k_w, *k_b; /* [C, C], [C] */
    sdc_tensor *v_w, *v_b;             /* [C, C], [C] */
    sdc_tensor *norm_q, *norm_k;       /* [D] */
    sdc_tensor *out_w, *out_b;         /* [C, C], [C] */
    sdc_tensor *ff_in_w, *ff_in_b;     /* [4C, C], [4C] */
    sdc_tensor *ff_out_w, *ff_out_b;   /* [C, 4C], [C] */
} sdc_flux_stream;

typedef struct sdc_flux_double {
    sdc_flux_stream img, txt;
} sdc_flux_double;

typedef struct sdc_flux_single {
    sdc_tensor *mod_w, *mod_b;         /* [3C, C], [3C]: shift, scale, gate */
    sdc_tensor *q_w, *q_b, *k_w, *k_b; /* [C, C], [C] */
    sdc_tensor *v_w, *v_b;
    sdc_tensor *norm_q, *norm_k; /* [D] */
    sdc_tensor *mlp_w, *mlp_b;   /* proj_mlp [4C, C], [4C] */
    sdc_tensor *out_w, *out_b;   /* proj_out [C, 5C], [C] */
} sdc_flux_single;

/* The joint sequence's RoPE tables and the conditioning every block reads. */
typedef struct sdc_flux_ctx {
    const sdc_tensor *silu_temb; /* SiLU(temb) [B, C] */
    const sdc_tensor *cs, *sn;   /* F32 [T + N, D/2] */
    int heads;
} sdc_flux_ctx;

/* Fill a block from ws under prefix ("transformer_blocks.3." / "single_transformer_blocks.0."); errors
 * stick in ws->status. */
void sdc_flux_double_load(sdc_flux_double *b, sdc_weight_set *ws, const char *prefix, int64_t C, int64_t D);
void sdc_flux_single_load(sdc_flux_single *b, sdc_weight_set *ws, const char *prefix, int64_t C, int64_t D);

/* img [B, N, C] and txt [B, T, C] updated in place. 0 when out of memory (nothing stays allocated). */
int sdc_flux_double_forward(const sdc_flux_double *b, const sdc_flux_ctx *c, sdc_tensor *img, sdc_tensor *txt);
/* h [B, T + N, C] (text tokens first) updated in place. 0 when out of memory. */
int sdc_flux_single_forward(const sdc_flux_single *b, const sdc_flux_ctx *c, sdc_tensor *h);

/* The live temporaries of a forward step: each new tensor is kept in a free slot, dropped (freed) as
 * soon as it is dead, and whatever is left is freed at the end, on success and on error alike. */
#define SDC_FLUX_TMPS 24
typedef struct sdc_flux_tmps {
    sdc_tensor *t[SDC_FLUX_TMPS];
} sdc_flux_tmps;

/* t (NULL stays NULL: out of memory) kept in p. */
sdc_tensor *sdc_flux_keep(sdc_flux_tmps *p, sdc_tensor *t);
/* Frees t, kept in p (NULL is harmless). */
void sdc_flux_drop(sdc_flux_tmps *p, sdc_tensor *t);
void sdc_flux_drop_all(sdc_flux_tmps *p);
/* y = linear(x, w, b) as a new tensor [..., w rows] kept in p; NULL when out of memory. */
sdc_tensor *sdc_flux_linear(sdc_flux_tmps *p, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b);
/* chunk k of width C of m [B, n C] as a new tensor [B, C] kept in p; NULL when out of memory. */
sdc_tensor *sdc_flux_chunk(sdc_flux_tmps *p, const sdc_tensor *m, int k, int64_t C);

#endif
