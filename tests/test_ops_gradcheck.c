/* test_ops_gradcheck.c — every op's backward against central finite differences (gradcheck.h):
 * convolutions of every kind, batch norm, activations (hard sigmoid too), pools (adaptive too), linear, dropout, add,
 * mul, lerp, concat, slice, cross-entropy, and a small residual network end to end; add and mul also on 4 MiB
 * outputs, which take the streaming-store kernels. */
#include <stdlib.h>
#include "gradcheck.h"
#include "nn/blocks.h"
#include "ops/ops.h"
#include "testutil.h"

static int b_conv(graph *g, int x, void *ctx) {
    const conv_cfg *c = ctx;
    return op_conv2d(g, x, "conv", c);
}

static int b_bn(graph *g, int x, void *ctx) { return op_batchnorm(g, op_conv(g, x, "conv", 12, 3, 1), "bn"); }
/* Synchronized batch norm over one replica: the sum over the replicas is the vector itself, so the
 * statistics' own code path (sums in forward, correction in backward) must give BN's gradients. */
static void one_replica(double *v, int n, void *ctx) {}
static int b_bn_sync(graph *g, int x, void *ctx) {
    g->replica_sum = one_replica;
    return op_batchnorm(g, op_conv(g, x, "conv", 12, 3, 1), "bn");
}
/* SiLU after batch norm: fused into it in training plans (batchnorm.c) */
static int b_bn_silu(graph *g, int x, void *ctx) { return op_silu(g, b_bn(g, x, ctx)); }
static int b_bn_sync_silu(graph *g, int x, void *ctx) { return op_silu(g, b_bn_sync(g, x, ctx)); }
static int b_relu(graph *g, int x, void *ctx) { return op_relu(g, op_to_blocked(g, x)); }
static int b_sigmoid(graph *g, int x, void *ctx) { return op_sigmoid(g, op_to_blocked(g, x)); }
static int b_sigmoid_padded(graph *g, int x, void *ctx) { return op_sigmoid(g, op_conv(g, x, "conv", 5, 3, 1)); }
static int b_tanh(graph *g, int x, void *ctx) { return op_tanh(g, op_to_blocked(g, x)); }
static int b_silu(graph *g, int x, void *ctx) { return op_silu(g, op_to_blocked(g, x)); }
static int b_hard_sigmoid(graph *g, int x, void *ctx) {
    /* 4·conv: values spread over ±8, both flat regions and the slope are exercised; 12 channels
     * leave padding, which must stay zero although hard_sigmoid(0) is 1/2 */
    int a = op_conv(g, x, "conv", 12, 3, 1);
    int s = op_add(g, a, a);
    return op_hard_sigmoid(g, op_add(g, s, s));
}
static int b_maxpool(graph *g, int x, void *ctx) { return op_maxpool(g, x, 2, 2, 0, false); }
static int b_maxpool_ceil(graph *g, int x, void *ctx) { return op_maxpool(g, x, 3, 2, 1, true); }
static int b_avgpool(graph *g, int x, void *ctx) { return op_avgpool(g, x, 3, 1, 1, false); }
static int b_gap(graph *g, int x, void *ctx) { return op_global_avgpool(g, x); }
static int b_gap_padded(graph *g, int x, void *ctx) { return op_global_avgpool(g, op_conv(g, x, "conv", 5, 3, 1)); }
static int b_adaptive(graph *g, int x, void *ctx) {
    const int *o = ctx;
    return op_adaptive_avgpool(g, op_conv(g, x, "conv", 12, 3, 1), o[0], o[1]);
}
static int b_lerp(graph *g, int x, void *ctx) {
    int a = op_conv(g, x, "conv1", 12, 3, 1), b = op_conv(g, x, "conv2", 12, 3, 1);
    return op_lerp(g, a, op_tanh(g, b), op_sigmoid(g, b)); /* b feeds two consumers */
}
static int b_linear4d(graph *g, int x, void *ctx) { return op_linear(g, op_conv(g, x, "conv", 12, 3, 2), "fc", 7, true); }
static int b_linear2d(graph *g, int x, void *ctx) {
    int h = op_relu(g, op_linear(g, x, "fc1", 9, true));
    return op_linear(g, h, "fc2", 4, true);
}
static int b_dropout(graph *g, int x, void *ctx) { return op_dropout(g, op_to_blocked(g, x), 0.3f); }
static int b_add_shared(graph *g, int x, void *ctx) {
    int a = op_conv(g, x, "conv", 12, 3, 1);
    return op_add(g, op_tanh(g, a), a); /* a feeds two consumers: gradients accumulate */
}
static int b_mul(graph *g, int x, void *ctx) {
    int a = op_conv(g, x, "conv", 12, 3, 1);
    return op_mul(g, a, op_sigmoid(g, a));
}
static int b_mul_bcast(graph *g, int x, void *ctx) {
    int a = op_conv(g, x, "conv", 12, 3, 1);
    int s = op_sigmoid(g, op_global_avgpool(g, a));
    return op_mul(g, a, s);
}
/* 64 channels on a 16×3×32×32 input: outputs of 4 MiB, written with streaming stores on AVX-512 (ops/stream.h) */
static int b_add_relu_big(graph *g, int x, void *ctx) {
    /* the ReLU fused into the addition, both inputs getting its gradient in one pass; its input kept
     * positive (a sum of sigmoids): a million outputs would put kinks within any finite-difference step.
     * The mask itself is test_stream's. */
    int a = op_sigmoid(g, op_conv(g, x, "conv1", 64, 3, 1)), b = op_sigmoid(g, op_conv(g, x, "conv2", 64, 3, 1));
    return op_relu(g, op_add(g, a, b));
}
static int b_mul_bcast_big(graph *g, int x, void *ctx) {
    int a = op_conv(g, x, "conv", 64, 3, 1);
    return op_mul(g, a, op_sigmoid(g, op_global_avgpool(g, a)));
}
static int b_drop_path(graph *g, int x, void *ctx) {
    int a = op_conv(g, x, "conv", 12, 3, 1);
    return op_add(g, op_drop_path(g, op_tanh(g, a), 0.5f), a);
}
static int b_se(graph *g, int x, void *ctx) {
    return nn_se(g, op_conv(g, x, "conv", 12, 3, 1), 3, op_relu, op_sigmoid, "fc1", "fc2");
}
static int b_concat(graph *g, int x, void *ctx) {
    int a = op_conv(g, x, "conv1", 12, 3, 1);
    int b = op_conv(g, x, "conv2", 5, 1, 1);
    int parts[3] = {a, b, a};
    return op_concat(g, parts, 3);
}
static int b_slice(graph *g, int x, void *ctx) {
    int a = op_conv(g, x, "conv", 20, 3, 1);
    return op_add(g, op_slice(g, a, 3, 11), op_slice(g, a, 12, 20));
}
static int b_xent(graph *g, int x, void *ctx) { return op_linear(g, x, "fc", 6, true); }
static int b_resnet(graph *g, int x, void *ctx) {
    int h = op_relu(g, op_batchnorm(g, op_conv(g, x, "conv1", 8, 3, 1), "bn1"));
    int y = op_relu(g, op_batchnorm(g, op_conv(g, h, "c2", 16, 3, 2), "bn2"));
    y = op_batchnorm(g, op_conv(g, y, "c3", 16, 3, 1), "bn3");
    int sc = op_batchnorm(g, op_conv(g, h, "sc", 16, 1, 2), "bnsc");
    y = op_relu(g, op_add(g, y, sc));
    return op_linear(g, op_global_avgpool(g, y), "fc", 5, true);
}

