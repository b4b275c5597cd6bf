/* plain_residual.c — the plain and residual families of seed 001 (table 1): a 3×3 stem to 16
 * channels, stages of basic blocks whose widths go 16→32→64→128 (a block that doubles the width
 * halves the resolution), global average pooling, dropout 0.5 and a linear classifier; batch
 * norm throughout. plainN drops the shortcuts. The table's block counts are followed as printed
 * (its "18" column gives 7 blocks, i.e. 16 weighted layers). */
#include <string.h>
#include "models/models.h"
#include "nn/blocks.h"
#include "ops/ops.h"

/* blocks per row of table 1: 16→16, 16→32, 32→32, 32→64, 64→64, 64→128, 128→128 */
static const int table1[5][8] = {
    {8, 0, 1, 0, 1, 0, 1, 0},
    {14, 1, 1, 1, 1, 0, 1, 1},
    {18, 1, 1, 1, 1, 1, 1, 1},
    {34, 3, 1, 3, 1, 5, 1, 2},
    {50, 6, 1, 5, 1, 5, 1, 5},
};

static int build(graph *g, int x, const model_cfg *cfg, int depth, bool residual) {
    const int *row = NULL;
    for (int i = 0; i < 5; i++)
        if (table1[i][0] == depth) row = table1[i];
    x = nn_conv_bn(g, x, "conv1", "bn1", 16, 3, 1, true);
    static const int out_c[7] = {16, 32, 32, 64, 64, 128, 128};
    int b = 0, blocks = 0;
    for (int r = 0; r < 7; r++) blocks += row[r + 1];
    for (int r = 0; r < 7; r++)
        for (int k = 0; k < row[r + 1]; k++) {
            nn_res_opts o = {0, nn_drop_rate(cfg->stochastic_depth, b, blocks)};
            graph_pushf(g, "blocks.%d", b++);
            int stride = r % 2 == 1 ? 2 : 1; /* the rows that double the width */
            x = nn_basic_block(g, x, out_c[r], stride, residual, &o);
            graph_pop(g);
        }
    x = op_global_avgpool(g, x);
    x = op_dropout(g, x, cfg->dropout >= 0 ? cfg->dropout : 0.5f);
    return op_linear(g, x, "fc", cfg->classes, true);
}

static int build_plain(graph *g, int x, const model_cfg *cfg, int depth) { return build(g, x, cfg, depth, false); }
static int build_residual(graph *g, int x, const model_cfg *cfg, int depth) { return build(g, x, cfg, depth, true); }

#define PLAIN(n) {"plain" #n, "plain", "seed 001 plain network, table 1 column " #n, n, 3, 32, 32, 10, build_plain}
#define RESID(n) {"residual" #n, "residual", "seed 001 residual network, table 1 column " #n, n, 3, 32, 32, 10, build_residual}
const model_def plain_residual_models[] = {
    PLAIN(8), PLAIN(14), PLAIN(18), PLAIN(34), PLAIN(50),
    RESID(8), RESID(14), RESID(18), RESID(34), RESID(50),
    {NULL},
};
