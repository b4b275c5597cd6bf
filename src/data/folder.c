/* folder.c — listing image folders as torchvision's ImageFolder does (find_classes, make_dataset
 * with os.walk(followlinks=True) and sorted()), and the data source over their files. */
#include "data/folder.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/error.h"

/* ---- a growable list of strings ---- */

typedef struct strlist {
    char **s;
    size_t n, cap;
} strlist;

static int strlist_add(strlist *l, const char *a, const char *b) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **s = realloc(l->s, cap * sizeof *s);
        if (!s) return 0;
        l->s = s, l->cap = cap;
    }
    char *v = b ? NULL : strdup(a);
    if (b && asprintf(&v, "%s/%s", a, b) < 0) v = NULL;
    if (!v) return 0;
    l->s[l->n++] = v;
    return 1;
}

static void strlist_free(strlist *l) {
    for (size_t i = 0; i < l->n; i++) free(l->s[i]);
    free(l->s);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void strlist_sort(strlist *l) {
    if (l->n > 1) qsort(l->s, l->n, sizeof *l->s, cmp_str);
}

static const char *const image_exts[] = {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"};

static int has_image_ext(const char *name) {
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof image_exts / sizeof *image_exts; i++) {
        size_t e = strlen(image_exts[i]);
        if (n >= e && !strcasecmp(name + n - e, image_exts[i])) return 1;
    }
    return 0;
}

/* Python's DirEntry.is_dir(): follows symlinks; any failure means "not a directory". */
static int entry_is_dir(const char *dir, const struct dirent *e) {
    if (e->d_type == DT_DIR) return 1;
    if (e->d_type != DT_LNK && e->d_type != DT_UNKNOWN) return 0;
    char *path;
    if (asprintf(&path, "%s/%s", dir, e->d_name) < 0) return 0;
    struct stat sb;
    int ok = stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
    free(path);
    return ok;
}

/* The directory names (or, with files, the image file names) in dir, unsorted. */
static cnn_status list_dir(const char *dir, strlist *dirs, strlist *files) {
    DIR *d = opendir(dir);
    if (!d) return cnn_fail(CNN_ERR_IO, "%s: cannot list: %s", dir, strerror(errno));
    struct dirent *e;
    int ok = 1;
    while (ok && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (entry_is_dir(dir, e)) ok = strlist_add(dirs, e->d_name, NULL);
        else if (files && has_image_ext(e->d_name)) ok = strlist_add(files, e->d_name, NULL);
    }
    closedir(d);
    return ok ? CNN_OK : cnn_fail(CNN_ERR_NOMEM, "%s: out of memory listing the directory", dir);
}

/* ---- the walk ---- */

#define WALK_MAX_DEPTH 256

/* Every directory under a class, as os.walk(followlinks=True) reaches it: a directory linked from
   two places is walked twice, as in Python; a link back to an ancestor (where Python would recurse
   until paths grow too long) is not followed. */
typedef struct walk {
    strlist roots;
    dev_t dev[WALK_MAX_DEPTH];
    ino_t ino[WALK_MAX_DEPTH];
    int depth;
} walk;

static cnn_status walk_dirs(walk *w, const char *root) {
    struct stat sb;
    if (stat(root, &sb) != 0 || w->depth == WALK_MAX_DEPTH) return CNN_OK;
    for (int i = 0; i < w->depth; i++)
        if (w->dev[i] == sb.st_dev && w->ino[i] == sb.st_ino) return CNN_OK;
    if (!strlist_add(&w->roots, root, NULL)) return cnn_fail(CNN_ERR_NOMEM, "out of memory walking %s", root);
    strlist sub = {0};
    cnn_status st = list_dir(root, &sub, NULL);
    if (st == CNN_ERR_IO && w->roots.n > 1) st = CNN_OK; /* os.walk skips what it cannot list below the top */
    w->dev[w->depth] = sb.st_dev;
    w->ino[w->depth++] = sb.st_ino;
    for (size_t i = 0; i < sub.n && !st; i++) {
        char *path;
        if (asprintf(&path, "%s/%s", root, sub.s[i]) < 0) st = cnn_fail(CNN_ERR_NOMEM, "out of memory");
        else {
            st = walk_dirs(w, path);
            free(path);
        }
    }
    w->depth--;
    strlist_free(&sub);
    return st;
}

static cnn_status folder_add(folder_set *f, const char *path, int label) {
    size_t len = strlen(path) + 1;
    if (f->pool_len + len > f->pool_cap) {
        size_t cap = f->pool_cap ? 2 * f->pool_cap : 4096;
        while (cap < f->pool_len + len) cap *= 2;
        char *p = realloc(f->pool, cap);
        if (!p) return cnn_fail(CNN_ERR_NOMEM, "out of memory for file names");
        f->pool = p, f->pool_cap = cap;
    }
    if ((f->n & (f->n - 1)) == 0) { /* capacity doubles at powers of two */
        size_t cap = f->n ? 2 * (size_t)f->n : 1;
        int64_t *o = realloc(f->offsets, cap * sizeof *o);
        if (o) f->offsets = o;
        int32_t *l = realloc(f->labels, cap * sizeof *l);
        if (l) f->labels = l;
        if (!o || !l) return cnn_fail(CNN_ERR_NOMEM, "out of memory for the file list");
    }
    memcpy(f->pool + f->pool_len, path, len);
    f->offsets[f->n] = (int64_t)f->pool_len;
    f->labels[f->n++] = label;
    f->pool_len += len;
    return CNN_OK;
}

/* make_dataset for one class: sorted(os.walk(class_dir)), files sorted within each root. */
static cnn_status scan_class(folder_set *f, const char *class_dir, int label) {
    walk *w = calloc(1, sizeof *w);
    if (!w) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    cnn_status st = walk_dirs(w, class_dir);
    strlist_sort(&w->roots);
    for (size_t r = 0; r < w->roots.n && !st; r++) {
        strlist dirs = {0}, files = {0};
        st = list_dir(w->roots.s[r], &dirs, &files);
        if (st == CNN_ERR_IO && r > 0) st = CNN_OK;
        strlist_sort(&files);
        for (size_t i = 0; i < files.n && !st; i++) {
            char *path;
            if (asprintf(&path, "%s/%s", w->roots.s[r], files.s[i]) < 0) st = cnn_fail(CNN_ERR_NOMEM, "out of memory");
            else {
                st = folder_add(f, path, label);
                free(path);
            }
        }
        strlist_free(&dirs);
        strlist_free(&files);
    }
    strlist_free(&w->roots);
    free(w);
    return st;
}

static cnn_status set_classes(folder_set *f, const char *dir, strlist *found, char *const *classes, int nclasses) {
    int n = classes ? nclasses : (int)found->n;
    f->class_names = calloc((size_t)(n ? n : 1), sizeof *f->class_names);
    if (!f->class_names) return cnn_fail(CNN_ERR_NOMEM, "out of memory for class names");
    f->num_classes = n;
    for (int i = 0; i < n; i++)
        if (!(f->class_names[i] = strdup(classes ? classes[i] : found->s[i])))
            return cnn_fail(CNN_ERR_NOMEM, "out of memory for class names");
    for (size_t i = 0; classes && i < found->n; i++) {
        int known = 0;
        for (int c = 0; c < n && !known; c++) known = !strcmp(found->s[i], classes[c]);
        if (!known)
            return cnn_fail(CNN_ERR_FORMAT, "%s/%s: '%s' is not one of the %d classes of the training split", dir,
                            found->s[i], found->s[i], n);
    }
    return CNN_OK;
}

static cnn_status scan_all(folder_set *f, const char *dir, const strlist *found, int require_files) {
    for (int c = 0; c < f->num_classes; c++) {
        int present = 0;
        for (size_t i = 0; i < found->n && !present; i++) present = !strcmp(found->s[i], f->class_names[c]);
        if (!present) continue;
        char *class_dir;
        if (asprintf(&class_dir, "%s/%s", dir, f->class_names[c]) < 0) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
        int64_t before = f->n;
        cnn_status st = scan_class(f, class_dir, c);
        free(class_dir);
        CNN_TRY(st);
        if (require_files && f->n == before)
            return cnn_fail(CNN_ERR_FORMAT, "%s/%s: no image file in class '%s' (files must end in .jpg, .jpeg, .png, "
                                            ".ppm, .bmp, .pgm, .tif, .tiff or .webp)", dir, f->class_names[c],
                            f->class_names[c]);
    }
    return CNN_OK;
}

cnn_status folder_scan(const char *dir, char *const *classes, int nclasses, folder_set *out) {
    memset(out, 0, sizeof *out);
    strlist found = {0};
    cnn_status st = list_dir(dir, &found, NULL);
    strlist_sort(&found);
    if (!st && !classes && found.n == 0)
        st = cnn_fail(CNN_ERR_FORMAT, "%s: no class directories (expected %s/<class>/<image files>)", dir, dir);
    if (!st && found.n > INT32_MAX / 2) st = cnn_fail(CNN_ERR_FORMAT, "%s: too many classes", dir);
    if (!st) st = set_classes(out, dir, &found, classes, nclasses);
    if (!st) st = scan_all(out, dir, &found, classes == NULL);
    if (!st && out->n == 0) st = cnn_fail(CNN_ERR_FORMAT, "%s: no image files", dir);
    strlist_free(&found);
    if (st) folder_free(out);
    return st;
}

void folder_free(folder_set *f) {
    for (int i = 0; f->class_names && i < f->num_classes; i++) free(f->class_names[i]);
    free(f->class_names);
    free(f->labels);
    free(f->offsets);
    free(f->pool);
    memset(f, 0, sizeof *f);
}

/* ---- reading files ---- */

cnn_status folder_read_file(const char *path, uint8_t **buf, size_t *cap, size_t *len) {
    *len = 0;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return cnn_fail(CNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    cnn_status st = CNN_OK;
    if (fstat(fd, &sb) != 0) st = cnn_fail(CNN_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode)) st = cnn_fail(CNN_ERR_IO, "%s: not a regular file", path);
    else if ((size_t)sb.st_size > FOLDER_MAX_FILE)
        st = cnn_fail(CNN_ERR_FORMAT, "%s: %lld bytes, more than the %zu accepted for an image", path,
                      (long long)sb.st_size, FOLDER_MAX_FILE);
    size_t want = st ? 0 : (size_t)sb.st_size;
    if (!st && want + 1 > *cap) {
        uint8_t *p = realloc(*buf, want + 1);
        if (!p) st = cnn_fail(CNN_ERR_NOMEM, "%s: out of memory for %zu bytes", path, want);
        else *buf = p, *cap = want + 1;
    }
    while (!st && *len < want) {
        ssize_t r = read(fd, *buf + *len, want - *len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) st = cnn_fail(CNN_ERR_IO, "%s: read error: %s", path, strerror(errno));
        else if (r == 0) break; /* shrank meanwhile: decode what is there */
        else *len += (size_t)r;
    }
    close(fd);
    return st;
}

/* ---- the source ---- */

typedef struct folder_source {
    data_source base;
    const folder_set *f;
    image_transform t;
} folder_source;

typedef struct folder_ws {
    transform_ws tws;
    uint8_t *file;
    size_t cap;
} folder_ws;

static cnn_status folder_load(const data_source *s, int64_t i, uint64_t key, void *ws, float *out) {
    const folder_source *fs = (const folder_source *)s;
    folder_ws *w = ws;
    const char *path = folder_path(fs->f, i);
    size_t len;
    CNN_TRY(folder_read_file(path, &w->file, &w->cap, &len));
    return transform_file(&w->tws, &fs->t, w->file, len, path, key, NULL, out, NULL);
}

static void *folder_ws_new(const data_source *s) { return calloc(1, sizeof(folder_ws)); }

static void folder_ws_free(void *ws) {
    folder_ws *w = ws;
    transform_ws_free(&w->tws);
    free(w->file);
    free(w);
}

static void folder_destroy(data_source *s) {
    free(s->reported);
    free(s);
}

cnn_status folder_source_create(const folder_set *f, const image_transform *t, data_source **out) {
    *out = NULL;
    CNN_TRY(transform_check(t));
    if (f->n <= 0) return cnn_fail(CNN_ERR_ARG, "image folder source: no files");
    folder_source *fs = calloc(1, sizeof *fs);
    unsigned char *reported = calloc((size_t)f->n, 1);
    if (!fs || !reported) {
        free(fs), free(reported);
        return cnn_fail(CNN_ERR_NOMEM, "image folder source: out of memory");
    }
    fs->base = (data_source){.count = f->n, .c = t->channels, .h = t->size, .w = t->size, .labels = f->labels,
                             .num_classes = f->num_classes, .class_names = f->class_names, .load = folder_load,
                             .ws_new = folder_ws_new, .ws_free = folder_ws_free, .destroy = folder_destroy,
                             .reported = reported};
    fs->f = f;
    fs->t = *t;
    *out = &fs->base;
    return CNN_OK;
}
