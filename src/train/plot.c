/* plot.c — line charts with cairo (see plot.h): panels with ticks at 1-2-5 steps (powers of ten on
 * a log axis), grid, axis labels, dashed or solid series with point markers, a legend below. */
#include "train/plot.h"
#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/fileio.h"

typedef struct series {
    const char *label;
    const double *x, *y;
    int n;
    const double *rgb;
    bool dashed;
} series;

typedef struct axes {
    double left, top, width, height;        /* the plotting area, in pixels */
    const char *title, *xlabel, *ylabel;
    bool logx, integer_x;
    double xmin, xmax, ymin, ymax;          /* data limits (log10 for a log axis) */
} axes;

/* matplotlib's "tab10" colours */
static const double palette[10][3] = {
    {0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173}, {0.839, 0.153, 0.157}, {0.580, 0.404, 0.741},
    {0.549, 0.337, 0.294}, {0.890, 0.467, 0.761}, {0.498, 0.498, 0.498}, {0.737, 0.741, 0.133}, {0.090, 0.745, 0.812},
};
static const double gray[3] = {0.35, 0.35, 0.35};

static double px(const axes *a, double x) {
    double v = a->logx ? log10(x) : x;
    return a->left + (v - a->xmin) / (a->xmax - a->xmin) * a->width;
}
static double py(const axes *a, double y) { return a->top + (a->ymax - y) / (a->ymax - a->ymin) * a->height; }

static void text(cairo_t *cr, double x, double y, const char *s, double ax, double ay) {
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    cairo_move_to(cr, x - e.width * ax - e.x_bearing, y - e.height * ay - e.y_bearing);
    cairo_show_text(cr, s);
}

/* Data limits over the finite points, widened by a margin; a flat series gets a unit span. */
static void axes_fit(axes *a, const series *s, int n) {
    double lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
    for (int k = 0; k < n; k++)
        for (int i = 0; i < s[k].n; i++) {
            double v[2] = {a->logx ? log10(s[k].x[i]) : s[k].x[i], s[k].y[i]};
            if (!isfinite(v[0]) || !isfinite(v[1])) continue;
            for (int d = 0; d < 2; d++) lo[d] = fmin(lo[d], v[d]), hi[d] = fmax(hi[d], v[d]);
        }
    for (int d = 0; d < 2; d++) {
        if (!isfinite(lo[d])) lo[d] = 0, hi[d] = 1;
        if (hi[d] - lo[d] < 1e-12) lo[d] -= 0.5, hi[d] += 0.5;
        double m = (hi[d] - lo[d]) * 0.05;
        lo[d] -= m, hi[d] += m;
    }
    a->xmin = lo[0], a->xmax = hi[0], a->ymin = lo[1], a->ymax = hi[1];
}

static double nice_step(double span, int target, bool integer) {
    double raw = span / target, mag = pow(10, floor(log10(raw))), f = raw / mag;
    double step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
    return integer && step < 1 ? 1 : step;
}

static void tick_label(char *buf, size_t n, double v, double step) {
    if (fabs(v) < step * 1e-6) v = 0;
    snprintf(buf, n, "%.*f", step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9), v);
}

static void axes_ticks(cairo_t *cr, const axes *a) {
    char buf[32];
    cairo_set_font_size(cr, 12);
    double bottom = a->top + a->height;
    /* x: 1-2-5 steps, or powers of ten on a log axis */
    double step = a->logx ? 1 : nice_step(a->xmax - a->xmin, 8, a->integer_x);
    for (double v = ceil(a->xmin / step) * step; v <= a->xmax + step * 1e-9; v += step) {
        double x = a->left + (v - a->xmin) / (a->xmax - a->xmin) * a->width;
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, x, a->top);
        cairo_line_to(cr, x, bottom);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        cairo_move_to(cr, x, bottom);
        cairo_line_to(cr, x, bottom + 5);
        cairo_stroke(cr);
        if (a->logx) snprintf(buf, sizeof buf, "1e%d", (int)lround(v));
        else tick_label(buf, sizeof buf, v, step);
        text(cr, x, bottom + 8, buf, 0.5, 0);
    }
    step = nice_step(a->ymax - a->ymin, 6, false);
    for (double v = ceil(a->ymin / step) * step; v <= a->ymax + step * 1e-9; v += step) {
        double y = py(a, v);
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, a->left, y);
        cairo_line_to(cr, a->left + a->width, y);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        cairo_move_to(cr, a->left - 5, y);
        cairo_line_to(cr, a->left, y);
        cairo_stroke(cr);
        tick_label(buf, sizeof buf, v, step);
        text(cr, a->left - 8, y, buf, 1, 0.5);
    }
}

