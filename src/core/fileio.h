/* fileio.h — whole-file reads with a size cap, and atomic replacement of files (temporary file in the
 * same directory, fsync, rename, fsync of the directory), so a crash never leaves a half checkpoint. */
#ifndef CNN_CORE_FILEIO_H
#define CNN_CORE_FILEIO_H
#include <stddef.h>
#include <stdint.h>
#include "cnn.h"

/* Read the whole file. Files larger than max_bytes are refused before anything is allocated.
 * *data gets size + 1 bytes (a NUL after the contents, handy for text); the caller frees it. */
cnn_status file_read_all(const char *path, size_t max_bytes, uint8_t **data, size_t *size);

/* Atomic writer: bytes go to ".<base>.tmp.<pid>" beside path; commit flushes, fsyncs, renames it
 * over path and fsyncs the directory. Until commit succeeds, path keeps its old contents.
 * After a failed file_atomic_write the caller still ends with commit (which then fails) or abort. */
typedef struct file_atomic file_atomic;
cnn_status file_atomic_begin(const char *path, file_atomic **out);
cnn_status file_atomic_write(file_atomic *f, const void *data, size_t n);
/* Always frees f; on failure the temporary is removed and path is untouched. */
cnn_status file_atomic_commit(file_atomic *f);
/* Removes the temporary and frees f (NULL is fine). */
void file_atomic_abort(file_atomic *f);
/* The three steps at once, for data already in memory. */
cnn_status file_write_atomic(const char *path, const void *data, size_t n);

int file_exists(const char *path); /* exists and is not a directory (symlinks followed) */
int dir_exists(const char *path);  /* exists and is a directory (symlinks followed) */
/* mkdir -p: create path and its missing parents (mode 0777 less umask); fine if it already exists. */
cnn_status make_dirs(const char *path);

#endif
