/* resnet.c — torchvision's ImageNet ResNets and their variants: stem (7×7/2 conv, BN, ReLU, 3×3/2
 * max pool), four stages at 64..512 planes (strides 1, 2, 2, 2; basic or bottleneck blocks, the
 * bottleneck's stride on its 3×3), global average pooling, fc. Also ResNeXt-50 32×4d, Wide
 * ResNet-50-2, SE-ResNet-50 (squeeze-and-excitation, r = 16, on each bottleneck's branch) and
 * pre-activation ResNet-18 (bare conv stem, BN-ReLU before the pooling). Names, shapes and
 * initialization as torchvision's (convs kaiming normal fan_out, BN 1/0, fc PyTorch's default).
 *
 * Small inputs: below 64×64 (CIFAR, MNIST) the stem is a 3×3 stride-1 conv without max pool, as
 * the usual CIFAR adaptations do; at 64×64 the ImageNet stem still leaves layer4 a 2×2 map, below
 * it layer4 would see 1×1. Names stay torchvision's (conv1.weight is then 64×C×3×3). */
#include "models/models.h"
#include "nn/blocks.h"
#include "ops/ops.h"

typedef struct resnet_spec {
    bool bottleneck, preact;
    int layers[4];
    int groups, base_width, se_reduction;
} resnet_spec;

enum { R18, R34, R50, R101, R152, RX50, WR50, SE50, PRE18 };
static const resnet_spec specs[] = {
    [R18] = {false, false, {2, 2, 2, 2}, 1, 64, 0},
    [R34] = {false, false, {3, 4, 6, 3}, 1, 64, 0},
    [R50] = {true, false, {3, 4, 6, 3}, 1, 64, 0},
    [R101] = {true, false, {3, 4, 23, 3}, 1, 64, 0},
    [R152] = {true, false, {3, 8, 36, 3}, 1, 64, 0},
    [RX50] = {true, false, {3, 4, 6, 3}, 32, 4, 0},
    [WR50] = {true, false, {3, 4, 6, 3}, 1, 128, 0},
    [SE50] = {true, false, {3, 4, 6, 3}, 1, 64, 16},
    [PRE18] = {false, true, {2, 2, 2, 2}, 1, 64, 0},
};

static int stem(graph *g, int x, const model_cfg *cfg, bool preact) {
    bool small = model_small_input(cfg);
    x = op_conv(g, x, "conv1", 64, small ? 3 : 7, small ? 1 : 2);
    if (!preact) x = op_relu(g, op_batchnorm(g, x, "bn1"));
    return small ? x : op_maxpool(g, x, 3, 2, 1, false);
}

static int block(graph *g, int x, const resnet_spec *s, int planes, int stride, const nn_res_opts *o) {
    if (s->preact) return nn_preact_block(g, x, planes, stride, o);
    if (s->bottleneck) return nn_bottleneck(g, x, planes, stride, s->groups, s->base_width, o);
    return nn_basic_block(g, x, planes, stride, true, o);
}

static int build(graph *g, int x, const model_cfg *cfg, int which) {
    const resnet_spec *s = &specs[which];
    int blocks = s->layers[0] + s->layers[1] + s->layers[2] + s->layers[3], i = 0;
    x = stem(g, x, cfg, s->preact);
    for (int l = 0; l < 4; l++)
        for (int b = 0; b < s->layers[l]; b++) {
            nn_res_opts o = {s->se_reduction, nn_drop_rate(cfg->stochastic_depth, i++, blocks)};
            graph_pushf(g, "layer%d.%d", l + 1, b);
            x = block(g, x, s, 64 << l, l > 0 && b == 0 ? 2 : 1, &o);
            graph_pop(g);
        }
    if (s->preact) x = op_relu(g, op_batchnorm(g, x, "bn"));
    x = op_global_avgpool(g, x);
    return op_linear(g, x, "fc", cfg->classes, true);
}

#define M(name, which, about) {name, "resnet", about, which, 3, 224, 224, 1000, build}
const model_def resnet_models[] = {
    M("resnet18", R18, "ResNet-18 (torchvision), basic blocks"),
    M("resnet34", R34, "ResNet-34 (torchvision), basic blocks"),
    M("resnet50", R50, "ResNet-50 (torchvision), bottlenecks with the stride on the 3x3"),
    M("resnet101", R101, "ResNet-101 (torchvision)"),
    M("resnet152", R152, "ResNet-152 (torchvision)"),
    M("resnext50_32x4d", RX50, "ResNeXt-50 32x4d (torchvision): grouped 3x3, cardinality 32"),
    M("wide_resnet50_2", WR50, "Wide ResNet-50-2 (torchvision): bottlenecks twice as wide"),
    {"se_resnet50", "se-resnet", "ResNet-50 with squeeze-and-excitation (r = 16) on each branch", SE50, 3, 224, 224,
     1000, build},
    {"preact_resnet18", "preact-resnet", "pre-activation ResNet-18 (BN-ReLU-conv blocks), ImageNet layout", PRE18, 3,
     224, 224, 1000, build},
    {NULL},
};
