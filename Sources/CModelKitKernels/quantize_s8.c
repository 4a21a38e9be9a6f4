// float -> int8 quantization, y = clamp(round(x / scale) + zero_point, -128, 127), with the
// reference's rounding (half away from zero) and its edge cases: NaN becomes -128, +-infinity the
// bounds. The division is kept (not a multiply by 1/scale) so every path matches it exactly.
#include "modelkit_kernels.h"

#include <immintrin.h>
#include <math.h>

static inline int8_t quantize_one(float x, float scale, float zero_point) {
    const float q = roundf(x / scale) + zero_point;
    if (!(q >= -128.0f)) return -128;
    if (!(q <= 127.0f)) return 127;
    return (int8_t)q;
}

__attribute__((target("avx2")))
static void quantize_s8_avx2(long count, const float *x, float scale, float zero_point, int8_t *y) {
    const __m256 vscale = _mm256_set1_ps(scale), vzero = _mm256_set1_ps(zero_point);
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    const __m256 sign_bit = _mm256_set1_ps(-0.0f);
    const __m256 low = _mm256_set1_ps(-128.0f), high = _mm256_set1_ps(127.0f);
    long i = 0;
    for (; i + 8 <= count; i += 8) {
        const __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + i), vscale);
        // Half away from zero: truncate, then step one away from zero when the dropped fraction
        // (exact: v - trunc(v) needs no rounding) is at least a half.
        const __m256 truncated = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        const __m256 fraction = _mm256_andnot_ps(sign_bit, _mm256_sub_ps(v, truncated));
        const __m256 away = _mm256_or_ps(_mm256_and_ps(v, sign_bit), one);
        const __m256 rounded = _mm256_add_ps(truncated, _mm256_and_ps(_mm256_cmp_ps(fraction, half, _CMP_GE_OQ), away));
        // max/min return their second operand for NaN, so NaN lands on -128 as in the reference.
        const __m256 q = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(rounded, vzero), low), high);
        const __m256i words = _mm256_cvttps_epi32(q);
        const __m128i halves = _mm_packs_epi32(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
        _mm_storel_epi64((__m128i *)(y + i), _mm_packs_epi16(halves, halves));
    }
    for (; i < count; i++) y[i] = quantize_one(x[i], scale, zero_point);
}

void mk_quantize_s8(int path, long count, const float *x, float scale, int32_t zero_point, int8_t *y) {
    if (mk_kernels_clamp(path) >= MK_KERNELS_AVX2) {
        quantize_s8_avx2(count, x, scale, (float)zero_point, y);
    } else {
        for (long i = 0; i < count; i++) y[i] = quantize_one(x[i], scale, (float)zero_point);
    }
}
