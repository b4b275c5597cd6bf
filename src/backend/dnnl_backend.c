/* dnnl_backend.c — engine, stream, layout choice and checked primitive creation. */
#include "backend/dnnl_backend.h"
#include "core/error.h"
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static backend the_backend;
static cnn_status backend_status = CNN_OK;
static char backend_msg[256];
static pthread_once_t backend_once = PTHREAD_ONCE_INIT;

static void backend_init(void) {
    if (dnnl_engine_create(&the_backend.engine, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&the_backend.stream, the_backend.engine, dnnl_stream_default_flags) != dnnl_success) {
        backend_status = CNN_ERR_BACKEND;
        snprintf(backend_msg, sizeof backend_msg, "oneDNN: cannot create the CPU engine");
        return;
    }
    /* The JIT convolutions take nChw16c on AVX-512 and nChw8c on AVX2; the other block size
     * falls back to the reference kernels. */
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    int avx512 = (isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core;
    the_backend.block = avx512 ? 16 : 8;
    the_backend.blocked = avx512 ? dnnl_nChw16c : dnnl_nChw8c;
}

const backend *be_get(void) {
    pthread_once(&backend_once, backend_init);
    if (backend_status != CNN_OK) {
        cnn_fail(backend_status, "%s", backend_msg);
        return NULL;
    }
    return &the_backend;
}

int be_block(void) {
    const backend *b = be_get();
    return b ? b->block : 8;
}

static const char *isa_name(dnnl_cpu_isa_t isa) {
    if ((isa & dnnl_cpu_isa_avx512_core_amx) == dnnl_cpu_isa_avx512_core_amx) return "AVX-512 with AMX";
    if ((isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16) return "AVX-512 with BF16";
    if ((isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core) return "AVX-512 without BF16";
    if ((isa & dnnl_cpu_isa_avx2) == dnnl_cpu_isa_avx2) return "AVX2";
    return "SSE4.1 or older";
}

cnn_status be_precision_check(const char *name, bool *bf16) {
    if (bf16) *bf16 = false;
    if (!strcmp(name, "f32")) return CNN_OK;
    if (strcmp(name, "bf16")) return cnn_fail(CNN_ERR_ARG, "--precision %s: expected f32 or bf16", name);
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    if ((isa & dnnl_cpu_isa_avx512_core_bf16) != dnnl_cpu_isa_avx512_core_bf16)
        return cnn_fail(CNN_ERR_ARG, "--precision bf16: this CPU (%s) has no bf16 arithmetic, so oneDNN would only "
                                     "emulate it, slower than f32; train in f32 (the default)", isa_name(isa));
    if (bf16) *bf16 = true;
    return CNN_OK;
}

cnn_status be_check(dnnl_status_t s, const char *what) {
    if (s == dnnl_success) return CNN_OK;
    const char *why = s == dnnl_out_of_memory ? "out of memory"
                    : s == dnnl_invalid_arguments ? "invalid arguments"
                    : s == dnnl_unimplemented ? "no implementation for these shapes/layouts"
                    : "failure";
    return cnn_fail(s == dnnl_out_of_memory ? CNN_ERR_NOMEM : CNN_ERR_BACKEND, "oneDNN %s: %s (status %d)",
                    what, why, (int)s);
}

void be_md_act(dnnl_memory_desc_t *md, int n, int c, int h, int w, enum layout layout) {
    dnnl_dims_t dims = {n, c, h, w};
    if (layout == LAYOUT_PLAIN && h == 1 && w == 1) {
        dnnl_memory_desc_init_by_tag(md, 2, dims, dnnl_f32, dnnl_nc);
        return;
    }
    dnnl_format_tag_t tag = layout == LAYOUT_BLOCKED ? be_get()->blocked : dnnl_nchw;
    dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, tag);
}

void be_md_nchw(dnnl_memory_desc_t *md, int n, int c, int h, int w) {
    dnnl_dims_t dims = {n, c, h, w};
    dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, dnnl_nchw);
}

void be_md_plain(dnnl_memory_desc_t *md, int ndims, const int64_t *dims, dnnl_format_tag_t tag) {
    dnnl_dims_t d;
    for (int i = 0; i < ndims; i++) d[i] = dims[i];
    dnnl_memory_desc_init_by_tag(md, ndims, d, dnnl_f32, tag);
}

void be_md_bytes(dnnl_memory_desc_t *md, size_t bytes) {
    dnnl_dims_t d = {(dnnl_dim_t)bytes};
    dnnl_memory_desc_init_by_tag(md, 1, d, dnnl_u8, dnnl_x);
}

size_t be_md_size(const dnnl_memory_desc_t *md) { return dnnl_memory_desc_get_size(md); }

int be_md_equal(const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b) { return dnnl_memory_desc_equal(a, b); }

dnnl_primitive_attr_t be_attr(void) {
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_attr_create(&attr);
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    return attr;
}

const char *be_impl(const_dnnl_primitive_desc_t pd) {
    const char *s = "?";
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s);
    return s;
}

