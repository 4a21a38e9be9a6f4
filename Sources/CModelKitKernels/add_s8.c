// int8 addition of two same-shaped tensors in TFLite's scheme (ModelKitRuntime's
// AddRequantization): each input minus its zero point, shifted left by 20 bits and rescaled to a
// common scale, added, rescaled to the output scale, plus its zero point, clamped. The AVX2 path
// requantizes 8 values at a time with the same rounding, so every path gives identical results.
#include "modelkit_kernels.h"

#include <immintrin.h>
#include <stdint.h>

#include "requantize.h"

static inline int8_t add_one(int8_t a, int8_t b, const mk_add_s8_params *p) {
    const int32_t scaled1 = requantize_one(((int32_t)a - p->zero_point1) * (1 << p->left_shift), p->multiplier1, p->shift1);
    const int32_t scaled2 = requantize_one(((int32_t)b - p->zero_point2) * (1 << p->left_shift), p->multiplier2, p->shift2);
    int32_t value = requantize_one(scaled1 + scaled2, p->output_multiplier, p->output_shift) + p->output_zero_point;
    value = value < p->minimum ? p->minimum : (value > p->maximum ? p->maximum : value);
    return (int8_t)value;
}

__attribute__((target("avx2")))
static void add_s8_avx2(long count, const int8_t *a, const int8_t *b, const mk_add_s8_params *p, int8_t *y) {
    const __m256i zero1 = _mm256_set1_epi32(p->zero_point1), zero2 = _mm256_set1_epi32(p->zero_point2);
    const __m256i m1 = _mm256_set1_epi32(p->multiplier1), m2 = _mm256_set1_epi32(p->multiplier2);
    const __m256i r1 = _mm256_set1_epi32(-p->shift1), r2 = _mm256_set1_epi32(-p->shift2);
    const __m256i mo = _mm256_set1_epi32(p->output_multiplier), ro = _mm256_set1_epi32(-p->output_shift);
    const __m256i zero_out = _mm256_set1_epi32(p->output_zero_point);
    const __m256i minimum = _mm256_set1_epi32(p->minimum), maximum = _mm256_set1_epi32(p->maximum);
    const __m128i left = _mm_cvtsi32_si128(p->left_shift);
    long i = 0;
    for (; i + 8 <= count; i += 8) {
        const __m256i x1 = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(a + i)));
        const __m256i x2 = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b + i)));
        const __m256i s1 = requantize8(_mm256_sll_epi32(_mm256_sub_epi32(x1, zero1), left), m1, r1);
        const __m256i s2 = requantize8(_mm256_sll_epi32(_mm256_sub_epi32(x2, zero2), left), m2, r2);
        __m256i v = _mm256_add_epi32(requantize8(_mm256_add_epi32(s1, s2), mo, ro), zero_out);
        v = _mm256_min_epi32(_mm256_max_epi32(v, minimum), maximum);
        // Values are within [-128, 127]: the saturating packs are exact.
        const __m128i words = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        _mm_storel_epi64((__m128i *)(y + i), _mm_packs_epi16(words, words));
    }
    for (; i < count; i++) y[i] = add_one(a[i], b[i], p);
}

void mk_add_s8(int path, long count, const int8_t *a, const int8_t *b, const mk_add_s8_params *p, int8_t *y) {
    // The vector requantization has no left shift; multipliers above 1 (never in practice: the
    // common scale is twice the larger input scale) take the scalar loop.
    const int vector = p->shift1 <= 0 && p->shift2 <= 0 && p->output_shift <= 0;
    if (vector && mk_kernels_clamp(path) >= MK_KERNELS_AVX2) {
        add_s8_avx2(count, a, b, p, y);
    } else {
        for (long i = 0; i < count; i++) y[i] = add_one(a[i], b[i], p);
    }
}
