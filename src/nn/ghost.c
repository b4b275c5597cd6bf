/* ghost.c — GhostNet's blocks (Han et al. 2020) as the paper's code and timm build them: the
 * Ghost module (a primary conv makes half the channels, a cheap depthwise conv the other half)
 * the Ghost bottleneck, and Ghost-ResNet's basic block, with their state_dict names. */
#include "nn/blocks.h"

/* "<name>.0" conv, "<name>.1" BN, ReLU when relu (index 2, no parameters) */
static int conv_bn_relu(graph *g, int x, const char *name, const conv_cfg *c, bool relu) {
    graph_push(g, name);
    x = nn_conv_norm_act(g, x, "0", "1", c, 1e-5f, relu ? op_relu : NULL);
    graph_pop(g);
    return x;
}

int nn_ghost_module(graph *g, int x, int out_c, int k, int stride, bool relu, enum param_init init) {
    int m = (out_c + 1) / 2;
    conv_cfg primary = {m, k, stride, k / 2, 1, 1, false, init};
    conv_cfg cheap = {m, 3, 1, 1, 1, m, false, init};
    int parts[2];
    parts[0] = conv_bn_relu(g, x, "primary_conv", &primary, relu);
    parts[1] = conv_bn_relu(g, parts[0], "cheap_operation", &cheap, relu);
    return op_slice(g, op_concat(g, parts, 2), 0, out_c);
}

static int ghost_shortcut(graph *g, int x, int out_c, int k, int stride) {
    int in_c = op_in_channels(g, x);
    if (stride == 1 && in_c == out_c) return x;
    conv_cfg dw = {in_c, k, stride, (k - 1) / 2, 1, in_c, false, INIT_UNIFORM_FAN_IN};
    conv_cfg pw = {out_c, 1, 1, 0, 1, 1, false, INIT_UNIFORM_FAN_IN};
    graph_push(g, "shortcut");
    x = nn_conv_norm_act(g, x, "0", "1", &dw, 1e-5f, NULL);
    x = nn_conv_norm_act(g, x, "2", "3", &pw, 1e-5f, NULL);
    graph_pop(g);
    return x;
}

int nn_ghost_bottleneck(graph *g, int x, int mid_c, int out_c, int k, int stride, float se_ratio) {
    graph_push(g, "ghost1");
    int y = nn_ghost_module(g, x, mid_c, 1, 1, true, INIT_UNIFORM_FAN_IN);
    graph_pop(g);
    if (stride > 1) {
        conv_cfg dw = {mid_c, k, stride, (k - 1) / 2, 1, mid_c, false, INIT_UNIFORM_FAN_IN};
        y = nn_conv_norm_act(g, y, "conv_dw", "bn_dw", &dw, 1e-5f, NULL);
    }
    if (se_ratio > 0) {
        graph_push(g, "se");
        y = nn_se(g, y, nn_make_divisible(mid_c * (double)se_ratio, 4), op_relu, op_hard_sigmoid, "conv_reduce",
                  "conv_expand");
        graph_pop(g);
    }
    graph_push(g, "ghost2");
    y = nn_ghost_module(g, y, out_c, 1, 1, false, INIT_UNIFORM_FAN_IN);
    graph_pop(g);
    return op_add(g, y, ghost_shortcut(g, x, out_c, k, stride));
}

int nn_ghost_basic_block(graph *g, int x, int out_c, int stride, const nn_res_opts *o) {
    graph_push(g, "ghost1");
    int y = nn_ghost_module(g, x, out_c, 3, stride, true, INIT_KAIMING_NORMAL_OUT);
    graph_pop(g);
    graph_push(g, "ghost2");
    y = nn_ghost_module(g, y, out_c, 3, 1, false, INIT_KAIMING_NORMAL_OUT);
    graph_pop(g);
    return op_relu(g, nn_res_merge(g, y, nn_shortcut(g, x, out_c, stride, true), o));
}
