/* single_file.h - what a single-file checkpoint holds, as facts: its tensors' names (as in the file,
 * unmapped), shapes and dtypes, sorted by name, and queries by name and by prefix. No architecture is
 * decided here: a family reads the facts (src/family/: which key groups are present, e.g.
 * model.diffusion_model.*, first_stage_model.*, cond_stage_model.transformer.* or .model.*,
 * conditioner.embedders.N.*; the shapes of the tensors it needs), builds its configs and chooses the
 * name map, then indexes the file under its canonical names with sdc_single_file_index.
 * Data and offsets are never looked at. */
#ifndef SDC_IO_SINGLE_FILE_H
#define SDC_IO_SINGLE_FILE_H

#include <stddef.h>

#include "core/log.h"
#include "io/model_index.h"
#include "sdc.h"

typedef struct sdc_sf_facts sdc_sf_facts;

/* The facts of the safetensors file at path (its header only). A file that is not safetensors is
 * SDC_ERR_FORMAT (or what reading it gives), with a message naming the path. *out: free with
 * sdc_sf_facts_free. */
sdc_status sdc_sf_facts_read(const char *path, const sdc_logger *log, sdc_sf_facts **out);
/* The facts of n tensors t[0..n) (names and shapes; copied). SDC_ERR_OOM only. */
sdc_status sdc_sf_facts_new(const sdc_tensor_info *t, size_t n, sdc_sf_facts **out);
void sdc_sf_facts_free(sdc_sf_facts *f); /* NULL is harmless */

/* The tensors, sorted by name: i in [0, sdc_sf_count). */
size_t sdc_sf_count(const sdc_sf_facts *f);
const sdc_tensor_info *sdc_sf_at(const sdc_sf_facts *f, size_t i);
/* The tensor of that name (printf format), or NULL; NULL too when the name is longer than 255 bytes. */
const sdc_tensor_info *sdc_sf_find(const sdc_sf_facts *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* How many tensors have a name that starts with prefix. */
size_t sdc_sf_count_prefix(const sdc_sf_facts *f, const char *prefix);
/* The largest N of names "<prefix>N..." (-1 if none). */
int sdc_sf_max_index(const sdc_sf_facts *f, const char *prefix);
/* The key groups present, for messages: "model.diffusion_model. (686), first_stage_model. (248)", each
 * group the first two dot-separated segments of a name ("conditioner.embedders.", "alphas_cumprod"),
 * in name order, at most size bytes (cut with "..."). Returns out. */
const char *sdc_sf_groups(const sdc_sf_facts *f, char *out, size_t size);

/* Adds the single file at path to index under the names map gives (a NULL name skips the tensor)
 * and checks every indexed tensor is a float (an integer one would be converted silently). */
sdc_status sdc_single_file_index(sdc_model_index *index, const char *path, sdc_name_map_fn map, void *map_user);

#endif
