/* error.h — errors are values: a cnn_status plus a per-thread message that says what and where.
 * Library code never exits; it returns cnn_fail(...) up to the caller. */
#ifndef CNN_CORE_ERROR_H
#define CNN_CORE_ERROR_H
#include "cnn.h"

/* Record a message (printf-style) for this thread and return status. */
cnn_status cnn_fail(cnn_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the current message with more context ("loading model: " + old message); returns status. */
cnn_status cnn_fail_context(cnn_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cnn_clear_error(void);

#define CNN_TRY(expr)                         \
    do {                                      \
        cnn_status try_status_ = (expr);      \
        if (try_status_ != CNN_OK) return try_status_; \
    } while (0)

#endif
