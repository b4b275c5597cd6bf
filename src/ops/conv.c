/* conv.c — 2-D convolution (stride, padding, dilation, groups, optional bias) on oneDNN:
 * forward, backward-data and backward-weights primitives created once per plan. The weights
 * keep the forward primitive's layout; other primitives get views in theirs. Where oneDNN has no
 * JIT kernel for the tensors' layout, a primitive runs on another one through adapters:
 * plain nchw for grouped convolutions with few channels per group and for the backward weights of
 * 3×3 convolutions on maps of 2×2 or less (VGG and ResNet's last stages on small inputs), a blocked
 * input for the backward weights of first layers whose channel count the plain-input kernel refuses.
 * Where oneDNN's only kernel for the backward weights is its GEMM one, which multiplies per image (a
 * product of depth OH·OW, 4 on a 2×2 map), and where its blocked kernel parallelizes poorly (3×3 and
 * larger kernels on output maps of 8×8 or less), conv_bwd_weights_gemm does one GEMM over the whole
 * batch, reading the input and the output gradient in their blocked layout; depthwise convolutions that
 * oneDNN would give its GEMM kernel (5×5) get conv_bwd_weights_depthwise.
 * 3×3 convolutions of 32 channels and more (stride 1) run oneDNN's Winograd kernels where it has them
 * (AVX-512; choose_winograd), about twice as fast; in evaluation those of 96 input channels and more, or
 * on few tiles (small batches), run cnn.c's own (winograd.h; own_winograd_fits), on the derived weights of
 * conv_fold transformed once per change; CNN_WINOGRAD=0 keeps them all direct. In training, 3×3 stride-1
 * convolutions of 16 → 16 channels (the CIFAR ResNets' first stage) run cnn.c's own kernels (conv16.h;
 * own16_fits), which also give the batch norm after them its statistics (op_conv_output_sums), and so do the
 * 3×3 stride-2 ones whose channels fill blocks of 16 in and pairs of blocks out (their entries to the next stages:
 * conv_s2.h; own_s2_fits). 1×1 convolutions of
 * evaluation plans followed by a SiLU run cnn.c's own kernel (pointwise.h; own_pointwise_fits), the SiLU
 * applied in registers, where oneDNN's post-op doubled their time, and so do stride-1 depthwise convolutions
 * followed by a SiLU (depthwise.h; own_depthwise_fits); CNN_OWN_SILU=0 keeps oneDNN's for both. Grouped
 * convolutions with fewer channels per group than a vector block (ResNeXt's) run with neighbouring
 * groups merged into whole blocks, block-diagonal weights derived from the parameter at each change
 * (grouped_expansion, conv_fold), on oneDNN's blocked kernels instead of its GEMM one.
 * In evaluation plans a convolution absorbs the batch norm after it (folded into its weights and
 * bias, refolded when parameters change), then a residual addition (a sum post-op over the other
 * addend, whose buffer its output takes: plan_output_over), then a ReLU or, on AVX-512, a SiLU (a post-op,
 * or the own 1×1 kernel's).
 * With graph.bf16 (mixed precision) a convolution that has bf16 kernels computes in bf16: its input
 * and output gradient reach the primitives through converting adapters, its weights through a bf16
 * view of the f32 weights; outputs and gradients stay f32 (bf16_kernels, compile_backward). A recurrent cell's steps share
 * one weight tensor (op_conv2d_shared), and a step may read a window of it. */
#include "core/error.h"
#include "core/plan.h"
#include "ops/adapt.h"
#include "ops/conv16.h"
#include "ops/conv_s2.h"
#include "ops/layout.h"
#include "ops/depthwise.h"
#include "ops/ops.h"
#include "ops/pointwise.h"
#include "ops/winograd.h"
#include <dnnl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

typedef struct conv_attr {
    conv_cfg cfg;
    int in_c;
    bool window;               /* the weights are rows [row0, row0 + out_c), input channels [0, in_c) of larger ones */
    int row0;
} conv_attr;

/* Weights the forward reads derived from the parameter, remade when it changes: the batch norm
 * folded in (w' = w·scale[o], b' = b·scale[o] + shift[o]) and/or groups merged (block-diagonal
 * weights: grouped_expansion). Absent (bn < 0, expand 1) the primitives read the parameter itself. */
typedef struct conv_fold {
    int bn;                               /* the absorbed batch-norm node, -1 if none */
    int expand;                           /* groups merged into one (1: none) */
    int canon, wide, folded, bias, scale; /* buffers (wide: the merged groups' goihw, -1 if none) */
    int own;                              /* cnn.c's own kernels: their weights (Winograd's U) in place of folded */
    int to_canon, from_canon;             /* reorders of the weights */
    int folded_bwd, to_bwd;               /* merged groups in training: backward data's copy, if its layout differs */
    int64_t version;                      /* parameter version derived */
} conv_fold;

typedef struct conv_state {
    int fwd, bwd_data, bwd_weights;       /* primitive handles, -1 if absent */
    conv_fold fold;
    int w_fwd_view, w_bwd_view, b_view, dw_view, db_view;
    adapter src, dst;                     /* forward: tensors <-> the forward primitive's layout */
    adapter ddst, dsrc;                   /* backward: gradients <-> the backward primitives' layout */
    adapter bw_src, bw_ddst;              /* backward weights: input, output gradient -> its layouts */
    dnnl_memory_t bw_nhwc[2];             /* backward weights on nhwc descriptors (nhwc_bwd_weights): the input's
                                             and the output gradient's bytes under them; NULL otherwise */
    struct {                              /* conv_bwd_weights_gemm: buffers (-1 when oneDNN's primitive runs) */
        int dy, cols;                     /* output gradient oc × (n·oh·ow); input patches (n·oh·ow) × (ic·k·k) */
    } gemm;
    bool depthwise;                       /* backward weights by conv_bwd_weights_depthwise */
    int dw_wide, dw_to_wide;              /* merged groups: the weight gradient in the primitive's layout, its reorder */
    bool bf16;                            /* the primitives compute in bf16 (graph.bf16, where oneDNN has kernels) */
    struct {                              /* cnn.c's own direct 3×3 kernels in place of every primitive: 16 → 16
                                             channels at stride 1 (conv16.h, own16_fits) or stride 2 (conv_s2.h,
                                             own_s2_fits) */
        bool on, s2;
        c16_shape shape;                  /* stride 1 */
        s2_shape s2_shape;                /* stride 2 */
        int scratch, threads;             /* the backward weights' per-thread sums, for `threads` threads */
        double *sums;                     /* stride 1: the output's channel sums for the batch norm after it (NULL:
                                             none) */
        int chunk_sums;                   /* their parts per chunk of rows (-1: none) */
    } direct;
    char kind[96];                        /* conv_kind: size, stride, grouping, algorithm (room for any ints) */
    struct {                              /* cnn.c's own forward instead of a primitive (evaluation) */
        enum { OWN_NONE, OWN_WINOGRAD, OWN_POINTWISE, OWN_DEPTHWISE } kernel;
        unsigned post;                    /* Winograd: WINO_ADD, WINO_RELU; pointwise: PW_SILU; depthwise: DW_SILU */
        wino_shape shape;
        pw_shape pw;
        dw_shape dw;
        int scratch;                      /* Winograd's tile blocks' transformed inputs and products; depthwise:
                                             the threads' padded planes (-1: none) */
        int threads;                      /* depthwise: threads the scratch has room for */
    } own;
} conv_state;

static int out_size(int in, int k, int stride, int pad, int dil) {
    return (in + 2 * pad - dil * (k - 1) - 1) / stride + 1;
}

static void weights_dims(const conv_attr *a, dnnl_dims_t d, int *nd) {
    const conv_cfg *c = &a->cfg;
    if (c->groups == 1) {
        d[0] = c->out_c; d[1] = a->in_c; d[2] = c->k; d[3] = c->k;
        *nd = 4;
    } else {
        d[0] = c->groups; d[1] = c->out_c / c->groups; d[2] = a->in_c / c->groups; d[3] = c->k; d[4] = c->k;
        *nd = 5;
    }
}

/* What every primitive of this convolution shares: weights "any", bias, geometry. */
typedef struct conv_geom {
    dnnl_memory_desc_t w, b;              /* w: f32, the weight gradient's type */
    dnnl_memory_desc_t wc;                /* the weights as forward and backward data read them: f32 or bf16 */
    dnnl_memory_desc_t w_plain;           /* the weights in PyTorch's layout (oihw, goihw) */
    const dnnl_memory_desc_t *bias;       /* &b or NULL */
    dnnl_dims_t strides, dil, pad;
    bool sum;                             /* a sum post-op (evaluation: the residual addition after it) */
    dnnl_alg_kind_t act;                  /* activation post-op (evaluation: ReLU, SiLU), dnnl_alg_kind_undef if none */
    dnnl_alg_kind_t alg;                  /* dnnl_convolution_direct or, where it pays, dnnl_convolution_winograd */
} conv_geom;

static void make_geom(const conv_attr *a, conv_geom *g) {
    dnnl_dims_t wd;
    int nd;
    weights_dims(a, wd, &nd);
    dnnl_memory_desc_init_by_tag(&g->w, nd, wd, dnnl_f32, dnnl_format_tag_any);
    g->wc = g->w;
    dnnl_memory_desc_init_by_tag(&g->w_plain, nd, wd, dnnl_f32, nd == 4 ? dnnl_oihw : dnnl_goihw);
    dnnl_dims_t bd = {a->cfg.out_c};
    dnnl_memory_desc_init_by_tag(&g->b, 1, bd, dnnl_f32, dnnl_x);
    g->bias = a->cfg.bias ? &g->b : NULL;
    g->sum = false;
    g->act = dnnl_alg_kind_undef;
    g->alg = dnnl_convolution_direct;
    g->strides[0] = g->strides[1] = a->cfg.stride;
    g->dil[0] = g->dil[1] = a->cfg.dilation - 1;
    g->pad[0] = g->pad[1] = a->cfg.pad;
}

static void plain_of(const dnnl_memory_desc_t *md, dnnl_memory_desc_t *plain) {
    be_md_nchw(plain, (int)md->dims[0], (int)md->dims[1], (int)md->dims[2], (int)md->dims[3]);
}

static void blocked_of(const dnnl_memory_desc_t *md, dnnl_memory_desc_t *blocked) {
    be_md_act(blocked, (int)md->dims[0], (int)md->dims[1], (int)md->dims[2], (int)md->dims[3], LAYOUT_BLOCKED);
}

static bool is_ref(const_dnnl_primitive_desc_t pd) { return strncmp(be_impl(pd), "ref", 3) == 0; }

/* The same layout with elements of type t (bf16 copies of f32 tensors). */
static dnnl_memory_desc_t typed(const dnnl_memory_desc_t *md, dnnl_data_type_t t) {
    dnnl_memory_desc_t r = *md;
    r.data_type = t;
    return r;
}

