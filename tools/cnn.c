/* cnn.c — the command-line front end (placeholder while the engine lands). */
#include <stdio.h>
#include "cnn.h"
int main(void) {
    printf("cnn %s\n", cnn_version());
    return 0;
}
