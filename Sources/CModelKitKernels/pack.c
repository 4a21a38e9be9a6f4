// Weight panels for the float GEMMs, packed once per session: the rows of an N x K weight matrix
// (one row per output) become column panels of `width` outputs, panel-major, then depth, then
// the panel's outputs, zero-padded past n. A plain loop writes a panel with a `width`-float
// stride (or reads it that way): about 1.5 ns per weight, a third of the Fashion CNN's plan.
// The AVX2 path moves 8 x 8 blocks through registers (8 row loads, 8 contiguous stores):
// 0.2-0.4 ns per weight. Pure data movement, so every path gives the same bytes.
#include "modelkit_kernels.h"

#include <immintrin.h>

// One panel of `cols` rows (src, ldw apart) into `width`-float depth rows from depth 0 to k.
static void pack_panel_portable(long cols, long k, const float *src, long ldw, long width, float *panel) {
    for (long p = 0; p < k; p++) {
        float *out = panel + p * width;
        long j = 0;
        for (; j < cols; j++) out[j] = src[j * ldw + p];
        for (; j < width; j++) out[j] = 0.0f;
    }
}

// Transposes 8 vectors of 8 32-bit lanes (r[j] lane q -> row q lane j) and stores row q at
// out + q * width. Only lane moves, so the bits of any 32-bit value pass through unchanged.
__attribute__((target("avx2"))) static inline void transpose_store_8x8(const __m256 *r, float *out, long width) {
    __m256 t[8], u[8];
    for (int j = 0; j < 8; j += 2) {
        t[j] = _mm256_unpacklo_ps(r[j], r[j + 1]);
        t[j + 1] = _mm256_unpackhi_ps(r[j], r[j + 1]);
    }
    for (int j = 0; j < 8; j += 4) {
        u[j] = _mm256_shuffle_ps(t[j], t[j + 2], 0x44);
        u[j + 1] = _mm256_shuffle_ps(t[j], t[j + 2], 0xEE);
        u[j + 2] = _mm256_shuffle_ps(t[j + 1], t[j + 3], 0x44);
        u[j + 3] = _mm256_shuffle_ps(t[j + 1], t[j + 3], 0xEE);
    }
    for (int q = 0; q < 4; q++) {
        _mm256_storeu_ps(out + q * width, _mm256_permute2f128_ps(u[q], u[q + 4], 0x20));
        _mm256_storeu_ps(out + (q + 4) * width, _mm256_permute2f128_ps(u[q], u[q + 4], 0x31));
    }
}

// Depths p..p+7 of 8 rows (row j at rows[j]) into out[q * width + j] for q, j < 8.
__attribute__((target("avx2"))) static inline void transpose_8x8(const float *const *rows, long p, float *out, long width) {
    __m256 r[8];
    for (int j = 0; j < 8; j++) r[j] = _mm256_loadu_ps(rows[j] + p);
    transpose_store_8x8(r, out, width);
}

// Full 8-row groups go through registers; a partial group (the last panel's edge) and the depth
// tail past a multiple of 8 take the portable loop.
__attribute__((target("avx2"))) static void pack_panel_avx2(long cols, long k, const float *src, long ldw, long width,
                                                             float *panel) {
    const long groups = cols / 8, k8 = k & ~7L;
    for (long g = 0; g < groups; g++) {
        const float *rows[8];
        for (int j = 0; j < 8; j++) rows[j] = src + (g * 8 + j) * ldw;
        for (long p = 0; p < k8; p += 8) transpose_8x8(rows, p, panel + p * width + g * 8, width);
    }
    if (groups * 8 == width) {
        if (k8 < k) pack_panel_portable(cols, k - k8, src + k8, ldw, width, panel + k8 * width);
        return;
    }
    // Columns past the full groups, at every depth (and the full groups' depth tail).
    for (long p = 0; p < k; p++) {
        float *out = panel + p * width;
        long j = p < k8 ? groups * 8 : 0;
        for (; j < cols; j++) out[j] = src[j * ldw + p];
        for (; j < width; j++) out[j] = 0.0f;
    }
}

