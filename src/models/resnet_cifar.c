/* resnet_cifar.c — the CIFAR ResNets of He et al. (2016, section 4.2): 3×3 conv to 16 channels,
 * three stages of n basic blocks at 16, 32, 64 channels (depth 6n+2), global average pooling,
 * linear classifier; 1×1 conv + BN projection shortcuts where the shape changes. Names and
 * initialization as torchvision's ResNet. */
#include "models/models.h"
#include "nn/blocks.h"
#include "ops/ops.h"

static int build_resnet_cifar(graph *g, int x, const model_cfg *cfg, int depth) {
    int n = (depth - 2) / 6;
    x = nn_conv_bn(g, x, "conv1", "bn1", 16, 3, 1, true);
    static const int widths[3] = {16, 32, 64};
    for (int s = 0; s < 3; s++)
        for (int b = 0; b < n; b++) {
            graph_pushf(g, "layer%d.%d", s + 1, b);
            x = nn_basic_block(g, x, widths[s], s > 0 && b == 0 ? 2 : 1, true);
            graph_pop(g);
        }
    x = op_global_avgpool(g, x);
    return op_linear(g, x, "fc", cfg->classes, true);
}

#define RN(n) {"resnet" #n, "resnet-cifar", "CIFAR ResNet-" #n " (He et al.), projection shortcuts", n, 3, 32, 32, 10, \
               build_resnet_cifar}
const model_def resnet_cifar_models[] = {RN(20), RN(32), RN(44), RN(56), RN(110), {NULL}};
