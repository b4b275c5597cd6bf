/* test_arena.c — a plan's activation arena asks the kernel for 2 MB pages (src/core/plan.c, arena_alloc): the
 * mapping that holds it carries the MADV_HUGEPAGE advice (the "hg" flag of /proc/self/smaps's VmFlags), and
 * with CNN_THP=0 in the environment it does not. The advice, not the pages the kernel then gives: those
 * depend on the machine's free memory, the advice on cnn.c alone. Skipped (exit 77) where the kernel has no
 * transparent huge pages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/plan.h"
#include "ops/ops.h"
#include "testutil.h"

/* whether the mapping holding address a has the VmFlags flag "hg"; -1: no mapping holds it */
static int advised(const void *a) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[512];
    int inside = 0, found = -1;
    const unsigned long x = (unsigned long)a;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            inside = x >= lo && x < hi;
        } else if (inside && !strncmp(line, "VmFlags:", 8)) {
            found = strstr(line, " hg") != NULL;
            break;
        }
    }
    fclose(f);
    return found;
}

/* a plan of one 3×3 convolution over 16×64×64 maps at batch 16: 4 MB per activation; returns whether its
 * arena (where the input lies) is advised, -1 if unknown */
static int plan_advised(void) {
    graph *g = graph_new();
    const int x = graph_input(g, 16, 64, 64);
    conv_cfg cfg = {16, 3, 1, 1, 1, 1, false, INIT_KAIMING_NORMAL_OUT};
    graph_set_output(g, op_conv2d(g, x, "conv", &cfg), OUTPUT_MAIN, 1);
    plan *p = NULL;
    CHECK_OK(graph_ok(g) ? plan_create(g, 16, PLAN_EVAL, &p) : g->error);
    const int r = p ? advised(plan_input(p)) : -1;
    plan_free(p);
    graph_free(g);
    return r;
}

int main(void) {
    if (access("/sys/kernel/mm/transparent_hugepage/enabled", R_OK) != 0) {
        printf("test_arena: skipped: this kernel has no transparent huge pages\n");
        return 77;
    }
    setenv("CNN_THP", "0", 1); /* first: the advice stays on an address range after it is freed */
    const int off = plan_advised();
    unsetenv("CNN_THP");
    const int on = plan_advised();
    CHECK(on == 1, "the plan's arena is not advised to use huge pages (%d)", on);
    CHECK(off == 0, "with CNN_THP=0 the plan's arena is advised to use huge pages anyway (%d)", off);
    printf("arena: huge-page advice %s by default, %s with CNN_THP=0\n", on == 1 ? "given" : "missing",
           off == 0 ? "not given" : "given");
    return test_report("test_arena");
}