static cnn_status fwd_pd(const conv_geom *g, bool train, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst,
                         dnnl_primitive_desc_t *pd) {
    dnnl_convolution_desc_t cd;
    CNN_TRY(be_check(dnnl_dilated_convolution_forward_desc_init(
                         &cd, train ? dnnl_forward_training : dnnl_forward_inference, g->alg, src, &g->wc,
                         g->bias, dst, g->strides, g->dil, g->pad, g->pad),
                     "convolution forward"));
    dnnl_primitive_attr_t attr = be_attr();
    if (g->sum || g->act != dnnl_alg_kind_undef) {
        dnnl_post_ops_t ops;
        dnnl_post_ops_create(&ops);
        if (g->sum) dnnl_post_ops_append_sum(ops, 1.0f); /* dst = conv + dst, then the activation */
        if (g->act != dnnl_alg_kind_undef)
            dnnl_post_ops_append_eltwise(ops, 1.0f, g->act, g->act == dnnl_eltwise_swish ? 1.0f : 0.0f, 0.0f);
        dnnl_primitive_attr_set_post_ops(attr, ops);
        dnnl_post_ops_destroy(ops);
    }
    cnn_status st = be_pd(pd, &cd, attr, NULL, 1, "convolution forward");
    dnnl_primitive_attr_destroy(attr);
    return st;
}

/* The forward primitive on the tensors' layouts, or on plain nchw if only that has a JIT kernel;
 * src and dst return the layouts chosen. */
static cnn_status choose_forward(const conv_geom *g, bool train, dnnl_memory_desc_t *src, dnnl_memory_desc_t *dst,
                                 dnnl_primitive_desc_t *pd) {
    CNN_TRY(fwd_pd(g, train, src, dst, pd));
    if (!is_ref(*pd)) return CNN_OK;
    dnnl_memory_desc_t ps, pdst;
    plain_of(src, &ps);
    plain_of(dst, &pdst);
    dnnl_primitive_desc_t alt = NULL;
    if (fwd_pd(g, train, &ps, &pdst, &alt) == CNN_OK && !is_ref(alt)) {
        dnnl_primitive_desc_destroy(*pd);
        *pd = alt;
        *src = ps;
        *dst = pdst;
        return CNN_OK;
    }
    if (alt) dnnl_primitive_desc_destroy(alt);
    be_warn_ref(*pd, "convolution forward");
    return CNN_OK;
}

static cnn_status bwd_data_pd(const conv_geom *g, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst,
                              const_dnnl_primitive_desc_t fpd, int allow_ref, dnnl_primitive_desc_t *pd) {
    dnnl_convolution_desc_t cd;
    CNN_TRY(be_check(dnnl_dilated_convolution_backward_data_desc_init(&cd, g->alg, src, &g->wc, dst,
                                                                       g->strides, g->dil, g->pad, g->pad),
                     "convolution backward data"));
    return be_pd(pd, &cd, NULL, fpd, allow_ref, "convolution backward data");
}

static cnn_status bwd_weights_pd(const conv_geom *g, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst,
                                 const_dnnl_primitive_desc_t fpd, dnnl_primitive_desc_t *pd) {
    dnnl_convolution_desc_t cd;
    CNN_TRY(be_check(dnnl_dilated_convolution_backward_weights_desc_init(&cd, g->alg, src, &g->w,
                                                                          g->bias, dst, g->strides, g->dil, g->pad,
                                                                          g->pad),
                     "convolution backward weights"));
    return be_pd(pd, &cd, NULL, fpd, 1, "convolution backward weights");
}

static bool winograd_enabled(void) { return plan_knob_enabled("CNN_WINOGRAD"); }
static bool own_silu_enabled(void) { return plan_knob_enabled("CNN_OWN_SILU"); }

/* A tensor of exactly one block of channels (16 on AVX-512) in the blocked layout nChw16c has the bytes of
 * nhwc, and oneDNN's backward weights kernel for nhwc descriptors is faster there: resnet20's 16 → 16
 * convolutions at batch 128, 32×32, 2.0–2.1 ms per call against 2.4–2.9 ms for the blocked one with the
 * caches flushed (as in the step, where the input was written long before; 1.5–1.6 against 1.8 ms warm).
 * Where the input and the output gradient are both such tensors (of a 3×3 stride-1 convolution, the case
 * measured), *pd becomes that kernel and bw_nhwc the memory objects that present them under nhwc
 * descriptors (the same bytes: nothing is copied).
 * CNN_NHWC16=0 in the environment keeps the blocked kernel (A/B runs). */
static cnn_status nhwc_bwd_weights(const conv_geom *g, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst,
                                   const_dnnl_primitive_desc_t fpd, dnnl_primitive_desc_t *pd, dnnl_memory_t bw_nhwc[2]) {
    /* the case measured: ungrouped, direct, 3×3 at stride 1, f32 */
    if (!plan_knob_enabled("CNN_NHWC16") || be_block() != 16 || src->ndims != 4 || src->data_type != dnnl_f32 ||
        src->dims[1] != 16 || dst->dims[1] != 16 || g->w.ndims != 4 || g->alg != dnnl_convolution_direct ||
        g->w.dims[2] != 3 || g->w.dims[3] != 3 || g->strides[0] != 1 || g->strides[1] != 1)
        return CNN_OK;
    dnnl_memory_desc_t bs, bd, ns, nd;
    blocked_of(src, &bs);
    blocked_of(dst, &bd);
    if (!be_md_equal(src, &bs) || !be_md_equal(dst, &bd)) return CNN_OK;
    dnnl_memory_desc_init_by_tag(&ns, 4, src->dims, dnnl_f32, dnnl_nhwc);
    dnnl_memory_desc_init_by_tag(&nd, 4, dst->dims, dnnl_f32, dnnl_nhwc);
    dnnl_primitive_desc_t alt = NULL;
    if (bwd_weights_pd(g, &ns, &nd, fpd, &alt) != CNN_OK || is_ref(alt)) {
        if (alt) dnnl_primitive_desc_destroy(alt);
        cnn_clear_error();
        return CNN_OK;
    }
    bw_nhwc[0] = be_mem(&ns, NULL);
    bw_nhwc[1] = be_mem(&nd, NULL);
    if (!bw_nhwc[0] || !bw_nhwc[1]) {
        dnnl_primitive_desc_destroy(alt);
        return cnn_fail(CNN_ERR_BACKEND, "oneDNN: cannot create a memory object");
    }
    dnnl_primitive_desc_destroy(*pd);
    *pd = alt;
    return CNN_OK;
}

/* m as `alias` presents it (its data handle set to m's), or m if alias is NULL. */
static dnnl_memory_t as_alias(dnnl_memory_t alias, dnnl_memory_t m) {
    if (!alias) return m;
    void *h = NULL;
    dnnl_memory_get_data_handle(m, &h);
    dnnl_memory_set_data_handle(alias, h);
    return alias;
}

/* Backward weights on the forward's layouts (src and dst return the layouts chosen); failing a JIT
 * kernel there: for a plain input (AVX2's plain-input kernel takes exactly 3 channels) a blocked
 * copy of the input, else (AVX2's blocked kernel refuses 3×3 on maps of 2×2 or less) plain nchw
 * copies of the input and the output gradient for the GEMM kernel. */
static cnn_status choose_bwd_weights(const conv_geom *g, dnnl_memory_desc_t *src, dnnl_memory_desc_t *dst,
                                     const_dnnl_primitive_desc_t fpd, dnnl_primitive_desc_t *pd) {
    CNN_TRY(bwd_weights_pd(g, src, dst, fpd, pd));
    if (!is_ref(*pd)) return CNN_OK;
    dnnl_memory_desc_t bs, ps, pdst;
    blocked_of(src, &bs);
    plain_of(src, &ps);
    plain_of(dst, &pdst);
    const dnnl_memory_desc_t *alt_src[2] = {&bs, &ps}, *alt_dst[2] = {dst, &pdst};
    for (int i = 0; i < 2; i++) {
        dnnl_primitive_desc_t alt = NULL;
        if (be_md_equal(alt_src[i], src) && be_md_equal(alt_dst[i], dst)) continue;
        if (bwd_weights_pd(g, alt_src[i], alt_dst[i], fpd, &alt) == CNN_OK && !is_ref(alt)) {
            dnnl_primitive_desc_destroy(*pd);
            *pd = alt;
            *src = *alt_src[i];
            *dst = *alt_dst[i];
            return CNN_OK;
        }
        if (alt) dnnl_primitive_desc_destroy(alt);
    }
    be_warn_ref(*pd, "convolution backward weights");
    return CNN_OK;
}

/* Whether oneDNN has bf16 JIT kernels for this convolution on the tensors' layouts: the forward
 * (input and weights in bf16, output f32), and in training the backward data (output gradient in
 * bf16, input gradient f32; where the input needs a gradient) and the backward weights (weight
 * gradient f32). Where one is missing (a first layer's plain input), the convolution stays f32. */
static bool bf16_kernels(const conv_geom *g32, bool train, bool bwd_data, const dnnl_memory_desc_t *src,
                         const dnnl_memory_desc_t *dst) {
    conv_geom g = *g32;
    g.wc = typed(&g32->w, dnnl_bf16);
    dnnl_memory_desc_t s16 = typed(src, dnnl_bf16), d16 = typed(dst, dnnl_bf16);
    dnnl_primitive_desc_t pd[3] = {NULL, NULL, NULL};
    bool ok = fwd_pd(&g, train, &s16, dst, &pd[0]) == CNN_OK && !is_ref(pd[0]);
    if (ok && train && bwd_data) ok = bwd_data_pd(&g, src, &d16, pd[0], 1, &pd[1]) == CNN_OK && !is_ref(pd[1]);
    if (ok && train) ok = bwd_weights_pd(&g, &s16, &d16, pd[0], &pd[2]) == CNN_OK && !is_ref(pd[2]);
    for (int i = 0; i < 3; i++)
        if (pd[i]) dnnl_primitive_desc_destroy(pd[i]);
    cnn_clear_error();
    return ok;
}

/* Winograd F(4×4, 3×3) (oneDNN's jit_wino_4x3, AVX-512 only) against its direct kernels, 2 threads,
 * forward / backward data / backward weights: about 2× faster from 32 channels on maps of 4×4 and up
 * (64 channels on 8×8, batch 128: 2.2×; 512 on 7×7, batch 32: 1.6–2.4×), slower with 16 channels and
 * on 2×2 maps (docs/design.md). It differs from the direct result by ~1e-6 relative. */
#define WINO_MIN_CHANNELS 32
#define WINO_MIN_SIDE 4

