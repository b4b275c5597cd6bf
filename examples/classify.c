/* classify.c — the cnn.c C API in a few lines: load a checkpoint, print the five most probable
 * classes of each image file, then classify pixels already in memory.
 *   cc classify.c $(pkg-config --cflags --libs cnn) -o classify
 *   ./classify runs/my-run/best.safetensors cat.jpg dog.png */
#include <stdio.h>
#include <stdlib.h>
#include <cnn.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s CHECKPOINT IMAGE...\n", argv[0]);
        return 2;
    }
    cnn_model *model;
    if (cnn_model_load(argv[1], &model) != CNN_OK) {
        fprintf(stderr, "%s\n", cnn_last_error());
        return 1;
    }
    cnn_prediction top[5];
    int k = cnn_model_classes(model) < 5 ? cnn_model_classes(model) : 5, failed = 0;
    for (int i = 2; i < argc; i++) {
        if (cnn_classify_file(model, argv[i], 5, top) != CNN_OK) {
            fprintf(stderr, "%s\n", cnn_last_error()); /* names the file and what is wrong with it */
            failed = 1;
            continue;
        }
        printf("%s\n", argv[i]);
        for (int j = 0; j < k; j++) printf("  %.6f %d %s\n", top[j].probability, top[j].index, top[j].name);
    }
    /* Pixels from elsewhere (a camera, a GUI): 8-bit RGB rows; here a 64x48 mid-gray image. */
    enum { W = 64, H = 48 };
    unsigned char *rgb = malloc(W * H * 3);
    for (int i = 0; rgb && i < W * H * 3; i++) rgb[i] = 128;
    if (rgb && cnn_classify_rgb(model, rgb, W, H, W * 3, 1, top) == CNN_OK)
        printf("gray image\n  %.6f %d %s\n", top[0].probability, top[0].index, top[0].name);
    else failed = 1;
    free(rgb);
    cnn_model_free(model);
    return failed;
}
