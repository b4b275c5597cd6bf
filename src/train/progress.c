/* progress.c — progress display (see progress.h). */
#include "train/progress.h"
#include <time.h>
#include <unistd.h>

double progress_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

void progress_init(progress *p, FILE *out, int tty) {
    p->out = out;
    p->tty = tty < 0 ? isatty(fileno(out)) : tty;
}

void progress_begin(progress *p, int epoch, int epochs, int64_t steps) {
    p->epoch = epoch;
    p->epochs = epochs;
    p->steps = steps;
    p->t0 = progress_now();
    p->last_draw = 0;
    if (p->tty) fprintf(p->out, "Epoch %d/%d\n", epoch + 1, epochs);
}

static void clock_text(char *buf, size_t n, double s) {
    if (s >= 3600) snprintf(buf, n, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
    else if (s >= 60) snprintf(buf, n, "%d:%02d", (int)s / 60, (int)s % 60);
    else snprintf(buf, n, "%ds", (int)s);
}

void progress_step(progress *p, int64_t step, int64_t images, double loss, double top1) {
    if (!p->tty) return;
    double t = progress_now(), el = t - p->t0;
    if (step < p->steps && t - p->last_draw < 0.1) return;
    p->last_draw = t;
    int width = 24, done = p->steps ? (int)(width * step / p->steps) : width;
    char bar[32], eta[16], elapsed[16];
    for (int i = 0; i < width; i++) bar[i] = i < done ? '=' : i == done ? '>' : '.';
    bar[width] = 0;
    clock_text(elapsed, sizeof eta, el);
    clock_text(eta, sizeof eta, step ? el / step * (p->steps - step) : 0);
    fprintf(p->out, "\r%5lld/%lld [%s] %s ETA %s  %.0f img/s  loss %.4f  top1 %.2f%%\033[K", (long long)step,
            (long long)p->steps, bar, elapsed, eta, el > 0 ? images / el : 0, loss, 100 * top1);
    fflush(p->out);
}

void progress_end(progress *p, int64_t images, double loss, double top1, double val_loss, double val_top1,
                  double val_top5, float lr, const char *note) {
    double el = progress_now() - p->t0;
    char elapsed[16];
    clock_text(elapsed, sizeof elapsed, el);
    if (p->tty) fprintf(p->out, "\r%5lld/%lld [========================] %s", (long long)p->steps, (long long)p->steps, elapsed);
    else fprintf(p->out, "epoch %d/%d  %s", p->epoch + 1, p->epochs, elapsed);
    fprintf(p->out, "  %.0f img/s  loss %.4f  top1 %.2f%%", el > 0 ? images / el : 0, loss, 100 * top1);
    if (val_loss >= 0)
        fprintf(p->out, "  val_loss %.4f  val_top1 %.2f%%  val_top5 %.2f%%", val_loss, 100 * val_top1, 100 * val_top5);
    fprintf(p->out, "  lr %.3g%s%s%s\n", lr, note ? "  " : "", note ? note : "", p->tty ? "\033[K" : "");
    fflush(p->out);
}