static bool winograd_fits(const conv_attr *a, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst) {
    const conv_cfg *c = &a->cfg;
    dnnl_memory_desc_t blocked;
    blocked_of(src, &blocked);
    return c->k == 3 && c->stride == 1 && c->dilation == 1 && c->groups == 1 && a->in_c >= WINO_MIN_CHANNELS &&
           c->out_c >= WINO_MIN_CHANNELS && dst->dims[2] >= WINO_MIN_SIDE && dst->dims[3] >= WINO_MIN_SIDE &&
           be_md_equal(src, &blocked);
}

/* Whether oneDNN has kernels accepted (`impl` in their name, or any but its reference ones if impl is
 * NULL) for every primitive this convolution needs under geometry m: the forward (a training one if
 * fwd_train), in training the backward data where the input needs a gradient and the backward weights.
 * If so *fpd becomes m's forward and *g m. */
static bool switch_geometry(conv_geom *g, const conv_geom *m, const char *impl, bool fwd_train, bool train,
                            bool bwd_data, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst,
                            dnnl_primitive_desc_t *fpd) {
    dnnl_primitive_desc_t pd[3] = {NULL, NULL, NULL};
#define ACCEPTED(q) (impl ? strstr(be_impl(q), impl) != NULL : !is_ref(q))
    bool ok = fwd_pd(m, fwd_train, src, dst, &pd[0]) == CNN_OK && ACCEPTED(pd[0]);
    if (ok && train && bwd_data) ok = bwd_data_pd(m, src, dst, pd[0], 0, &pd[1]) == CNN_OK && ACCEPTED(pd[1]);
    if (ok && train) ok = bwd_weights_pd(m, src, dst, pd[0], &pd[2]) == CNN_OK && ACCEPTED(pd[2]);
#undef ACCEPTED
    for (int i = 1; i < 3; i++)
        if (pd[i]) dnnl_primitive_desc_destroy(pd[i]);
    cnn_clear_error();
    if (!ok) {
        if (pd[0]) dnnl_primitive_desc_destroy(pd[0]);
        return false;
    }
    dnnl_primitive_desc_destroy(*fpd);
    *fpd = pd[0];
    *g = *m;
    return true;
}

/* The Winograd forward in place of the direct one *fpd, where oneDNN has Winograd kernels for every
 * primitive this convolution needs; g->alg says which won. The weights keep the direct forward's
 * layout, and evaluation too creates a training forward: for inference oneDNN wants its own
 * pre-transformed weights layout (nothing reorders back from it) and refuses any other. */
static void choose_winograd(conv_geom *g, bool train, bool bwd_data, const dnnl_memory_desc_t *src,
                            const dnnl_memory_desc_t *dst, dnnl_primitive_desc_t *fpd) {
    conv_geom w = *g;
    w.alg = dnnl_convolution_winograd;
    w.wc = *be_query_md(*fpd, dnnl_query_weights_md, 0);
    switch_geometry(g, &w, "wino", true, train, bwd_data, src, dst, fpd);
}

/* Grouped convolutions with fewer channels per group than a vector block (ResNeXt's 4 and 8 of 32
 * groups) have no blocked JIT kernel in oneDNN: its GEMM kernel on plain copies ran at 12–46 GFLOP/s
 * (ResNeXt-50, AVX-512). Merging `expand` neighbouring groups into one of a whole block (block-diagonal
 * weights, zeros between the merged groups) gives its blocked kernels: `expand` times the arithmetic at
 * ~150–200 GFLOP/s, with the same result (the zeros add exact zeros). At most 4 merged: beyond that the
 * extra arithmetic outweighs the kernel's speed. */
#define EXPAND_MAX 4

/* How many groups to merge (1: none): *fpd is the forward chosen on the tensor's layout `src`, on
 * `chosen` (plain where oneDNN's blocked kernels refused it). */
static int grouped_expansion(const conv_attr *a, const_dnnl_primitive_desc_t fpd, const dnnl_memory_desc_t *src,
                             const dnnl_memory_desc_t *chosen) {
    const conv_cfg *c = &a->cfg;
    const int per = a->in_c / c->groups, block = be_block();
    dnnl_memory_desc_t blocked;
    blocked_of(src, &blocked);
    if (c->groups == 1 || per != c->out_c / c->groups || per == 1 || block % per || !be_md_equal(src, &blocked) ||
        (be_md_equal(chosen, src) && !is_ref(fpd) && !strstr(be_impl(fpd), "gemm")))
        return 1; /* ungrouped, depthwise, or oneDNN has a blocked kernel for it */
    const int f = block / per;
    return f <= EXPAND_MAX && c->groups % f == 0 ? f : 1;
}

/* g with `expand` groups merged into one: the weights the primitives read (weights "any"). */
static void merge_groups(conv_geom *g, const conv_attr *a, int expand) {
    conv_attr m = *a;
    m.cfg.groups /= expand;
    conv_geom mg;
    make_geom(&m, &mg);
    g->w = g->wc = mg.w;
    g->w_plain = mg.w_plain;
}

/* The merged forward in place of *fpd (which src and dst return to the tensors' layouts), where
 * oneDNN has JIT kernels for every primitive this convolution needs on them; false if not. */
static bool choose_expansion(conv_geom *g, const conv_attr *a, int expand, bool train, bool bwd_data,
                             const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst, dnnl_primitive_desc_t *fpd) {
    conv_geom m = *g;
    merge_groups(&m, a, expand);
    return switch_geometry(g, &m, NULL, train, train, bwd_data, src, dst, fpd);
}


/* cnn.c's own Winograd F(m×m, 3×3) forward (winograd.h; m by wino_tile) in evaluation plans on AVX-512's
 * 16-channel blocks, where it beat oneDNN's kernel (2 threads, alone; docs/design.md): from 96 input channels
 * (batch 32, 96 to 512 channels, maps 7×7 to 56×56: 1.13–1.30×; 512 on 4×4 maps, batch 64: 1.49×), and
 * with fewer on at most 1024 tiles of 4×4 (batch 1: 1.2–1.4× with 32 and 64 channels; 64 channels on 8×8
 * maps at batch 128, 512 tiles: 1.11×), not on more (64 channels, 56×56, batch 32: 0.93×; 32 channels,
 * 16×16, batch 128: 0.92×). It keeps the map (padding 1), takes output channels in pairs of blocks, a fused
 * residual sum and a ReLU. A static rule of the plan's shapes: evaluations stay deterministic. */
#define OWN_WINO_MIN_CHANNELS 96
#define OWN_WINO_MAX_TILES 1024
/* Stride 2 (winograd.h: the input split by parity), 3×3 with 96 input channels and more, where each
 * transformed weight serves at least a tile block: ResNet-50's three at batch 32 (56→28 with 128 channels,
 * 28→14 with 256, 14→7 with 512) 27–28, 26–27 and 30 ms alone against oneDNN's ~36 ms direct kernels; at
 * batch 1 (4 to 49 tiles) reading the transformed weights (up to 9× the weights) made them slower. */
#define OWN_WINO_S2_MIN_TILES 96

static bool own_winograd_fits(const conv_attr *a, const conv_geom *g, bool train, const dnnl_memory_desc_t *src,
                              const dnnl_memory_desc_t *dst) {
    dnnl_memory_desc_t blocked, blocked_src;
    blocked_of(dst, &blocked);
    blocked_of(src, &blocked_src);
    const conv_cfg *c = &a->cfg;
    const int64_t tiles = dst->dims[0] * ((dst->dims[2] + 3) / 4) * ((dst->dims[3] + 3) / 4);
    const int m2 = wino_tile((int)dst->dims[2], (int)dst->dims[3], 2);
    const int64_t tiles2 = dst->dims[0] * ((dst->dims[2] + m2 - 1) / m2) * ((dst->dims[3] + m2 - 1) / m2);
    const bool stride2 = c->k == 3 && c->stride == 2 && c->dilation == 1 && c->groups == 1 &&
                         a->in_c >= OWN_WINO_MIN_CHANNELS && tiles2 >= OWN_WINO_S2_MIN_TILES &&
                         be_md_equal(src, &blocked_src);
    return !train && be_block() == 16 && !a->window && (winograd_fits(a, src, dst) || stride2) &&
           be_md_equal(dst, &blocked) && c->pad == 1 && a->in_c % 16 == 0 && c->out_c % 32 == 0 &&
           (g->act == dnnl_alg_kind_undef || g->act == dnnl_eltwise_relu) &&
           (a->in_c >= OWN_WINO_MIN_CHANNELS || tiles <= OWN_WINO_MAX_TILES);
}

/* What cnn.c's own kernels with a SiLU in registers need: an evaluation plan on AVX-512, a SiLU after the
 * convolution and no residual sum, the weights whole, input and output in the blocked layout of 16. */
static bool own_silu_fits(const conv_attr *a, const conv_geom *g, bool train, const dnnl_memory_desc_t *src,
                          const dnnl_memory_desc_t *dst) {
    dnnl_memory_desc_t bs, bd;
    blocked_of(src, &bs);
    blocked_of(dst, &bd);
    return !train && be_block() == 16 && !a->window && g->act == dnnl_eltwise_swish && !g->sum &&
           be_md_equal(src, &bs) && be_md_equal(dst, &bd);
}

/* cnn.c's own 1×1 convolution (pointwise.h) takes the convolutions of evaluation plans with a SiLU after
 * them: oneDNN's SiLU post-op doubles their time (EfficientNet-B0's expansions at batch 32, 2-core EPYC
 * family 25: 16→96 channels at 112×112 19.3 → 12.1 ms, 112→672 at 14×14 6.3 → 4.9; docs/design.md). */
static bool own_pointwise_fits(const conv_attr *a, const conv_geom *g, bool train, const dnnl_memory_desc_t *src,
                               const dnnl_memory_desc_t *dst) {
    const conv_cfg *c = &a->cfg;
    return pw_available() && c->k == 1 && c->stride == 1 && c->pad == 0 && c->groups == 1 &&
           own_silu_fits(a, g, train, src, dst);
}

/* cnn.c's own depthwise convolution (depthwise.h) takes the stride-1 depthwise convolutions of evaluation
 * plans with a SiLU after them, for the same reason: EfficientNet-B0's, batch 32, 1.06–1.39× oneDNN's with
 * its post-op; at stride 2 it ranged 0.68–1.16× (bench/silu_conv; docs/design.md). */
static bool own_depthwise_fits(const conv_attr *a, const conv_geom *g, bool train, const dnnl_memory_desc_t *src,
                               const dnnl_memory_desc_t *dst) {
    const conv_cfg *c = &a->cfg;
    return dw_available() && c->groups == a->in_c && c->out_c == a->in_c && (c->k == 3 || c->k == 5) &&
           c->stride == 1 && c->dilation == 1 && own_silu_fits(a, g, train, src, dst);
}

/* cnn.c's own direct kernels (conv16.h) take 3×3 stride-1 convolutions of exactly 16 channels into 16 on the
 * blocked layout of 16 (the CIFAR ResNets' first stage) with nothing fused, bias or folded: forward,
 * backward data (adding into an input gradient another consumer wrote, where oneDNN's wrote a temporary
 * then added) and backward weights, 25–30% faster than oneDNN's there (docs/design.md, "16-channel
 * convolutions"). CNN_CONV16=0 in the environment keeps oneDNN's (A/B runs). */