int main(void) {
    gc_opts small = {.batch = 2, .c = 3, .h = 7, .w = 6};
    gc_opts wide = {.batch = 2, .c = 16, .h = 6, .w = 5};
    conv_cfg plain3 = {5, 3, 1, 1, 1, 1, true, INIT_UNIFORM_FAN_IN};
    conv_cfg strided = {12, 3, 2, 1, 1, 1, false, INIT_KAIMING_NORMAL_OUT};
    conv_cfg dilated = {8, 3, 1, 2, 2, 1, true, INIT_UNIFORM_FAN_IN};
    conv_cfg grouped = {12, 3, 1, 1, 1, 4, true, INIT_UNIFORM_FAN_IN};
    conv_cfg depthwise = {16, 3, 2, 1, 1, 16, false, INIT_UNIFORM_FAN_IN};
    conv_cfg pointwise = {24, 1, 1, 0, 1, 1, false, INIT_UNIFORM_FAN_IN};
    conv_cfg k5 = {6, 5, 1, 2, 1, 1, true, INIT_UNIFORM_FAN_IN};
    gradcheck("conv 3x3, plain 3-channel input, bias", b_conv, &plain3, small);
    gradcheck("conv 3x3 stride 2, blocked input", b_conv, &strided, wide);
    gradcheck("conv dilation 2", b_conv, &dilated, wide);
    gradcheck("conv groups 4", b_conv, &grouped, wide);
    gradcheck("conv depthwise stride 2", b_conv, &depthwise, wide);
    gradcheck("conv 1x1", b_conv, &pointwise, wide);
    gradcheck("conv 5x5 pad 2", b_conv, &k5, small);
    conv_cfg c24 = {24, 3, 1, 1, 1, 1, true, INIT_UNIFORM_FAN_IN};
    gc_opts map2 = {.batch = 2, .c = 16, .h = 2, .w = 2}, map1 = {.batch = 3, .c = 16, .h = 1, .w = 1};
    gradcheck("conv 3x3 on a 2x2 map (conv_bwd_weights_gemm)", b_conv, &c24, map2);
    gradcheck("conv 3x3 on a 1x1 map (conv_bwd_weights_gemm)", b_conv, &c24, map1);
    conv_cfg c24d = {24, 3, 1, 2, 2, 1, false, INIT_UNIFORM_FAN_IN};
    gradcheck("conv 3x3 dilation 2 pad 2 on a 2x2 map (conv_bwd_weights_gemm)", b_conv, &c24d, map2);
    conv_cfg c20 = {20, 3, 1, 1, 1, 1, true, INIT_UNIFORM_FAN_IN};
    gc_opts map4 = {.batch = 2, .c = 12, .h = 4, .w = 4};
    gradcheck("conv 3x3 on a 4x4 map, 12 -> 20 channels in padded blocks (conv_bwd_weights_gemm)", b_conv, &c20, map4);
    conv_cfg c32 = {32, 3, 1, 1, 1, 1, true, INIT_UNIFORM_FAN_IN};
    gc_opts map8 = {.batch = 2, .c = 32, .h = 8, .w = 7};
    gradcheck("conv 3x3, 32 -> 32 channels on an 8x7 map, bias (Winograd on AVX-512)", b_conv, &c32, map8);
    /* few channels per group: groups merged into whole blocks (block-diagonal weights) */
    conv_cfg g4 = {32, 3, 1, 1, 1, 8, true, INIT_UNIFORM_FAN_IN}, g8s2 = {32, 3, 2, 1, 1, 4, false, INIT_UNIFORM_FAN_IN};
    gc_opts in32 = {.batch = 2, .c = 32, .h = 6, .w = 5};
    gradcheck("conv 3x3, 8 groups of 4 channels, bias (groups merged)", b_conv, &g4, in32);
    gradcheck("conv 3x3 stride 2, 4 groups of 8 channels (groups merged on AVX-512)", b_conv, &g8s2, in32);
    conv_cfg dw5 = {16, 5, 1, 2, 1, 16, false, INIT_UNIFORM_FAN_IN}, dw5s2 = {12, 5, 2, 2, 1, 12, true, INIT_UNIFORM_FAN_IN};
    gc_opts c12 = {.batch = 2, .c = 12, .h = 7, .w = 6};
    gradcheck("conv depthwise 5x5 pad 2 (conv_bwd_weights_depthwise)", b_conv, &dw5, wide);
    gradcheck("conv depthwise 5x5 stride 2, bias, 12 channels in padded blocks (conv_bwd_weights_depthwise)", b_conv, &dw5s2, c12);
    gc_opts mono = {.batch = 2, .c = 1, .h = 9, .w = 8};
    gradcheck("conv 5x5 on 1 channel (blocked copy for backward weights)", b_conv, &k5, mono);
    gradcheck("batchnorm (training), 12 channels", b_bn, NULL, small);
    gradcheck("batchnorm synchronized (one replica), 12 channels", b_bn_sync, NULL, small);
    gradcheck("batchnorm with SiLU fused in, 12 channels", b_bn_silu, NULL, small);
    gradcheck("batchnorm synchronized with SiLU fused in (one replica)", b_bn_sync_silu, NULL, small);

    gc_opts kinks = wide;
    kinks.distinct_inputs = true;
    gradcheck("relu", b_relu, NULL, kinks);
    gradcheck("sigmoid", b_sigmoid, NULL, wide);
    gradcheck("sigmoid on 5 channels (padding stays zero)", b_sigmoid_padded, NULL, small);
    gradcheck("tanh", b_tanh, NULL, wide);
    gradcheck("silu", b_silu, NULL, wide);
    gradcheck("hard sigmoid (relu6(x+3)/6) on 12 channels", b_hard_sigmoid, NULL, wide);
    gradcheck("maxpool 2x2/2", b_maxpool, NULL, kinks);
    gradcheck("maxpool 3x3/2 pad 1 ceil", b_maxpool_ceil, NULL, kinks);
    gradcheck("avgpool 3x3/1 pad 1", b_avgpool, NULL, wide);
    gradcheck("global avgpool", b_gap, NULL, wide);
    gradcheck("global avgpool on 5 channels in a padded block", b_gap_padded, NULL, small);
    int up[2] = {7, 7}, down[2] = {4, 3};
    gradcheck("adaptive avgpool 7x6 -> 7x7 (overlapping bins)", b_adaptive, up, small);
    gradcheck("adaptive avgpool 6x5 -> 4x3", b_adaptive, down, wide);
    gc_opts tiny = {.batch = 2, .c = 3, .h = 2, .w = 1};
    gradcheck("adaptive avgpool 2x1 -> 7x7 (repeated cells)", b_adaptive, up, tiny);
    gradcheck("lerp (highway mix) with a shared input", b_lerp, NULL, small);
    gradcheck("linear on 4-D blocked features", b_linear4d, NULL, small);
    gc_opts flat = {.batch = 3, .c = 10, .h = 1, .w = 1};
    gradcheck("linear, relu, linear on 2-D", b_linear2d, NULL, flat);
    gradcheck("dropout p=0.3", b_dropout, NULL, wide);
    gradcheck("add with a shared input", b_add_shared, NULL, small);
    gradcheck("mul same shape", b_mul, NULL, small);
    gradcheck("mul broadcast (squeeze-excitation)", b_mul_bcast, NULL, small);
    gc_opts big = {.batch = 16, .c = 3, .h = 32, .w = 32};
    gradcheck("add with its ReLU, 4 MiB outputs (streaming stores)", b_add_relu_big, NULL, big);
    gradcheck("mul broadcast, 4 MiB output (streaming stores)", b_mul_bcast_big, NULL, big);
    gc_opts four = small;
    four.batch = 4; /* with p=0.5, some samples dropped and some kept */
    gradcheck("drop path p=0.5 on a residual branch", b_drop_path, NULL, four);
    gradcheck("squeeze-excitation block", b_se, NULL, small);
    gradcheck("concat 12+5+12 channels", b_concat, NULL, small);
    gradcheck("slice", b_slice, NULL, small);
    gc_opts xent = flat;
    xent.xent = true;
    gradcheck("softmax cross-entropy", b_xent, NULL, xent);
    xent.smoothing = 0.1f;
    gradcheck("softmax cross-entropy, smoothing 0.1", b_xent, NULL, xent);
    /* a small step: with ReLUs inside, a step of 1e-2 would cross kinks; the loss is O(1) so float
     * rounding stays well under the tolerance */
    gc_opts net = {.batch = 4, .c = 3, .h = 8, .w = 8, .xent = true, .eps = 1e-3f};
    gradcheck("residual network (conv, bn, relu, add, pool, fc)", b_resnet, NULL, net);
    return test_report("test_ops_gradcheck");
}
