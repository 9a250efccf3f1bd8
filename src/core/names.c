/* names.c - the one table of the names users type for enumerated choices, shared by the library
 * (sdc_sampler_name, sdc_load_policy_name, ...) and the CLI's flags and help texts. */
#include <stddef.h>
#include <string.h>

#include "sdc.h"

typedef struct name_entry {
    const char *name;
    int value;
} name_entry;

/* The first entry with a value is its canonical name; later ones are aliases. */
static const name_entry samplers[] = {
    {"euler", SDC_SAMPLER_EULER},
    {"euler_a", SDC_SAMPLER_EULER_A},
    {"heun", SDC_SAMPLER_HEUN},
    {"lms", SDC_SAMPLER_LMS},
    {"ddim", SDC_SAMPLER_DDIM},
    {"pndm", SDC_SAMPLER_PNDM},
    {"dpm++2m", SDC_SAMPLER_DPMPP_2M},
    {"dpmpp_2m", SDC_SAMPLER_DPMPP_2M},
    {"euler_ancestral", SDC_SAMPLER_EULER_A},
    {NULL, 0},
};
static const name_entry schedulers[] = {{"discrete", 0}, {"karras", 1}, {NULL, 0}};
static const name_entry rngs[] = {{"cpu", SDC_RNG_TYPE_CPU}, {"cuda", SDC_RNG_TYPE_CUDA}, {NULL, 0}};
static const name_entry devices[] = {
    {"cpu", SDC_DEVICE_CPU}, {"cuda", SDC_DEVICE_CUDA}, {"auto", SDC_DEVICE_AUTO}, {NULL, 0}};
static const name_entry precisions[] = {{"fp16", SDC_PRECISION_AUTO}, {"f32", SDC_PRECISION_F32},
                                        {"bf16", SDC_PRECISION_BF16}, {"f16", SDC_PRECISION_AUTO},
                                        {"auto", SDC_PRECISION_AUTO}, {NULL, 0}};
static const name_entry policies[] = {
    {"auto", SDC_LOAD_AUTO},     {"all", SDC_LOAD_ALL},       {"sequential", SDC_LOAD_SEQUENTIAL},
    {"phased", SDC_LOAD_PHASED}, {"stream", SDC_LOAD_STREAM}, {NULL, 0}};

static const name_entry *const lists[] = {
    [SDC_NAMES_SAMPLER] = samplers, [SDC_NAMES_SCHEDULER] = schedulers, [SDC_NAMES_RNG] = rngs,
    [SDC_NAMES_DEVICE] = devices,   [SDC_NAMES_PRECISION] = precisions, [SDC_NAMES_LOAD_POLICY] = policies,
};
_Static_assert(sizeof lists / sizeof lists[0] == SDC_NAMES_COUNT, "one table per list");
_Static_assert(sizeof samplers / sizeof samplers[0] == SDC_SAMPLER_COUNT + 3, "every sampler named, 2 aliases");
_Static_assert(sizeof policies / sizeof policies[0] == SDC_LOAD_POLICY_COUNT + 1, "every policy named");

int sdc_name_to_value(sdc_name_list list, const char *name, int *value) {
    if ((unsigned)list >= SDC_NAMES_COUNT || !name) return -1;
    for (const name_entry *e = lists[list]; e->name; e++)
        if (!strcmp(e->name, name)) {
            *value = e->value;
            return 0;
        }
    return -1;
}

const char *sdc_value_name(sdc_name_list list, int value) {
    if ((unsigned)list >= SDC_NAMES_COUNT) return "?";
    for (const name_entry *e = lists[list]; e->name; e++)
        if (e->value == value) return e->name;
    return "?";
}

const char *sdc_names(sdc_name_list list) {
    static const char *const joined[] = {
        [SDC_NAMES_SAMPLER] = "euler, euler_a, heun, lms, ddim, pndm, dpm++2m",
        [SDC_NAMES_SCHEDULER] = "discrete, karras",
        [SDC_NAMES_RNG] = "cpu, cuda",
        [SDC_NAMES_DEVICE] = "cpu, cuda, auto",
        [SDC_NAMES_PRECISION] = "fp16, f32, bf16",
        [SDC_NAMES_LOAD_POLICY] = "auto, all, sequential, phased, stream",
    };
    return (unsigned)list < SDC_NAMES_COUNT ? joined[list] : "";
}
