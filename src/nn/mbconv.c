/* mbconv.c — EfficientNet's MBConv block as torchvision builds it (expansion, depthwise conv,
 * squeeze-excitation, projection, stochastic depth), with its state_dict names. */
#include "nn/blocks.h"

/* block.<index>: conv-BN[-SiLU], torchvision's Conv2dNormActivation (BN eps 1e-5) */
static int cna(graph *g, int x, nn_seq *seq, const conv_cfg *c, bool silu) {
    char idx[16];
    graph_push(g, nn_seq_name(seq, idx, sizeof idx));
    x = nn_conv_norm_act(g, x, "0", "1", c, 1e-5f, silu ? op_silu : NULL);
    graph_pop(g);
    return x;
}

int nn_mbconv(graph *g, int x, const nn_mbconv_cfg *c) {
    int in_c = op_in_channels(g, x);
    int mid = nn_make_divisible((double)in_c * c->expand_ratio, 8);
    nn_seq seq = {0};
    graph_push(g, "block");
    int y = x;
    if (mid != in_c) {
        conv_cfg expand = {mid, 1, 1, 0, 1, 1, false, INIT_KAIMING_NORMAL_OUT};
        y = cna(g, y, &seq, &expand, true);
    }
    conv_cfg dw = {mid, c->k, c->stride, (c->k - 1) / 2, 1, mid, false, INIT_KAIMING_NORMAL_OUT};
    y = cna(g, y, &seq, &dw, true);
    char idx[16];
    graph_push(g, nn_seq_name(&seq, idx, sizeof idx));
    y = nn_se(g, y, in_c / 4 > 1 ? in_c / 4 : 1, op_silu, op_sigmoid, "fc1", "fc2");
    graph_pop(g);
    conv_cfg project = {c->out_c, 1, 1, 0, 1, 1, false, INIT_KAIMING_NORMAL_OUT};
    y = cna(g, y, &seq, &project, false);
    graph_pop(g);
    nn_res_opts o = {0, c->drop_path};
    return c->stride == 1 && in_c == c->out_c ? nn_res_merge(g, y, x, &o) : y;
}
