/* cmd_summary.c — `cnn summary` and `cnn models`: a model's layers (type, output shape,
 * parameters, multiply-accumulates per image) and totals; the list of models. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "core/error.h"
#include "models/models.h"

static int64_t node_params(const graph *g, const node *n) {
    int64_t k = 0;
    for (int i = 0; i < n->nparams; i++) {
        const param *p = &g->params[n->params[i]];
        if (param_trainable(p)) k += param_numel(p);
    }
    return k;
}

/* The nodes an evaluation plan runs: ancestors of the main logits (auxiliary heads, GoogLeNet's,
 * are training-only). Returns NULL when out of memory. */
static bool *eval_nodes(const graph *g) {
    bool *need = calloc(g->nnodes + 1, sizeof(bool)), *live = calloc(g->ntensors + 1, sizeof(bool));
    if (need && live) {
        live[graph_main_output(g)] = true;
        for (int i = g->nnodes - 1; i >= 0; i--) {
            const node *n = &g->nodes[i];
            for (int k = 0; k < n->nout; k++) need[i] = need[i] || live[n->out[k]];
            for (int k = 0; k < n->nin && need[i]; k++) live[n->in[k]] = true;
        }
    }
    free(live);
    return need;
}

/* Parameters and multiply-accumulates in evaluation; and in training if aux heads add to them. */
static cnn_status print_totals(const graph *g) {
    bool *need = eval_nodes(g);
    if (!need) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    int64_t params = 0, macs = 0;
    for (int i = 0; i < g->nnodes; i++)
        if (need[i]) {
            params += node_params(g, &g->nodes[i]);
            macs += g->nodes[i].op->macs ? g->nodes[i].op->macs(g, &g->nodes[i]) : 0;
        }
    free(need);
    int64_t train_params = graph_param_count(g, true), train_macs = graph_macs(g);
    printf("parameters: %lld (trainable)\n", (long long)params);
    printf("multiply-accumulates per image: %lld (%.3f G)\n", (long long)macs, macs / 1e9);
    if (train_params != params || train_macs != macs)
        printf("in training, with the auxiliary heads: parameters %lld, multiply-accumulates %lld (%.3f G)\n",
               (long long)train_params, (long long)train_macs, train_macs / 1e9);
    return CNN_OK;
}

static void print_layers(const graph *g) {
    printf("%-44s %-16s %-16s %12s %14s\n", "layer", "type", "output", "parameters", "MACs");
    for (int i = 0; i < g->nnodes; i++) {
        const node *n = &g->nodes[i];
        if (!strcmp(n->op->type, "to_blocked") || !strcmp(n->op->type, "softmax_xent")) continue;
        char shape[48] = "";
        if (n->nout) {
            const tensor *t = graph_tensor(g, n->out[0]);
            snprintf(shape, sizeof shape, "%dx%dx%d", t->c, t->h, t->w);
        }
        int64_t macs = n->op->macs ? n->op->macs(g, n) : 0;
        printf("%-44.44s %-16s %-16s %12lld %14lld\n", n->name, n->op->type, shape, (long long)node_params(g, n),
               (long long)macs);
    }
}

static const cli_command summary_command = {
    "summary", "--model NAME [--input CxHxW] [--classes N]",
    "Prints the layers of a model with output shapes, parameter counts and multiply-accumulates\n"
    "per image, and the totals as an evaluation runs the model (training-only auxiliary heads,\n"
    "GoogLeNet's, are counted apart)."};

int cmd_summary_options(int argc, char **argv, model_cfg *out, bool *layers_out, bool *done) {
    model_cfg m;
    model_defaults(&m);
    m.name = "convnet";
    int input[3] = {0, 0, 0};
    bool layers = true;
    cli_opt o[] = {
        {"model", OPT_STRING, &m.name, "NAME", "network (cnn models lists them)"},
        {"input", OPT_SHAPE, input, "CxHxW", "input shape (default: the model's)"},
        {"classes", OPT_INT, &m.classes, "N", "classes (default: the model's)", 2, 1000000},
        {"bn", OPT_FLAG, &m.bn, NULL, "convnet: batch norm after each convolution"},
        {"dropout", OPT_FLOAT, &m.dropout, "P", "dropout of the classifier (-1: the model's default)", -1, 0.99},
        {"stochastic-depth", OPT_FLOAT, &m.stochastic_depth, "P", CLI_STOCHASTIC_DEPTH_HELP, -1, 0.95},
        {"layers", OPT_FLAG, &layers, NULL, "print every layer (--no-layers: totals only)"},
    };
    int n = sizeof o / sizeof *o, npos;
    char *pos[1];
    int rc = cli_run_parse(&summary_command, argc, argv, o, n, pos, 0, &npos, done);
    if (rc || *done) return rc;
    m.in_c = input[0];
    m.in_h = input[1];
    m.in_w = input[2];
    *out = m;
    *layers_out = layers;
    return EXIT_OK;
}

int cmd_summary(int argc, char **argv) {
    model_cfg m;
    bool layers, done;
    int rc = cmd_summary_options(argc, argv, &m, &layers, &done);
    if (rc || done) return rc;
    graph *g;
    cnn_status st = model_build(&m, &g);
    if (st) return cli_fail(&summary_command, st);
    if (layers) print_layers(g);
    printf("%s, input %dx%dx%d, %d classes\n", m.name, m.in_c, m.in_h, m.in_w, m.classes);
    st = print_totals(g);
    graph_free(g);
    return st ? cli_fail(&summary_command, st) : EXIT_OK;
}

static const cli_command models_command = {"models", "", "Lists the models cnn knows with their default input."};

int cmd_models(int argc, char **argv) {
    int npos;
    bool done;
    char *pos[1];
    int rc = cli_run_parse(&models_command, argc, argv, NULL, 0, pos, 0, &npos, &done);
    if (rc || done) return rc;
    printf("models (name, default input, description):\n");
    model_list(stdout);
    return EXIT_OK;
}
