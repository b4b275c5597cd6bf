/* inception.c — GoogLeNet's blocks as torchvision builds them (BasicConv2d, Inception,
 * InceptionAux), with its state_dict names. */
#include "nn/blocks.h"

int nn_basic_conv(graph *g, int x, const char *name, int out_c, int k, int stride, int pad) {
    conv_cfg c = {out_c, k, stride, pad, 1, 1, false, INIT_KAIMING_NORMAL_OUT};
    graph_push(g, name);
    x = nn_conv_norm_act(g, x, "conv", "bn", &c, 1e-3f, op_relu);
    graph_pop(g);
    return x;
}

int nn_inception(graph *g, int x, const nn_inception_cfg *c) {
    int b[4];
    b[0] = nn_basic_conv(g, x, "branch1", c->c1, 1, 1, 0);
    graph_push(g, "branch2");
    b[1] = nn_basic_conv(g, nn_basic_conv(g, x, "0", c->c3_reduce, 1, 1, 0), "1", c->c3, 3, 1, 1);
    graph_pop(g);
    graph_push(g, "branch3");
    b[2] = nn_basic_conv(g, nn_basic_conv(g, x, "0", c->c5_reduce, 1, 1, 0), "1", c->c5, 3, 1, 1);
    graph_pop(g);
    graph_push(g, "branch4");
    b[3] = nn_basic_conv(g, op_maxpool(g, x, 3, 1, 1, true), "1", c->pool_proj, 1, 1, 0);
    graph_pop(g);
    return op_concat(g, b, 4);
}

int nn_inception_aux(graph *g, int x, int classes, float dropout) {
    x = nn_basic_conv(g, op_adaptive_avgpool(g, x, 4, 4), "conv", 128, 1, 1, 0);
    x = op_relu(g, op_linear(g, x, "fc1", 1024, true));
    return op_linear(g, op_dropout(g, x, dropout), "fc2", classes, true);
}
