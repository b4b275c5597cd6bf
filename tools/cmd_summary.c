/* cmd_summary.c — `cnn summary` and `cnn models`: a model's layers (type, output shape,
 * parameters, multiply-accumulates per image) and totals; the list of models. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "core/error.h"
#include "models/models.h"

/* Trainable parameters a node brings: those it is the first to use (a recurrent cell's weights,
 * shared by every step, count once, at its first step). *shared: it reads some created earlier. */
static int64_t node_params(const graph *g, int nid, bool *shared) {
    const node *n = &g->nodes[nid];
    int64_t k = 0;
    *shared = false;
    for (int i = 0; i < n->nparams; i++) {
        const param *p = &g->params[n->params[i]];
        bool first = true;
        for (int j = 0; j < nid && first; j++)
            for (int q = 0; q < g->nodes[j].nparams; q++) first = first && g->nodes[j].params[q] != n->params[i];
        if (!first) *shared = true;
        else if (param_trainable(p)) k += param_numel(p);
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
    bool shared;
    for (int i = 0; i < g->nnodes; i++)
        if (need[i]) {
            params += node_params(g, i, &shared);
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
        char shape[48] = "", params[32];
        if (n->nout) {
            const tensor *t = graph_tensor(g, n->out[0]);
            snprintf(shape, sizeof shape, "%dx%dx%d", t->c, t->h, t->w);
        }
        bool shared;
        int64_t macs = n->op->macs ? n->op->macs(g, n) : 0, np = node_params(g, i, &shared);
        if (shared && !np) snprintf(params, sizeof params, "shared");
        else snprintf(params, sizeof params, "%lld%s", (long long)np, shared ? "+shared" : "");
        printf("%-44.44s %-16s %-16s %12s %14lld\n", n->name, n->op->type, shape, params, (long long)macs);
    }
}

/* What the regulator of a regnet costs: the same network with --regulator none side by side. */
static cnn_status print_regulator_cost(const model_cfg *m, int64_t params, int64_t macs) {
    if (m->regulator == REGULATOR_DEFAULT || m->regulator == REGULATOR_NONE) return CNN_OK;
    model_cfg plain = *m;
    plain.regulator = REGULATOR_NONE;
    graph *g;
    CNN_TRY(model_build(&plain, &g));
    int64_t p0 = graph_param_count(g, true), m0 = graph_macs(g);
    graph_free(g);
    char stages[64];
    model_format_stages(m->regulated_stages, stages, sizeof stages);
    printf("regulator %s on stages %s: +%lld parameters (+%.1f%%), +%lld multiply-accumulates (+%.1f%%) over the "
           "same network with --regulator none (%lld parameters, %lld multiply-accumulates)\n",
           model_regulator_name(m->regulator), stages, (long long)(params - p0), 100.0 * (params - p0) / p0,
           (long long)(macs - m0), 100.0 * (macs - m0) / m0, (long long)p0, (long long)m0);
    return CNN_OK;
}

static const cli_command summary_command = {
    "summary", "--model NAME [--input CxHxW] [--classes N]",
    "Prints the layers of a model with output shapes, parameter counts and multiply-accumulates\n"
    "per image, and the totals as an evaluation runs the model (training-only auxiliary heads,\n"
    "GoogLeNet's, are counted apart); for a regnet, what its regulator costs."};

int cmd_summary_options(int argc, char **argv, model_cfg *out, bool *layers_out, bool *done) {
    model_cfg m;
    model_defaults(&m);
    m.name = "convnet";
    int input[3] = {0, 0, 0};
    bool layers = true;
    const char *reg = NULL, *stages = NULL;
    cli_opt o[] = {
        {"model", OPT_STRING, &m.name, "NAME", "network (cnn models lists them)"},
        {"input", OPT_SHAPE, input, "CxHxW", "input shape (default: the model's)"},
        {"classes", OPT_INT, &m.classes, "N", "classes (default: the model's)", 2, 1000000},
        {"bn", OPT_FLAG, &m.bn, NULL, "convnet: batch norm after each convolution"},
        {"dropout", OPT_FLOAT, &m.dropout, "P", "dropout of the classifier (-1: the model's default)", -1, 0.99},
        {"stochastic-depth", OPT_FLOAT, &m.stochastic_depth, "P", CLI_STOCHASTIC_DEPTH_HELP, -1, 0.95},
        {CLI_OPT_REGULATOR(reg)},
        {CLI_OPT_REGULATED_STAGES(stages)},
        {"layers", OPT_FLAG, &layers, NULL, "print every layer (--no-layers: totals only)"},
    };
    int n = sizeof o / sizeof *o, npos;
    char *pos[1];
    int rc = cli_run_parse(&summary_command, argc, argv, o, n, pos, 0, &npos, done);
    if (rc || *done) return rc;
    cnn_status st = cli_regulator(reg, stages, &m);
    if (st) return cli_fail(&summary_command, st);
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
    if (m.regulator != REGULATOR_DEFAULT) {
        char list[64];
        model_format_stages(m.regulated_stages, list, sizeof list);
        printf("RegNet of Xu et al. 2021 (not RegNetX/Y): regulator %s", model_regulator_name(m.regulator));
        printf(m.regulator == REGULATOR_NONE ? " (the ResNet layout)\n" : ", stages %s\n", list);
    }
    st = print_totals(g);
    int64_t total = graph_param_count(g, true), macs = graph_macs(g);
    graph_free(g);
    if (!st) st = print_regulator_cost(&m, total, macs);
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
