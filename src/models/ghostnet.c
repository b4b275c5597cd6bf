/* ghostnet.c — GhostNet 1.0× (Han et al. 2020) as the paper's code and timm's ghostnet_100 define
 * it (stem 3×3/2 to 16, 16 Ghost bottlenecks, 1×1 conv to 960, global pool, conv_head 1×1 to 1280
 * with bias, ReLU, dropout 0.2, classifier; PyTorch's default initialization, as timm), and
 * Ghost-ResNet-56 (section 4.1 of the paper): the CIFAR ResNet-56 of resnet_cifar.c whose 3×3
 * block convolutions are Ghost modules (s = 2, d = 3). Small images (model_small_input) give
 * GhostNet a stride-1 stem. */
#include "models/models.h"
#include "nn/blocks.h"
#include "ops/ops.h"

typedef struct ghost_cfg {
    int k, mid_c, out_c;
    float se;
    int stride;
} ghost_cfg;

/* the paper's table 1 (k, expansion size, output channels, SE ratio, stride), grouped in stages
 * as the reference code groups them (their state_dict names are blocks.<stage>.<block>) */
static const ghost_cfg table1[16] = {
    {3, 16, 16, 0, 1},       {3, 48, 24, 0, 2},       {3, 72, 24, 0, 1},       {5, 72, 40, 0.25f, 2},
    {5, 120, 40, 0.25f, 1},  {3, 240, 80, 0, 2},      {3, 200, 80, 0, 1},      {3, 184, 80, 0, 1},
    {3, 184, 80, 0, 1},      {3, 480, 112, 0.25f, 1}, {3, 672, 112, 0.25f, 1}, {5, 672, 160, 0.25f, 2},
    {5, 960, 160, 0, 1},     {5, 960, 160, 0.25f, 1}, {5, 960, 160, 0, 1},     {5, 960, 160, 0.25f, 1},
};
static const int stage_of[16] = {0, 1, 2, 3, 4, 5, 6, 6, 6, 6, 6, 7, 8, 8, 8, 8};

static int build_ghostnet(graph *g, int x, const model_cfg *cfg, int arg) {
    (void)arg;
    conv_cfg stem = {16, 3, model_small_input(cfg) ? 1 : 2, 1, 1, 1, false, INIT_UNIFORM_FAN_IN};
    x = nn_conv_norm_act(g, x, "conv_stem", "bn1", &stem, 1e-5f, op_relu);
    for (int i = 0, j = 0; i < 16; i++) {
        j = i > 0 && stage_of[i] == stage_of[i - 1] ? j + 1 : 0;
        const ghost_cfg *c = &table1[i];
        graph_pushf(g, "blocks.%d.%d", stage_of[i], j);
        x = nn_ghost_bottleneck(g, x, c->mid_c, c->out_c, c->k, c->stride, c->se);
        graph_pop(g);
    }
    conv_cfg last = {960, 1, 1, 0, 1, 1, false, INIT_UNIFORM_FAN_IN};
    graph_push(g, "blocks.9.0");
    x = nn_conv_norm_act(g, x, "conv", "bn1", &last, 1e-5f, op_relu);
    graph_pop(g);
    conv_cfg head = {1280, 1, 1, 0, 1, 1, true, INIT_UNIFORM_FAN_IN};
    x = op_relu(g, op_conv2d(g, op_global_avgpool(g, x), "conv_head", &head));
    x = op_dropout(g, x, model_param(cfg->dropout, 0.2f));
    return op_linear(g, x, "classifier", cfg->classes, true);
}

/* He et al.'s basic block with each conv-BN a Ghost module: ghost1 (3×3 primary conv at stride,
 * ReLU), ghost2 (3×3 primary conv, linear), plus the shortcut of resnet_cifar.c, then ReLU. */
static int ghost_basic_block(graph *g, int x, int out_c, int stride) {
    graph_push(g, "ghost1");
    int y = nn_ghost_module(g, x, out_c, 3, stride, true, INIT_KAIMING_NORMAL_OUT);
    graph_pop(g);
    graph_push(g, "ghost2");
    y = nn_ghost_module(g, y, out_c, 3, 1, false, INIT_KAIMING_NORMAL_OUT);
    graph_pop(g);
    return op_relu(g, op_add(g, y, nn_shortcut(g, x, out_c, stride, true)));
}

static int build_ghost_resnet(graph *g, int x, const model_cfg *cfg, int depth) {
    int n = (depth - 2) / 6;
    x = nn_conv_bn(g, x, "conv1", "bn1", 16, 3, 1, true);
    static const int widths[3] = {16, 32, 64};
    for (int s = 0; s < 3; s++)
        for (int b = 0; b < n; b++) {
            graph_pushf(g, "layer%d.%d", s + 1, b);
            x = ghost_basic_block(g, x, widths[s], s > 0 && b == 0 ? 2 : 1);
            graph_pop(g);
        }
    x = op_global_avgpool(g, x);
    return op_linear(g, x, "fc", cfg->classes, true);
}

const model_def ghostnet_models[] = {
    {"ghostnet", "ghostnet", "GhostNet 1.0x (Han et al. 2020) as timm's ghostnet_100: Ghost bottlenecks, SE", 0, 3, 224,
     224, 1000, build_ghostnet},
    {"ghost_resnet56", "ghostnet", "ResNet-56 for CIFAR with Ghost modules (s=2, d=3) for its 3x3 block convs", 56, 3,
     32, 32, 10, build_ghost_resnet},
    {NULL},
};
