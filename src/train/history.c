/* history.c — per-epoch records in JSON and CSV (see history.h). */
#include "train/history.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/fileio.h"

#define NCOLS 8
static const char *const columns[NCOLS] = {"epoch",    "lr",       "train_loss", "train_top1",
                                           "val_loss", "val_top1", "val_top5",   "seconds"};

static double *row_field(epoch_row *r, int i) {
    double *f[NCOLS] = {NULL, &r->lr, &r->train_loss, &r->train_top1, &r->val_loss, &r->val_top1, &r->val_top5, &r->seconds};
    return f[i];
}

void history_free(history *h) {
    free(h->rows);
    memset(h, 0, sizeof *h);
}

cnn_status history_add(history *h, const epoch_row *r) {
    if (h->n == h->cap) {
        int cap = h->cap ? 2 * h->cap : 64;
        epoch_row *rows = realloc(h->rows, sizeof *rows * cap);
        if (!rows) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
        h->rows = rows;
        h->cap = cap;
    }
    h->rows[h->n++] = *r;
    return CNN_OK;
}

void history_truncate(history *h, int n) {
    if (n < h->n) h->n = n;
}

double epoch_row_metric(const epoch_row *r, metric_id m) {
    switch (m) {
    case METRIC_TRAIN_LOSS: return r->train_loss;
    case METRIC_TRAIN_TOP1: return r->train_top1;
    case METRIC_VAL_LOSS: return r->val_loss;
    case METRIC_VAL_TOP1: return r->val_top1;
    case METRIC_VAL_TOP5: return r->val_top5;
    }
    return NAN;
}

const epoch_row *history_best_top1(const history *h) {
    const epoch_row *best = NULL;
    for (int i = 0; i < h->n; i++)
        if (!best || h->rows[i].val_top1 > best->val_top1) best = &h->rows[i];
    return best;
}

/* ---------- JSON: {"columns": [...], "rows": [[...], ...]}, non-finite numbers as null ---------- */

void history_write_json(const history *h, json_writer *w) {
    json_begin_object(w);
    json_write_key(w, "columns");
    json_begin_array(w);
    for (int i = 0; i < NCOLS; i++) json_write_string(w, columns[i]);
    json_end_array(w);
    json_write_key(w, "rows");
    json_begin_array(w);
    for (int k = 0; k < h->n; k++) {
        epoch_row r = h->rows[k];
        json_begin_array(w);
        json_write_int(w, r.epoch);
        for (int i = 1; i < NCOLS; i++) {
            double v = *row_field(&r, i);
            if (isfinite(v)) json_write_number(w, v);
            else json_write_null(w);
        }
        json_end_array(w);
    }
    json_end_array(w);
    json_end_object(w);
}

cnn_status history_from_json(const json_value *v, history *h) {
    memset(h, 0, sizeof *h);
    const json_value *rows = v ? json_get(v, "rows") : NULL;
    if (!rows || rows->type != JSON_ARRAY) return cnn_fail(CNN_ERR_FORMAT, "training history: no \"rows\" array");
    for (size_t k = 0; k < rows->length; k++) {
        const json_value *a = &rows->items[k];
        if (a->type != JSON_ARRAY || a->length != NCOLS || a->items[0].type != JSON_NUMBER)
            return cnn_fail(CNN_ERR_FORMAT, "training history: row %zu is not %d numbers", k, NCOLS);
        epoch_row r = {.epoch = (int)a->items[0].number};
        for (int i = 1; i < NCOLS; i++) *row_field(&r, i) = a->items[i].type == JSON_NUMBER ? a->items[i].number : NAN;
        CNN_TRY(history_add(h, &r));
    }
    return CNN_OK;
}

/* ---------- CSV ---------- */

cnn_status history_write_csv(const history *h, const char *path) {
    size_t cap = 128 + (size_t)h->n * 160, len = 0;
    char *buf = malloc(cap);
    if (!buf) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    len += snprintf(buf, cap, "epoch,lr,train_loss,train_top1,val_loss,val_top1,val_top5,seconds\n");
    for (int k = 0; k < h->n; k++) {
        const epoch_row *r = &h->rows[k];
        len += snprintf(buf + len, cap - len, "%d,%.6g,%.6f,%.6f,%.6f,%.6f,%.6f,%.3f\n", r->epoch, r->lr, r->train_loss,
                        r->train_top1, r->val_loss, r->val_top1, r->val_top5, r->seconds);
    }
    cnn_status st = file_write_atomic(path, buf, len);
    free(buf);
    return st;
}

/* Split one CSV line in place into at most max fields (no quoting: cnn writes none). */
static int split_fields(char *line, char **fields, int max) {
    size_t len = strlen(line);
    if (len && line[len - 1] == '\r') line[len - 1] = 0;
    int n = 0;
    for (char *p = line; n < max;) {
        fields[n++] = p;
        char *comma = strchr(p, ',');
        if (!comma) break;
        *comma = 0;
        p = comma + 1;
    }
    return n;
}

static cnn_status parse_csv_row(const char *path, int line_no, char **fields, int nf, const int *col, history *h) {
    epoch_row r;
    memset(&r, 0, sizeof r);
    for (int i = 0; i < NCOLS; i++) {
        double v = NAN;
        if (col[i] >= 0 && col[i] < nf) {
            char *end;
            v = strtod(fields[col[i]], &end);
            if (end == fields[col[i]] || *end)
                return cnn_fail(CNN_ERR_FORMAT, "%s, line %d: column %s is not a number: '%s'", path, line_no,
                                columns[i], fields[col[i]]);
        }
        if (i == 0) r.epoch = isfinite(v) ? (int)v : h->n + 1;
        else *row_field(&r, i) = v;
    }
    return history_add(h, &r);
}

static cnn_status parse_csv(const char *path, char *text, history *h) {
    char *fields[32];
    int col[NCOLS], line_no = 1;
    char *save = NULL, *line = strtok_r(text, "\n", &save);
    if (!line) return cnn_fail(CNN_ERR_FORMAT, "%s: empty, expected a metrics.csv header", path);
    int nf = split_fields(line, fields, 32);
    for (int i = 0; i < NCOLS; i++) {
        col[i] = -1;
        for (int j = 0; j < nf; j++)
            if (!strcmp(fields[j], columns[i])) col[i] = j;
    }
    if (col[0] < 0 || col[2] < 0)
        return cnn_fail(CNN_ERR_FORMAT, "%s: not a metrics.csv (the header lacks epoch and train_loss)", path);
    while ((line = strtok_r(NULL, "\n", &save))) {
        line_no++;
        if (!*line || !strcmp(line, "\r")) continue;
        nf = split_fields(line, fields, 32);
        CNN_TRY(parse_csv_row(path, line_no, fields, nf, col, h));
    }
    return CNN_OK;
}

cnn_status history_read_csv(const char *path, history *h) {
    memset(h, 0, sizeof *h);
    uint8_t *data;
    size_t size;
    CNN_TRY(file_read_all(path, (size_t)64 << 20, &data, &size));
    cnn_status st = parse_csv(path, (char *)data, h);
    free(data);
    if (st) history_free(h);
    return st;
}
