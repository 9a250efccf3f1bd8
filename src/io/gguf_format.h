/* gguf_format.h - the GGUF container's constants (ggml's docs/gguf.md), shared by the reader (io/gguf.c)
 * and the writer (io/gguf_write.c).
 *
 * A file is: magic "GGUF", u32 version (2 or 3), u64 tensor count, u64 metadata count; the metadata
 * key/value pairs (key: u64 length + bytes; u32 value type; the value); the tensor infos (name string,
 * u32 n_dims, u64 ne[n_dims] innermost first, u32 ggml type, u64 offset relative to the data section);
 * padding to general.alignment (default 32); the data section. All little-endian. Tensor ids are ggml's
 * type ids (core/quant.h: sdc_dtype_from_ggml). */
#ifndef SDC_IO_GGUF_FORMAT_H
#define SDC_IO_GGUF_FORMAT_H

#define SDC_GGUF_MAGIC 0x46554747u /* "GGUF" read as a little-endian u32 */
#define SDC_GGUF_DEFAULT_ALIGNMENT 32
#define SDC_GGUF_MAX_DIMS 4 /* ggml's GGML_MAX_DIMS */

typedef enum sdc_gguf_value_type {
    SDC_GGUF_UINT8 = 0,
    SDC_GGUF_INT8 = 1,
    SDC_GGUF_UINT16 = 2,
    SDC_GGUF_INT16 = 3,
    SDC_GGUF_UINT32 = 4,
    SDC_GGUF_INT32 = 5,
    SDC_GGUF_FLOAT32 = 6,
    SDC_GGUF_BOOL = 7,
    SDC_GGUF_STRING = 8,
    SDC_GGUF_ARRAY = 9,
    SDC_GGUF_UINT64 = 10,
    SDC_GGUF_INT64 = 11,
    SDC_GGUF_FLOAT64 = 12,
    SDC_GGUF_VALUE_TYPE_COUNT
} sdc_gguf_value_type;

#endif