static bool own16_fits(const conv_attr *a, const conv_geom *g, const dnnl_memory_desc_t *src,
                       const dnnl_memory_desc_t *dst) {
    const conv_cfg *c = &a->cfg;
    dnnl_memory_desc_t bs, bd;
    blocked_of(src, &bs);
    blocked_of(dst, &bd);
    return c16_available() && be_block() == 16 && c->k == 3 && c->stride == 1 && c->pad == 1 && c->dilation == 1 &&
           c->groups == 1 && a->in_c == 16 && c->out_c == 16 && !a->window && !g->bias && !g->sum &&
           g->act == dnnl_alg_kind_undef && g->alg == dnnl_convolution_direct && src->data_type == dnnl_f32 &&
           be_md_equal(src, &bs) && be_md_equal(dst, &bd) && c16_fits((int)dst->dims[2], (int)dst->dims[3]) &&
           plan_knob_enabled("CNN_CONV16");
}

/* cnn.c's own direct kernels (conv_s2.h) take the 3×3 stride-2 convolutions of training plans whose channels
 * fill blocks of 16 in and pairs of them out (the CIFAR ResNets' entries to their second and third stages) with
 * nothing fused, bias or folded: forward, backward data (adding into the input gradient the shortcut wrote) and
 * backward weights (docs/design.md, "Stride-2 convolutions of training"). CNN_CONV_S2=0 in the environment keeps
 * oneDNN's for them (A/B runs), and so does CNN_CONV16=0. */
static bool own_s2_fits(const conv_attr *a, const conv_geom *g, bool train, const dnnl_memory_desc_t *src,
                        const dnnl_memory_desc_t *dst) {
    const conv_cfg *c = &a->cfg;
    dnnl_memory_desc_t bs, bd;
    blocked_of(src, &bs);
    blocked_of(dst, &bd);
    return train && s2_available() && be_block() == 16 && c->k == 3 && c->stride == 2 && c->pad == 1 &&
           c->dilation == 1 && c->groups == 1 && !a->window && !g->bias && !g->sum && g->act == dnnl_alg_kind_undef &&
           g->alg == dnnl_convolution_direct && src->data_type == dnnl_f32 && be_md_equal(src, &bs) &&
           be_md_equal(dst, &bd) && s2_fits(a->in_c, c->out_c, (int)src->dims[2], (int)src->dims[3]) &&
           plan_knob_enabled("CNN_CONV16") && plan_knob_enabled("CNN_CONV_S2");
}

/* The weights in blocks of 16 channels each way, per tap: oneDNN's OIhw16i16o is conv16.h's C16_IO and
 * conv_s2.h's S2_IO, OIhw16o16i their C16_OI and S2_OI. */
static dnnl_memory_desc_t c16_weights_md(const conv_geom *g, bool out_inner) {
    dnnl_memory_desc_t md;
    dnnl_memory_desc_init_by_tag(&md, 4, g->w.dims, dnnl_f32, out_inner ? dnnl_OIhw16i16o : dnnl_OIhw16o16i);
    return md;
}

static float *mem_ptr(dnnl_memory_t m) {
    void *ptr = NULL;
    dnnl_memory_get_data_handle(m, &ptr);
    return ptr;
}

/* An activation layout as conv_bwd_weights_gemm reads it: element (i, c, y, x) at
 * i·n + (c / block)·c + y·h + x·w + c % block (plain nchw: block 1; oneDNN's nChw8c: block 8). */
typedef struct act_layout {
    int64_t n, c, h, w;
    int block;
} act_layout;

static bool act_layout_of(const dnnl_memory_desc_t *md, act_layout *l) {
    const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
    if (md->format_kind != dnnl_blocked || md->ndims != 4 || md->offset0 != 0 || b->inner_nblks > 1 ||
        (b->inner_nblks == 1 && b->inner_idxs[0] != 1))
        return false;
    *l = (act_layout){b->strides[0], b->strides[1], b->strides[2], b->strides[3], b->inner_nblks ? (int)b->inner_blks[0] : 1};
    return true;
}

/* Output maps up to this area (8×8) take conv_bwd_weights_gemm for their 3×3 (and larger) kernels
 * where oneDNN's AVX2 blocked backward-weights kernel would run: it parallelizes poorly on them
 * (measured in docs/design.md; its AVX-512 kernel does not, and keeps them). */
#define GEMM_BW_MAX_AREA 64

/* The backward weights of an ungrouped convolution as one GEMM of depth N·OH·OW (conv_bwd_weights_gemm)
 * where oneDNN's own kernels are slow: its GEMM kernel (3×3 on maps of 2×2 or less), which multiplies
 * image by image, and its AVX2 blocked kernel on small maps; as long as the patch matrix stays small. */
static bool own_gemm_pays(const conv_attr *a, const_dnnl_primitive_desc_t pd, const dnnl_memory_desc_t *src,
                          const dnnl_memory_desc_t *dst) {
    act_layout l;
    double patches = (double)dst->dims[0] * dst->dims[2] * dst->dims[3] * a->in_c * a->cfg.k * a->cfg.k;
    bool slow = strstr(be_impl(pd), "gemm") != NULL ||
                (strstr(be_impl(pd), "avx2") && a->cfg.k > 1 && dst->dims[2] * dst->dims[3] <= GEMM_BW_MAX_AREA);
    return a->cfg.groups == 1 && slow && patches * sizeof(float) <= 64e6 && act_layout_of(src, &l) && act_layout_of(dst, &l);
}

/* Buffers of conv_bwd_weights_gemm, which reads the input and the output gradient in the forward's layouts. */
static cnn_status compile_bwd_weights_gemm(plan *p, int nid, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst) {
    conv_state *s = plan_state(p, nid);
    const conv_attr *a = plan_graph(p)->nodes[nid].attr;
    size_t positions = (size_t)dst->dims[0] * dst->dims[2] * dst->dims[3];
    s->gemm.dy = plan_request(p, nid, LIFE_BWD, NULL, sizeof(float) * dst->dims[1] * positions);
    s->gemm.cols = plan_request(p, nid, LIFE_BWD, NULL, sizeof(float) * src->dims[1] * a->cfg.k * a->cfg.k * positions);
    if (s->gemm.dy < 0 || s->gemm.cols < 0) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    return CNN_OK;
}

/* The channels [0, count) of one position of an activation (p points at channel 0) into out. */
static void gather_channels(const float *p, const act_layout *l, int count, float *out) {
    if (l->block == 8 && count % 8 == 0) { /* the usual case, in whole vectors */
        for (int c0 = 0; c0 < count; c0 += 8, p += l->c) memcpy(out + c0, p, 8 * sizeof(float));
        return;
    }
    for (int c0 = 0; c0 < count; c0 += l->block, p += l->c) {
        const int m = count - c0 < l->block ? count - c0 : l->block;
        for (int j = 0; j < m; j++) out[c0 + j] = p[j];
    }
}

static act_layout layout_of_mem(dnnl_memory_t m) {
    const dnnl_memory_desc_t *md;
    dnnl_memory_get_memory_desc(m, &md);
    act_layout l;
    act_layout_of(md, &l); /* own_gemm_pays or own_depthwise_pays checked it */
    return l;
}

/* dW[oc][kh,kw,ic] = Σ over images and output positions of dy[oc] · x at the tap (kh, kw), as one
 * GEMM: dy (oc × P) times the patches (P × k·k·ic), P = n·oh·ow; db[oc] = Σ dy[oc].
 * x and dy in any act_layout, dW in ohwi. */
static void conv_bwd_weights_gemm(plan *p, int nid, dnnl_memory_t xm, dnnl_memory_t dym, float *dw, float *db) {
    const conv_state *s = plan_state(p, nid);
    const node *nd = &plan_graph(p)->nodes[nid];
    const conv_cfg *c = &((const conv_attr *)nd->attr)->cfg;
    const dnnl_dim_t *xd = plan_md(p, nd->in[0])->dims, *yd = plan_md(p, nd->out[0])->dims;
    const int n = (int)xd[0], ic = (int)xd[1], ih = (int)xd[2], iw = (int)xd[3];
    const int oc = (int)yd[1], oh = (int)yd[2], ow = (int)yd[3], k = c->k, area = oh * ow;
    const int64_t positions = (int64_t)n * area, taps = (int64_t)ic * k * k;
    const act_layout xl = layout_of_mem(xm), yl = layout_of_mem(dym);
    const float *x = mem_ptr(xm), *dy = mem_ptr(dym);
    float *dyt = plan_buf(p, s->gemm.dy), *cols = plan_buf(p, s->gemm.cols);
#pragma omp parallel for collapse(2)
    for (int o = 0; o < oc; o++)
        for (int i = 0; i < n; i++) {
            const float *from = dy + i * yl.n + o / yl.block * yl.c + o % yl.block;
            float *to = dyt + o * positions + (int64_t)i * area;
            for (int y = 0; y < oh; y++)
                for (int xo = 0; xo < ow; xo++) *to++ = from[y * yl.h + xo * yl.w];
        }
#pragma omp parallel for
    for (int64_t q = 0; q < positions; q++) {
        const int i = (int)(q / area), y = (int)(q % area / ow), xo = (int)(q % ow);
        float *row = cols + q * taps;
        for (int kh = 0; kh < k; kh++) {
            const int yy = y * c->stride - c->pad + kh * c->dilation;
            for (int kw = 0; kw < k; kw++, row += ic) {
                const int xx = xo * c->stride - c->pad + kw * c->dilation;
                if (yy >= 0 && yy < ih && xx >= 0 && xx < iw) gather_channels(x + i * xl.n + yy * xl.h + xx * xl.w, &xl, ic, row);
                else memset(row, 0, sizeof(float) * ic);
            }
        }
    }
    dnnl_sgemm('N', 'N', oc, taps, positions, 1.0f, dyt, positions, cols, taps, 0.0f, dw, taps);
    if (db)
#pragma omp parallel for
        for (int o = 0; o < oc; o++) {
            double sum = 0;
            for (int64_t q = 0; q < positions; q++) sum += dyt[o * positions + q];
            db[o] = (float)sum;
        }
}

/* oneDNN runs the backward weights of depthwise convolutions other than 3×3 (EfficientNet's and
 * GhostNet's 5×5) on its GEMM kernel, slowly (~25 ms for a 5×5 on 240 channels of 12×12, batch 16,
 * on AVX2; 277 ms per EfficientNet-B0 step at 224×224, batch 32, on AVX-512):
 * conv_bwd_weights_depthwise computes them directly, for channel blocks up to 16 (AVX-512's). */
