/* optim.h — SGD (momentum, dampening, Nesterov, weight decay), Adam and AdamW with PyTorch's exact
 * update rules, applied to the parameter arena in the parameters' own (blocked) layouts:
 * the updates are elementwise, so layout does not matter and padded entries stay zero. */
#ifndef CNN_TRAIN_OPTIM_H
#define CNN_TRAIN_OPTIM_H
#include "core/graph.h"

typedef enum optim_kind { OPT_SGD, OPT_ADAM, OPT_ADAMW } optim_kind;

typedef struct optim_cfg {
    optim_kind kind;
    float lr;
    float momentum, dampening;  /* SGD */
    bool nesterov;
    float weight_decay;         /* SGD, Adam: L2 added to the gradient; AdamW: decoupled */
    float beta1, beta2, eps;    /* Adam, AdamW */
    bool no_decay_bn_bias;      /* exclude batch-norm and bias parameters from weight decay */
    float clip_norm;            /* > 0: clip the global gradient norm (clip_grad_norm_) */
} optim_cfg;

typedef struct optimizer {
    optim_cfg cfg;
    graph *g;
    float *state;               /* 0, 1 or 2 slots, each laid out as the gradient arena */
    int slots;
    int64_t step;               /* completed steps (Adam's t) */
} optimizer;

void optim_defaults(optim_cfg *c, optim_kind kind);
const char *optim_name(optim_kind k);
cnn_status optim_parse_kind(const char *s, optim_kind *k);
cnn_status optim_create(graph *g, const optim_cfg *cfg, optimizer **out);
void optim_free(optimizer *o);
/* Global L2 norm of all gradients. */
double optim_grad_norm(const optimizer *o);
/* One update with learning rate lr. Returns the gradient norm before clipping when clipping is
 * on, else 0. */
double optim_step(optimizer *o, float lr);
/* The same with the global gradient norm already known (optim_grad_norm): clipping uses it. */
void optim_step_norm(optimizer *o, float lr, double grad_norm);
/* State slot k of parameter pid (same layout as the parameter), NULL if none. */
float *optim_state(const optimizer *o, int slot, int pid);
/* Names of the state slots as PyTorch's optimizer state_dict ("momentum_buffer", "exp_avg", ...). */
const char *optim_slot_name(const optimizer *o, int slot);
#endif