static void axes_draw(cairo_t *cr, const axes *a) {
    cairo_set_line_width(cr, 1);
    axes_ticks(cr, a);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_rectangle(cr, a->left, a->top, a->width, a->height);
    cairo_stroke(cr);
    cairo_set_font_size(cr, 14);
    text(cr, a->left + a->width / 2, a->top + a->height + 30, a->xlabel, 0.5, 0);
    text(cr, a->left + a->width / 2, a->top - 10, a->title, 0.5, 1);
    cairo_save(cr);
    cairo_translate(cr, a->left - 58, a->top + a->height / 2);
    cairo_rotate(cr, -M_PI / 2);
    text(cr, 0, 0, a->ylabel, 0.5, 0.5);
    cairo_restore(cr);
}

static void set_style(cairo_t *cr, const series *s) {
    static const double dash[2] = {7, 4};
    cairo_set_source_rgb(cr, s->rgb[0], s->rgb[1], s->rgb[2]);
    cairo_set_line_width(cr, 2);
    cairo_set_dash(cr, dash, s->dashed ? 2 : 0, 0);
}

/* Lines between consecutive finite points, and a marker on each point when there are few. */
static void series_draw(cairo_t *cr, const axes *a, const series *s) {
    cairo_save(cr);
    cairo_rectangle(cr, a->left, a->top, a->width, a->height);
    cairo_clip(cr);
    set_style(cr, s);
    bool pen = false;
    for (int i = 0; i < s->n; i++) {
        if (!isfinite(s->y[i]) || (a->logx && !(s->x[i] > 0))) {
            pen = false;
            continue;
        }
        if (pen) cairo_line_to(cr, px(a, s->x[i]), py(a, s->y[i]));
        else cairo_move_to(cr, px(a, s->x[i]), py(a, s->y[i]));
        pen = true;
    }
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
    for (int i = 0; s->n <= 40 && i < s->n; i++) {
        if (!isfinite(s->y[i])) continue;
        cairo_arc(cr, px(a, s->x[i]), py(a, s->y[i]), 3.5, 0, 2 * M_PI);
        cairo_fill(cr);
    }
    cairo_restore(cr);
}

/* Legend entries left to right from (x, y), wrapping at `right`. */
static void legend(cairo_t *cr, double x, double y, double right, const series *entries, int n) {
    cairo_set_font_size(cr, 13);
    double x0 = x;
    for (int i = 0; i < n; i++) {
        cairo_text_extents_t e;
        cairo_text_extents(cr, entries[i].label, &e);
        double w = 40 + e.x_advance + 24;
        if (x + w > right && x > x0) x = x0, y += 22;
        set_style(cr, &entries[i]);
        cairo_move_to(cr, x, y);
        cairo_line_to(cr, x + 32, y);
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        cairo_set_source_rgb(cr, 0, 0, 0);
        text(cr, x + 40, y, entries[i].label, 0, 0.5);
        x += w;
    }
}

typedef struct png_buf {
    unsigned char *data;
    size_t len, cap;
} png_buf;

static cairo_status_t png_append(void *closure, const unsigned char *data, unsigned int length) {
    png_buf *b = closure;
    if (b->len + length > b->cap) {
        size_t cap = (b->len + length) * 2;
        unsigned char *d = realloc(b->data, cap);
        if (!d) return CAIRO_STATUS_NO_MEMORY;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, length);
    b->len += length;
    return CAIRO_STATUS_SUCCESS;
}

static cnn_status save_png(cairo_surface_t *surface, const char *path) {
    png_buf b = {0};
    cairo_status_t cs = cairo_surface_write_to_png_stream(surface, png_append, &b);
    cnn_status st = cs == CAIRO_STATUS_SUCCESS ? file_write_atomic(path, b.data, b.len)
                                               : cnn_fail(CNN_ERR_IO, "%s: cairo: %s", path, cairo_status_to_string(cs));
    free(b.data);
    return st;
}

static cairo_t *canvas(cairo_surface_t **surface, int w, int h, const char *title) {
    *surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    cairo_t *cr = cairo_create(*surface);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_font_size(cr, 17);
    if (title) text(cr, w / 2.0, 12, title, 0.5, 0);
    return cr;
}

static cnn_status finish(cairo_surface_t *surface, cairo_t *cr, const char *path) {
    cairo_status_t cs = cairo_status(cr);
    cairo_destroy(cr);
    cnn_status st = cs == CAIRO_STATUS_SUCCESS ? save_png(surface, path)
                                               : cnn_fail(CNN_ERR_IO, "%s: cairo: %s", path, cairo_status_to_string(cs));
    cairo_surface_destroy(surface);
    return st;
}

enum { C_EPOCH, C_TRAIN_LOSS, C_VAL_LOSS, C_TRAIN_TOP1, C_VAL_TOP1, NCURVE };

