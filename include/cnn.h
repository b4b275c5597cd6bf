/* cnn.h — the public C API of cnn.c: build, train, evaluate and run convolutional image classifiers.
 * Opaque handles, status codes, no globals; the message of the last failure is per thread. */
#ifndef CNN_H
#define CNN_H

#ifdef __cplusplus
extern "C" {
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

/* The message of the last failure on this thread ("" if none). */
const char *cnn_last_error(void);
const char *cnn_status_name(cnn_status s);
const char *cnn_version(void);

#ifdef __cplusplus
}
#endif
#endif
