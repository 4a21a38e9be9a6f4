// The packed fp32 GEMM of two builds of the kernel sources in one process: calls alternate between
// them (A B, then B A) on the same data, so a shared, noisy machine slows both alike. Each build
// multiplies by its own packed weights; with `cold`, copies of them filling 64 MB (twice the L3)
// are cycled through, so the weight comes from memory as at batch 1 in a big model.
// Built and run by Tools/sgemm-ab.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench-clock.h"

typedef void (*gemm_function)(int, long, long, long, const float *, long, const float *, float *, long, const float *,
                              int, float, float);
typedef void (*pack_function)(int, long, long, const float *, long, float *);
typedef long (*count_function)(int, long, long);

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: sgemm-ab LIB_A LIB_B M N K CALLS [cold]\n");
        return 2;
    }
    const long m = atol(argv[3]), n = atol(argv[4]), k = atol(argv[5]);
    const int calls = atoi(argv[6]), cold = argc > 7 && strcmp(argv[7], "cold") == 0;
    if (m <= 0 || n <= 0 || k <= 0 || calls <= 0) {
        fprintf(stderr, "sgemm-ab: M, N, K and CALLS must be positive\n");
        return 2;
    }
    gemm_function gemm[2];
    pack_function pack[2];
    count_function count[2];
    for (int v = 0; v < 2; v++) {
        void *library = dlopen(argv[1 + v], RTLD_NOW | RTLD_LOCAL);
        if (library == NULL) {
            fprintf(stderr, "sgemm-ab: %s\n", dlerror());
            return 1;
        }
        gemm[v] = (gemm_function)dlsym(library, "mk_sgemm_packed_clamp");
        pack[v] = (pack_function)dlsym(library, "mk_sgemm_pack_b");
        count[v] = (count_function)dlsym(library, "mk_sgemm_packed_b_count");
        if (!gemm[v] || !pack[v] || !count[v]) {
            fprintf(stderr, "sgemm-ab: %s lacks the packed GEMM entry points\n", argv[1 + v]);
            return 1;
        }
    }
    const int path = 1;  // MK_KERNELS_AVX2 (clamped to what the CPU has by the kernels)
    float *a = malloc((size_t)(m * k) * 4), *b = malloc((size_t)(n * k) * 4), *bias = malloc((size_t)n * 4);
    float *c = malloc((size_t)(m * n) * 4);
    for (long i = 0; i < m * k; i++) a[i] = (float)(i % 7) * 0.1f;
    for (long i = 0; i < n * k; i++) b[i] = (float)(i % 5) * 0.1f;
    for (long i = 0; i < n; i++) bias[i] = 0.5f;
    float *packed[2];
    long size[2], copies[2];
    for (int v = 0; v < 2; v++) {
        size[v] = count[v](path, n, k);
        copies[v] = cold ? 1 + (64L << 20) / (size[v] * 4) : 1;
        packed[v] = aligned_alloc(64, ((size_t)(copies[v] * size[v]) * 4 + 63) & ~(size_t)63);
        for (long copy = 0; copy < copies[v]; copy++) pack[v](path, n, k, b, k, packed[v] + copy * size[v]);
    }
    double *seconds[2] = {malloc((size_t)calls * sizeof(double)), malloc((size_t)calls * sizeof(double))};
    for (int call = 0; call < calls; call++) {
        for (int turn = 0; turn < 2; turn++) {
            const int v = (call & 1) ? 1 - turn : turn;
            const double start = now();
            gemm[v](path, m, n, k, a, k, packed[v] + call % copies[v] * size[v], c, n, bias, 1, 0.0f, INFINITY);
            seconds[v][call] = now() - start;
        }
    }
    const double gflop = 2.0 * m * n * k / 1e9;
    printf("%ldx%ldx%ld%s:", m, n, k, cold ? " cold" : "");
    for (int v = 0; v < 2; v++) {
        qsort(seconds[v], (size_t)calls, sizeof(double), ascending);
        const double best = seconds[v][0], median = seconds[v][calls / 2];
        printf("  %s min %.3f ms (%.0f GFLOP/s) median %.3f ms", v ? "B" : "A", best * 1e3, gflop / best, median * 1e3);
    }
    printf("\n");
    return 0;
}