/* Per run: epochs, losses and accuracies (in %) as arrays, in one allocation. */
static double *curve_arrays(const plot_run *runs, int n) {
    int rows = 0;
    for (int r = 0; r < n; r++) rows += runs[r].h->n;
    double *a = malloc(sizeof(double) * NCURVE * (rows ? rows : 1)), *p = a;
    for (int r = 0; a && r < n; r++) {
        const history *h = runs[r].h;
        for (int i = 0; i < h->n; i++) {
            const epoch_row *e = &h->rows[i];
            double v[NCURVE] = {e->epoch, e->train_loss, e->val_loss, 100 * e->train_top1, 100 * e->val_top1};
            for (int c = 0; c < NCURVE; c++) p[c * h->n + i] = v[c];
        }
        p += NCURVE * h->n;
    }
    return a;
}

cnn_status plot_curves(const char *path, const plot_run *runs, int n, const char *title) {
    double *data = curve_arrays(runs, n);
    series *loss = calloc(2 * n + 2, sizeof *loss), *acc = calloc(2 * n, sizeof *acc), *keys = calloc(n + 2, sizeof *keys);
    if (!data || !loss || !acc || !keys) {
        free(data), free(loss), free(acc), free(keys);
        return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    }
    double *p = data;
    for (int r = 0; r < n; r++) {
        int m = runs[r].h->n;
        const double *rgb = palette[r % 10];
        loss[2 * r] = (series){NULL, p, p + C_TRAIN_LOSS * m, m, rgb, false};
        loss[2 * r + 1] = (series){NULL, p, p + C_VAL_LOSS * m, m, rgb, true};
        acc[2 * r] = (series){NULL, p, p + C_TRAIN_TOP1 * m, m, rgb, false};
        acc[2 * r + 1] = (series){NULL, p, p + C_VAL_TOP1 * m, m, rgb, true};
        keys[r] = (series){runs[r].name, NULL, NULL, 0, rgb, false};
        p += NCURVE * m;
    }
    keys[n] = (series){"training", NULL, NULL, 0, gray, false};
    keys[n + 1] = (series){"validation", NULL, NULL, 0, gray, true};
    int w = 1200, h = 540;
    cairo_surface_t *surface;
    cairo_t *cr = canvas(&surface, w, h, title);
    axes la = {80, 70, 480, 340, "loss", "epoch", "cross-entropy loss", false, true};
    axes aa = {w - 40 - 480, 70, 480, 340, "top-1 accuracy", "epoch", "top-1 accuracy (%)", false, true};
    axes_fit(&la, loss, 2 * n);
    axes_fit(&aa, acc, 2 * n);
    axes_draw(cr, &la);
    axes_draw(cr, &aa);
    for (int i = 0; i < 2 * n; i++) series_draw(cr, &la, &loss[i]), series_draw(cr, &aa, &acc[i]);
    legend(cr, 80, la.top + la.height + 72, w - 40, keys, n + 2);
    free(data), free(loss), free(acc), free(keys);
    return finish(surface, cr, path);
}

cnn_status plot_lr_range(const char *path, const double *lr, const double *loss, const double *smoothed, int n,
                         double suggested, const char *title) {
    series s[2] = {{"loss of each step", lr, loss, n, palette[7], false},
                   {"smoothed loss", lr, smoothed, n, palette[0], false}};
    int w = 900, h = 560;
    cairo_surface_t *surface;
    cairo_t *cr = canvas(&surface, w, h, title);
    axes a = {90, 70, w - 130, 360, "LR range test", "learning rate", "training loss", true, false};
    axes_fit(&a, s, 2);
    /* past divergence the loss explodes: cap the scale at 1.3× the starting loss, as lr finders do */
    double start = 0, lo = INFINITY;
    for (int i = 0; i < n && i < 5; i++) start += smoothed[i] / (n < 5 ? n : 5);
    for (int i = 0; i < n; i++) lo = fmin(lo, fmin(loss[i], smoothed[i]));
    if (n > 0 && isfinite(start) && isfinite(lo) && 1.3 * start > lo && a.ymax > 1.3 * start) {
        a.ymax = 1.3 * start;
        a.ymin = lo - 0.05 * (a.ymax - lo);
    }
    axes_draw(cr, &a);
    series_draw(cr, &a, &s[0]);
    series_draw(cr, &a, &s[1]);
    series keys[3] = {s[0], s[1], {"suggested lr", NULL, NULL, 0, palette[3], true}};
    int nkeys = 2;
    if (suggested > 0 && log10(suggested) >= a.xmin && log10(suggested) <= a.xmax) {
        set_style(cr, &keys[2]);
        cairo_move_to(cr, px(&a, suggested), a.top);
        cairo_line_to(cr, px(&a, suggested), a.top + a.height);
        cairo_stroke(cr);
        nkeys = 3;
    }
    legend(cr, 90, a.top + a.height + 72, w - 40, keys, nkeys);
    return finish(surface, cr, path);
}
