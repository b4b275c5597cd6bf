/* fileio.c — POSIX file helpers: capped whole-file reads, crash-safe replacement of a file, mkdir -p.
 * Every failure names the path and the system's reason. */
#define _POSIX_C_SOURCE 200809L
#include "core/fileio.h"
#include "core/error.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static cnn_status read_fd(const char *path, int fd, uint8_t *buf, size_t want, size_t *got) {
    *got = 0;
    while (*got < want) {
        ssize_t r = read(fd, buf + *got, want - *got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return cnn_fail(CNN_ERR_IO, "%s: read failed after %zu bytes: %s", path, *got, strerror(errno));
        if (r == 0) break;
        *got += (size_t)r;
    }
    return CNN_OK;
}

/* Regular files: size known up front. Pipes and devices: read in growing chunks up to the cap. */
static cnn_status read_opened(const char *path, int fd, size_t max_bytes, uint8_t **data, size_t *size) {
    struct stat sb;
    if (fstat(fd, &sb) != 0) return cnn_fail(CNN_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return cnn_fail(CNN_ERR_IO, "%s: is a directory, expected a file", path);
    size_t cap, got = 0;
    if (S_ISREG(sb.st_mode)) {
        if ((uint64_t)sb.st_size > (uint64_t)max_bytes)
            return cnn_fail(CNN_ERR_IO, "%s: file is %lld bytes, more than the limit of %zu", path,
                            (long long)sb.st_size, max_bytes);
        cap = (size_t)sb.st_size;
    } else {
        cap = max_bytes < 65536 ? max_bytes : 65536;
    }
    uint8_t *buf = malloc(cap + 1);
    if (!buf) return cnn_fail(CNN_ERR_NOMEM, "%s: cannot allocate %zu bytes to read it", path, cap + 1);
    for (;;) {
        size_t n;
        cnn_status st = read_fd(path, fd, buf + got, cap - got, &n);
        if (st != CNN_OK) { free(buf); return st; }
        got += n;
        if (got < cap || S_ISREG(sb.st_mode)) break; /* a regular file that grew meanwhile: take its old size */
        uint8_t probe;
        st = read_fd(path, fd, &probe, 1, &n);
        if (st != CNN_OK) { free(buf); return st; }
        if (n == 0) break; /* the end came exactly at the buffer's end */
        if (cap >= max_bytes) {
            free(buf);
            return cnn_fail(CNN_ERR_IO, "%s: more than the limit of %zu bytes", path, max_bytes);
        }
        size_t nc = cap > max_bytes / 2 ? max_bytes : cap * 2;
        uint8_t *nb = realloc(buf, nc + 1);
        if (!nb) { free(buf); return cnn_fail(CNN_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, nc + 1); }
        buf = nb;
        buf[got++] = probe;
        cap = nc;
    }
    buf[got] = 0;
    *data = buf;
    *size = got;
    return CNN_OK;
}

cnn_status file_read_all(const char *path, size_t max_bytes, uint8_t **data, size_t *size) {
    *data = NULL;
    *size = 0;
    int fd;
    do fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return cnn_fail(CNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    cnn_status st = read_opened(path, fd, max_bytes, data, size);
    close(fd);
    return st;
}

/* ---------------------------------------------------------------- atomic replacement */

struct file_atomic {
    char *path, *tmp, *dir;
    FILE *fp;
    cnn_status status; /* first write error, reported again by commit */
};

static void atomic_free(file_atomic *f) {
    if (f->fp) fclose(f->fp);
    free(f->path);
    free(f->tmp);
    free(f->dir);
    free(f);
}

/* Split path into its directory ("." if none) and base name. */
static cnn_status split_path(const char *path, char **dir, const char **base) {
    const char *slash = strrchr(path, '/');
    *base = slash ? slash + 1 : path;
    if (!**base) return cnn_fail(CNN_ERR_ARG, "%s: names a directory, expected a file path", path);
    if (!strcmp(*base, ".") || !strcmp(*base, ".."))
        return cnn_fail(CNN_ERR_ARG, "%s: names a directory, expected a file path", path);
    size_t dl = slash ? (size_t)(slash - path) : 1;
    *dir = malloc(dl + 2);
    if (!*dir) return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", path);
    if (!slash) strcpy(*dir, ".");
    else if (dl == 0) strcpy(*dir, "/");
    else { memcpy(*dir, path, dl); (*dir)[dl] = 0; }
    return CNN_OK;
}

cnn_status file_atomic_begin(const char *path, file_atomic **out) {
    const char *base;
    static _Atomic unsigned serial; /* a second writer of one target in this process gets another name */
    *out = NULL;
    file_atomic *f = calloc(1, sizeof *f);
    if (!f) return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", path);
    cnn_status st = split_path(path, &f->dir, &base);
    size_t tl = strlen(path) + 64;
    if (st == CNN_OK && (!(f->path = strdup(path)) || !(f->tmp = malloc(tl))))
        st = cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", path);
    int fd = -1;
    for (unsigned attempt = 0; st == CNN_OK && fd < 0; attempt++) {
        /* The base name is cut to 200 bytes so that the temporary's name stays under NAME_MAX. */
        int bl = (int)strlen(base) > 200 ? 200 : (int)strlen(base);
        snprintf(f->tmp, tl, "%.*s.%.*s.tmp.%ld", (int)(base - path), path, bl, base, (long)getpid());
        if (attempt) snprintf(f->tmp + strlen(f->tmp), tl - strlen(f->tmp), ".%u", ++serial);
        fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && !(errno == EEXIST && attempt < 100) && errno != EINTR)
            st = cnn_fail(CNN_ERR_IO, "%s: cannot create the temporary file %s: %s", path, f->tmp, strerror(errno));
    }
    if (st == CNN_OK && !(f->fp = fdopen(fd, "wb"))) {
        st = cnn_fail(CNN_ERR_IO, "%s: fdopen failed: %s", path, strerror(errno));
        close(fd);
        unlink(f->tmp);
    }
    if (st != CNN_OK) { atomic_free(f); return st; }
    *out = f;
    return CNN_OK;
}

cnn_status file_atomic_write(file_atomic *f, const void *data, size_t n) {
    if (f->status != CNN_OK) return f->status;
    if (n && fwrite(data, 1, n, f->fp) != n)
        f->status = cnn_fail(CNN_ERR_IO, "%s: write failed (temporary %s): %s", f->path, f->tmp, strerror(errno));
    return f->status;
}

void file_atomic_abort(file_atomic *f) {
    if (!f) return;
    if (f->fp) { fclose(f->fp); f->fp = NULL; }
    unlink(f->tmp);
    atomic_free(f);
}

static cnn_status fsync_dir(const char *path, const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return cnn_fail(CNN_ERR_IO, "%s: written, but cannot open its directory to sync it: %s", path, strerror(errno));
    int r = fsync(fd);
    int e = errno;
    close(fd);
    /* Some file systems cannot sync directories (EINVAL); the rename is done all the same. */
    if (r != 0 && e != EINVAL && e != EROFS)
        return cnn_fail(CNN_ERR_IO, "%s: written, but syncing its directory failed: %s", path, strerror(e));
    return CNN_OK;
}

cnn_status file_atomic_commit(file_atomic *f) {
    cnn_status st = f->status;
    if (st == CNN_OK && fflush(f->fp) != 0)
        st = cnn_fail(CNN_ERR_IO, "%s: write failed (temporary %s): %s", f->path, f->tmp, strerror(errno));
    if (st == CNN_OK && fsync(fileno(f->fp)) != 0)
        st = cnn_fail(CNN_ERR_IO, "%s: fsync failed: %s", f->path, strerror(errno));
    int closed = fclose(f->fp);
    f->fp = NULL;
    if (st == CNN_OK && closed != 0) st = cnn_fail(CNN_ERR_IO, "%s: close failed: %s", f->path, strerror(errno));
    if (st == CNN_OK && rename(f->tmp, f->path) != 0)
        st = cnn_fail(CNN_ERR_IO, "%s: cannot rename %s over it: %s", f->path, f->tmp, strerror(errno));
    if (st != CNN_OK) {
        file_atomic_abort(f);
        return st;
    }
    st = fsync_dir(f->path, f->dir);
    atomic_free(f);
    return st;
}

cnn_status file_write_atomic(const char *path, const void *data, size_t n) {
    file_atomic *f;
    CNN_TRY(file_atomic_begin(path, &f));
    if (file_atomic_write(f, data, n) != CNN_OK) {
        cnn_status st = f->status;
        file_atomic_abort(f);
        return st;
    }
    return file_atomic_commit(f);
}

/* ---------------------------------------------------------------- existence and directories */

int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && !S_ISDIR(sb.st_mode);
}

int dir_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static cnn_status mkdir_one(const char *whole, const char *part) {
    if (mkdir(part, 0777) == 0) return CNN_OK;
    int e = errno;
    if (dir_exists(part)) return CNN_OK; /* EEXIST, or created meanwhile by someone else */
    if (e == EEXIST) return cnn_fail(CNN_ERR_IO, "%s: cannot create directory: %s exists and is not a directory", whole, part);
    return cnn_fail(CNN_ERR_IO, "%s: cannot create directory %s: %s", whole, part, strerror(e));
}

cnn_status make_dirs(const char *path) {
    if (!*path) return cnn_fail(CNN_ERR_ARG, "make_dirs: empty path");
    if (dir_exists(path)) return CNN_OK;
    char *p = strdup(path);
    if (!p) return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory", path);
    cnn_status st = CNN_OK;
    for (char *s = p + 1; *s && st == CNN_OK; s++) {
        if (*s != '/' || s[-1] == '/') continue;
        *s = 0;
        st = mkdir_one(path, p);
        *s = '/';
    }
    if (st == CNN_OK) st = mkdir_one(path, p);
    free(p);
    return st;
}
