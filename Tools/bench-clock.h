// The monotonic clock and the sort order the Tools/ C timing harnesses share.
#ifndef MODELKIT_TOOLS_BENCH_CLOCK_H
#define MODELKIT_TOOLS_BENCH_CLOCK_H

#include <time.h>

// Seconds on the monotonic clock.
static inline double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

// qsort order for doubles, smallest first (for medians and minimums).
static inline int ascending(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#endif
