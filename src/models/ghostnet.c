/* ghostnet.c — GhostNet 1.0× (Han et al. 2020) as the paper's code and timm's ghostnet_100 define
 * it (stem 3×3/2 to 16, 16 Ghost bottlenecks, 1×1 conv to 960, global pool, conv_head 1×1 to 1280
 * with bias, ReLU, dropout 0.2, classifier; PyTorch's default initialization, as timm). Small
 * images (model_small_input) take a stride-1 stem. Ghost-ResNet-56 is in resnet_cifar.c. */
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

const model_def ghostnet_models[] = {
    {"ghostnet", "ghostnet", "GhostNet 1.0x (Han et al. 2020) as timm's ghostnet_100: Ghost bottlenecks, SE", 0, 3, 224,
     224, 1000, build_ghostnet},
    {NULL},
};
