/* folder.h — ImageNet-style image folders (root/<class>/.../<image>) listed exactly as
 * torchvision's ImageFolder lists them, and a data source that decodes and transforms their files
 * (transform.h) on the loader's workers. */
#ifndef CNN_DATA_FOLDER_H
#define CNN_DATA_FOLDER_H
#include <stdint.h>
#include "cnn.h"
#include "data/source.h"
#include "data/transform.h"

typedef struct folder_set {
    int num_classes;
    char **class_names;
    int64_t n;             /* files */
    int32_t *labels;
    int64_t *offsets;      /* path of file i: pool + offsets[i] */
    char *pool;
    size_t pool_len, pool_cap;
} folder_set;

/* ImageFolder(dir): the classes are the subdirectories of dir (symlinks followed), sorted by name
   (bytewise, which is Python's order for UTF-8 names); the files of a class are those found by
   walking its directory (following links, each directory once), directories in sorted order of
   their paths and files sorted by name, whose name ends, ignoring case, in .jpg .jpeg .png .ppm
   .bmp .pgm .tif .tiff or .webp. A class without such a file is an error, as in torchvision.
   With `classes` given (the training split's), every subdirectory of dir must be one of them and
   gets its index there; classes may then be missing or empty. */
cnn_status folder_scan(const char *dir, char *const *classes, int nclasses, folder_set *out);
static inline const char *folder_path(const folder_set *f, int64_t i) { return f->pool + f->offsets[i]; }
void folder_free(folder_set *f);

/* The files of f (borrowed: must outlive the source) through transform t (copied). */
cnn_status folder_source_create(const folder_set *f, const image_transform *t, data_source **out);

/* Reads a whole file into *buf (grown as needed; capped at FOLDER_MAX_FILE bytes). Opens without
   blocking and refuses anything but a regular file, so a named pipe cannot hang a worker. */
#define FOLDER_MAX_FILE ((size_t)1 << 30)
cnn_status folder_read_file(const char *path, uint8_t **buf, size_t *cap, size_t *len);
#endif
