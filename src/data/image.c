/* image.c — decoding (see image.h). libjpeg-turbo is driven with PIL's settings (islow IDCT, fancy
 * upsampling) so that full-scale pixels are identical to PIL's; its errors come back by longjmp. */
#include "data/image.h"
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>
#include "core/error.h"
#include "data/stb.h"

static int is_jpeg(const uint8_t *d, size_t n) { return n >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff; }

/* Formats ImageFolder lists (by extension) that cnn.c cannot decode get a clear message. */
static const char *unsupported_kind(const uint8_t *d, size_t n) {
    if (n >= 4 && ((d[0] == 'I' && d[1] == 'I' && d[2] == 42 && d[3] == 0) || (d[0] == 'M' && d[1] == 'M' && d[2] == 0 && d[3] == 42)))
        return "TIFF";
    if (n >= 12 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "WEBP", 4)) return "WebP";
    return NULL;
}

/* ---- libjpeg-turbo ---- */

typedef struct jpeg_fail {
    struct jpeg_error_mgr pub;
    jmp_buf jmp;
    char msg[JMSG_LENGTH_MAX];
} jpeg_fail;

static void jpeg_on_error(j_common_ptr c) {
    jpeg_fail *f = (jpeg_fail *)c->err;
    c->err->format_message(c, f->msg);
    longjmp(f->jmp, 1);
}

/* Warnings about corrupt data are ignored, as PIL ignores them, except running out of data:
   PIL reports that as "image file is truncated". */
static void jpeg_on_message(j_common_ptr c, int level) {
    if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) {
        jpeg_fail *f = (jpeg_fail *)c->err;
        snprintf(f->msg, sizeof f->msg, "truncated JPEG data (the file ends before the image does)");
        longjmp(f->jmp, 1);
    }
}

typedef struct jpeg_job {
    const uint8_t *data;
    size_t n;
    int denom, channels;
    int rect[4];
    image_region *r;
    char msg[160];       /* an error found outside libjpeg */
} jpeg_job;

#define JPEG_CROP_MARGIN 16

static J_COLOR_SPACE jpeg_out_space(J_COLOR_SPACE in, int channels) {
    if (in == JCS_GRAYSCALE) return channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    if (in == JCS_CMYK || in == JCS_YCCK) return JCS_CMYK;
    return JCS_RGB;
}

static int region_reserve(image_region *r, size_t bytes) {
    if (bytes <= r->cap) return 1;
    uint8_t *p = realloc(r->px, bytes);
    if (!p) return 0;
    r->px = p;
    r->cap = bytes;
    return 1;
}

/* PIL's CMYK (stored Adobe-inverted, "CMYK;I") to RGB: nk = 255 - K; out = nk - C*nk/255, rounded
   as its MULDIV255. In place: 4 bytes in, 3 out per pixel. */
static void cmyk_inverted_to_rgb(uint8_t *px, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const uint8_t *in = px + 4 * i;
        int nk = in[3]; /* inverted K is 255 - K */
        uint8_t rgb[3];
        for (int c = 0; c < 3; c++) {
            int v = 255 - in[c], t = v * nk + 128;
            int out = nk - (((t >> 8) + t) >> 8);
            rgb[c] = (uint8_t)(out < 0 ? 0 : out);
        }
        memcpy(px + 3 * i, rgb, 3);
    }
}

void image_rgb_to_l(uint8_t *px, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = px + 3 * i;
        px[i] = (uint8_t)((p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16);
    }
}

