// The requantization of the int8 GEMM stores (igemm_packed.c, conv_direct_s8.c) with its per-channel
// constants prepared once per 8 channels, so each 8 sums cost about half the instructions of
// requantize8 (requantize.h). Bit-exact with requantize_one for right shifts (shift <= 0) and
// Q31 multipliers (0 or in [2^30, 2^31)). Private to CModelKitKernels.
//
// requantize_one for a right shift r is RS(DHM(v, m), r): DHM(v, m) = floor((P + 2^30) / 2^31)
// with P = v * m (gemmlowp's rounding doubling high multiply, as in requantize8), and RS rounds
// h / 2^r half away from zero, floor((h + 2^(r-1) - [h < 0]) / 2^r) for r > 0. Nested floors of
// divisions by powers of two merge, so the whole is one rounding of the 64-bit product:
//     floor((P + 2^30 + [r > 0] * (2^(30+r) - 2^31 * [v < 0])) / 2^(31+r))
// ([h < 0] may become [v < 0]: they differ only when h = 0, where both give 0). AVX2 has no
// 64-bit arithmetic shift, so 2^63 is added first (the sum then fits in 64 unsigned bits) and a
// logical shift taken; that adds 2^(32-r) to the low 32 bits, removed with the zero point.
#ifndef MODELKIT_REQUANTIZE_LANES_H
#define MODELKIT_REQUANTIZE_LANES_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    __m256i multiplier;      // m per 32-bit lane (mul_epi32 reads the even ones)
    __m256i multiplier_odd;  // the odd lanes' m in the low halves of the 64-bit lanes
    __m256i add_even[2], add_odd[2];  // the 64-bit addend for v >= 0 ([0]) and v < 0 ([1])
    __m256i shift_even, shift_odd;    // 31 + r per 64-bit lane
    __m256i offset;          // zero point - 2^(32-r) per 32-bit lane (mod 2^32)
} requant_lanes;

// Constants for channels [0, count) of the arrays (count <= 8; the other lanes give unused values).
__attribute__((target("avx2")))
static inline void requant_lanes_make(requant_lanes *lanes, const int32_t *multiplier, const int32_t *shift,
                                      int32_t zero_point, long count) {
    int32_t m[8], offset[8];
    uint64_t add[2][8], counts[8];
    for (long j = 0; j < 8; j++) {
        const int right = j < count ? -shift[j] : 0;
        m[j] = j < count ? multiplier[j] : 0;
        add[0][j] = ((uint64_t)1 << 63) + ((uint64_t)1 << 30) + (right > 0 ? (uint64_t)1 << (30 + right) : 0);
        add[1][j] = add[0][j] - (right > 0 ? (uint64_t)1 << 31 : 0);
        counts[j] = (uint64_t)(31 + right);
        offset[j] = (int32_t)((uint32_t)zero_point - (right > 0 ? (uint32_t)((uint64_t)1 << (32 - right)) : 0u));
    }
    uint64_t even[5][4], odd[5][4];
    for (int q = 0; q < 4; q++) {
        even[0][q] = add[0][2 * q], odd[0][q] = add[0][2 * q + 1];
        even[1][q] = add[1][2 * q], odd[1][q] = add[1][2 * q + 1];
        even[2][q] = counts[2 * q], odd[2][q] = counts[2 * q + 1];
        odd[3][q] = (uint32_t)m[2 * q + 1];
    }
    lanes->multiplier = _mm256_loadu_si256((const __m256i *)m);
    lanes->multiplier_odd = _mm256_loadu_si256((const __m256i *)odd[3]);
    lanes->add_even[0] = _mm256_loadu_si256((const __m256i *)even[0]);
    lanes->add_even[1] = _mm256_loadu_si256((const __m256i *)even[1]);
    lanes->add_odd[0] = _mm256_loadu_si256((const __m256i *)odd[0]);
    lanes->add_odd[1] = _mm256_loadu_si256((const __m256i *)odd[1]);
    lanes->shift_even = _mm256_loadu_si256((const __m256i *)even[2]);
    lanes->shift_odd = _mm256_loadu_si256((const __m256i *)odd[2]);
    lanes->offset = _mm256_loadu_si256((const __m256i *)offset);
}

// requantize_one(v) + zero point per 32-bit lane (wrapping, like the scalar code).
__attribute__((target("avx2")))
static inline __m256i requant_lanes_apply(__m256i v, const requant_lanes *lanes) {
    const __m256i even = _mm256_mul_epi32(v, lanes->multiplier);
    const __m256i odd = _mm256_mul_epi32(_mm256_srli_epi64(v, 32), lanes->multiplier_odd);
    // The addend by the product's sign (blendv reads the top bit of each 64-bit lane): m > 0, so
    // it is v's sign; with m = 0 both addends are equal.
    const __m256i add_even = _mm256_castpd_si256(_mm256_blendv_pd(_mm256_castsi256_pd(lanes->add_even[0]),
                                                                  _mm256_castsi256_pd(lanes->add_even[1]),
                                                                  _mm256_castsi256_pd(even)));
    const __m256i add_odd = _mm256_castpd_si256(_mm256_blendv_pd(_mm256_castsi256_pd(lanes->add_odd[0]),
                                                                 _mm256_castsi256_pd(lanes->add_odd[1]),
                                                                 _mm256_castsi256_pd(odd)));
    const __m256i low = _mm256_srlv_epi64(_mm256_add_epi64(even, add_even), lanes->shift_even);
    const __m256i high = _mm256_srlv_epi64(_mm256_add_epi64(odd, add_odd), lanes->shift_odd);
    return _mm256_add_epi32(_mm256_blend_epi32(low, _mm256_slli_epi64(high, 32), 0xAA), lanes->offset);
}

// 16 requantized lanes (a then b, zero point included) saturated to int8, clamped to [lo, hi]
// (bytes; inside the int8 range, so saturating first changes nothing) and stored: `count` <= 16.
__attribute__((target("avx2")))
static inline void requant_store16(int8_t *dst, __m256i a, __m256i b, __m128i lo, __m128i hi, long count) {
    const __m256i words = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xD8);
    __m128i bytes = _mm_packs_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
    bytes = _mm_min_epi8(_mm_max_epi8(bytes, lo), hi);
    if (count == 16) {
        _mm_storeu_si128((__m128i *)dst, bytes);
    } else {
        int8_t lanes[16];
        _mm_storeu_si128((__m128i *)lanes, bytes);
        memcpy(dst, lanes, (size_t)count);
    }
}

#endif
