// Single-threaded GFLOP/s of the packed fp32 GEMM (mk_sgemm_packed_clamp, as the convolution
// steps call it) at ResNet-50's GEMM shapes, next to the CPU's FMA peak measured by a loop of
// independent FMAs; then ResNet-50's 3x3 convolutions whole, im2col + GEMM against Winograd
// F(2x2, 3x3) (effective GFLOP/s: the direct convolution's flops over the time).
// Build and run: Tools/sgemm-bench (compiles this with the kernel sources).
#include "modelkit_kernels.h"

#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <linux/perf_event.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bench-clock.h"

// This thread's CPU cycles (not wall time: the machine is shared, and cycles count only while the
// thread runs); -1 when perf events are unavailable.
static int cycle_counter = -1;

static void open_cycle_counter(void) {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.size = sizeof(attr);
    attr.type = PERF_TYPE_HARDWARE;
    attr.config = PERF_COUNT_HW_CPU_CYCLES;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    cycle_counter = (int)syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
}

static long long cycles(void) {
    long long value = -1;
    if (cycle_counter < 0 || read(cycle_counter, &value, sizeof(value)) != sizeof(value)) return -1;
    return value;
}

// 12 independent FMA chains (more than latency x throughput = 4 x 2), 16 flops each.
__attribute__((target("avx2,fma"))) static double fma_peak(void) {
    __m256 acc[12];
    for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_ps((float)i);
    const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    const long iterations = 50 * 1000 * 1000;
    const double start = now();
    for (long r = 0; r < iterations; r++) {
#pragma clang loop unroll(full)
        for (int i = 0; i < 12; i++) {
            acc[i] = _mm256_fmadd_ps(acc[i], x, y);
            __asm__ volatile("" : "+x"(acc[i]));
        }
    }
    const double seconds = now() - start;
    float sink = 0;
    for (int i = 0; i < 12; i++) sink += acc[i][0];
    if (sink == 12345.0f) printf(" ");
    return iterations * 12.0 * 16.0 / seconds / 1e9;
}

typedef struct {
    const char *name;
    long m, n, k;
} shape;