/* The part of jpeg_run that libjpeg may leave by longjmp; returns 0, or 1 with job->msg set. */
static int jpeg_rows(struct jpeg_decompress_struct *ci, jpeg_job *job) {
    image_region *r = job->r;
    jpeg_read_header(ci, TRUE);
    ci->out_color_space = jpeg_out_space(ci->jpeg_color_space, job->channels);
    ci->scale_num = 1;
    ci->scale_denom = (unsigned)job->denom;
    jpeg_start_decompress(ci);
    int W = (int)ci->output_width, H = (int)ci->output_height;
    if (W != image_scaled((int)ci->image_width, job->denom) || H != image_scaled((int)ci->image_height, job->denom)) {
        snprintf(job->msg, sizeof job->msg, "libjpeg decoded %dx%d at 1/%d, expected %dx%d", W, H, job->denom,
                 image_scaled((int)ci->image_width, job->denom), image_scaled((int)ci->image_height, job->denom));
        return 1;
    }
    int x0 = job->rect[0] < 0 ? 0 : job->rect[0], y0 = job->rect[1] < 0 ? 0 : job->rect[1];
    int x1 = job->rect[2] > W ? W : job->rect[2], y1 = job->rect[3] > H ? H : job->rect[3];
    if (x0 >= x1 || y0 >= y1) {
        snprintf(job->msg, sizeof job->msg, "empty decoding rectangle [%d,%d)x[%d,%d) of %dx%d", x0, x1, y0, y1, W, H);
        return 1;
    }
    /* jpeg_crop_scanline widens the columns to iMCU boundaries and upsamples chroma as if the
       image ended there: decoding a margin of one iMCU (at most 16 pixels) more on each side keeps
       the columns asked for identical to a full decode's. */
    int cx0 = x0 - JPEG_CROP_MARGIN < 0 ? 0 : x0 - JPEG_CROP_MARGIN, cx1 = x1 + JPEG_CROP_MARGIN > W ? W : x1 + JPEG_CROP_MARGIN;
    JDIMENSION xoff = (JDIMENSION)cx0, width = (JDIMENSION)(cx1 - cx0);
    if (width < (JDIMENSION)W) jpeg_crop_scanline(ci, &xoff, &width);
    int comps = ci->output_components, stride = (int)width * comps;
    if ((double)width * (y1 - y0) > IMAGE_MAX_PIXELS) {
        snprintf(job->msg, sizeof job->msg, "%ux%d pixels to decode, more than the limit of %d", width, y1 - y0,
                 IMAGE_MAX_PIXELS);
        return 1;
    }
    if (!region_reserve(r, (size_t)stride * (y1 - y0))) {
        snprintf(job->msg, sizeof job->msg, "out of memory for %ux%d pixels", width, y1 - y0);
        return 1;
    }
    if (y0 > 0) jpeg_skip_scanlines(ci, (JDIMENSION)y0);
    for (int y = y0; y < y1;) {
        JSAMPROW row = r->px + (size_t)(y - y0) * stride;
        y += (int)jpeg_read_scanlines(ci, &row, 1);
    }
    *r = (image_region){r->px, r->cap, comps, W, H, (int)xoff, y0, (int)width, y1 - y0, stride};
    return 0;
}

static cnn_status jpeg_run(jpeg_job *job, const char *path) {
    struct jpeg_decompress_struct ci;
    jpeg_fail err;
    ci.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = jpeg_on_error;
    err.pub.emit_message = jpeg_on_message;
    job->msg[0] = 0;
    if (setjmp(err.jmp)) {
        jpeg_destroy_decompress(&ci);
        return cnn_fail(CNN_ERR_FORMAT, "%s: bad JPEG: %s", path, err.msg);
    }
    jpeg_create_decompress(&ci);
    jpeg_mem_src(&ci, job->data, (unsigned long)job->n);
    int failed = jpeg_rows(&ci, job);
    jpeg_destroy_decompress(&ci); /* also aborts a decode stopped before the last row */
    if (failed) return cnn_fail(CNN_ERR_FORMAT, "%s: %s", path, job->msg);
    image_region *r = job->r;
    size_t npx = (size_t)r->w * r->h;
    if (r->channels == 4) {
        cmyk_inverted_to_rgb(r->px, npx);
        r->channels = 3;
    }
    if (r->channels == 3 && job->channels == 1) image_rgb_to_l(r->px, npx);
    r->channels = job->channels;
    r->stride = r->w * r->channels;
    return CNN_OK;
}

static cnn_status jpeg_probe(const uint8_t *data, size_t n, const char *path, image_info *info) {
    struct jpeg_decompress_struct ci;
    jpeg_fail err;
    ci.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = jpeg_on_error;
    err.pub.emit_message = jpeg_on_message;
    if (setjmp(err.jmp)) {
        jpeg_destroy_decompress(&ci);
        return cnn_fail(CNN_ERR_FORMAT, "%s: bad JPEG: %s", path, err.msg);
    }
    jpeg_create_decompress(&ci);
    jpeg_mem_src(&ci, data, (unsigned long)n);
    jpeg_read_header(&ci, TRUE);
    info->w = (int)ci.image_width;
    info->h = (int)ci.image_height;
    info->jpeg = 1;
    int comps = ci.num_components;
    jpeg_destroy_decompress(&ci);
    if (comps != 1 && comps != 3 && comps != 4)
        return cnn_fail(CNN_ERR_FORMAT, "%s: JPEG with %d color components (1, 3 or 4 expected)", path, comps);
    return CNN_OK;
}

