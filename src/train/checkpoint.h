/* checkpoint.h — models on disk as safetensors: tensors named as PyTorch's state_dict keys in
 * PyTorch's layouts (so torchvision's load_state_dict(strict=True) takes them), plus a JSON
 * metadata string "cnn" describing the model, the data (class names, normalization) and, for
 * resuming, the training state; optimizer state as "optimizer.<param>.<slot>" tensors. */
#ifndef CNN_TRAIN_CHECKPOINT_H
#define CNN_TRAIN_CHECKPOINT_H
#include "core/graph.h"
#include "core/json.h"
#include "data/transform.h"
#include "models/models.h"
#include "train/optim.h"
#include "train/safetensors.h"

#define CKPT_MAX_CHANNELS 4

typedef struct ckpt_info {
    model_cfg model;            /* model.name points into name_buf */
    char name_buf[64];
    char dataset[32];
    int num_classes;
    char **class_names;         /* num_classes strings or NULL */
    int channels;
    float mean[CKPT_MAX_CHANNELS], std[CKPT_MAX_CHANNELS];
    int resize;                 /* image files: the evaluation's shorter side before the center crop
                                   (0: none recorded; the input side is used) */
    bool full_decode;           /* image files: no reduced-scale JPEG decoding */
    json_value *meta;           /* the whole "cnn" metadata object (NULL for foreign files) */
} ckpt_info;

void ckpt_info_free(ckpt_info *info);
/* Copy class names into info (owned). */
cnn_status ckpt_info_set_classes(ckpt_info *info, char *const *names, int n);

/* Save the model's parameters and buffers; with opt, its state too (for resume). train_json, if
 * not NULL, is a JSON object stored as the metadata's "train" member. Atomic. */
cnn_status ckpt_save(const char *path, const graph *g, const ckpt_info *info, const char *train_json,
                     const optimizer *opt);
/* The "cnn" metadata string (text[0..len), from a file named path) into info, every member checked
   (types, ranges, the sizes of names); on failure info is left empty. */
cnn_status ckpt_parse_meta(const char *path, const char *text, size_t len, ckpt_info *info);
/* Read a checkpoint and its metadata (info->meta stays NULL for files without "cnn" metadata). */
cnn_status ckpt_open(const char *path, st_file *f, ckpt_info *info);
/* Load every parameter and buffer of g from f, strictly: missing, unexpected (other than
 * "optimizer.*") or mis-shaped tensors are errors naming them. */
cnn_status ckpt_load_params(const st_file *f, const char *path, graph *g);
cnn_status ckpt_load_optim(const st_file *f, const char *path, optimizer *o);
/* Build the model a checkpoint describes and load its weights: the usual way to get a model for
 * evaluation or prediction. The graph is compiled once for `batch` (evaluation) in *plan_out
 * unless plan_out is NULL. */
struct plan;
/* The evaluation transform for image files a checkpoint implies: its input side and channels, its
   normalization, Resize(resize recorded, else the input side) + CenterCrop(side). */
cnn_status ckpt_eval_transform(const ckpt_info *info, image_transform *t);
cnn_status ckpt_load_model(const char *path, ckpt_info *info, graph **g_out, int batch, struct plan **plan_out);
#endif
