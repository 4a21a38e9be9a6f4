// Elementwise training kernels that Swift would otherwise run as scalar loops: the ReLU backward
// fused with the bias gradient, column sums, and the Adam update. Each has an AVX2 clone chosen at
// run time from the same path mk_sgemm uses; contraction into FMAs is off, so every clone computes
// the same bits as the plain scalar formula (checkpoints resume exactly on any path).
#include "modelkit_kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#pragma clang fp contract(off)

// Columns handled per chunk of the final double accumulation (its totals live on the stack).
enum { SUM_CHUNK = 512, SUM_BLOCK_ROWS = 64 };

#define DEFINE_MASK(NAME, ATTR)                                                                  \
    ATTR static void NAME(long count, const float *dy, const float *out, float *dst) {           \
        for (long i = 0; i < count; i++) dst[i] = out[i] > 0.0f ? dy[i] : 0.0f;                  \
    }

DEFINE_MASK(mask_portable, )
DEFINE_MASK(mask_avx2, __attribute__((target("avx2,fma"))))

static int use_avx2(void) { return mk_kernels_active() >= MK_KERNELS_AVX2; }

// Float sums of each 64-row block in [block0, block1) into block_sums[block * cols + j], masking
// into dst on the way when `out` is not NULL. Blocks are independent, so callers may split them
// across threads and still get the serial result after mk_sum_blocks.
#define DEFINE_BLOCK_SUMS(NAME, ATTR)                                                                    \
    ATTR static void NAME(long rows, long cols, long block0, long block1, const float *restrict dy,      \
                          const float *restrict out, float *restrict dst, float *restrict block_sums) {  \
        for (long block = block0; block < block1; block++) {                                             \
            float *sums = block_sums + block * cols;                                                     \
            for (long j = 0; j < cols; j++) sums[j] = 0.0f;                                              \
            const long r0 = block * SUM_BLOCK_ROWS;                                                      \
            const long r1 = rows - r0 < SUM_BLOCK_ROWS ? rows : r0 + SUM_BLOCK_ROWS;                     \
            for (long r = r0; r < r1; r++) {                                                             \
                const float *g = dy + r * cols;                                                          \
                if (out != NULL) {                                                                       \
                    const float *o = out + r * cols;                                                     \
                    float *d = dst + r * cols;                                                           \
                    for (long j = 0; j < cols; j++) {                                                    \
                        const float value = o[j] > 0.0f ? g[j] : 0.0f;                                   \
                        d[j] = value;                                                                    \
                        sums[j] += value;                                                                \
                    }                                                                                    \
                } else {                                                                                 \
                    for (long j = 0; j < cols; j++) sums[j] += g[j];                                     \
                }                                                                                        \
            }                                                                                            \
        }                                                                                                \
    }

DEFINE_BLOCK_SUMS(block_sums_portable, )
DEFINE_BLOCK_SUMS(block_sums_avx2, __attribute__((target("avx2,fma"))))

long mk_sum_block_count(long rows) { return (rows + SUM_BLOCK_ROWS - 1) / SUM_BLOCK_ROWS; }

void mk_relu_mask_block_sums(long rows, long cols, long block0, long block1, const float *dy, const float *out,
                             float *dst, float *block_sums) {
    if (use_avx2()) block_sums_avx2(rows, cols, block0, block1, dy, out, dst, block_sums);
    else block_sums_portable(rows, cols, block0, block1, dy, out, dst, block_sums);
}

void mk_sum_blocks(long blocks, long cols, const float *block_sums, float *column_sums) {
    for (long j0 = 0; j0 < cols; j0 += SUM_CHUNK) {
        const long width = cols - j0 < SUM_CHUNK ? cols - j0 : SUM_CHUNK;
        double total[SUM_CHUNK];
        for (long j = 0; j < width; j++) total[j] = 0.0;
        for (long block = 0; block < blocks; block++) {
            const float *sums = block_sums + block * cols + j0;
            for (long j = 0; j < width; j++) total[j] += (double)sums[j];
        }
        for (long j = 0; j < width; j++) column_sums[j0 + j] = (float)total[j];
    }
}

// The serial entry points run the block kernel over all blocks with a scratch buffer for the
// block sums, so serial and threaded callers share one loop and one summation order.
static void column_sums_serial(long rows, long cols, const float *dy, const float *out, float *dst,
                               float *column_sums) {
    const long blocks = mk_sum_block_count(rows);
    float stack_buffer[4096];
    float *block_sums = blocks * cols <= 4096 ? stack_buffer : malloc((size_t)(blocks * cols) * sizeof(float));
    if (block_sums == NULL) abort();  // A few hundred KB at most for real layers: nothing sane to do.
    mk_relu_mask_block_sums(rows, cols, 0, blocks, dy, out, dst, block_sums);
    if (column_sums != NULL) mk_sum_blocks(blocks, cols, block_sums, column_sums);
    if (block_sums != stack_buffer) free(block_sums);
}

void mk_relu_backward_column_sums(long rows, long cols, const float *dy, const float *out, float *dst,
                                  float *column_sums) {
    if (rows <= 0 || cols <= 0) {
        if (column_sums != NULL)
            for (long j = 0; j < cols; j++) column_sums[j] = 0.0f;
        return;
    }
    if (column_sums == NULL) {
        if (use_avx2()) mask_avx2(rows * cols, dy, out, dst);
        else mask_portable(rows * cols, dy, out, dst);
        return;
    }
    column_sums_serial(rows, cols, dy, out, dst, column_sums);
}

void mk_column_sums(long rows, long cols, const float *x, float *column_sums) {
    if (rows <= 0 || cols <= 0) {
        for (long j = 0; j < cols; j++) column_sums[j] = 0.0f;
        return;
    }
    column_sums_serial(rows, cols, x, NULL, NULL, column_sums);
}

#define DEFINE_ADAM(NAME, ATTR)                                                                           \
    ATTR static void NAME(long count, float *w, const float *g, float *m, float *v, float clip, float l2,  \
                          float decay, float b1, float b2, float alpha, float eps) {                       \
        for (long i = 0; i < count; i++) {                                                                 \
            float wi = w[i];                                                                               \
            if (decay != 0.0f) wi -= decay * wi;                                                           \
            const float grad = g[i] * clip + l2 * wi;                                                      \
            const float mi = m[i] + (grad - m[i]) * b1;                                                    \
            const float vi = v[i] + (grad * grad - v[i]) * b2;                                             \
            m[i] = mi;                                                                                     \
            v[i] = vi;                                                                                     \
            w[i] = wi - alpha * mi / (sqrtf(vi) + eps);                                                    \
        }                                                                                                  \
    }

DEFINE_ADAM(adam_portable, )
DEFINE_ADAM(adam_avx2, __attribute__((target("avx2,fma"))))

void mk_adam_update(long count, float *w, const float *g, float *m, float *v, float clip, float l2, float decay,
                    float one_minus_b1, float one_minus_b2, float alpha, float eps) {
    if (count <= 0) return;
    if (use_avx2()) adam_avx2(count, w, g, m, v, clip, l2, decay, one_minus_b1, one_minus_b2, alpha, eps);
    else adam_portable(count, w, g, m, v, clip, l2, decay, one_minus_b1, one_minus_b2, alpha, eps);
}
