/* testutil.c — shared test helpers. */
#include "testutil.h"
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/rng.h"

int test_failures = 0;

int test_report(const char *name) {
    if (test_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, test_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

double rel_error(const float *got, const double *want, int64_t n) {
    double err = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = fabs(got[i] - want[i]);
        err = isnan(d) || d > err ? d : err; /* (fmax would drop the NaN) */
        scale = fmax(scale, fabs(want[i]));
    }
    return scale > 0 ? err / scale : err;
}

bool close_arrays(const char *what, const float *a, const float *b, int64_t n, double rtol, double atol) {
    int64_t worst = -1;
    double worst_excess = 0, max_abs = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        double lim = atol + rtol * fmax(fabs(a[i]), fabs(b[i]));
        if (d > max_abs) max_abs = d;
        if (!(d <= lim) && (worst < 0 || d - lim > worst_excess)) {
            worst = i;
            worst_excess = d - lim;
        }
    }
    if (worst >= 0) {
        test_failures++;
        fprintf(stderr, "FAIL %s: element %lld: %.7g vs %.7g (max abs diff %.3g)\n", what, (long long)worst,
                a[worst], b[worst], max_abs);
        return false;
    }
    return true;
}

void fill_uniform(float *v, int64_t n, uint64_t seed, float lo, float hi) {
    rng r = rng_stream(rng_key(seed, RNG_SPLIT, 77, 0));
    for (int64_t i = 0; i < n; i++) v[i] = lo + (hi - lo) * rng_uniform(&r);
}

bool temp_dir(char *buf, size_t size) {
    snprintf(buf, size, "/tmp/cnn-test-XXXXXX");
    if (mkdtemp(buf)) return true;
    perror("mkdtemp");
    return false;
}

void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[1024];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) remove_tree(path);
        else unlink(path);
    }
    closedir(d);
    rmdir(dir);
}