const dnnl_memory_desc_t *be_query_md(const_dnnl_primitive_desc_t pd, dnnl_query_t what, int index) {
    return dnnl_primitive_desc_query_md(pd, what, index);
}

/* oneDNN has no JIT kernel for some shapes (e.g. grouped convolutions with few channels per
 * group on AVX2): they run, ~1000x slower. Say so once per kind of primitive. */
void be_warn_ref(const_dnnl_primitive_desc_t pd, const char *what) {
    static char seen[32][64];
    static int nseen;
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    if (getenv("CNN_QUIET_REF")) return;
    pthread_mutex_lock(&lock);
    bool known = false;
    for (int i = 0; i < nseen && !known; i++) known = strcmp(seen[i], what) == 0;
    if (!known && nseen < 32) snprintf(seen[nseen++], sizeof seen[0], "%s", what);
    pthread_mutex_unlock(&lock);
    if (!known)
        fprintf(stderr, "cnn: warning: oneDNN has only its reference kernel (%s) for a %s here; that layer will be slow\n",
                be_impl(pd), what);
}

cnn_status be_pd(dnnl_primitive_desc_t *pd, const void *op_desc, dnnl_primitive_attr_t attr,
                 const_dnnl_primitive_desc_t hint, int allow_ref, const char *what) {
    const backend *b = be_get();
    if (!b) return CNN_ERR_BACKEND;
    dnnl_primitive_attr_t own = NULL;
    if (!attr) attr = own = be_attr();
    dnnl_status_t s = dnnl_primitive_desc_create(pd, op_desc, attr, b->engine, hint);
    if (own) dnnl_primitive_attr_destroy(own);
    CNN_TRY(be_check(s, what));
    if (!allow_ref && strncmp(be_impl(*pd), "ref", 3) == 0) be_warn_ref(*pd, what);
    return CNN_OK;
}

dnnl_memory_t be_mem(const dnnl_memory_desc_t *md, void *ptr) {
    dnnl_memory_t m = NULL;
    if (dnnl_memory_create(&m, md, be_get()->engine, ptr ? ptr : DNNL_MEMORY_NONE) != dnnl_success) return NULL;
    return m;
}

cnn_status be_reorder_once(const dnnl_memory_desc_t *src_md, const void *src,
                           const dnnl_memory_desc_t *dst_md, void *dst) {
    const backend *b = be_get();
    if (!b) return CNN_ERR_BACKEND;
    if (dnnl_memory_desc_equal(src_md, dst_md)) {
        memmove(dst, src, dnnl_memory_desc_get_size(src_md));
        return CNN_OK;
    }
    dnnl_primitive_desc_t pd;
    CNN_TRY(be_check(dnnl_reorder_primitive_desc_create(&pd, src_md, b->engine, dst_md, b->engine, NULL), "reorder"));
    dnnl_primitive_t p;
    cnn_status st = be_check(dnnl_primitive_create(&p, pd), "reorder");
    dnnl_primitive_desc_destroy(pd);
    if (st) return st;
    dnnl_memory_t ms = be_mem(src_md, (void *)src), md = be_mem(dst_md, dst);
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, ms}, {DNNL_ARG_TO, md}};
    st = be_check(dnnl_primitive_execute(p, b->stream, 2, args), "reorder");
    dnnl_stream_wait(b->stream);
    dnnl_memory_destroy(ms);
    dnnl_memory_destroy(md);
    dnnl_primitive_destroy(p);
    return st;
}
