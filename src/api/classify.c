/* classify.c — the public inference API (cnn.h): a checkpoint compiled for one image at a time,
 * image files or RGB pixels through the checkpoint's evaluation transform, softmax, top-k. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cnn.h"
#include "core/error.h"
#include "core/plan.h"
#include "data/folder.h"
#include "data/transform.h"
#include "train/checkpoint.h"

struct cnn_model {
    ckpt_info info;
    graph *g;
    plan *p;                /* evaluation, batch 1 */
    image_transform t;
    transform_ws ws;
    uint8_t *file;          /* the last file read */
    size_t cap;
    double *prob;           /* classes */
};

cnn_status cnn_model_load(const char *checkpoint, cnn_model **out) {
    *out = NULL;
    if (!checkpoint) return cnn_fail(CNN_ERR_ARG, "cnn_model_load: no checkpoint path");
    cnn_model *m = calloc(1, sizeof *m);
    if (!m) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    cnn_status st = ckpt_load_model(checkpoint, &m->info, &m->g, 1, &m->p);
    if (st) {
        free(m);
        return st;
    }
    st = ckpt_eval_transform(&m->info, &m->t);
    int classes = graph_tensor(m->g, graph_main_output(m->g))->c;
    if (!st && !(m->prob = malloc(sizeof(double) * classes))) st = cnn_fail(CNN_ERR_NOMEM, "out of memory");
    if (st) {
        cnn_model_free(m);
        return cnn_fail_context(st, "%s", checkpoint);
    }
    *out = m;
    return CNN_OK;
}

void cnn_model_free(cnn_model *m) {
    if (!m) return;
    plan_free(m->p);
    graph_free(m->g);
    ckpt_info_free(&m->info);
    transform_ws_free(&m->ws);
    free(m->file);
    free(m->prob);
    free(m);
}

int cnn_model_classes(const cnn_model *m) { return graph_tensor(m->g, graph_main_output(m->g))->c; }

const char *cnn_model_class_name(const cnn_model *m, int index) {
    if (index < 0 || index >= cnn_model_classes(m)) return NULL;
    return m->info.class_names && index < m->info.num_classes ? m->info.class_names[index] : "";
}

void cnn_model_input(const cnn_model *m, int *channels, int *height, int *width) {
    if (channels) *channels = m->info.model.in_c;
    if (height) *height = m->info.model.in_h;
    if (width) *width = m->info.model.in_w;
}

/* Forward the prepared input; softmax in double; the k best, best first (ties: lower index). */
static cnn_status predict(cnn_model *m, int k, cnn_prediction *top) {
    plan_labels(m->p)[0] = 0;
    CNN_TRY(plan_forward(m->p, false, 0));
    const float *z = plan_logits(m->p);
    int n = cnn_model_classes(m);
    double zmax = z[0], sum = 0;
    for (int i = 1; i < n; i++) zmax = z[i] > zmax ? z[i] : zmax;
    for (int i = 0; i < n; i++) sum += m->prob[i] = exp((double)z[i] - zmax);
    if (k > n) k = n;
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int i = 0; i < n; i++) {
            int taken = 0;
            for (int t = 0; t < j && !taken; t++) taken = top[t].index == i;
            if (!taken && (best < 0 || m->prob[i] > m->prob[best])) best = i;
        }
        top[j] = (cnn_prediction){best, (float)(m->prob[best] / sum), cnn_model_class_name(m, best)};
    }
    return CNN_OK;
}

static cnn_status check_k(int k, const cnn_prediction *top) {
    if (k < 1 || !top) return cnn_fail(CNN_ERR_ARG, "classify: k = %d and %s, expected k >= 1 and an array of k", k,
                                       top ? "an array" : "no array");
    return CNN_OK;
}

cnn_status cnn_classify_file(cnn_model *m, const char *path, int k, cnn_prediction *top) {
    CNN_TRY(check_k(k, top));
    if (!path) return cnn_fail(CNN_ERR_ARG, "cnn_classify_file: no path");
    size_t len;
    CNN_TRY(folder_read_file(path, &m->file, &m->cap, &len));
    CNN_TRY(transform_file(&m->ws, &m->t, m->file, len, path, 0, NULL, plan_input(m->p), NULL));
    return predict(m, k, top);
}

cnn_status cnn_classify_rgb(cnn_model *m, const unsigned char *rgb, int width, int height, int stride, int k,
                            cnn_prediction *top) {
    CNN_TRY(check_k(k, top));
    if (!rgb || width < 1 || height < 1 || stride < 3 * width || (double)width * height > IMAGE_MAX_PIXELS)
        return cnn_fail(CNN_ERR_ARG, "cnn_classify_rgb: %dx%d pixels with stride %d (expected >= 3 * width, and pixels)",
                        width, height, stride);
    image_region r = {(uint8_t *)rgb, 0, 3, width, height, 0, 0, width, height, stride};
    if (m->t.channels == 1) { /* PIL's convert("L"), into a buffer of our own */
        size_t npx = (size_t)width * height;
        if (npx * 3 > m->cap) {
            uint8_t *p = realloc(m->file, npx * 3);
            if (!p) return cnn_fail(CNN_ERR_NOMEM, "out of memory for %dx%d pixels", width, height);
            m->file = p, m->cap = npx * 3;
        }
        for (int y = 0; y < height; y++) memcpy(m->file + (size_t)y * width * 3, rgb + (size_t)y * stride, (size_t)width * 3);
        image_rgb_to_l(m->file, npx);
        r = (image_region){m->file, 0, 1, width, height, 0, 0, width, height, width};
    }
    CNN_TRY(transform_pixels(&m->ws, &m->t, &r, 0, plan_input(m->p)));
    return predict(m, k, top);
}
