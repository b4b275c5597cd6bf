/* adapt.c — layout adapters for primitives (see adapt.h). */
#include "ops/adapt.h"
#include "core/error.h"

cnn_status adapter_make(plan *p, int nid, const dnnl_memory_desc_t *tensor_md, const dnnl_memory_desc_t *prim_md,
                        bool to_primitive, enum buf_life life, adapter *a) {
    a->buf = a->reorder = -1;
    if (be_md_equal(tensor_md, prim_md)) return CNN_OK;
    a->buf = plan_request(p, nid, life, prim_md, 0);
    if (a->buf < 0) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    const backend *b = be_get();
    const dnnl_memory_desc_t *from = to_primitive ? tensor_md : prim_md, *to = to_primitive ? prim_md : tensor_md;
    dnnl_primitive_desc_t pd;
    CNN_TRY(be_check(dnnl_reorder_primitive_desc_create(&pd, from, b->engine, to, b->engine, NULL), "reorder"));
    cnn_status st;
    a->reorder = plan_prim(p, pd, &st);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

dnnl_memory_t adapter_in(plan *p, const adapter *a, dnnl_memory_t tensor) {
    if (a->buf < 0) return tensor;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, tensor}, {DNNL_ARG_TO, plan_buf_mem(p, a->buf)}};
    plan_run(p, a->reorder, 2, args);
    return plan_buf_mem(p, a->buf);
}

dnnl_memory_t adapter_out(plan *p, const adapter *a, dnnl_memory_t tensor) {
    return a->buf < 0 ? tensor : plan_buf_mem(p, a->buf);
}

void adapter_out_end(plan *p, const adapter *a, dnnl_memory_t tensor) {
    if (a->buf < 0) return;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, plan_buf_mem(p, a->buf)}, {DNNL_ARG_TO, tensor}};
    plan_run(p, a->reorder, 2, args);
}
