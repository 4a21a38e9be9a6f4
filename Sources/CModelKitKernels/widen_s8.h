// int8 codes minus their zero point as int16, the A operand of the int16-pair GEMM and of the
// direct convolution (igemm_packed.c, conv_direct_s8.c). |code - zero_point| <= 255, so 16-bit
// lanes never wrap and both paths give the same values. Private to CModelKitKernels.
#ifndef MODELKIT_WIDEN_S8_H
#define MODELKIT_WIDEN_S8_H

#include <immintrin.h>
#include <stdint.h>

static inline void widen_portable(const int8_t *src, long count, int32_t zero_point, int16_t *dst) {
    for (long i = 0; i < count; i++) dst[i] = (int16_t)(src[i] - zero_point);
}

__attribute__((target("avx2"))) static inline void widen_avx2(const int8_t *src, long count, int32_t zero_point,
                                                              int16_t *dst) {
    const __m256i zp = _mm256_set1_epi16((int16_t)zero_point);
    long i = 0;
    for (; i + 16 <= count; i += 16) {
        const __m128i codes = _mm_loadu_si128((const __m128i *)(src + i));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_sub_epi16(_mm256_cvtepi8_epi16(codes), zp));
    }
    for (; i < count; i++) dst[i] = (int16_t)(src[i] - zero_point);
}

#endif