/* ---- binary PGM/PPM headers, read before stb_image sees them ---- */

/* stb_image 2022-09 parses PNM numbers without overflow checks (undefined behaviour, found by
   fuzz_image), converts 16-bit samples wrongly and accepts data cut short; PIL rescales samples
   whose maxval is not 255. So cnn.c takes binary P5/P6 files with maxval 255 only, checked here:
   numbers of at most 9 digits, the whole pixel data present. */
static int pnm_number(const uint8_t *d, size_t n, size_t *pos, long *value) {
    for (;;) { /* whitespace and comments */
        while (*pos < n && (d[*pos] == ' ' || (d[*pos] >= '\t' && d[*pos] <= '\r'))) (*pos)++;
        if (*pos < n && d[*pos] == '#')
            while (*pos < n && d[*pos] != '\n') (*pos)++;
        else break;
    }
    long v = 0;
    int digits = 0;
    while (*pos < n && d[*pos] >= '0' && d[*pos] <= '9' && digits < 10) v = 10 * v + (d[(*pos)++] - '0'), digits++;
    *value = v;
    return digits >= 1 && digits <= 9;
}

static cnn_status pnm_check(const uint8_t *d, size_t n, const char *path) {
    size_t pos = 2;
    long w, h, maxval;
    if (!pnm_number(d, n, &pos, &w) || !pnm_number(d, n, &pos, &h) || !pnm_number(d, n, &pos, &maxval) || pos >= n)
        return cnn_fail(CNN_ERR_FORMAT, "%s: bad PGM/PPM header (width, height and maxval expected)", path);
    if (maxval != 255)
        return cnn_fail(CNN_ERR_FORMAT, "%s: PGM/PPM with maxval %ld: only 8-bit files with maxval 255 are supported", path,
                        maxval);
    double need = (double)w * h * (d[1] == '6' ? 3 : 1);
    if (w < 1 || h < 1 || need > (double)(n - pos - 1))
        return cnn_fail(CNN_ERR_FORMAT, "%s: %ldx%ld PGM/PPM with %zu bytes of pixels: truncated", path, w, h, n - pos - 1);
    return CNN_OK;
}

/* ---- PNG chunk lengths, read before stb_image sees them ---- */

/* stb_image 2022-09 grows its buffer to an IDAT chunk's claimed length (up to 2 GB) before it checks
   that the bytes are there (found by fuzz_image): every chunk up to IEND must fit in the file. */
static cnn_status png_check(const uint8_t *d, size_t n, const char *path) {
    size_t pos = 8;
    while (pos + 12 <= n) {
        uint32_t len = (uint32_t)d[pos] << 24 | (uint32_t)d[pos + 1] << 16 | (uint32_t)d[pos + 2] << 8 | d[pos + 3];
        if (len > n - pos - 12) {
            char type[5] = {0}; /* chunk types are 4 ASCII letters; anything else is shown as '?' */
            for (int i = 0; i < 4; i++) {
                uint8_t c = d[pos + 4 + i];
                type[i] = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ? (char)c : '?';
            }
            return cnn_fail(CNN_ERR_FORMAT, "%s: PNG chunk '%s' of %u bytes at offset %zu, but only %zu bytes follow: "
                            "truncated or corrupt", path, type, len, pos, n - pos - 12);
        }
        if (!memcmp(d + pos + 4, "IEND", 4)) return CNN_OK;
        pos += 12 + (size_t)len;
    }
    return cnn_fail(CNN_ERR_FORMAT, "%s: PNG without its IEND chunk: truncated", path);
}

/* ---- everything else: stb_image ---- */

