// gemmlowp's fixed-point requantization in C, shared by the int8 kernels that requantize in
// their own loops: the same rounding as ModelKitRuntime's QuantizedMultiplier, so results are
// bit-exact with the Swift reference kernels. Private to CModelKitKernels.
#ifndef MODELKIT_REQUANTIZE_H
#define MODELKIT_REQUANTIZE_H

#include <immintrin.h>
#include <stdint.h>

// x * 2^shift * multiplier / 2^31, rounded as gemmlowp does; saturating like the Swift code.
static inline int32_t requantize_one(int32_t x, int32_t multiplier, int32_t shift) {
    const int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    const int64_t shifted = (int64_t)x * ((int64_t)1 << left);
    const int32_t value = shifted > INT32_MAX ? INT32_MAX : (shifted < INT32_MIN ? INT32_MIN : (int32_t)shifted);
    int32_t high;
    if (value == INT32_MIN && multiplier == INT32_MIN) {
        high = INT32_MAX;
    } else {
        const int64_t product = (int64_t)value * multiplier;
        const int64_t nudge = product >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
        high = (int32_t)((product + nudge) / ((int64_t)1 << 31));
    }
    if (right == 0) return high;
    const int32_t mask = (int32_t)(((int64_t)1 << right) - 1);
    const int32_t remainder = high & mask;
    const int32_t threshold = (mask >> 1) + (high < 0 ? 1 : 0);
    return (high >> right) + (remainder > threshold ? 1 : 0);
}

// requantize_one on 8 lanes, for shifts <= 0 (no left shift; the caller checks). The rounded
// doubling high multiply of both sign cases is floor((v * m + 2^30) / 2^31) (the nudge and
// truncation toward zero combine so), and bits 31..62 of the 64-bit sum are the same whether
// shifted arithmetically or logically, so _mm256_srli_epi64 serves.
__attribute__((target("avx2")))
static inline __m256i requantize8(__m256i v, __m256i multiplier, __m256i right) {
    const __m256i round = _mm256_set1_epi64x((int64_t)1 << 30);
    const __m256i even = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(v, multiplier), round), 31);
    const __m256i odd = _mm256_srli_epi64(
        _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(v, 32), _mm256_srli_epi64(multiplier, 32)), round), 31);
    const __m256i high = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
    const __m256i one = _mm256_set1_epi32(1);
    const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, right), one);
    const __m256i remainder = _mm256_and_si256(high, mask);
    // threshold = mask/2 + (high < 0); cmpgt gives -1 for true.
    const __m256i threshold = _mm256_sub_epi32(_mm256_srai_epi32(mask, 1),
                                               _mm256_cmpgt_epi32(_mm256_setzero_si256(), high));
    return _mm256_sub_epi32(_mm256_srav_epi32(high, right), _mm256_cmpgt_epi32(remainder, threshold));
}

#endif
