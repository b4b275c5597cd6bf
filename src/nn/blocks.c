/* blocks.c — building blocks shared by the model families. */
#include "nn/blocks.h"
#include <stdio.h>
#include <string.h>
#include "core/error.h"
#include "ops/ops.h"

int nn_conv_bn(graph *g, int x, const char *conv, const char *bn, int out_c, int k, int stride, bool relu) {
    int y = op_batchnorm(g, op_conv(g, x, conv, out_c, k, stride), bn);
    return relu ? op_relu(g, y) : y;
}

/* x itself, or a 1×1 conv (+ BN) named downsample.0 (.1) to out_c channels at the stride */
static int shortcut(graph *g, int x, int out_c, int stride, bool bn) {
    if (stride == 1 && op_in_channels(g, x) == out_c) return x;
    graph_push(g, "downsample");
    int y = bn ? nn_conv_bn(g, x, "0", "1", out_c, 1, stride, false) : op_conv(g, x, "0", out_c, 1, stride);
    graph_pop(g);
    return y;
}

int nn_shortcut(graph *g, int x, int out_c, int stride) { return shortcut(g, x, out_c, stride, true); }

/* branch [→ SE] [→ drop path] + shortcut */
static int merge(graph *g, int branch, int sc, const nn_res_opts *o) {
    if (o && o->se_reduction > 0) {
        int c = op_in_channels(g, branch), squeeze = c / o->se_reduction;
        graph_push(g, "se");
        branch = nn_se(g, branch, squeeze > 0 ? squeeze : 1, op_relu, op_sigmoid, "fc1", "fc2");
        graph_pop(g);
    }
    if (o && o->drop_path > 0) branch = op_drop_path(g, branch, o->drop_path);
    return op_add(g, branch, sc);
}

int nn_basic_block(graph *g, int x, int out_c, int stride, bool residual, const nn_res_opts *o) {
    int y = nn_conv_bn(g, x, "conv1", "bn1", out_c, 3, stride, true);
    y = nn_conv_bn(g, y, "conv2", "bn2", out_c, 3, 1, false);
    if (residual) y = merge(g, y, shortcut(g, x, out_c, stride, true), o);
    return op_relu(g, y);
}

int nn_bottleneck(graph *g, int x, int planes, int stride, int groups, int base_width, const nn_res_opts *o) {
    int width = planes * base_width / 64 * groups;
    int y = nn_conv_bn(g, x, "conv1", "bn1", width, 1, 1, true);
    conv_cfg grouped = {width, 3, stride, 1, 1, groups, false, INIT_KAIMING_NORMAL_OUT};
    y = op_relu(g, op_batchnorm(g, op_conv2d(g, y, "conv2", &grouped), "bn2"));
    y = nn_conv_bn(g, y, "conv3", "bn3", 4 * planes, 1, 1, false);
    return op_relu(g, merge(g, y, shortcut(g, x, 4 * planes, stride, true), o));
}

int nn_preact_block(graph *g, int x, int out_c, int stride, const nn_res_opts *o) {
    int a = op_relu(g, op_batchnorm(g, x, "bn1"));
    int y = op_conv(g, a, "conv1", out_c, 3, stride);
    y = op_conv(g, op_relu(g, op_batchnorm(g, y, "bn2")), "conv2", out_c, 3, 1);
    int sc = stride == 1 && op_in_channels(g, x) == out_c ? x : shortcut(g, a, out_c, stride, false);
    return merge(g, y, sc, o);
}

int nn_highway_block(graph *g, int x, int out_c, int stride, float gate_bias) {
    int f = nn_conv_bn(g, x, "conv1", "bn1", out_c, 3, stride, true);
    f = nn_conv_bn(g, f, "conv2", "bn2", out_c, 3, 1, false);
    int carry = shortcut(g, x, out_c, stride, true);
    conv_cfg gate = {out_c, 1, stride, 0, 1, 1, true, INIT_UNIFORM_FAN_IN};
    int t = op_conv2d(g, x, "gate", &gate);
    nn_param_init(g, t, "bias", INIT_CONSTANT, gate_bias);
    return op_relu(g, op_lerp(g, carry, f, op_sigmoid(g, t)));
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

float nn_drop_rate(float last, int i, int n) { return n > 1 ? last * (float)i / (float)(n - 1) : last; }

void nn_param_init(graph *g, int t, const char *leaf, enum param_init init, float arg) {
    if (!graph_ok(g) || t < 0 || g->tensors[t].producer < 0) return;
    const node *n = &g->nodes[g->tensors[t].producer];
    size_t len = strlen(leaf);
    for (int k = 0; k < n->nparams; k++) {
        param *p = &g->params[n->params[k]];
        size_t pl = strlen(p->name);
        if (pl > len && p->name[pl - len - 1] == '.' && strcmp(p->name + pl - len, leaf) == 0) {
            p->init = init;
            p->init_arg = arg;
            return;
        }
    }
    graph_fail(g, cnn_fail(CNN_ERR_INTERNAL, "%s: no parameter %s to initialize", n->name, leaf));
}

const char *nn_seq_name(nn_seq *s, char *buf, size_t size) {
    snprintf(buf, size, "%d", s->next++);
    return buf;
}

void nn_seq_skip(nn_seq *s) { s->next++; }