#define DW_MAX_BLOCK 16
static bool own_depthwise_pays(const conv_attr *a, const_dnnl_primitive_desc_t pd, const dnnl_memory_desc_t *src,
                               const dnnl_memory_desc_t *dst) {
    act_layout ls, ld;
    return a->cfg.groups == a->in_c && a->cfg.out_c == a->in_c && strstr(be_impl(pd), "gemm") != NULL &&
           act_layout_of(src, &ls) && act_layout_of(dst, &ld) && ls.block == ld.block && ls.block <= DW_MAX_BLOCK;
}

/* One channel block (B channels) of one image: dW[c][kh][kw] += Σ over output positions of
 * dy[c](y, x) · x[c](y·s − p + kh·d, x·s − p + kw·d). B is a constant where inlined (8, 16: whole vectors). */
static inline void depthwise_taps(const float *x, const act_layout *xl, int ih, int iw, const float *dy,
                                  const act_layout *yl, int oh, int ow, const conv_cfg *c, int B, double *acc) {
    for (int kh = 0; kh < c->k; kh++)
        for (int kw = 0; kw < c->k; kw++) {
            float sum[DW_MAX_BLOCK] = {0};
            for (int y = 0; y < oh; y++) {
                const int yy = y * c->stride - c->pad + kh * c->dilation;
                if (yy < 0 || yy >= ih) continue;
                for (int xo = 0; xo < ow; xo++) {
                    const int xx = xo * c->stride - c->pad + kw * c->dilation;
                    if (xx < 0 || xx >= iw) continue;
                    const float *d = dy + y * yl->h + xo * yl->w, *v = x + yy * xl->h + xx * xl->w;
                    for (int j = 0; j < B; j++) sum[j] += d[j] * v[j];
                }
            }
            for (int j = 0; j < B; j++) acc[(kh * c->k + kw) * B + j] += sum[j];
        }
}

/* The backward weights of a depthwise convolution (one filter per channel), x and dy in the same
 * act_layout, dW in goihw (channel, kh, kw). Each thread owns whole channel blocks: deterministic. */
static void conv_bwd_weights_depthwise(plan *p, int nid, dnnl_memory_t xm, dnnl_memory_t dym, float *dw, float *db) {
    const node *nd = &plan_graph(p)->nodes[nid];
    const conv_cfg *c = &((const conv_attr *)nd->attr)->cfg;
    const dnnl_dim_t *xd = plan_md(p, nd->in[0])->dims, *yd = plan_md(p, nd->out[0])->dims;
    const int n = (int)xd[0], ch = (int)xd[1], ih = (int)xd[2], iw = (int)xd[3], oh = (int)yd[2], ow = (int)yd[3];
    const int taps = c->k * c->k;
    const act_layout xl = layout_of_mem(xm), yl = layout_of_mem(dym);
    const float *x = mem_ptr(xm), *dy = mem_ptr(dym);
    const int B = xl.block;
#pragma omp parallel for
    for (int cb = 0; cb < (ch + B - 1) / B; cb++) {
        double acc[taps * DW_MAX_BLOCK], bias[DW_MAX_BLOCK] = {0};
        memset(acc, 0, sizeof acc);
        for (int i = 0; i < n; i++) {
            const float *xi = x + i * xl.n + cb * xl.c, *di = dy + i * yl.n + cb * yl.c;
#define TAPS(b) depthwise_taps(xi, &xl, ih, iw, di, &yl, oh, ow, c, b, acc)
            BLK_DISPATCH(B, TAPS);
#undef TAPS
            if (db)
                for (int y = 0; y < oh; y++)
                    for (int xo = 0; xo < ow; xo++)
                        for (int j = 0; j < B; j++) bias[j] += di[y * yl.h + xo * yl.w + j];
        }
        for (int j = 0; j < B && cb * B + j < ch; j++) {
            for (int t = 0; t < taps; t++) dw[(cb * B + j) * taps + t] = (float)acc[t * B + j];
            if (db) db[cb * B + j] = (float)bias[j];
        }
    }
}

/* Parameter k (0 weight, 1 bias) in layout `want`: whole, or the window this node reads. */
static cnn_status use_param(plan *p, int nid, int k, const dnnl_memory_desc_t *want, bool grad, int *view) {
    const conv_attr *a = plan_graph(p)->nodes[nid].attr;
    if (a->window) {
        int64_t offset[4] = {a->row0, 0, 0, 0};
        return plan_param_window_use(p, nid, k, offset, want, grad, view);
    }
    return grad ? plan_param_grad_use(p, nid, k, want, view) : plan_param_use(p, nid, k, want, view);
}

static cnn_status weights_reorder(plan *p, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, int *prim) {
    const backend *b = be_get();
    dnnl_primitive_desc_t pd;
    CNN_TRY(be_check(dnnl_reorder_primitive_desc_create(&pd, from, b->engine, to, b->engine, NULL), "reorder"));
    cnn_status st;
    *prim = plan_prim(p, pd, &st);
    dnnl_primitive_desc_destroy(pd);
    return st;
}

/* src, dst: the forward primitive's layouts (src in bf16 when it computes in bf16). */
static cnn_status compile_backward(plan *p, int nid, const conv_geom *g, const dnnl_memory_desc_t *src,
                                   const dnnl_memory_desc_t *dst, const_dnnl_primitive_desc_t fpd) {
    node *n = &plan_graph(p)->nodes[nid];
    conv_state *s = plan_state(p, nid);
    const dnnl_memory_desc_t *tsrc = plan_md(p, n->in[0]), *tdst = plan_md(p, n->out[0]);
    /* the output gradient as backward data reads it (bf16 or f32); the input gradient is f32 */
    dnnl_memory_desc_t dy = typed(dst, s->bf16 ? dnnl_bf16 : dnnl_f32), dx = typed(src, dnnl_f32);
    dnnl_primitive_desc_t pd = NULL;
    cnn_status st = adapter_make(p, nid, tdst, &dy, true, LIFE_BWD, &s->ddst);
    if (!st && s->direct.on) { /* own16_fits, own_s2_fits: the tensors in the kernels' layout, no adapter */
        const dnnl_memory_desc_t oi = c16_weights_md(g, false);
        plan_keep_input(p, nid, 0);
        if (plan_needs_grad(p, n->in[0])) st = use_param(p, nid, 0, &oi, false, &s->w_bwd_view);
        if (!st) st = use_param(p, nid, 0, &oi, true, &s->dw_view);
        s->direct.threads = omp_get_max_threads();
        const size_t scratch = s->direct.s2 ? s2_scratch_floats(&s->direct.s2_shape, s->direct.threads)
                                            : c16_scratch_floats(s->direct.threads);
        if (!st && (s->direct.scratch = plan_request(p, nid, LIFE_BWD, NULL, sizeof(float) * scratch)) < 0)
            st = cnn_fail(CNN_ERR_NOMEM, "out of memory");
        if (!st && s->ddst.buf >= 0) st = cnn_fail(CNN_ERR_INTERNAL, "%s: an own kernel on a converted gradient", n->name);
        s->bw_src = s->bw_ddst = s->dsrc = (adapter){-1, -1};
        return st;
    }
    if (!st && plan_needs_grad(p, n->in[0])) {
        plan_grad_overwrites(p, nid);
        /* a plain (first-layer) input never needs its gradient in training: tests only */
        bool plain_src = plan_graph(p)->tensors[n->in[0]].layout == LAYOUT_PLAIN;
        st = bwd_data_pd(g, &dx, &dy, fpd, plain_src, &pd);
        if (!st) s->bwd_data = plan_prim(p, pd, &st);
        const dnnl_memory_desc_t *wbmd = st ? NULL : be_query_md(pd, dnnl_query_weights_md, 0);
        if (!st && s->fold.expand == 1) st = use_param(p, nid, 0, wbmd, false, &s->w_bwd_view);
        /* merged groups: the derived weights, in the backward's layout if it differs from the forward's */
        if (!st && s->fold.expand > 1 && !be_md_equal(wbmd, be_query_md(fpd, dnnl_query_weights_md, 0))) {
            if ((s->fold.folded_bwd = plan_request(p, nid, LIFE_PERSIST, wbmd, 0)) < 0) st = cnn_fail(CNN_ERR_NOMEM, "out of memory");
            if (!st) st = weights_reorder(p, &g->w_plain, wbmd, &s->fold.to_bwd);
        }
        if (!st) st = adapter_make(p, nid, tsrc, &dx, false, LIFE_BWD, &s->dsrc);
        if (pd) dnnl_primitive_desc_destroy(pd);
        pd = NULL;
    }
    if (st) return st;
    dnnl_memory_desc_t wsrc = dx, wdst = dy;
    if (s->bf16) {
        /* oneDNN's bf16 kernel (bf16_kernels found it), on the forward's bf16 copy of the input (saved,
         * so the f32 input need not be kept) and the bf16 output gradient; faster than cnn.c's own f32
         * kernels where they would apply (measured in docs/design.md) */
        wsrc = *src;
        st = bwd_weights_pd(g, &wsrc, &wdst, fpd, &pd);
        if (!st) s->bwd_weights = plan_prim(p, pd, &st);
        if (!st) st = use_param(p, nid, 0, be_query_md(pd, dnnl_query_diff_weights_md, 0), true, &s->dw_view);
        if (!st && g->bias) st = use_param(p, nid, 1, &g->b, true, &s->db_view);
        if (pd) dnnl_primitive_desc_destroy(pd);
        s->bw_src = s->bw_ddst = (adapter){-1, -1}; /* the primitive reads both as they are */
        return st;
    }
    plan_keep_input(p, nid, 0);
    st = choose_bwd_weights(g, &wsrc, &wdst, fpd, &pd);
    if (!st && own_gemm_pays(n->attr, pd, src, dst)) {
        wsrc = *src; /* conv_bwd_weights_gemm reads the forward's layouts as they are */
        wdst = *dst;
        st = compile_bwd_weights_gemm(p, nid, &wsrc, &wdst);
        dnnl_memory_desc_t ohwi;
        dnnl_memory_desc_init_by_tag(&ohwi, 4, g->w_plain.dims, dnnl_f32, dnnl_ohwi);
        if (!st) st = use_param(p, nid, 0, &ohwi, true, &s->dw_view);
    } else if (!st && own_depthwise_pays(n->attr, pd, src, dst)) {
        wsrc = *src; /* conv_bwd_weights_depthwise too */
        wdst = *dst;
        s->depthwise = true;
        st = use_param(p, nid, 0, &g->w_plain, true, &s->dw_view);
    } else if (!st && s->fold.expand > 1) {
        /* merged groups: the primitive's gradient, reordered to the merged goihw, gathered per group */
        const dnnl_memory_desc_t *dwmd = be_query_md(pd, dnnl_query_diff_weights_md, 0);
        s->bwd_weights = plan_prim(p, pd, &st);
        if (!st && (s->dw_wide = plan_request(p, nid, LIFE_BWD, dwmd, 0)) < 0) st = cnn_fail(CNN_ERR_NOMEM, "out of memory");
        if (!st) st = weights_reorder(p, dwmd, &g->w_plain, &s->dw_to_wide);
        if (!st) st = use_param(p, nid, 0, &plan_graph(p)->params[n->params[0]].canon_md, true, &s->dw_view);
    } else if (!st) {
        st = nhwc_bwd_weights(g, &wsrc, &wdst, fpd, &pd, s->bw_nhwc);
        if (!st) s->bwd_weights = plan_prim(p, pd, &st);
        if (!st) st = use_param(p, nid, 0, be_query_md(pd, dnnl_query_diff_weights_md, 0), true, &s->dw_view);
    }
    if (!st && g->bias) st = use_param(p, nid, 1, &g->b, true, &s->db_view);
    if (!st) st = adapter_make(p, nid, tsrc, &wsrc, true, LIFE_BWD, &s->bw_src);
    if (!st) st = adapter_make(p, nid, dst, &wdst, true, LIFE_BWD, &s->bw_ddst); /* from dy as bwd data reads it */
    if (pd) dnnl_primitive_desc_destroy(pd);
    return st;
}

