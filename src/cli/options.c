/* options.c — command-line parsing (see options.h). */
#include "cli/options.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

cli_opt *cli_find(cli_opt *opts, int nopts, const char *name) {
    for (int i = 0; i < nopts; i++)
        if (!strcmp(opts[i].name, name)) return &opts[i];
    return NULL;
}

static bool in_range(const cli_opt *o, double v) { return (o->min == 0 && o->max == 0) || (v >= o->min && v <= o->max); }

static int bad(char *err, size_t n, const cli_opt *o, const char *value, const char *expected) {
    snprintf(err, n, "--%s %s: expected %s", o->name, value, expected);
    return 2;
}

static int parse_number(const cli_opt *o, const char *v, char *err, size_t n) {
    char *end;
    char range[96] = "";
    if (!(o->min == 0 && o->max == 0)) snprintf(range, sizeof range, " in [%g, %g]", o->min, o->max);
    char expected[128];
    errno = 0;
    if (*v == ' ' || *v == '\t' || *v == '+') return bad(err, n, o, v, o->type == OPT_FLOAT ? "a number" : "an integer");
    if (o->type == OPT_FLOAT) {
        double d = strtod(v, &end);
        snprintf(expected, sizeof expected, "a number%s", range);
        if (!*v || *end || errno || !isfinite(d) || !in_range(o, d)) return bad(err, n, o, v, expected);
        *(float *)o->target = (float)d;
        return 0;
    }
    long long x = strtoll(v, &end, 10);
    snprintf(expected, sizeof expected, "an integer%s", range);
    if (!*v || *end || errno || !in_range(o, (double)x)) return bad(err, n, o, v, expected);
    if (o->type == OPT_INT) {
        if (x < -2147483647LL || x > 2147483647LL) return bad(err, n, o, v, expected);
        *(int *)o->target = (int)x;
    } else {
        *(int64_t *)o->target = x;
    }
    return 0;
}

static int parse_choice(const cli_opt *o, const char *v, char *err, size_t n) {
    size_t len = strlen(v);
    for (const char *c = o->choices; *c;) {
        const char *bar = strchr(c, '|');
        size_t clen = bar ? (size_t)(bar - c) : strlen(c);
        if (clen == len && !strncmp(c, v, len)) {
            *(const char **)o->target = v;
            return 0;
        }
        c += clen + (bar ? 1 : 0);
    }
    char expected[256];
    snprintf(expected, sizeof expected, "one of %s", o->choices);
    return bad(err, n, o, v, expected);
}

/* "CxHxW" or "HxW": 2 or 3 positive integers up to 65536 joined by 'x', nothing else. */
static int parse_shape(const cli_opt *o, const char *v, char *err, size_t n) {
    int d[3], k = 0;
    for (const char *p = v;; k++) {
        char *end;
        errno = 0;
        long x = *p >= '0' && *p <= '9' ? strtol(p, &end, 10) : 0; /* no sign, no blanks */
        if (x <= 0 || errno || x > 65536 || k == 3) return bad(err, n, o, v, "a shape like 3x32x32 or 32x32");
        d[k] = (int)x;
        if (*end == 0) break;
        if (*end != 'x' && *end != 'X') return bad(err, n, o, v, "a shape like 3x32x32 or 32x32");
        p = end + 1;
    }
    int *t = o->target;
    if (k == 2) memcpy(t, d, sizeof d);
    else if (k == 1) t[1] = d[0], t[2] = d[1];
    else return bad(err, n, o, v, "a shape like 3x32x32 or 32x32");
    return 0;
}

static int set_value(cli_opt *o, const char *v, char *err, size_t n) {
    o->seen = true;
    switch (o->type) {
    case OPT_FLAG: return 0;
    case OPT_INT:
    case OPT_INT64:
    case OPT_FLOAT: return parse_number(o, v, err, n);
    case OPT_STRING:
        if (!*v) return bad(err, n, o, "\"\"", "a non-empty value");
        *(const char **)o->target = v;
        return 0;
    case OPT_CHOICE: return parse_choice(o, v, err, n);
    case OPT_SHAPE: return parse_shape(o, v, err, n);
    }
    return 2;
}