cnn_status image_probe(const uint8_t *data, size_t n, const char *path, image_info *info) {
    memset(info, 0, sizeof *info);
    if (n == 0) return cnn_fail(CNN_ERR_FORMAT, "%s: empty file", path);
    if (is_jpeg(data, n)) CNN_TRY(jpeg_probe(data, n, path, info));
    else {
        const char *kind = unsupported_kind(data, n);
        if (kind) return cnn_fail(CNN_ERR_FORMAT, "%s: %s images are not supported (JPEG, PNG, BMP, PPM/PGM, TGA and GIF are)", path, kind);
        if (n > INT32_MAX) return cnn_fail(CNN_ERR_FORMAT, "%s: file of %zu bytes is too large", path, n);
        if (n >= 2 && data[0] == 'P' && (data[1] == '5' || data[1] == '6')) CNN_TRY(pnm_check(data, n, path));
        if (n >= 8 && !memcmp(data, "\x89PNG\r\n\x1a\n", 8)) CNN_TRY(png_check(data, n, path));
        int comp;
        if (!stb_info(data, n, &info->w, &info->h, &comp))
            return cnn_fail(CNN_ERR_FORMAT, "%s: not an image cnn.c can read (JPEG, PNG, BMP, PPM/PGM, TGA, GIF): %s",
                            path, stb_failure_reason());
    }
    if (info->w <= 0 || info->h <= 0 || (double)info->w * info->h > IMAGE_MAX_PIXELS)
        return cnn_fail(CNN_ERR_FORMAT, "%s: image of %dx%d pixels (at most %d pixels are accepted)", path, info->w,
                        info->h, IMAGE_MAX_PIXELS);
    return CNN_OK;
}

/* stb's pixels (comp channels: gray, gray+alpha, RGB, RGBA) as PIL's convert("RGB") or
   convert("L") gives them: alpha dropped, gray replicated (RGB) or kept (L, which the formula
   would give back exactly). In place is fine: the output is never longer than the input. */
static void from_stb(const uint8_t *in, int comp, size_t npx, uint8_t *out, int channels) {
    for (size_t i = 0; i < npx; i++) {
        const uint8_t *p = in + i * comp;
        if (comp <= 2) {
            uint8_t v = p[0];
            if (channels == 1) out[i] = v;
            else out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = v;
        } else if (channels == 1) {
            out[i] = (uint8_t)((p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16);
        } else {
            uint8_t rgb[3] = {p[0], p[1], p[2]};
            memcpy(out + 3 * i, rgb, 3);
        }
    }
}

/* stb converts channels itself when asked, but its conversion of 16-bit PNM files overflows its
   buffer (Debian's 2022-09 stb_image, found by fuzz/fuzz_image.c): it is asked for none. */
static cnn_status stb_run(const uint8_t *data, size_t n, const char *path, int channels, image_region *r) {
    int w, h, comp;
    uint8_t *px = stb_load(data, n, &w, &h, &comp);
    if (!px) return cnn_fail(CNN_ERR_FORMAT, "%s: cannot decode: %s", path, stb_failure_reason());
    if (comp < 1 || comp > 4) {
        free(px);
        return cnn_fail(CNN_ERR_FORMAT, "%s: %d channels per pixel (1 to 4 expected)", path, comp);
    }
    size_t npx = (size_t)w * h;
    if (comp < channels) { /* gray to RGB grows: a buffer of our own */
        if (!region_reserve(r, npx * channels)) {
            free(px);
            return cnn_fail(CNN_ERR_NOMEM, "%s: out of memory for %dx%d pixels", path, w, h);
        }
        from_stb(px, comp, npx, r->px, channels);
        free(px);
    } else {
        from_stb(px, comp, npx, px, channels);
        free(r->px); /* stb allocates with malloc: the region adopts its buffer */
        r->px = px;
        r->cap = npx * comp;
    }
    *r = (image_region){r->px, r->cap, channels, w, h, 0, 0, w, h, w * channels};
    return CNN_OK;
}

cnn_status image_decode(const uint8_t *data, size_t n, const char *path, int denom, const int rect[4], int channels,
                        image_region *r) {
    if (channels != 1 && channels != 3) return cnn_fail(CNN_ERR_ARG, "%s: %d channels asked (1 or 3)", path, channels);
    if (denom != 1 && denom != 2 && denom != 4 && denom != 8)
        return cnn_fail(CNN_ERR_ARG, "%s: decoding scale 1/%d (1, 1/2, 1/4 or 1/8)", path, denom);
    image_info info;
    CNN_TRY(image_probe(data, n, path, &info));
    if (!info.jpeg) {
        if (denom != 1) return cnn_fail(CNN_ERR_ARG, "%s: only JPEG decodes at a reduced scale", path);
        return stb_run(data, n, path, channels, r);
    }
    jpeg_job job = {data, n, denom, channels, {0, 0, INT32_MAX, INT32_MAX}, r, ""};
    if (rect) memcpy(job.rect, rect, sizeof job.rect);
    return jpeg_run(&job, path);
}

void image_region_free(image_region *r) {
    free(r->px);
    memset(r, 0, sizeof *r);
}
