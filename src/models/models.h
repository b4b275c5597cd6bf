/* models.h — the model zoo: a registry from names users know ("resnet20", "convnet") to builder
 * functions that produce a graph with its input and logits (losses are attached by training). */
#ifndef CNN_MODELS_H
#define CNN_MODELS_H
#include <stdio.h>
#include "core/graph.h"

typedef struct model_cfg {
    const char *name;
    int in_c, in_h, in_w;     /* input shape (0: the model's default) */
    int classes;              /* 0: the model's default */
    bool bn;                  /* convnet: batch norm after each convolution (seed 002, part 3.5) */
    float dropout;            /* dropout of convnet, plain/residual, VGG; <0: the model's default */
    float stochastic_depth;   /* residual families: drop probability of the last block's branch in
                                 training, rising linearly from 0 at the first block (0: off) */
    uint64_t seed;            /* parameter initialization */
} model_cfg;

typedef struct model_def {
    const char *name;
    const char *family;
    const char *about;
    int arg;                                          /* depth or variant, passed to build */
    int c, h, w, classes;                             /* defaults */
    int (*build)(graph *g, int x, const model_cfg *cfg, int arg);   /* returns the logits tensor */
} model_def;

const model_def *model_find(const char *name);
const model_def *model_at(int i);   /* NULL past the end */
void model_defaults(model_cfg *cfg);
/* Build a model: fills defaults in cfg, returns a graph with input and main output set. */
cnn_status model_build(model_cfg *cfg, graph **out);
void model_list(FILE *f);

/* families (src/models/<family>.c) */
extern const model_def convnet_models[];
extern const model_def plain_residual_models[];
extern const model_def resnet_cifar_models[];
extern const model_def resnet_models[];
extern const model_def vgg_models[];
#endif