int cli_parse(int argc, char **argv, cli_opt *opts, int nopts, char **positional, int max_pos, int *npos, char *err,
              size_t errlen) {
    *npos = 0;
    bool only_positional = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (only_positional || a[0] != '-' || a[1] == 0) {
            if (*npos == max_pos) {
                snprintf(err, errlen, "unexpected argument '%s'", a);
                return 2;
            }
            positional[(*npos)++] = argv[i];
            continue;
        }
        if (!strcmp(a, "--")) {
            only_positional = true;
            continue;
        }
        if (a[1] != '-') {
            snprintf(err, errlen, "unknown option '%s' (options are spelled --name)", a);
            return 2;
        }
        char name[64];
        const char *eq = strchr(a + 2, '=');
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (len >= sizeof name) len = sizeof name - 1;
        memcpy(name, a + 2, len);
        name[len] = 0;
        cli_opt *o = cli_find(opts, nopts, name);
        bool negated = false;
        if (!o && !strncmp(name, "no-", 3)) {
            cli_opt *flag = cli_find(opts, nopts, name + 3);
            if (flag && flag->type == OPT_FLAG) {
                o = flag;
                negated = true;
            }
        }
        if (!o) {
            snprintf(err, errlen, "unknown option '--%s'", name);
            return 2;
        }
        if (o->type == OPT_FLAG) {
            if (eq) {
                snprintf(err, errlen, "--%s takes no value", name);
                return 2;
            }
            *(bool *)o->target = !negated;
            o->seen = true;
            continue;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "--%s needs a value%s%s", name, o->meta ? " " : "", o->meta ? o->meta : "");
                return 2;
            }
            v = argv[++i];
        }
        if (set_value(o, v, err, errlen)) return 2;
    }
    return 0;
}

static void default_text(const cli_opt *o, char *buf, size_t n) {
    buf[0] = 0;
    switch (o->type) {
    case OPT_FLAG: if (*(bool *)o->target) snprintf(buf, n, "on"); break;
    case OPT_INT: snprintf(buf, n, "%d", *(int *)o->target); break;
    case OPT_INT64: snprintf(buf, n, "%lld", (long long)*(int64_t *)o->target); break;
    case OPT_FLOAT: snprintf(buf, n, "%g", *(float *)o->target); break;
    case OPT_STRING:
    case OPT_CHOICE:
        if (*(const char **)o->target) snprintf(buf, n, "%s", *(const char **)o->target);
        break;
    case OPT_SHAPE: {
        const int *d = o->target;
        if (d[0]) snprintf(buf, n, "%dx%dx%d", d[0], d[1], d[2]);
        break;
    }
    }
}

void cli_value_save(const cli_opt *o, cli_value *v) {
    memset(v, 0, sizeof *v);
    switch (o->type) {
    case OPT_FLAG: v->b = *(bool *)o->target; break;
    case OPT_INT: v->i = *(int *)o->target; break;
    case OPT_INT64: v->l = *(int64_t *)o->target; break;
    case OPT_FLOAT: v->f = *(float *)o->target; break;
    case OPT_STRING:
    case OPT_CHOICE: v->s = *(const char **)o->target; break;
    case OPT_SHAPE: memcpy(v->shape, o->target, sizeof v->shape); break;
    }
}

bool cli_value_same(const cli_opt *o, const cli_value *v) {
    cli_value now;
    cli_value_save(o, &now);
    switch (o->type) {
    case OPT_FLAG: return now.b == v->b;
    case OPT_INT: return now.i == v->i;
    case OPT_INT64: return now.l == v->l;
    case OPT_FLOAT: return now.f == v->f;
    case OPT_STRING:
    case OPT_CHOICE: return now.s == v->s || (now.s && v->s && !strcmp(now.s, v->s));
    case OPT_SHAPE: return !memcmp(now.shape, v->shape, sizeof now.shape);
    }
    return false;
}

void cli_value_text(const cli_opt *o, char *buf, size_t n) {
    default_text(o, buf, n);
    if (!buf[0]) snprintf(buf, n, o->type == OPT_FLAG ? "off" : "none");
}

void cli_help(FILE *f, const cli_opt *opts, int nopts) {
    for (int i = 0; i < nopts; i++) {
        const cli_opt *o = &opts[i];
        char left[160], def[128];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->type == OPT_FLAG ? "" : " ",
                 o->type == OPT_FLAG ? "" : o->meta ? o->meta : o->type == OPT_CHOICE ? o->choices : "X");
        default_text(o, def, sizeof def);
        if (strlen(left) > 26) fprintf(f, "  %s\n  %-26s %s", left, "", o->help); /* long choices: own line */
        else fprintf(f, "  %-26s %s", left, o->help);
        if (def[0]) fprintf(f, " [%s]", def);
        fputc('\n', f);
    }
}
