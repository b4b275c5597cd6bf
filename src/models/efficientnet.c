/* efficientnet.c — EfficientNet-B0 (Tan & Le 2019) exactly as torchvision's efficientnet_b0: a
 * 3×3 stride-2 stem, 16 MBConv blocks in 7 stages (table 1 of the paper), a 1×1 conv to 1280,
 * global average pooling, dropout 0.2 and the classifier; SiLU everywhere, batch norm eps 1e-5
 * momentum 0.1, stochastic depth p·(block index)/16 (p = 0.2 by default, torchvision's
 * stochastic_depth_prob), state_dict names and initialization as torchvision's. Small images
 * (model_small_input) take a stride-1 stem. */
#include <math.h>
#include "models/models.h"
#include "nn/blocks.h"
#include "ops/ops.h"

typedef struct stage {
    int expand_ratio, k, stride, out_c, layers;
} stage;

static const stage b0[7] = {{1, 3, 1, 16, 1}, {6, 3, 2, 24, 2},  {6, 5, 2, 40, 2}, {6, 3, 2, 80, 3},
                            {6, 5, 1, 112, 3}, {6, 5, 2, 192, 4}, {6, 3, 1, 320, 1}};

static int build_efficientnet_b0(graph *g, int x, const model_cfg *cfg, int arg) {
    (void)arg;
    int first = g->nnodes, total = 0, block = 0;
    for (int s = 0; s < 7; s++) total += b0[s].layers;
    conv_cfg stem = {32, 3, model_small_input(cfg) ? 1 : 2, 1, 1, 1, false, INIT_KAIMING_NORMAL_OUT};
    graph_push(g, "features.0");
    x = nn_conv_norm_act(g, x, "0", "1", &stem, 1e-5f, op_silu);
    graph_pop(g);
    for (int s = 0; s < 7; s++)
        for (int j = 0; j < b0[s].layers; j++, block++) {
            nn_mbconv_cfg c = {b0[s].expand_ratio, b0[s].k, j == 0 ? b0[s].stride : 1, b0[s].out_c,
                               cfg->stochastic_depth * (float)block / (float)total};
            graph_pushf(g, "features.%d.%d", s + 1, j);
            x = nn_mbconv(g, x, &c);
            graph_pop(g);
        }
    conv_cfg head = {1280, 1, 1, 0, 1, 1, false, INIT_KAIMING_NORMAL_OUT};
    graph_push(g, "features.8");
    x = nn_conv_norm_act(g, x, "0", "1", &head, 1e-5f, op_silu);
    graph_pop(g);
    x = op_dropout(g, op_global_avgpool(g, x), model_param(cfg->dropout, 0.2f));
    x = op_linear(g, x, "classifier.1", cfg->classes, true);
    /* torchvision: conv weights kaiming_normal_(fan_out), conv biases (the SE's) zero; linear
     * weights U(±1/sqrt(out_features)), biases zero */
    nn_set_init(g, first, "conv2d", "weight", INIT_KAIMING_NORMAL_OUT, 0);
    nn_set_init(g, first, "conv2d", "bias", INIT_ZEROS, 0);
    nn_set_init(g, first, "linear", "weight", INIT_UNIFORM, 1.0f / sqrtf((float)cfg->classes));
    nn_set_init(g, first, "linear", "bias", INIT_ZEROS, 0);
    return x;
}

const model_def efficientnet_models[] = {
    {"efficientnet_b0", "efficientnet", "EfficientNet-B0 as torchvision (MBConv, SE, SiLU, stochastic depth 0.2)", 0,
     3, 224, 224, 1000, build_efficientnet_b0, 0.2f},
    {NULL},
};
