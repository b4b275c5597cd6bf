/* models.h — the model zoo: a registry from names users know ("resnet20", "convnet") to builder
 * functions that produce a graph with its input and logits (losses are attached by training). */
#ifndef CNN_MODELS_H
#define CNN_MODELS_H
#include <stdio.h>
#include "core/graph.h"

/* The ConvRNN that regulates a RegNet's stages (src/nn/convrnn.h). */
typedef enum model_regulator {
    REGULATOR_DEFAULT = 0,    /* the model's own: convlstm for regnets; the only value other models take */
    REGULATOR_NONE,           /* plain residual blocks: the ResNet of the same layout */
    REGULATOR_CONVLSTM,
    REGULATOR_CONVGRU,
} model_regulator;

typedef struct model_cfg {
    const char *name;
    int in_c, in_h, in_w;     /* input shape (0: the model's default) */
    int classes;              /* 0: the model's default */
    bool bn;                  /* convnet: batch norm after each convolution (seed 002, part 3.5) */
    float dropout;            /* dropout before the classifier; <0: the model's default */
    float dropout_aux;        /* googlenet: dropout of the auxiliary heads; <0: the model's default (0.7) */
    float stochastic_depth;   /* drop probability of the residual branches in training, rising linearly
                                 with depth: residual families from 0 at the first block to this at the
                                 last; efficientnet_b0 as torchvision's stochastic_depth_prob (block i of
                                 n drops with this·i/n); 0: off; <0: the model's default */
    uint64_t seed;            /* parameter initialization */
    model_regulator regulator;   /* regnet: --regulator */
    unsigned regulated_stages;   /* regnet: bit s-1 set when stage s has the regulator; 0: every stage */
} model_cfg;

typedef struct model_def {
    const char *name;
    const char *family;
    const char *about;
    int arg;                                          /* depth or variant, passed to build */
    int c, h, w, classes;                             /* defaults */
    int (*build)(graph *g, int x, const model_cfg *cfg, int arg);   /* returns the logits tensor */
    float stochastic_depth;                           /* default (0: off) */
    int stages;                                       /* stages a regulator can regulate (regnets); 0: none */
} model_def;

/* The rule for small images (CIFAR, MNIST): under 64 pixels on a side, the ImageNet families
 * (resnet18..., googlenet, efficientnet_b0, ghostnet) take a stride-1 stem and drop their early
 * max pool. */
bool model_small_input(const model_cfg *cfg);
/* cfg's value if set (>= 0), else the model's default */
float model_param(float value, float model_default);

const model_def *model_find(const char *name);
const model_def *model_at(int i);   /* NULL past the end */
void model_defaults(model_cfg *cfg);
/* Fill the model's defaults in cfg (input, classes, stochastic depth) and check the settings. */
cnn_status model_resolve(model_cfg *cfg);
/* Build a model: resolves cfg, returns a graph with input and main output set. */
cnn_status model_build(model_cfg *cfg, graph **out);
void model_list(FILE *f);

/* --regulator and --regulated-stages: names "convlstm|convgru|none", stage lists "1,2,3". */
const char *model_regulator_name(model_regulator r);
cnn_status model_parse_regulator(const char *s, model_regulator *r);
cnn_status model_parse_stages(const char *s, unsigned *mask);
void model_format_stages(unsigned mask, char *buf, size_t size);
/* Regnets: the default regulator (convlstm) and stages (all) spelled out, stages the model lacks
 * refused; other models: a regulator or stages refused. model_build does this. */
cnn_status model_resolve_regulator(model_cfg *cfg);

/* families (src/models/<family>.c) */
extern const model_def convnet_models[];
extern const model_def plain_residual_models[];
extern const model_def resnet_cifar_models[];
extern const model_def resnet_models[];
extern const model_def vgg_models[];
extern const model_def googlenet_models[];
extern const model_def efficientnet_models[];
extern const model_def ghostnet_models[];
extern const model_def regnet_models[];
#endif
