/* test_config_bounds.c - the architecture numbers of the UNet, VAE and text-encoder configs are bounded
 * before anything uses them (issue 13 items 1 and 5): a hostile value is refused at once, with a message
 * naming the key, the value and the bound; values of real models (SDXL, OpenCLIP bigG) still parse. */
#include <stdio.h>
#include <string.h>

#include "io/config.h"
#include "model/clip.h"
#include "model/unet.h"
#include "model/vae.h"
#include "test_util.h"

typedef enum {
    UNET,
    VAE,
    CLIP
} which;
static const char *const config_file[] = {"tiny-sd1/unet/config.json", "tiny-sd1/vae/config.json",
                                          "tiny-sd1/text_encoder/config.json"};

/* The reference config of w with key set to the JSON value, parsed by w's parser. */
static sdc_status parse_with(which w, const char *key, const char *value, double *seconds) {
    cJSON *j = NULL;
    if (sdc_json_load(test_ref_path(config_file[w]), test_logger(), &j) != SDC_OK) return SDC_ERR_IO;
    cJSON *v = value ? cJSON_Parse(value) : NULL;
    if (v && !cJSON_ReplaceItemInObjectCaseSensitive(j, key, v)) cJSON_AddItemToObject(j, key, v);
    const sdc_logger *log = test_capture_logger();
    sdc_status st;
    double t0 = test_now();
    if (w == UNET) {
        sdc_unet_config c;
        st = sdc_unet_config_parse(j, log, &c);
    } else if (w == VAE) {
        sdc_vae_config c;
        st = sdc_vae_config_parse(j, log, &c);
    } else {
        sdc_clip_config c;
        st = sdc_clip_config_parse(j, log, &c);
    }
    *seconds = test_now() - t0;
    cJSON_Delete(j);
    return st;
}

/* key = value must be refused with status want, at once, by a message that names the key and the value. */
static void refused(which w, const char *key, const char *value, sdc_status want, const char *shown) {
    double s = 0;
    sdc_status st = parse_with(w, key, value, &s);
    const char *msg = test_last_error();
    test_check(st == want && strstr(msg, shown) != NULL && s < 0.5,
               "%s %s = %s: %s (want %s) in %.3f s (bound 0.5), message '%s' names '%s'", config_file[w], key, value,
               sdc_status_str(st), sdc_status_str(want), s, msg, shown);
}

static void accepted(which w, const char *key, const char *value) {
    double s = 0;
    sdc_status st = parse_with(w, key, value, &s);
    test_check(st == SDC_OK, "%s %s = %s parses: %s", config_file[w], key, value, sdc_status_str(st));
}

/* SDXL's UNet sizes on the tiny model's layout: every number is below its bound. */
static void sdxl_sizes(void) {
    cJSON *j = NULL;
    if (!test_check(sdc_json_load(test_ref_path(config_file[UNET]), test_logger(), &j) == SDC_OK, "load unet")) return;
    const char *const keys[] = {"block_out_channels", "transformer_layers_per_block", "attention_head_dim",
                                "cross_attention_dim"};
    const char *const vals[] = {"[320, 640, 1280, 1280]", "[1, 2, 10, 10]", "[5, 10, 20, 20]", "2048"};
    for (int i = 0; i < 4; i++) cJSON_ReplaceItemInObjectCaseSensitive(j, keys[i], cJSON_Parse(vals[i]));
    sdc_unet_config c;
    sdc_status st = sdc_unet_config_parse(j, test_capture_logger(), &c);
    test_check(st == SDC_OK && c.transformer_layers[2] == 10 && c.block_out_channels[3] == 1280,
               "SDXL-sized unet config parses: %s %s", sdc_status_str(st), test_last_error());
    cJSON_Delete(j);
}

int main(void) {
    printf("test_config_bounds\n");
    /* item 1: unbounded work from a config value */
    refused(UNET, "transformer_layers_per_block", "2000000000", SDC_ERR_UNSUPPORTED,
            "transformer_layers_per_block[0] = 2000000000 is outside [1, 64]");
    refused(UNET, "attention_head_dim", "[8, 8, 1000000000, 8]", SDC_ERR_UNSUPPORTED,
            "attention_head_dim[2] = 1000000000");
    refused(UNET, "cross_attention_dim", "1000000000", SDC_ERR_UNSUPPORTED, "cross_attention_dim = 1000000000");
    refused(UNET, "norm_num_groups", "2147483647", SDC_ERR_UNSUPPORTED, "norm_num_groups = 2147483647");
    refused(UNET, "in_channels", "-4", SDC_ERR_FORMAT, "in_channels = -4 is outside [1, 1024]");
    refused(UNET, "sample_size", "1e9", SDC_ERR_UNSUPPORTED, "sample_size = 1000000000");
    refused(CLIP, "num_hidden_layers", "2000000000", SDC_ERR_UNSUPPORTED,
            "num_hidden_layers = 2000000000 is outside [1, 256]");
    refused(CLIP, "vocab_size", "2000000000", SDC_ERR_UNSUPPORTED, "vocab_size = 2000000000");
    refused(CLIP, "max_position_embeddings", "1000000000", SDC_ERR_UNSUPPORTED, "max_position_embeddings = 1000000000");
    refused(CLIP, "intermediate_size", "2000000000", SDC_ERR_UNSUPPORTED, "intermediate_size = 2000000000");
    refused(CLIP, "num_attention_heads", "0", SDC_ERR_FORMAT, "num_attention_heads = 0");
    refused(VAE, "block_out_channels", "[32, 2000000000]", SDC_ERR_UNSUPPORTED, "block_out_channels[1] = 2000000000");
    refused(VAE, "norm_num_groups", "1000000000", SDC_ERR_UNSUPPORTED, "norm_num_groups = 1000000000");
    /* item 5: the arithmetic on these numbers (signed overflow before the fix) */
    refused(UNET, "block_out_channels", "[2147483647, 64, 64, 64]", SDC_ERR_UNSUPPORTED,
            "block_out_channels[0] = 2147483647"); /* 4 * block_out_channels[0] */
    refused(UNET, "freq_shift", "-2147483648", SDC_ERR_FORMAT, "freq_shift = -2147483648"); /* ch / 2 - shift */
    refused(VAE, "layers_per_block", "2147483647", SDC_ERR_UNSUPPORTED, "layers_per_block = 2147483647"); /* + 1 */
    refused(VAE, "latent_channels", "2147483647", SDC_ERR_UNSUPPORTED, "latent_channels = 2147483647");   /* 2 * */
    /* real models stay within the bounds */
    sdxl_sizes();
    accepted(CLIP, "num_hidden_layers", "32"); /* OpenCLIP bigG */
    accepted(CLIP, "vocab_size", "49408");
    accepted(UNET, "freq_shift", "1");
    return test_finish();
}
