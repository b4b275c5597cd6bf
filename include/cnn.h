/* cnn.h — the public C API of cnn.c: train convolutional image classifiers and classify images with
 * them. Opaque handles, status codes, no globals; the message of the last failure is per thread. */
#ifndef CNN_H
#define CNN_H
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CNN_API __attribute__((visibility("default")))
#else
#define CNN_API
#endif

typedef enum cnn_status {
    CNN_OK = 0,
    CNN_ERR_ARG = 1,      /* bad argument or option value */
    CNN_ERR_IO = 2,       /* file missing, unreadable or unwritable */
    CNN_ERR_FORMAT = 3,   /* file present but corrupt, truncated or of the wrong kind */
    CNN_ERR_SHAPE = 4,    /* tensor or image shapes that do not fit together */
    CNN_ERR_NOMEM = 5,    /* an allocation failed */
    CNN_ERR_BACKEND = 6,  /* oneDNN refused a primitive */
    CNN_ERR_DIVERGED = 7, /* NaN or Inf in the loss or the gradients */
    CNN_ERR_INTERNAL = 8
} cnn_status;

/* The message of the last failure on this thread ("" if none): what failed and where. */
CNN_API const char *cnn_last_error(void);
CNN_API const char *cnn_status_name(cnn_status s);
CNN_API const char *cnn_version(void);

/* ---- classifying images with a trained model ---- */

/* A checkpoint loaded for inference: the network, its weights, class names, normalization and the
   evaluation transform it was trained with. Use one model from one thread at a time (load one per
   thread to classify in parallel). */
typedef struct cnn_model cnn_model;

typedef struct cnn_prediction {
    int index;               /* class index */
    float probability;       /* softmax probability */
    const char *name;        /* class name, owned by the model */
} cnn_prediction;

/* Loads a checkpoint (.safetensors) written by `cnn train` or cnn_train. */
CNN_API cnn_status cnn_model_load(const char *checkpoint, cnn_model **out);
CNN_API void cnn_model_free(cnn_model *m); /* NULL is fine */
CNN_API int cnn_model_classes(const cnn_model *m);
CNN_API const char *cnn_model_class_name(const cnn_model *m, int index); /* NULL out of range */
/* The input the network takes: 1 (gray) or 3 (RGB) channels of height x width pixels. */
CNN_API void cnn_model_input(const cnn_model *m, int *channels, int *height, int *width);

/* Classifies an image file (JPEG, PNG, BMP, PPM/PGM, TGA, GIF) as the model was evaluated in
   training: shorter side resized, center crop, normalization. Writes the k most probable classes,
   best first, to top[0 .. min(k, classes)). */
CNN_API cnn_status cnn_classify_file(cnn_model *m, const char *path, int k, cnn_prediction *top);
/* The same for 8-bit RGB pixels in memory: height rows of width * 3 bytes, stride bytes apart. */
CNN_API cnn_status cnn_classify_rgb(cnn_model *m, const unsigned char *rgb, int width, int height, int stride, int k,
                                    cnn_prediction *top);

/* ---- training ---- */

typedef struct cnn_train_config {
    const char *model;         /* "convnet" (the default), "resnet20", ... (`cnn models` lists them) */
    int batch_norm;            /* convnet: batch norm after each convolution (default 1) */
    float dropout;             /* convnet: dropout before the classifier (< 0: the model's default) */
    const char *dataset;       /* "fashion-mnist" (default), "mnist", "cifar10", "cifar100", or "folder":
                                  data_dir/train/<class>/<images> and data_dir/val/<class>/<images> */
    const char *data_dir;      /* NULL: the data set's Debian location (required for "folder") */
    const char *out_dir;       /* run directory (NULL: runs/<model>-<dataset>[-N]); never an existing run */
    int epochs, batch_size;    /* default 2 and 64 */
    const char *optimizer;     /* "sgd" (default), "adam", "adamw" */
    float lr;                  /* 0: 0.05 for sgd (the one-cycle peak), 1e-3 for adam and adamw */
    float momentum;            /* sgd (default 0.9) */
    float weight_decay;        /* < 0: the optimizer's default */
    const char *schedule;      /* "onecycle" (default), "constant", "step", "multistep", "exp", "cosine" */
    float label_smoothing;
    int image_size, resize;    /* folder: crop side (0: 224) and evaluation's shorter side (0: size*256/224) */
    int full_decode;           /* folder: never decode JPEGs at reduced scale (pixel-exact with PIL; slower) */
    int workers;               /* threads decoding images (0: 1 for in-memory sets, the cores up to 8 for folders) */
    int threads;               /* compute threads (0: OMP_NUM_THREADS or all cores) */
    unsigned long long seed;   /* initialization, order, augmentation, dropout (default 1) */
    FILE *log;                 /* progress and per-epoch lines (NULL: stdout) */
    const char *precision;     /* "f32" (NULL: f32) or "bf16": convolutions in bf16, weights f32 (needs AVX512-BF16) */
    int recompute;             /* less activation memory: batch norm outputs recomputed in the backward pass
                                  instead of kept (same gradients; default 0) */
} cnn_train_config;

typedef struct cnn_train_result {
    int epochs;
    double train_loss, train_top1;             /* last epoch */
    double val_loss, val_top1, val_top5;       /* last epoch */
    double best_val_top1;
    double seconds, images_per_second;
    char run_dir[512];                         /* holds best.safetensors and last.safetensors */
} cnn_train_result;

/* Fills c with the defaults above. */
CNN_API void cnn_train_defaults(cnn_train_config *c);
/* Trains as `cnn train` does; result may be NULL. */
CNN_API cnn_status cnn_train(const cnn_train_config *c, cnn_train_result *result);

#ifdef __cplusplus
}
#endif
#endif
