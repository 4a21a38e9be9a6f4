// int8 x int8 -> int32 GEMM for the quantized Conv2D (im2col) and Dense: C = A * B^T with A M x K
// and B N x K, both row-major int8 (B is the weight matrix, one row per output channel).
// Integer sums are exact, so every path gives identical results; zero points and requantization
// are applied by the caller.
#include "modelkit_kernels.h"

#include <immintrin.h>
#include <stdint.h>

// ---------------------------------------------------------------------------------------------
// Portable: one dot product per output element.
static void igemm_portable(long m, long n, long k, const int8_t *a, long lda, const int8_t *b, long ldb,
                           int32_t *c, long ldc) {
    for (long i = 0; i < m; i++) {
        const int8_t *row = a + i * lda;
        for (long j = 0; j < n; j++) {
            const int8_t *column = b + j * ldb;
            int32_t acc = 0;
            for (long p = 0; p < k; p++) acc += (int32_t)row[p] * (int32_t)column[p];
            c[i * ldc + j] = acc;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// AVX2: 2 rows of A x 4 rows of B per block. 16 int8 values are widened to int16 and multiplied
// pairwise with _mm256_madd_epi16 (|a*b| <= 2^14, so a pair sum cannot overflow its int32 lane);
// 8 int32 accumulators are reduced horizontally at the end, and the K tail is scalar.

__attribute__((target("avx2")))
static inline int32_t hsum_epi32(__m256i v) {
    __m128i sum = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, _MM_SHUFFLE(1, 0, 3, 2)));
    sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(sum);
}

__attribute__((target("avx2")))
static inline __m256i load16(const int8_t *p) {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p));
}

__attribute__((target("avx2")))
static void igemm_avx2(long m, long n, long k, const int8_t *a, long lda, const int8_t *b, long ldb,
                       int32_t *c, long ldc) {
    const long kv = k & ~15L;
    long i = 0;
    for (; i + 2 <= m; i += 2) {
        const int8_t *a0 = a + i * lda, *a1 = a0 + lda;
        long j = 0;
        for (; j + 4 <= n; j += 4) {
            const int8_t *b0 = b + j * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
            __m256i acc[2][4];
            for (int r = 0; r < 2; r++)
                for (int s = 0; s < 4; s++) acc[r][s] = _mm256_setzero_si256();
            for (long p = 0; p < kv; p += 16) {
                const __m256i x0 = load16(a0 + p), x1 = load16(a1 + p);
                const __m256i w[4] = {load16(b0 + p), load16(b1 + p), load16(b2 + p), load16(b3 + p)};
                for (int s = 0; s < 4; s++) {
                    acc[0][s] = _mm256_add_epi32(acc[0][s], _mm256_madd_epi16(x0, w[s]));
                    acc[1][s] = _mm256_add_epi32(acc[1][s], _mm256_madd_epi16(x1, w[s]));
                }
            }
            const int8_t *rows[2] = {a0, a1};
            const int8_t *columns[4] = {b0, b1, b2, b3};
            for (int r = 0; r < 2; r++) {
                for (int s = 0; s < 4; s++) {
                    int32_t total = hsum_epi32(acc[r][s]);
                    for (long p = kv; p < k; p++) total += (int32_t)rows[r][p] * (int32_t)columns[s][p];
                    c[(i + r) * ldc + j + s] = total;
                }
            }
        }
        if (j < n) igemm_portable(2, n - j, k, a0, lda, b + j * ldb, ldb, c + i * ldc + j, ldc);
    }
    for (; i < m; i++) {
        const int8_t *row = a + i * lda;
        for (long j = 0; j < n; j++) {
            const int8_t *column = b + j * ldb;
            __m256i acc = _mm256_setzero_si256();
            for (long p = 0; p < kv; p += 16) acc = _mm256_add_epi32(acc, _mm256_madd_epi16(load16(row + p), load16(column + p)));
            int32_t total = hsum_epi32(acc);
            for (long p = kv; p < k; p++) total += (int32_t)row[p] * (int32_t)column[p];
            c[i * ldc + j] = total;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Dispatch: AVX2 serves the AVX-512 path too until a VNNI kernel exists.

void mk_igemm_path(int path, long m, long n, long k, const int8_t *a, long lda, const int8_t *b, long ldb,
                   int32_t *c, long ldc) {
    if (m <= 0 || n <= 0) return;
    if (mk_kernels_clamp(path) >= MK_KERNELS_AVX2) {
        igemm_avx2(m, n, k, a, lda, b, ldb, c, ldc);
    } else {
        igemm_portable(m, n, k, a, lda, b, ldb, c, ldc);
    }
}

void mk_igemm(long m, long n, long k, const int8_t *a, long lda, const int8_t *b, long ldb, int32_t *c, long ldc) {
    mk_igemm_path(mk_kernels_active(), m, n, k, a, lda, b, ldb, c, ldc);
}
