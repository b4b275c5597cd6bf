/* vgg.c — torchvision's VGG 11/13/16/19 (configurations A, B, D, E of Simonyan & Zisserman), with
 * or without batch norm: 3×3 convs with bias (+ BN) + ReLU and 2×2 max pools as features.N,
 * adaptive average pooling to 7×7, classifier Linear(512·7·7, 4096)-ReLU-Dropout-Linear(4096,
 * 4096)-ReLU-Dropout-Linear(4096, classes) as classifier.N. Initialization as torchvision's: convs
 * kaiming normal fan_out with zero bias, BN 1/0, linear N(0, 0.01) with zero bias.
 *
 * Small inputs keep the architecture: the pooling to 7×7 repeats cells of a smaller map, as
 * PyTorch's AdaptiveAvgPool2d does, and a max pool whose input is under 2×2 (the fifth one at
 * 28×28) is left out, as it would have an empty output (its nn.Sequential index stays taken). */
#include "models/models.h"
#include "nn/blocks.h"
#include "ops/ops.h"

#define POOL (-1)
static const int cfg_a[] = {64, POOL, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL, 0};
static const int cfg_b[] = {64, 64, POOL, 128, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL, 0};
static const int cfg_d[] = {64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL, 512, 512, 512, POOL,
                            512, 512, 512, POOL, 0};
static const int cfg_e[] = {64, 64, POOL, 128, 128, POOL, 256, 256, 256, 256, POOL, 512, 512, 512, 512, POOL,
                            512, 512, 512, 512, POOL, 0};
static const int *const cfgs[4] = {cfg_a, cfg_b, cfg_d, cfg_e};

static int features(graph *g, int x, const int *layers, bool bn) {
    nn_seq seq = {0};
    char name[16];
    graph_push(g, "features");
    for (const int *l = layers; *l && graph_ok(g); l++) {
        if (*l == POOL) {
            const tensor *t = graph_tensor(g, x);
            if (t->h >= 2 && t->w >= 2) x = op_maxpool(g, x, 2, 2, 0, false);
            nn_seq_skip(&seq);
            continue;
        }
        conv_cfg c = {*l, 3, 1, 1, 1, 1, true, INIT_KAIMING_NORMAL_OUT};
        x = op_conv2d(g, x, nn_seq_name(&seq, name, sizeof name), &c);
        nn_param_init(g, x, "bias", INIT_ZEROS, 0);
        if (bn) x = op_batchnorm(g, x, nn_seq_name(&seq, name, sizeof name));
        x = op_relu(g, x);
        nn_seq_skip(&seq);
    }
    graph_pop(g);
    return x;
}

static int linear(graph *g, int x, const char *name, int out) {
    x = op_linear(g, x, name, out, true);
    nn_param_init(g, x, "weight", INIT_NORMAL, 0.01f);
    nn_param_init(g, x, "bias", INIT_ZEROS, 0);
    return x;
}

/* arg: 0..3 for configurations A, B, D, E; +4 with batch norm */
static int build(graph *g, int x, const model_cfg *cfg, int arg) {
    float p = cfg->dropout >= 0 ? cfg->dropout : 0.5f;
    x = features(g, x, cfgs[arg % 4], arg >= 4);
    x = op_adaptive_avgpool(g, x, 7, 7);
    graph_push(g, "classifier");
    x = op_dropout(g, op_relu(g, linear(g, x, "0", 4096)), p);
    x = op_dropout(g, op_relu(g, linear(g, x, "3", 4096)), p);
    x = linear(g, x, "6", cfg->classes);
    graph_pop(g);
    return x;
}

#define VGG(name, arg, about) {name, "vgg", about, arg, 3, 224, 224, 1000, build}
const model_def vgg_models[] = {
    VGG("vgg11", 0, "VGG-11 (torchvision, configuration A)"),
    VGG("vgg13", 1, "VGG-13 (torchvision, configuration B)"),
    VGG("vgg16", 2, "VGG-16 (torchvision, configuration D)"),
    VGG("vgg19", 3, "VGG-19 (torchvision, configuration E)"),
    VGG("vgg11_bn", 4, "VGG-11 with batch norm (torchvision)"),
    VGG("vgg13_bn", 5, "VGG-13 with batch norm (torchvision)"),
    VGG("vgg16_bn", 6, "VGG-16 with batch norm (torchvision)"),
    VGG("vgg19_bn", 7, "VGG-19 with batch norm (torchvision)"),
    {NULL},
};
