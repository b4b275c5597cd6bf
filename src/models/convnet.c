/* convnet.c — the TP network of seed 002: three 5×5 convolutions (32, 64, 64 channels, padding 2)
 * each followed by ReLU and 2×2 max pooling, then fc 1000, ReLU, fc to the classes. Variants of its
 * parts 3.4–3.5: dropout before the last layer, batch norm after each convolution. Names follow
 * the report's nn.Sequential "features" and "classifier". */
#include <stdio.h>
#include "models/models.h"
#include "nn/blocks.h"
#include "ops/ops.h"

static int build_convnet(graph *g, int x, const model_cfg *cfg, int arg) {
    static const int widths[3] = {32, 64, 64};
    char name[16];
    nn_seq seq = {0};
    graph_push(g, "features");
    for (int i = 0; i < 3; i++) {
        conv_cfg c = {widths[i], 5, 1, 2, 1, 1, true, INIT_UNIFORM_FAN_IN};
        x = op_conv2d(g, x, nn_seq_name(&seq, name, sizeof name), &c);
        if (cfg->bn) x = op_batchnorm(g, x, nn_seq_name(&seq, name, sizeof name));
        x = op_relu(g, x);
        nn_seq_skip(&seq);
        x = op_maxpool(g, x, 2, 2, 0, false);
        nn_seq_skip(&seq);
    }
    graph_pop(g);
    seq.next = 0;
    graph_push(g, "classifier");
    x = op_relu(g, op_linear(g, x, nn_seq_name(&seq, name, sizeof name), 1000, true));
    nn_seq_skip(&seq);
    if (cfg->dropout > 0) {
        x = op_dropout(g, x, cfg->dropout);
        nn_seq_skip(&seq);
    }
    x = op_linear(g, x, nn_seq_name(&seq, name, sizeof name), cfg->classes, true);
    graph_pop(g);
    return x;
}

const model_def convnet_models[] = {
    {"convnet", "convnet", "TP ConvNet of seed 002: conv5x5 32/64/64 + max pool, fc 1000, fc (--bn, --dropout)", 0, 1,
     28, 28, 10, build_convnet},
    {NULL},
};