int main(int argc, char **argv) {
    const int path = argc > 1 ? mk_kernels_from_name(argv[1]) : mk_kernels_active();
    const double seconds_per_shape = argc > 2 ? atof(argv[2]) : 0.3;
    const char *only = argc > 3 ? argv[3] : NULL;  // Runs only the GEMM shapes whose name holds this.
    // "cold": each call multiplies by another copy of the packed weight, of copies filling 64 MB
    // (twice this machine's L3), so the weight comes from memory as in a batch-1 ResNet-50 run
    // (its 100 MB of weights pass through the cache once per inference).
    const int cold = argc > 4 && strcmp(argv[4], "cold") == 0;
    if (only != NULL && only[0] == '\0') only = NULL;
    open_cycle_counter();
    printf("path %s, FMA peak %.1f GFLOP/s (one core)\n", mk_kernels_path_name(mk_kernels_clamp(path)), fma_peak());
    const shape shapes[] = {
        {"L1-resident 96x64x256", 96, 64, 256},
        {"stem 7x7 im2col 12544x64x147", 12544, 64, 147},
        {"3x3 56x56 c64 (3136x64x576)", 3136, 64, 576},
        {"3x3 28x28 c128 (784x128x1152)", 784, 128, 1152},
        {"3x3 14x14 c256 (196x256x2304)", 196, 256, 2304},
        {"3x3 7x7 c512 (49x512x4608)", 49, 512, 4608},
        {"1x1 56x56 64->256", 3136, 256, 64},
        {"1x1 56x56 256->64", 3136, 64, 256},
        {"1x1 28x28 128->512", 784, 512, 128},
        {"1x1 28x28 512->128", 784, 128, 512},
        {"1x1 14x14 256->1024", 196, 1024, 256},
        {"1x1 14x14 1024->256", 196, 256, 1024},
        {"1x1 7x7 512->2048", 49, 2048, 512},
        {"1x1 7x7 2048->512", 49, 512, 2048},
        {"winograd 14x14 c256 (49x256x256)", 49, 256, 256},
        {"winograd 7x7 c512 (16x512x512)", 16, 512, 512},
    };
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        const shape sh = shapes[s];
        if (only != NULL && strstr(sh.name, only) == NULL) continue;
        float *a = aligned_alloc(64, (size_t)(sh.m * sh.k * 4 + 64) & ~63UL);
        float *b = aligned_alloc(64, (size_t)(sh.n * sh.k * 4 + 64) & ~63UL);
        float *c = aligned_alloc(64, (size_t)(sh.m * sh.n * 4 + 64) & ~63UL);
        float *bias = malloc((size_t)sh.n * 4);
        const long packed_count = mk_sgemm_packed_b_count(path, sh.n, sh.k);
        const long copies = cold ? 1 + (64L << 20) / (packed_count * 4) : 1;
        float *packed = aligned_alloc(64, (size_t)(copies * packed_count * 4 + 64) & ~63UL);
        for (long i = 0; i < sh.m * sh.k; i++) a[i] = (float)(i % 7) * 0.1f;
        for (long i = 0; i < sh.n * sh.k; i++) b[i] = (float)(i % 5) * 0.1f;
        for (long i = 0; i < sh.n; i++) bias[i] = 0.5f;
        for (long copy = 0; copy < copies; copy++) mk_sgemm_pack_b(path, sh.n, sh.k, b, sh.k, packed + copy * packed_count);
        double best = 1e9;
        long long best_cycles = -1;
        long runs = 0;
        const double until = now() + seconds_per_shape;
        while (now() < until || runs < 3) {
            const double start = now();
            const long long start_cycles = cycles();
            mk_sgemm_packed_clamp(path, sh.m, sh.n, sh.k, a, sh.k, packed + runs % copies * packed_count, c, sh.n, bias,
                                  1, 0.0f, INFINITY);
            const long long used = cycles() - start_cycles;
            const double t = now() - start;
            if (t < best) best = t;
            if (start_cycles >= 0 && (best_cycles < 0 || used < best_cycles)) best_cycles = used;
            runs++;
        }
        const double flops = 2.0 * sh.m * sh.n * sh.k;
        printf("%-32s %8.3f ms  %6.1f GFLOP/s", sh.name, best * 1e3, flops / best / 1e9);
        if (best_cycles > 0) printf("  %5.1f flop/cycle (peak 32)", flops / (double)best_cycles);
        printf("\n");
        free(a), free(b), free(c), free(bias), free(packed);
    }
    const long maps[][3] = {{56, 64}, {28, 128}, {14, 256}, {7, 512}};
    for (int s = 0; s < 4 && only == NULL; s++) {
        const long size = maps[s][0], c = maps[s][1], o = c, pixels = size * size;
        const mk_conv_geometry g = {size, size, c, 3, 3, 1, 1, 1, 1, 1, 1, size, size};
        float *x = calloc((size_t)(pixels * c), 4), *w = calloc((size_t)(o * 9 * c), 4);
        float *y = calloc((size_t)(pixels * o), 4), *columns = calloc((size_t)(pixels * 9 * c), 4);
        float *packed = aligned_alloc(64, (size_t)(mk_sgemm_packed_b_count(path, o, 9 * c) * 4 + 64) & ~63UL);
        for (long i = 0; i < pixels * c; i++) x[i] = (float)(i % 7) * 0.1f;
        for (long i = 0; i < o * 9 * c; i++) w[i] = (float)(i % 5) * 0.1f;
        mk_sgemm_pack_b(path, o, 9 * c, w, 9 * c, packed);
        double im2col = 1e9;
        for (long runs = 0; runs < 3; runs++) {
            const double start = now();
            mk_im2col_f32(&g, x, 0, pixels, 0.0f, columns);
            mk_sgemm_packed_clamp(path, pixels, o, 9 * c, columns, 9 * c, packed, y, o, NULL, 1, 0.0f, INFINITY);
            const double t = now() - start;
            if (t < im2col) im2col = t;
        }
        const double flops = 2.0 * pixels * o * 9 * c;
        printf("3x3 %2ldx%-2ld c%-3ld: im2col+gemm %7.3f ms %6.1f GFLOP/s\n", size, size, c, im2col * 1e3,
               flops / im2col / 1e9);
        // Each tile size over the whole image in one block: the input transform, the a*a GEMMs and
        // the output transform timed apart (best of the runs each).
        for (int tile = 2; tile <= 4; tile += 2) {
            const long a2 = (tile + 2) * (tile + 2), tiles = mk_winograd_tiles(tile, size, size);
            const long panel = mk_sgemm_packed_b_count(path, o, c);
            float *u = calloc((size_t)(a2 * o * c), 4), *v = calloc((size_t)(a2 * tiles * c), 4);
            float *m = calloc((size_t)(a2 * tiles * o), 4);
            float *packed_u = aligned_alloc(64, (size_t)(a2 * panel * 4 + 64) & ~63UL);
            mk_winograd_weights(tile, o, c, w, u);
            for (long e = 0; e < a2; e++) mk_sgemm_pack_b(path, o, c, u + e * o * c, c, packed_u + e * panel);
            double phase[3] = {1e9, 1e9, 1e9}, total = 1e9;
            const double until = now() + seconds_per_shape;
            for (long runs = 0; now() < until || runs < 3; runs++) {
                const double t0 = now();
                mk_winograd_input(path, tile, &g, x, 0, tiles, v, tiles * c);
                const double t1 = now();
                for (long e = 0; e < a2; e++)
                    mk_sgemm_packed_clamp(path, tiles, o, c, v + e * tiles * c, c, packed_u + e * panel,
                                          m + e * tiles * o, o, NULL, 0, 0.0f, 0.0f);
                const double t2 = now();
                mk_winograd_output(path, tile, &g, o, o, m, tiles * o, 0, tiles, 0, pixels, NULL, 1, 0.0f, INFINITY, y);
                const double t3 = now(), spans[3] = {t1 - t0, t2 - t1, t3 - t2};
                for (int i = 0; i < 3; i++)
                    if (spans[i] < phase[i]) phase[i] = spans[i];
                if (t3 - t0 < total) total = t3 - t0;
            }
            printf("    winograd F(%dx%d): %7.3f ms %6.1f effective GFLOP/s (input %.3f, gemms %.3f, output %.3f ms)\n",
                   tile, tile, total * 1e3, flops / total / 1e9, phase[0] * 1e3, phase[1] * 1e3, phase[2] * 1e3);
            free(u), free(v), free(m), free(packed_u);
        }
        free(x), free(w), free(y), free(columns), free(packed);
    }
    return 0;
}
