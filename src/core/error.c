/* error.c — the per-thread last-error message behind cnn_last_error(). */
#include "core/error.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_msg[1024];

cnn_status cnn_fail(cnn_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_msg, sizeof last_msg, fmt, ap);
    va_end(ap);
    return status;
}

cnn_status cnn_fail_context(cnn_status status, const char *fmt, ...) {
    char prefix[512], old[sizeof last_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_msg, sizeof old);
    snprintf(last_msg, sizeof last_msg, "%s: %.*s", prefix, (int)(sizeof last_msg - strlen(prefix) - 3), old);
    return status;
}

void cnn_clear_error(void) { last_msg[0] = 0; }

const char *cnn_last_error(void) { return last_msg; }

const char *cnn_status_name(cnn_status s) {
    switch (s) {
    case CNN_OK: return "ok";
    case CNN_ERR_ARG: return "bad argument";
    case CNN_ERR_IO: return "i/o error";
    case CNN_ERR_FORMAT: return "bad file format";
    case CNN_ERR_SHAPE: return "shape mismatch";
    case CNN_ERR_NOMEM: return "out of memory";
    case CNN_ERR_BACKEND: return "oneDNN error";
    case CNN_ERR_DIVERGED: return "training diverged";
    case CNN_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

const char *cnn_version(void) { return "0.1.0"; }