/* Buffers and reorders of the derived weights (conv_fold): the parameter's canonical copy, the
 * merged groups' (goihw of g, zero between the groups), the forward primitive's layout. */
static cnn_status compile_fold(plan *p, int nid, const conv_geom *g, const_dnnl_primitive_desc_t fpd) {
    conv_fold *f = &((conv_state *)plan_state(p, nid))->fold;
    const param *w = &plan_graph(p)->params[plan_graph(p)->nodes[nid].params[0]];
    const dnnl_memory_desc_t *wmd = be_query_md(fpd, dnnl_query_weights_md, 0);
    const conv_state *s = plan_state(p, nid);
    f->version = -1;
    f->canon = plan_request(p, nid, LIFE_FWD, &w->canon_md, 0); /* refold runs in the forward only */
    const bool own = s->own.kernel != OWN_NONE;
    if (own)
        f->own = plan_request(p, nid, LIFE_PERSIST, NULL,
                              sizeof(float) * (s->own.kernel == OWN_WINOGRAD    ? wino_weights_floats(&s->own.shape)
                                               : s->own.kernel == OWN_POINTWISE ? pw_weights_floats(&s->own.pw)
                                                                                 : dw_weights_floats(&s->own.dw)));
    else
        f->folded = plan_request(p, nid, LIFE_PERSIST, wmd, 0);
    if (f->canon < 0 || (own ? f->own : f->folded) < 0) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    if (f->bn >= 0) {
        f->bias = plan_request(p, nid, LIFE_PERSIST, &g->b, 0);
        f->scale = plan_request(p, nid, LIFE_PERSIST, &g->b, 0);
        if (f->bias < 0 || f->scale < 0) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    }
    if (f->expand > 1 && (f->wide = plan_request(p, nid, LIFE_PERSIST, &g->w_plain, 0)) < 0)
        return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    CNN_TRY(weights_reorder(p, &w->md, &w->canon_md, &f->to_canon)); /* from the weights themselves (f32) */
    return own ? CNN_OK : weights_reorder(p, f->expand > 1 ? &g->w_plain : &w->canon_md, wmd, &f->from_canon);
}

/* The profile's words for how the forward runs: "3x3", "1x1 s2", "3x3 winograd", "5x5 s2 depthwise",
 * "3x3 groups 32", with " bf16" where it computes in bf16. */
static void set_kind(conv_state *s, const conv_attr *a, const conv_geom *g) {
    const conv_cfg *c = &a->cfg;
    int n = snprintf(s->kind, sizeof s->kind, "%dx%d", c->k, c->k);
    if (c->stride > 1) n += snprintf(s->kind + n, sizeof s->kind - n, " s%d", c->stride);
    if (c->dilation > 1) n += snprintf(s->kind + n, sizeof s->kind - n, " d%d", c->dilation);
    if (c->groups > 1 && c->groups == a->in_c)
        n += snprintf(s->kind + n, sizeof s->kind - n, " depthwise");
    else if (c->groups > 1)
        n += snprintf(s->kind + n, sizeof s->kind - n, " groups %d", c->groups);
    if (g->alg == dnnl_convolution_winograd || s->own.kernel == OWN_WINOGRAD)
        n += snprintf(s->kind + n, sizeof s->kind - n, " winograd");
    if (s->own.kernel == OWN_POINTWISE || s->own.kernel == OWN_DEPTHWISE || s->direct.on)
        n += snprintf(s->kind + n, sizeof s->kind - n, " own");
    if (s->bf16) snprintf(s->kind + n, sizeof s->kind - n, " bf16");
}

static cnn_status conv_compile(plan *p, int nid) {
    graph *gr = plan_graph(p);
    node *n = &gr->nodes[nid];
    conv_state *s = calloc(1, sizeof *s);
    if (!s) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    s->fwd = s->bwd_data = s->bwd_weights = -1;
    s->w_fwd_view = s->w_bwd_view = s->b_view = s->dw_view = s->db_view = -1;
    s->gemm.dy = s->gemm.cols = -1;
    s->dw_wide = s->dw_to_wide = -1;
    s->fold.bn = plan_absorbed(p, nid, "batchnorm");
    s->fold.expand = 1;
    s->fold.wide = s->fold.bias = s->fold.scale = s->fold.folded_bwd = s->fold.to_bwd = s->fold.folded = -1;
    s->fold.own = s->fold.from_canon = s->own.scratch = s->direct.scratch = s->direct.chunk_sums = -1;
    plan_set_state(p, nid, s);
    const conv_attr *a = n->attr;
    conv_geom g;
    make_geom(a, &g);
    const unsigned fused = plan_fused(p, nid);
    g.act = fused & FUSED_RELU ? dnnl_eltwise_relu : fused & FUSED_SILU ? dnnl_eltwise_swish : dnnl_alg_kind_undef;
    g.sum = fused & FUSED_ADD;
    if (s->fold.bn >= 0) g.bias = &g.b; /* the folded shift becomes a bias */
    dnnl_memory_desc_t src = *plan_md(p, n->in[0]), dst = *plan_md(p, n->out[0]);
    bool train = plan_is_train(p);
    s->bf16 = gr->bf16 && bf16_kernels(&g, train, train && plan_needs_grad(p, n->in[0]), &src, &dst);
    dnnl_primitive_desc_t fpd = NULL;
    cnn_status st;
    if (s->bf16) {
        g.wc = typed(&g.w, dnnl_bf16);
        src = typed(&src, dnnl_bf16);
        st = fwd_pd(&g, train, &src, &dst, &fpd);
    } else {
        const dnnl_memory_desc_t *tsrc = plan_md(p, n->in[0]);
        st = choose_forward(&g, train, &src, &dst, &fpd);
        const int f = st ? 1 : grouped_expansion(a, fpd, tsrc, &src);
        dnnl_memory_desc_t bsrc = *tsrc, bdst = *plan_md(p, n->out[0]);
        if (f > 1 && choose_expansion(&g, a, f, train, train && plan_needs_grad(p, n->in[0]), &bsrc, &bdst, &fpd)) {
            s->fold.expand = f;
            src = bsrc;
            dst = bdst;
        }
        if (!st && own_winograd_fits(a, &g, train, &src, &dst) && winograd_enabled()) s->own.kernel = OWN_WINOGRAD;
        else if (!st && own_pointwise_fits(a, &g, train, &src, &dst) && own_silu_enabled())
            s->own.kernel = OWN_POINTWISE;
        else if (!st && s->fold.expand == 1 && own_depthwise_fits(a, &g, train, &src, &dst) && own_silu_enabled())
            s->own.kernel = OWN_DEPTHWISE;
        if (!st && !s->own.kernel && winograd_fits(a, &src, &dst) && winograd_enabled())
            choose_winograd(&g, train, train && plan_needs_grad(p, n->in[0]), &src, &dst, &fpd);
        if (!st && !s->own.kernel && s->fold.bn < 0 && s->fold.expand == 1 && own16_fits(a, &g, &src, &dst)) {
            const tensor *y = &gr->tensors[n->out[0]];
            s->direct.on = true;
            s->direct.shape = (c16_shape){plan_batch(p), y->h, y->w};
        } else if (!st && !s->own.kernel && s->fold.bn < 0 && s->fold.expand == 1 &&
                   own_s2_fits(a, &g, train, &src, &dst)) {
            const tensor *x = &gr->tensors[n->in[0]];
            s->direct.on = s->direct.s2 = true;
            s->direct.s2_shape = (s2_shape){plan_batch(p), a->in_c, a->cfg.out_c, x->h, x->w};
        }
    }
    if (st) return st;
    set_kind(s, a, &g);
    if (s->own.kernel == OWN_POINTWISE) { /* the forward pd stays, for the weights' layout */
        const tensor *y = &gr->tensors[n->out[0]];
        s->own.pw = (pw_shape){plan_batch(p), a->in_c, a->cfg.out_c, y->h * y->w};
        s->own.post = PW_SILU;
    } else if (s->own.kernel == OWN_DEPTHWISE) {
        const tensor *x = &gr->tensors[n->in[0]], *y = &gr->tensors[n->out[0]];
        s->own.dw = (dw_shape){plan_batch(p), a->in_c, x->h, x->w, a->cfg.k, a->cfg.stride, a->cfg.pad, y->h, y->w};
        s->own.post = DW_SILU;
        s->own.threads = omp_get_max_threads();
        const size_t scratch = dw_scratch_floats(&s->own.dw, s->own.threads);
        if (scratch && (s->own.scratch = plan_request(p, nid, LIFE_FWD, NULL, sizeof(float) * scratch)) < 0)
            st = cnn_fail(CNN_ERR_NOMEM, "out of memory");
    } else if (s->own.kernel == OWN_WINOGRAD) {
        const tensor *x = &gr->tensors[n->in[0]], *y = &gr->tensors[n->out[0]];
        s->own.shape = (wino_shape){plan_batch(p), a->in_c,     a->cfg.out_c,
                                    x->h,          x->w,        wino_tile(y->h, y->w, a->cfg.stride),
                                    a->cfg.stride};
        s->own.post = (g.sum ? WINO_ADD : 0) | (g.act == dnnl_eltwise_relu ? WINO_RELU : 0);
        if ((s->own.scratch = plan_request(p, nid, LIFE_FWD, NULL, sizeof(float) * wino_scratch_floats(&s->own.shape))) < 0)
            st = cnn_fail(CNN_ERR_NOMEM, "out of memory");
    } else if (!s->direct.on)
        s->fwd = plan_prim(p, fpd, &st);
    const dnnl_memory_desc_t io = c16_weights_md(&g, true);
    const dnnl_memory_desc_t *wmd = s->direct.on ? &io : be_query_md(fpd, dnnl_query_weights_md, 0);
    /* in bf16 the weights stay f32 (placed in the forward's layout if this is their first use): the
     * primitives read a bf16 view of them, refreshed when they change; merged groups read the
     * derived weights, and the parameter keeps PyTorch's layout */
    const dnnl_memory_desc_t w32 = typed(wmd, dnnl_f32), *canon = &gr->params[n->params[0]].canon_md;
    if (!st && s->bf16 && !a->window) st = use_param(p, nid, 0, &w32, false, &s->w_fwd_view);
    if (!st) st = use_param(p, nid, 0, s->fold.expand > 1 ? canon : wmd, false, &s->w_fwd_view);
    if (!st && n->nparams > 1) st = use_param(p, nid, 1, &g.b, false, &s->b_view);
    if (!st && (s->fold.bn >= 0 || s->fold.expand > 1 || s->own.kernel)) st = compile_fold(p, nid, &g, fpd);
    /* in bf16 training the bf16 copy of the input is saved for the backward weights */
    if (!st) st = adapter_make(p, nid, plan_md(p, n->in[0]), &src, true, s->bf16 && train ? LIFE_SAVED : LIFE_FWD, &s->src);
    if (!st) st = adapter_make(p, nid, plan_md(p, n->out[0]), &dst, false, LIFE_FWD, &s->dst);
    if (!st && g.sum && s->dst.buf >= 0) /* conv_absorb takes additions only where the output needs no adapter */
        st = cnn_fail(CNN_ERR_INTERNAL, "%s: a fused addition on a converted output", n->name);
    if (!st && (s->own.kernel || s->direct.on) && (s->src.buf >= 0 || s->dst.buf >= 0))
        st = cnn_fail(CNN_ERR_INTERNAL, "%s: an own kernel on a converted input or output", n->name);
    if (!st && train) st = compile_backward(p, nid, &g, &src, &dst, fpd);
    dnnl_primitive_desc_destroy(fpd);
    return st;
}

