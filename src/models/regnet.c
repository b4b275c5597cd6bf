/* regnet.c — RegNet of Xu et al., "RegNet: Self-Regulated Network for Image Classification"
 * (arXiv 2101.00590; not Facebook's RegNetX/Y design spaces): ResNets whose stages carry a
 * ConvLSTM or ConvGRU state from block to block (src/nn/convrnn.h). regnet20/32/56/110 follow the
 * CIFAR ResNet layout, regnet18/34/50 the ImageNet one (regnet50 with bottleneck blocks). A stage
 * without the regulator (--regulated-stages, --regulator none) is the ResNet's, names included. */
#include "models/models.h"
#include "nn/blocks.h"
#include "nn/convrnn.h"
#include "ops/ops.h"

/* The regulator of stage s (0-based) in r, or NULL when the stage has none. Hidden channels: the
 * width of the features the cell reads. The state starts from zero at every stage. */
static regulator *stage_regulator(const model_cfg *cfg, int s, int width, regulator *r) {
    if (cfg->regulator == REGULATOR_NONE || !(cfg->regulated_stages & (1u << s))) return NULL;
    convrnn_init(&r->cell, cfg->regulator == REGULATOR_CONVGRU ? CONVRNN_GRU : CONVRNN_LSTM, width, width, 3);
    r->state = convrnn_zero();
    return r;
}

/* conv1/bn1 3×3 to 16 channels, layer1..3 of n blocks at 16, 32, 64 channels (depth 6n + 2), global
 * average pooling, fc: the CIFAR ResNet of src/models/resnet_cifar.c with regulated stages. */
static int build_cifar(graph *g, int x, const model_cfg *cfg, int depth) {
    int n = (depth - 2) / 6;
    x = nn_conv_bn(g, x, "conv1", "bn1", 16, 3, 1, true);
    for (int s = 0; s < 3; s++) {
        int width = 16 << s;
        regulator r, *reg = stage_regulator(cfg, s, width, &r);
        graph_pushf(g, "layer%d", s + 1);
        for (int b = 0; b < n; b++) x = nn_regnet_block(g, x, b, width, s > 0 && b == 0 ? 2 : 1, reg, b == n - 1);
        graph_pop(g);
    }
    return op_linear(g, op_global_avgpool(g, x), "fc", cfg->classes, true);
}

/* torchvision's stem, conv 7×7/2 + max pool 3×3/2, divides the resolution by 4 before four stages
 * that divide it by 8 more: small inputs (model_small_input: 32×32 CIFAR, 28×28 MNIST) would reach
 * the last stage at 1×1 or less. They get a 3×3 stride-1 conv1 and no pooling instead (the usual
 * CIFAR ResNet-18), so 32×32 reaches the last stage at 4×4 and 28×28 at 4×4. */
static int imagenet_stem(graph *g, int x, const model_cfg *cfg) {
    if (model_small_input(cfg)) return nn_conv_bn(g, x, "conv1", "bn1", 64, 3, 1, true);
    x = nn_conv_bn(g, x, "conv1", "bn1", 64, 7, 2, true);
    return op_maxpool(g, x, 3, 2, 1, false);
}

/* The stem, layer1..4 at widths 64, 128, 256, 512 (the first block of layer2..4 has stride 2),
 * global average pooling, fc; basic blocks for 18 and 34, bottleneck blocks (4·width out) for 50. */
static int build_imagenet(graph *g, int x, const model_cfg *cfg, int depth) {
    static const int per_stage[2][4] = {{2, 2, 2, 2}, {3, 4, 6, 3}};
    const int *n = per_stage[depth != 18];
    x = imagenet_stem(g, x, cfg);
    for (int s = 0; s < 4; s++) {
        int width = 64 << s;
        regulator r, *reg = stage_regulator(cfg, s, width, &r);
        graph_pushf(g, "layer%d", s + 1);
        for (int b = 0; b < n[s]; b++) {
            int stride = s > 0 && b == 0 ? 2 : 1;
            bool last = b == n[s] - 1;
            x = depth == 50 ? nn_regnet_bottleneck(g, x, b, width, stride, reg, last)
                            : nn_regnet_block(g, x, b, width, stride, reg, last);
        }
        graph_pop(g);
    }
    return op_linear(g, op_global_avgpool(g, x), "fc", cfg->classes, true);
}

#define ABOUT "ConvLSTM/ConvGRU-regulated ResNet (Xu et al. 2021; not RegNetX/Y)"
#define CIFAR(n) {"regnet" #n, "regnet", "RegNet-" #n ", CIFAR layout: " ABOUT, n, 3, 32, 32, 10, build_cifar, .stages = 3}
#define IMAGENET(n, what) \
    {"regnet" #n, "regnet", "RegNet-" #n ", ImageNet layout" what ": " ABOUT, n, 3, 224, 224, 1000, build_imagenet, .stages = 4}
const model_def regnet_models[] = {
    CIFAR(20), CIFAR(32), CIFAR(56), CIFAR(110),
    IMAGENET(18, ""), IMAGENET(34, ""), IMAGENET(50, ", bottleneck blocks"),
    {NULL},
};