void mk_pack_weight_panels(int path, long n, long k, const float *w, long ldw, long width, float *packed) {
    const int avx2 = mk_kernels_clamp(path) >= MK_KERNELS_AVX2;
    for (long j0 = 0; j0 < n; j0 += width) {
        const long cols = n - j0 < width ? n - j0 : width;
        if (avx2) {
            pack_panel_avx2(cols, k, w + j0 * ldw, ldw, width, packed + j0 * k);
        } else {
            pack_panel_portable(cols, k, w + j0 * ldw, ldw, width, packed + j0 * k);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// int8 weights as int16 depth pairs (the packed int8 GEMM's B): each (output, pair) is one 32-bit
// unit of two int16, so the float panels' 8 x 8 transpose moves them once widened.

// One panel of `cols` rows from pair q0 on: unit (q, j) = (b[j][2q], b[j][2q + 1]), zero past k.
static void pack_pair_panel_portable(long cols, long k, long q0, long pairs, const int8_t *src, long ldb, long width,
                                     int16_t *panel) {
    for (long q = q0; q < pairs; q++) {
        int16_t *out = panel + q * width * 2;
        const long p = 2 * q;
        long j = 0;
        for (; j < cols; j++) {
            out[2 * j] = src[j * ldb + p];
            out[2 * j + 1] = p + 1 < k ? src[j * ldb + p + 1] : 0;
        }
        for (; j < width; j++) out[2 * j] = out[2 * j + 1] = 0;
    }
}

// Full 8-row groups, 8 pairs (16 int8) per row at a time, widened to int16 and transposed as
// 32-bit units; the edge rows and the depth tail take the portable loop.
__attribute__((target("avx2"))) static void pack_pair_panel_avx2(long cols, long k, long pairs, const int8_t *src, long ldb,
                                                                  long width, int16_t *panel) {
    const long groups = cols / 8, q8 = (k / 16) * 8;
    for (long g = 0; g < groups; g++) {
        for (long q = 0; q < q8; q += 8) {
            __m256 r[8];
            for (int j = 0; j < 8; j++) {
                const __m128i bytes = _mm_loadu_si128((const __m128i *)(src + (g * 8 + j) * ldb + 2 * q));
                r[j] = _mm256_castsi256_ps(_mm256_cvtepi8_epi16(bytes));
            }
            transpose_store_8x8(r, (float *)(panel + (q * width + g * 8) * 2), width);
        }
    }
    if (groups * 8 == width) {
        pack_pair_panel_portable(cols, k, q8, pairs, src, ldb, width, panel);
        return;
    }
    for (long q = 0; q < pairs; q++) {
        int16_t *out = panel + q * width * 2;
        const long p = 2 * q;
        long j = q < q8 ? groups * 8 : 0;
        for (; j < cols; j++) {
            out[2 * j] = src[j * ldb + p];
            out[2 * j + 1] = p + 1 < k ? src[j * ldb + p + 1] : 0;
        }
        for (; j < width; j++) out[2 * j] = out[2 * j + 1] = 0;
    }
}

void mk_pack_int8_pair_panels(int path, long n, long k, const int8_t *b, long ldb, long width, int16_t *packed) {
    const int avx2 = mk_kernels_clamp(path) >= MK_KERNELS_AVX2;
    const long pairs = (k + 1) / 2;
    for (long j0 = 0; j0 < n; j0 += width) {
        const long cols = n - j0 < width ? n - j0 : width;
        int16_t *panel = packed + j0 * 2 * pairs;
        if (avx2) {
            pack_pair_panel_avx2(cols, k, pairs, b + j0 * ldb, ldb, width, panel);
        } else {
            pack_pair_panel_portable(cols, k, 0, pairs, b + j0 * ldb, ldb, width, panel);
        }
    }
}
