/* resnet_cifar.c — the CIFAR layout of He et al. (2016, section 4.2) and its variants: 3×3 conv to
 * 16 channels, three stages of n blocks at 16, 32, 64 channels (depth 6n+2), global average
 * pooling, linear classifier; projection shortcuts where the shape changes. The block is the
 * basic one (resnetN), with squeeze-and-excitation (se_resnetN), pre-activated (preact_resnetN:
 * the stem is the bare conv, a final BN-ReLU precedes the pooling), gated (highway20) or made of
 * Ghost modules (ghost_resnet56, GhostNet paper section 4.1). Names and initialization as
 * torchvision's ResNet. */
#include "models/models.h"
#include "nn/blocks.h"
#include "ops/ops.h"

enum cifar_block { BASIC, SE, PREACT, HIGHWAY, GHOST };

/* The highway gates start mostly closed, sigmoid(-1) ≈ 0.27: each block begins close to carrying
 * its input, the negative-bias start Srivastava et al. recommend. */
#define HIGHWAY_GATE_BIAS (-1.0f)

static int block(graph *g, int x, enum cifar_block kind, int out_c, int stride, const nn_res_opts *o) {
    switch (kind) {
    case BASIC:
    case SE: return nn_basic_block(g, x, out_c, stride, true, o);
    case PREACT: return nn_preact_block(g, x, out_c, stride, o);
    case HIGHWAY: return nn_highway_block(g, x, out_c, stride, HIGHWAY_GATE_BIAS);
    case GHOST: return nn_ghost_basic_block(g, x, out_c, stride, o);
    }
    return -1;
}

static int build(graph *g, int x, const model_cfg *cfg, int depth, enum cifar_block kind) {
    int n = (depth - 2) / 6, i = 0;
    x = kind == PREACT ? op_conv(g, x, "conv1", 16, 3, 1) : nn_conv_bn(g, x, "conv1", "bn1", 16, 3, 1, true);
    static const int widths[3] = {16, 32, 64};
    for (int s = 0; s < 3; s++)
        for (int b = 0; b < n; b++) {
            nn_res_opts o = {kind == SE ? 16 : 0, nn_drop_rate(cfg->stochastic_depth, i++, 3 * n)};
            graph_pushf(g, "layer%d.%d", s + 1, b);
            x = block(g, x, kind, widths[s], s > 0 && b == 0 ? 2 : 1, &o);
            graph_pop(g);
        }
    if (kind == PREACT) x = op_relu(g, op_batchnorm(g, x, "bn"));
    x = op_global_avgpool(g, x);
    return op_linear(g, x, "fc", cfg->classes, true);
}

static int build_resnet(graph *g, int x, const model_cfg *cfg, int depth) { return build(g, x, cfg, depth, BASIC); }
static int build_se(graph *g, int x, const model_cfg *cfg, int depth) { return build(g, x, cfg, depth, SE); }
static int build_preact(graph *g, int x, const model_cfg *cfg, int depth) { return build(g, x, cfg, depth, PREACT); }
static int build_highway(graph *g, int x, const model_cfg *cfg, int depth) { return build(g, x, cfg, depth, HIGHWAY); }
static int build_ghost(graph *g, int x, const model_cfg *cfg, int depth) { return build(g, x, cfg, depth, GHOST); }

#define RN(n) {"resnet" #n, "resnet-cifar", "CIFAR ResNet-" #n " (He et al.), projection shortcuts", n, 3, 32, 32, 10, \
               build_resnet}
#define SE_RN(n) {"se_resnet" #n, "se-resnet", "CIFAR ResNet-" #n " with squeeze-and-excitation (r = 16)", n, 3, 32, \
                  32, 10, build_se}
#define PRE_RN(n) {"preact_resnet" #n, "preact-resnet", "CIFAR pre-activation ResNet-" #n " (BN-ReLU-conv)", n, 3, \
                   32, 32, 10, build_preact}
const model_def resnet_cifar_models[] = {
    RN(20), RN(32), RN(44), RN(56), RN(110),
    SE_RN(20), SE_RN(56),
    PRE_RN(20), PRE_RN(56), PRE_RN(110),
    {"highway20", "highway", "ResNet-20 layout with gated blocks F·T + x·(1−T), T = sigmoid(1×1 conv)", 20, 3, 32, 32,
     10, build_highway},
    {"ghost_resnet56", "ghostnet", "ResNet-56 for CIFAR with Ghost modules (s=2, d=3) for its 3x3 block convs", 56, 3,
     32, 32, 10, build_ghost},
    {NULL},
};