/* Spread the groups of canonical weights (goihw, `per` channels a group) over merged ones (goihw of
 * groups/expand, zero between the merged groups); or back (gather) for the weight gradient. */
static void merged_weights(float *canon, float *wide, int groups, int expand, int per, int taps, bool gather) {
    const int wper = per * expand; /* channels of a merged group */
    if (!gather) memset(wide, 0, sizeof(float) * (size_t)groups * per * wper * taps);
    for (int gi = 0; gi < groups; gi++) {
        const int r = gi % expand; /* its place in the merged group */
        float *mg = wide + (size_t)(gi / expand) * wper * wper * taps;
        for (int o = 0; o < per; o++)
            for (int i = 0; i < per; i++) {
                float *c = canon + (((size_t)gi * per + o) * per + i) * taps;
                float *w = mg + ((size_t)(r * per + o) * wper + r * per + i) * taps;
                memcpy(gather ? c : w, gather ? w : c, sizeof(float) * taps);
            }
    }
}

/* Recompute the derived weights (and b') from the current weights and batch-norm statistics (after a change). */
static void refold(plan *p, int nid) {
    conv_state *s = plan_state(p, nid);
    conv_fold *f = &s->fold;
    const graph *g = plan_graph(p);
    if (f->version == g->version) return;
    const node *n = &g->nodes[nid];
    const param *w = &g->params[n->params[0]];
    dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, plan_param_mem(p, nid, 0, -1)}, {DNNL_ARG_TO, plan_buf_mem(p, f->canon)}};
    plan_run(p, f->to_canon, 2, r);
    float *canon = plan_buf(p, f->canon);
    int out = (int)w->dims[0];
    int64_t per = param_numel(w) / out;
    if (f->bn >= 0) {
        float *scale = plan_buf(p, f->scale), *bias = plan_buf(p, f->bias);
        op_batchnorm_fold(p, f->bn, scale, bias);
        const float *b0 = n->nparams > 1 ? plan_param_ptr(p, nid, 1) : NULL;
        for (int o = 0; o < out; o++) {
            for (int64_t i = 0; i < per; i++) canon[o * per + i] *= scale[o];
            if (b0) bias[o] += b0[o] * scale[o];
        }
    }
    if (f->expand > 1) {
        const conv_cfg *c = &((const conv_attr *)n->attr)->cfg;
        merged_weights(canon, plan_buf(p, f->wide), c->groups, f->expand, out / c->groups, c->k * c->k, false);
    }
    if (s->own.kernel == OWN_POINTWISE) {
        pw_weights(&s->own.pw, canon, plan_buf(p, f->own));
    } else if (s->own.kernel == OWN_DEPTHWISE) {
        dw_weights(&s->own.dw, canon, plan_buf(p, f->own));
    } else if (s->own.kernel == OWN_WINOGRAD) {
        wino_weights(&s->own.shape, canon, plan_buf(p, f->own));
    } else {
        dnnl_exec_arg_t back[2] = {{DNNL_ARG_FROM, plan_buf_mem(p, f->expand > 1 ? f->wide : f->canon)},
                                   {DNNL_ARG_TO, plan_buf_mem(p, f->folded)}};
        plan_run(p, f->from_canon, 2, back);
    }
    if (f->to_bwd >= 0) {
        dnnl_exec_arg_t bwd[2] = {{DNNL_ARG_FROM, plan_buf_mem(p, f->wide)}, {DNNL_ARG_TO, plan_buf_mem(p, f->folded_bwd)}};
        plan_run(p, f->to_bwd, 2, bwd);
    }
    f->version = g->version;
}

/* cnn.c's own forward, Winograd, pointwise or depthwise: the derived weights, the folded batch norm's shift or the bias. */
static void own_forward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    conv_state *s = plan_state(p, nid);
    refold(p, nid);
    const float *bias = s->fold.bn >= 0 ? plan_buf(p, s->fold.bias) : n->nparams > 1 ? plan_param_ptr(p, nid, 1) : NULL;
    if (s->own.kernel == OWN_POINTWISE)
        pw_forward(&s->own.pw, plan_val(p, n->in[0]), plan_buf(p, s->fold.own), bias, s->own.post,
                   plan_val(p, n->out[0]));
    else if (s->own.kernel == OWN_DEPTHWISE)
        dw_forward(&s->own.dw, plan_val(p, n->in[0]), plan_buf(p, s->fold.own), bias, s->own.post,
                   plan_val(p, n->out[0]), s->own.scratch >= 0 ? plan_buf(p, s->own.scratch) : NULL, s->own.threads);
    else
        wino_forward(&s->own.shape, plan_val(p, n->in[0]), plan_buf(p, s->fold.own), bias, s->own.post,
                     plan_val(p, n->out[0]), plan_buf(p, s->own.scratch));
}

static void conv_forward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    conv_state *s = plan_state(p, nid);
    if (s->own.kernel) {
        own_forward(p, nid);
        return;
    }
    if (s->direct.on && s->direct.s2) {
        s2_forward(&s->direct.s2_shape, plan_val(p, n->in[0]), mem_ptr(plan_param_mem(p, nid, 0, s->w_fwd_view)),
                   plan_val(p, n->out[0]));
        return;
    }
    if (s->direct.on) {
        const bool sums = s->direct.sums && plan_training_pass(p);
        c16_forward(&s->direct.shape, plan_val(p, n->in[0]), mem_ptr(plan_param_mem(p, nid, 0, s->w_fwd_view)),
                    plan_val(p, n->out[0]), sums ? s->direct.sums : NULL,
                    sums ? plan_buf(p, s->direct.chunk_sums) : NULL);
        return;
    }
    dnnl_memory_t y = plan_val_mem(p, n->out[0]);
    const bool derived = s->fold.bn >= 0 || s->fold.expand > 1, fold = s->fold.bn >= 0;
    if (derived) refold(p, nid);
    dnnl_exec_arg_t args[4] = {
        {DNNL_ARG_SRC, adapter_in(p, &s->src, plan_val_mem(p, n->in[0]))},
        {DNNL_ARG_WEIGHTS, derived ? plan_buf_mem(p, s->fold.folded) : plan_param_mem(p, nid, 0, s->w_fwd_view)},
        {DNNL_ARG_DST, adapter_out(p, &s->dst, y)},
    };
    int na = 3;
    if (fold) args[na++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, plan_buf_mem(p, s->fold.bias)};
    else if (n->nparams > 1) args[na++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, plan_param_mem(p, nid, 1, s->b_view)};
    plan_run(p, s->fwd, na, args);
    adapter_out_end(p, &s->dst, y);
}

/* The own direct kernels' backward (conv16.h, conv_s2.h): the input gradient added to where another consumer
 * wrote first */
static void direct_backward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    conv_state *s = plan_state(p, nid);
    const bool dx = plan_needs_grad(p, n->in[0]);
    const float *x = plan_val(p, n->in[0]), *dy = plan_grad(p, n->out[0]);
    const float *w = dx ? mem_ptr(plan_param_mem(p, nid, 0, s->w_bwd_view)) : NULL;
    float *dxp = dx ? plan_grad(p, n->in[0]) : NULL, *dw = mem_ptr(plan_param_grad_begin(p, nid, 0, s->dw_view));
    if (s->direct.s2)
        s2_backward(&s->direct.s2_shape, x, dy, w, dx && plan_grad_accum(p, nid, 0), dxp, dw, plan_buf(p, s->direct.scratch),
                    s->direct.threads);
    else
        c16_backward(&s->direct.shape, x, dy, w, dx && plan_grad_accum(p, nid, 0), dxp, dw, plan_buf(p, s->direct.scratch),
                     s->direct.threads);
    plan_param_grad_end(p, nid, 0, s->dw_view);
}

