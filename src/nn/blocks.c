/* blocks.c — building blocks shared by the model families. */
#include "nn/blocks.h"
#include <stdio.h>
#include "ops/ops.h"

int nn_conv_bn(graph *g, int x, const char *conv, const char *bn, int out_c, int k, int stride, bool relu) {
    int y = op_batchnorm(g, op_conv(g, x, conv, out_c, k, stride), bn);
    return relu ? op_relu(g, y) : y;
}

int nn_basic_block(graph *g, int x, int out_c, int stride, bool residual) {
    int in_c = op_in_channels(g, x);
    int y = nn_conv_bn(g, x, "conv1", "bn1", out_c, 3, stride, true);
    y = nn_conv_bn(g, y, "conv2", "bn2", out_c, 3, 1, false);
    if (residual) {
        int sc = x;
        if (stride != 1 || in_c != out_c) {
            graph_push(g, "downsample");
            sc = nn_conv_bn(g, x, "0", "1", out_c, 1, stride, false);
            graph_pop(g);
        }
        y = op_add(g, y, sc);
    }
    return op_relu(g, y);
}

int nn_se(graph *g, int x, int squeeze, nn_act act, nn_act gate, const char *fc1, const char *fc2) {
    int c = op_in_channels(g, x);
    conv_cfg reduce = {squeeze, 1, 1, 0, 1, 1, true, INIT_UNIFORM_FAN_IN};
    conv_cfg expand = {c, 1, 1, 0, 1, 1, true, INIT_UNIFORM_FAN_IN};
    int s = op_global_avgpool(g, x);
    s = act(g, op_conv2d(g, s, fc1, &reduce));
    s = gate(g, op_conv2d(g, s, fc2, &expand));
    return op_mul(g, x, s);
}

const char *nn_seq_name(nn_seq *s, char *buf, size_t size) {
    snprintf(buf, size, "%d", s->next++);
    return buf;
}

void nn_seq_skip(nn_seq *s) { s->next++; }
