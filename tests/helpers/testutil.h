/* testutil.h — small helpers shared by the C tests: checks that report and count failures. */
#ifndef CNN_TESTUTIL_H
#define CNN_TESTUTIL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "cnn.h"

extern int test_failures;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            test_failures++;                                                    \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);     \
            fprintf(stderr, __VA_ARGS__);                                       \
            fprintf(stderr, "\n");                                              \
        }                                                                       \
    } while (0)

#define CHECK_OK(expr)                                                          \
    do {                                                                        \
        cnn_status st_ = (expr);                                                \
        if (st_ != CNN_OK) {                                                    \
            test_failures++;                                                    \
            fprintf(stderr, "FAIL %s:%d: %s: %s\n", __FILE__, __LINE__, #expr,  \
                    cnn_last_error());                                          \
        }                                                                       \
    } while (0)

/* Summary line and exit status for main(). */
int test_report(const char *name);

/* max |got - want| / max |want| against a double-precision reference; NaN if any got is NaN (a read of
 * a poisoned buffer), so that a tolerance check fails on it. */
double rel_error(const float *got, const double *want, int64_t n);
/* |a-b| <= atol + rtol*max(|a|,|b|) for every element; prints the worst one. */
bool close_arrays(const char *what, const float *a, const float *b, int64_t n, double rtol, double atol);
void fill_uniform(float *v, int64_t n, uint64_t seed, float lo, float hi);
/* A fresh directory under /tmp (path written to buf) and its recursive removal. */
bool temp_dir(char *buf, size_t size);
void remove_tree(const char *dir);
#endif
