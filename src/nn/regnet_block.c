/* regnet_block.c — the RegNet blocks of convrnn.h: residual blocks whose first 3×3 features feed
 * the stage's ConvRNN, whose hidden state is fused back into the block by a 1×1 convolution. */
#include "core/error.h"
#include "nn/blocks.h"
#include "nn/convrnn.h"

/* Called in the stage's scope: a step of the stage's cell (scope "rnn") on features y, then in
 * block `index`'s scope concat(y, h) → conv_fuse 1×1 + bn_fuse + ReLU back to y's channels. */
static int regulate(graph *g, int y, int index, regulator *reg, bool last) {
    graph_push(g, "rnn");
    reg->state = convrnn_step(g, &reg->cell, y, reg->state, !last);
    graph_pop(g);
    graph_pushf(g, "%d", index);
    int parts[2] = {y, reg->state.h};
    y = nn_conv_bn(g, op_concat(g, parts, 2), "conv_fuse", "bn_fuse", op_in_channels(g, y), 1, 1, true);
    graph_pop(g);
    return y;
}

int nn_regnet_block(graph *g, int x, int index, int out_c, int stride, regulator *reg, bool last) {
    graph_pushf(g, "%d", index);
    if (!reg) {
        int y = nn_basic_block(g, x, out_c, stride, true, NULL);
        graph_pop(g);
        return y;
    }
    int y = nn_conv_bn(g, x, "conv1", "bn1", out_c, 3, stride, true);
    graph_pop(g);
    y = regulate(g, y, index, reg, last);
    graph_pushf(g, "%d", index);
    y = nn_conv_bn(g, y, "conv2", "bn2", out_c, 3, 1, false);
    y = op_relu(g, op_add(g, y, nn_shortcut(g, x, out_c, stride, true)));
    graph_pop(g);
    return y;
}

int nn_regnet_bottleneck(graph *g, int x, int index, int width, int stride, regulator *reg, bool last) {
    graph_pushf(g, "%d", index);
    if (!reg) {
        int y = nn_bottleneck(g, x, width, stride, 1, 64, NULL);
        graph_pop(g);
        return y;
    }
    int y = nn_conv_bn(g, x, "conv1", "bn1", width, 1, 1, true);
    y = nn_conv_bn(g, y, "conv2", "bn2", width, 3, stride, true);
    graph_pop(g);
    y = regulate(g, y, index, reg, last);
    graph_pushf(g, "%d", index);
    y = nn_conv_bn(g, y, "conv3", "bn3", 4 * width, 1, 1, false);
    y = op_relu(g, op_add(g, y, nn_shortcut(g, x, 4 * width, stride, true)));
    graph_pop(g);
    return y;
}
