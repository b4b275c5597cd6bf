/* dnnl_backend.h — the thin layer over oneDNN: one CPU engine and stream per process, the
 * activation layout (nChw8c on AVX2, nChw16c on AVX-512), and checked primitive creation. */
#ifndef CNN_BACKEND_DNNL_H
#define CNN_BACKEND_DNNL_H
#include <dnnl.h>
#include <stdbool.h>
#include <stddef.h>
#include "cnn.h"

enum layout {
    LAYOUT_PLAIN = 0,   /* nchw (the network input; logits as n×k×1×1) */
    LAYOUT_BLOCKED = 1, /* nChw{B}c, channels padded to a multiple of B with zeros */
};

typedef struct backend {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    int block;                  /* B: 8 or 16, the channel block the JIT kernels want */
    dnnl_format_tag_t blocked;  /* dnnl_nChw8c or dnnl_nChw16c */
} backend;

/* The process-wide backend, created on first use. NULL (with a message) if oneDNN fails. */
const backend *be_get(void);
int be_block(void);

/* Whether arithmetic precision `name` ("f32", "bf16") can run here: f32 always; bf16 (graph.bf16)
 * needs a CPU with bf16 instructions (AVX512-BF16 or AMX), else it is refused with the reason.
 * bf16 (may be NULL) says which was asked for. */
cnn_status be_precision_check(const char *name, bool *bf16);

/* Turn a dnnl status into ours, naming what was attempted. */
cnn_status be_check(dnnl_status_t s, const char *what);

/* Memory descriptor of an activation of the given layout: 4-D, except plain tensors of 1×1
 * spatial size (logits, features after a linear layer), which are 2-D n×c. */
void be_md_act(dnnl_memory_desc_t *md, int n, int c, int h, int w, enum layout layout);
/* Plain descriptor with a tag (e.g. dnnl_x, dnnl_oihw, dnnl_goihw, dnnl_nc). */
void be_md_plain(dnnl_memory_desc_t *md, int ndims, const int64_t *dims, dnnl_format_tag_t tag);
/* Always 4-D nchw (the canonical order of any activation, 1×1 ones included). */
void be_md_nchw(dnnl_memory_desc_t *md, int n, int c, int h, int w);
/* A descriptor for a raw byte buffer of `bytes` (used for workspaces and scratch). */
void be_md_bytes(dnnl_memory_desc_t *md, size_t bytes);
size_t be_md_size(const dnnl_memory_desc_t *md);
int be_md_equal(const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b);

/* Create a primitive descriptor (attr NULL: user-managed scratchpad). A reference ("ref:")
 * implementation, ~1000x slower than the JIT kernels, is accepted with a one-time warning on
 * stderr unless allow_ref says it is expected (e.g. gradients no training step computes). */
cnn_status be_pd(dnnl_primitive_desc_t *pd, const void *op_desc, dnnl_primitive_attr_t attr,
                 const_dnnl_primitive_desc_t hint, int allow_ref, const char *what);
const char *be_impl(const_dnnl_primitive_desc_t pd);
/* The one-time warning be_pd gives for a reference kernel, for callers that chose one knowingly. */
void be_warn_ref(const_dnnl_primitive_desc_t pd, const char *what);
const dnnl_memory_desc_t *be_query_md(const_dnnl_primitive_desc_t pd, dnnl_query_t what, int index);
/* An attribute object with scratchpad mode "user"; the caller destroys it. */
dnnl_primitive_attr_t be_attr(void);

dnnl_memory_t be_mem(const dnnl_memory_desc_t *md, void *ptr);

/* One-shot reorder between two layouts (edges only: checkpoints, tests). */
cnn_status be_reorder_once(const dnnl_memory_desc_t *src_md, const void *src,
                           const dnnl_memory_desc_t *dst_md, void *dst);
#endif
