/* adapt.h — when a oneDNN primitive runs best on another activation layout than the tensors'
 * (grouped convolutions without a blocked JIT kernel, first layers with odd channel counts), an
 * adapter holds a copy in the primitive's layout and the reorder that fills it or empties it. */
#ifndef CNN_OPS_ADAPT_H
#define CNN_OPS_ADAPT_H
#include "core/plan.h"

typedef struct adapter {
    int buf;       /* copy in the primitive's layout, -1: the primitive uses the tensor directly */
    int reorder;   /* tensor -> copy (inputs) or copy -> tensor (outputs) */
} adapter;

/* Prepare an adapter between a tensor's layout and a primitive's (none if they are equal).
 * to_primitive: the data flows tensor -> primitive (an input) or primitive -> tensor (an output). */
cnn_status adapter_make(plan *p, int nid, const dnnl_memory_desc_t *tensor_md, const dnnl_memory_desc_t *prim_md,
                        bool to_primitive, enum buf_life life, adapter *a);
/* Input: fills the copy from `tensor` and returns the memory the primitive reads. */
dnnl_memory_t adapter_in(plan *p, const adapter *a, dnnl_memory_t tensor);
/* Output: the memory the primitive writes; adapter_out_end copies it into `tensor`. */
dnnl_memory_t adapter_out(plan *p, const adapter *a, dnnl_memory_t tensor);
void adapter_out_end(plan *p, const adapter *a, dnnl_memory_t tensor);
#endif
