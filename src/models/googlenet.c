/* googlenet.c — GoogLeNet (Inception v1, Szegedy et al. 2014) exactly as torchvision's GoogLeNet:
 * batch norm in every BasicConv2d, max pools with ceil_mode, the "5×5" branch as a 3×3, auxiliary
 * heads after inception4a and 4d (training-only outputs, loss weight 0.3 each), dropout 0.2 before
 * fc, transform_input off, state_dict names and truncated-normal initialization as torchvision's.
 * Small images (model_small_input) take a 3×3 stride-1 conv1 and no maxpool1. */
#include "models/models.h"
#include "nn/blocks.h"
#include "ops/ops.h"

/* torchvision's Inception arguments: 1×1, 3×3 reduce, 3×3, "5×5" reduce, "5×5", pool projection */
static const nn_inception_cfg stage3[2] = {{64, 96, 128, 16, 32, 32}, {128, 128, 192, 32, 96, 64}};
static const nn_inception_cfg stage4[5] = {{192, 96, 208, 16, 48, 64},
                                           {160, 112, 224, 24, 64, 64},
                                           {128, 128, 256, 24, 64, 64},
                                           {112, 144, 288, 32, 64, 64},
                                           {256, 160, 320, 32, 128, 128}};
static const nn_inception_cfg stage5[2] = {{256, 160, 320, 32, 128, 128}, {384, 192, 384, 48, 128, 128}};

static int inception(graph *g, int x, const char *name, const nn_inception_cfg *c) {
    graph_push(g, name);
    x = nn_inception(g, x, c);
    graph_pop(g);
    return x;
}

/* an auxiliary head on x: logits registered as a training-only output with loss weight 0.3 */
static void aux_head(graph *g, int x, const char *name, const model_cfg *cfg) {
    graph_push(g, name);
    int y = nn_inception_aux(g, x, cfg->classes, model_param(cfg->dropout_aux, 0.7f));
    graph_pop(g);
    graph_set_output(g, y, OUTPUT_AUX, 0.3f);
}

static int build_googlenet(graph *g, int x, const model_cfg *cfg, int arg) {
    (void)arg;
    int first = g->nnodes;
    if (model_small_input(cfg)) {
        x = nn_basic_conv(g, x, "conv1", 64, 3, 1, 1);
    } else {
        x = nn_basic_conv(g, x, "conv1", 64, 7, 2, 3);
        x = op_maxpool(g, x, 3, 2, 0, true);
    }
    x = nn_basic_conv(g, x, "conv2", 64, 1, 1, 0);
    x = nn_basic_conv(g, x, "conv3", 192, 3, 1, 1);
    x = op_maxpool(g, x, 3, 2, 0, true);
    x = inception(g, x, "inception3a", &stage3[0]);
    x = inception(g, x, "inception3b", &stage3[1]);
    x = op_maxpool(g, x, 3, 2, 0, true);
    static const char *const names4[5] = {"inception4a", "inception4b", "inception4c", "inception4d", "inception4e"};
    for (int i = 0; i < 5; i++) {
        x = inception(g, x, names4[i], &stage4[i]);
        if (i == 0) aux_head(g, x, "aux1", cfg);
        if (i == 3) aux_head(g, x, "aux2", cfg);
    }
    x = op_maxpool(g, x, 2, 2, 0, true);
    x = inception(g, x, "inception5a", &stage5[0]);
    x = inception(g, x, "inception5b", &stage5[1]);
    x = op_dropout(g, op_global_avgpool(g, x), model_param(cfg->dropout, 0.2f));
    x = op_linear(g, x, "fc", cfg->classes, true);
    /* torchvision: trunc_normal_(std=0.01, a=-2, b=2) on conv and linear weights; linear biases
     * keep PyTorch's default; batch norm 1 and 0 */
    nn_set_init(g, first, "conv2d", "weight", INIT_TRUNC_NORMAL, 0.01f);
    nn_set_init(g, first, "linear", "weight", INIT_TRUNC_NORMAL, 0.01f);
    return x;
}

const model_def googlenet_models[] = {
    {"googlenet", "googlenet",
     "GoogLeNet (Inception v1) with batch norm as torchvision; aux heads in training (loss weight 0.3)", 0, 3, 224,
     224, 1000, build_googlenet},
    {NULL},
};