static void conv_backward(plan *p, int nid) {
    node *n = &plan_graph(p)->nodes[nid];
    conv_state *s = plan_state(p, nid);
    if (s->direct.on) {
        direct_backward(p, nid);
        return;
    }
    dnnl_memory_t dy = adapter_in(p, &s->ddst, plan_grad_mem(p, n->out[0]));
    if (s->bwd_data >= 0) {
        dnnl_memory_t target = plan_grad_in_begin(p, nid, 0);
        dnnl_exec_arg_t args[3] = {
            {DNNL_ARG_DIFF_SRC, adapter_out(p, &s->dsrc, target)},
            {DNNL_ARG_WEIGHTS, s->fold.expand == 1 ? plan_param_mem(p, nid, 0, s->w_bwd_view)
                                                    : plan_buf_mem(p, s->fold.to_bwd >= 0 ? s->fold.folded_bwd : s->fold.folded)},
            {DNNL_ARG_DIFF_DST, dy},
        };
        plan_run(p, s->bwd_data, 3, args);
        adapter_out_end(p, &s->dsrc, target);
        plan_grad_in_end(p, nid, 0);
    }
    dnnl_exec_arg_t args[4] = {
        /* in bf16: the forward's copy of the input */
        {DNNL_ARG_SRC, s->bf16 ? plan_buf_mem(p, s->src.buf)
                               : as_alias(s->bw_nhwc[0], adapter_in(p, &s->bw_src, plan_val_mem(p, n->in[0])))},
        {DNNL_ARG_DIFF_DST, as_alias(s->bw_nhwc[1], adapter_in(p, &s->bw_ddst, dy))},
        {DNNL_ARG_DIFF_WEIGHTS, plan_param_grad_begin(p, nid, 0, s->dw_view)},
    };
    int na = 3;
    if (n->nparams > 1) args[na++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_BIAS, plan_param_grad_begin(p, nid, 1, s->db_view)};
    if (s->gemm.cols >= 0)
        conv_bwd_weights_gemm(p, nid, args[0].memory, args[1].memory, mem_ptr(args[2].memory),
                              na > 3 ? mem_ptr(args[3].memory) : NULL);
    else if (s->depthwise)
        conv_bwd_weights_depthwise(p, nid, args[0].memory, args[1].memory, mem_ptr(args[2].memory),
                                   na > 3 ? mem_ptr(args[3].memory) : NULL);
    else if (s->fold.expand > 1) {
        dnnl_memory_t dw = args[2].memory;
        args[2].memory = plan_buf_mem(p, s->dw_wide);
        plan_run(p, s->bwd_weights, na, args);
        dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, args[2].memory}, {DNNL_ARG_TO, plan_buf_mem(p, s->fold.wide)}};
        plan_run(p, s->dw_to_wide, 2, r);
        const conv_cfg *c = &((const conv_attr *)n->attr)->cfg;
        merged_weights(mem_ptr(dw), plan_buf(p, s->fold.wide), c->groups, s->fold.expand, c->out_c / c->groups,
                       c->k * c->k, true);
    } else
        plan_run(p, s->bwd_weights, na, args);
    plan_param_grad_end(p, nid, 0, s->dw_view);
    if (n->nparams > 1) plan_param_grad_end(p, nid, 1, s->db_view);
}

bool op_conv_output_sums(plan *p, int nid, int reader, double *sums) {
    const graph *g = plan_graph(p);
    conv_state *s = plan_state(p, nid);
    const int out = g->nodes[nid].out[0];
    if (!plan_is_train(p) || strcmp(g->nodes[nid].op->type, "conv2d") != 0 || !s || !s->direct.on || s->direct.s2)
        return false;
    if (graph_sole_reader(g, out) != reader) return false; /* nothing else reads (or overwrites) the output */
    if ((s->direct.chunk_sums = plan_request(p, nid, LIFE_FWD, NULL, sizeof(double) * c16_chunk_sums(&s->direct.shape))) < 0)
        return false;
    s->direct.sums = sums;
    return true;
}

static int64_t conv_macs(const graph *g, const node *n) {
    const conv_attr *a = n->attr;
    const tensor *y = &g->tensors[n->out[0]];
    return (int64_t)y->c * y->h * y->w * (a->in_c / a->cfg.groups) * a->cfg.k * a->cfg.k;
}

/* In evaluation: the batch norm right after (folded), then a residual addition (a sum post-op: the
 * output's buffer holds the other addend when the convolution starts; ungrouped convolutions only,
 * whose output needs no adapter), then a ReLU or (AVX-512) a SiLU as a post-op. */
static bool conv_absorb(plan *p, int nid, int next) {
    const graph *gr = plan_graph(p);
    const conv_attr *a = gr->nodes[nid].attr;
    if (plan_is_train(p) || a->window) return false; /* the fold rescales whole weights */
    const char *type = gr->nodes[next].op->type;
    unsigned f = plan_fused(p, nid);
    const unsigned act = FUSED_RELU | FUSED_SILU;
    if (!(f & (FUSED_BN | FUSED_ADD | act)) && !strcmp(type, "batchnorm")) {
        plan_set_fused(p, nid, FUSED_BN);
        return true;
    }
    if (!(f & (FUSED_ADD | act)) && !strcmp(type, "add") && a->cfg.groups == 1) {
        if (!plan_output_over(p, nid, next)) return false;
        plan_set_fused(p, nid, FUSED_ADD);
        return true;
    }
    /* SiLU as a post-op paid on AVX-512 (EfficientNet-B0 inference +13%) but not on AVX2 (-5%): its
     * exponential costs the convolution more there than the separate op's memory traffic saves */
    bool silu = !strcmp(type, "silu") && be_block() >= 16;
    if (!(f & act) && (!strcmp(type, "relu") || silu)) {
        plan_set_fused(p, nid, !strcmp(type, "relu") ? FUSED_RELU : FUSED_SILU);
        return true;
    }
    return false;
}

static const char *conv_kind(const plan *p, int nid) { return ((const conv_state *)plan_state(p, nid))->kind; }

static void conv_free(void *state) {
    conv_state *s = state;
    for (int i = 0; s && i < 2; i++)
        if (s->bw_nhwc[i]) dnnl_memory_destroy(s->bw_nhwc[i]);
    free(s);
}

static const op_def conv_op = {"conv2d", conv_compile, conv_forward, conv_backward, conv_free, conv_macs, conv_absorb,
                               .kind = conv_kind};

/* The checks and the node of a convolution of x (made blocked when the kernels want it), without
 * parameters yet; -1 on error. *out_h, *out_w: the output size. */
static int conv_node(graph *g, int *x, const char *name, const conv_cfg *cfg, int *out_h, int *out_w) {
    if (!graph_ok(g) || *x < 0) return -1;
    const tensor *t = graph_tensor(g, *x);
    if (cfg->out_c <= 0 || cfg->k <= 0 || cfg->stride <= 0 || cfg->pad < 0 || cfg->dilation <= 0 || cfg->groups <= 0 ||
        t->c % cfg->groups || cfg->out_c % cfg->groups)
        return graph_fail(g, cnn_fail(CNN_ERR_SHAPE, "%s%s: conv %d->%d k%d s%d p%d d%d g%d does not fit", g->scope,
                                      name, t->c, cfg->out_c, cfg->k, cfg->stride, cfg->pad, cfg->dilation, cfg->groups));
    /* the JIT kernels read a plain input only for few input channels (the first layer) */
    if (t->layout == LAYOUT_PLAIN && (t->c >= be_block() || cfg->groups > 1)) {
        *x = op_to_blocked(g, *x);
        if (*x < 0) return -1;
        t = graph_tensor(g, *x);
    }
    *out_h = out_size(t->h, cfg->k, cfg->stride, cfg->pad, cfg->dilation);
    *out_w = out_size(t->w, cfg->k, cfg->stride, cfg->pad, cfg->dilation);
    if (*out_h <= 0 || *out_w <= 0)
        return graph_fail(g, cnn_fail(CNN_ERR_SHAPE, "%s%s: input %dx%d too small for a %dx%d kernel", g->scope, name,
                                      t->h, t->w, cfg->k, cfg->k));
    conv_attr *a = calloc(1, sizeof *a);
    if (!a) return graph_fail(g, cnn_fail(CNN_ERR_NOMEM, "out of memory"));
    a->cfg = *cfg;
    a->in_c = t->c;
    return graph_add_node(g, &conv_op, name, x, 1, a);
}

/* weight out_c × in_c/groups × k × k (PyTorch's shape; canonical layout oihw or goihw), bias out_c */
static int conv_params(graph *g, int nid, const conv_cfg *cfg, int in_c, int *bias) {
    int64_t wd[4] = {cfg->out_c, in_c / cfg->groups, cfg->k, cfg->k};
    int w = graph_add_param(g, nid, "weight", 4, wd, PARAM_WEIGHT, cfg->init, 0);
    if (w >= 0) {
        conv_attr full = {*cfg, in_c, false, 0};
        dnnl_dims_t d;
        int nd;
        weights_dims(&full, d, &nd);
        dnnl_memory_desc_init_by_tag(&g->params[w].canon_md, nd, d, dnnl_f32, nd == 4 ? dnnl_oihw : dnnl_goihw);
    }
    *bias = -1;
    if (cfg->bias) {
        int64_t bd[1] = {cfg->out_c};
        *bias = graph_add_param(g, nid, "bias", 1, bd, PARAM_BIAS, INIT_UNIFORM_FAN_IN, 0);
        if (*bias >= 0) g->params[*bias].fan_in = g->params[w].fan_in;
    }
    return w;
}

int op_conv2d(graph *g, int x, const char *name, const conv_cfg *cfg) {
    int oh, ow, bias;
    int nid = conv_node(g, &x, name, cfg, &oh, &ow);
    if (nid < 0) return -1;
    conv_params(g, nid, cfg, graph_tensor(g, x)->c, &bias);
    return graph_node_output(g, nid, cfg->out_c, oh, ow, LAYOUT_BLOCKED);
}

int op_conv2d_shared(graph *g, int x, const char *name, const conv_cfg *cfg, conv_shared *w, int row0) {
    if (!graph_ok(g) || x < 0) return -1;
    int in_c = graph_tensor(g, x)->c;
    if (cfg->groups != 1 || (w->weight >= 0 && cfg->bias != (w->bias >= 0)) || row0 < 0 || row0 + cfg->out_c > w->out_c ||
        in_c > w->in_c)
        return graph_fail(g, cnn_fail(CNN_ERR_SHAPE, "%s%s: rows [%d, %d) and %d input channels are not a window of "
                                      "the shared %dx%dx%dx%d weights", g->scope, name, row0, row0 + cfg->out_c, in_c,
                                      w->out_c, w->in_c, cfg->k, cfg->k));
    int oh, ow;
    int nid = conv_node(g, &x, name, cfg, &oh, &ow);
    if (nid < 0) return -1;
    conv_attr *a = g->nodes[nid].attr;
    a->window = row0 != 0 || cfg->out_c != w->out_c || in_c != w->in_c;
    a->row0 = row0;
    if (w->weight < 0) {
        conv_cfg full = *cfg;
        full.out_c = w->out_c;
        w->weight = conv_params(g, nid, &full, w->in_c, &w->bias);
        if (w->weight < 0) return -1;
        /* windows are blocks of PyTorch's layout: the weights keep it, every step reads a view */
        param *pw = &g->params[w->weight];
        pw->md = pw->canon_md;
        pw->md_fixed = true;
    } else {
        graph_share_param(g, nid, w->weight);
        if (w->bias >= 0) graph_share_param(g, nid, w->bias);
    }
    return graph_node_output(g, nid, cfg->out_c, oh, ow, LAYOUT_BLOCKED);
}

int op_conv(graph *g, int x, const char *name, int out_c, int k, int stride) {
    conv_cfg c = {out_c, k, stride, k / 2, 1, 1, false, INIT_KAIMING_NORMAL_OUT};
    return op_conv2d(g, x, name, &c);
}

int op_in_channels(const graph *g, int x) { return x >= 0 ? graph_tensor(g, x)->c : 0; }
