// Scalar models of the AVX-512 intrinsics the kernels' VNNI path uses, written from their
// definitions in Intel's Intrinsics Guide. Compiled in place of <immintrin.h> (see
// avx512_model.c), they let a machine without AVX-512 run that path's exact source: tile
// walk, tails, masks and requantization lanes. What they cannot check is the compiler's
// lowering of the real intrinsics; a CPU with AVX-512 VNNI runs that in KernelPathTests.
#ifndef MODELKIT_AVX512_INTRINSICS_MODEL_H
#define MODELKIT_AVX512_INTRINSICS_MODEL_H

#include <stdint.h>
#include <string.h>

typedef struct {
    int32_t lane[16];
} __m512i;
typedef uint16_t __mmask16;

static inline int64_t model_get64(__m512i v, int i) {
    int64_t x;
    memcpy(&x, &v.lane[2 * i], sizeof x);
    return x;
}
static inline void model_set64(__m512i *v, int i, int64_t x) { memcpy(&v->lane[2 * i], &x, sizeof x); }

static inline __m512i _mm512_setzero_si512(void) {
    __m512i r;
    memset(&r, 0, sizeof r);
    return r;
}
static inline __m512i _mm512_set1_epi32(int32_t x) {
    __m512i r;
    for (int i = 0; i < 16; i++) r.lane[i] = x;
    return r;
}
static inline __m512i _mm512_set1_epi64(int64_t x) {
    __m512i r;
    for (int i = 0; i < 8; i++) model_set64(&r, i, x);
    return r;
}
static inline __m512i _mm512_loadu_si512(const void *p) {
    __m512i r;
    memcpy(r.lane, p, sizeof r.lane);
    return r;
}
// Masked-off lanes are zero and their memory is not read.
static inline __m512i _mm512_maskz_loadu_epi32(__mmask16 k, const void *p) {
    __m512i r = _mm512_setzero_si512();
    for (int i = 0; i < 16; i++)
        if (k >> i & 1) memcpy(&r.lane[i], (const char *)p + 4 * i, 4);
    return r;
}
// Signed saturation of each lane to int8, stored where the mask is set.
static inline void _mm512_mask_cvtsepi32_storeu_epi8(void *p, __mmask16 k, __m512i v) {
    for (int i = 0; i < 16; i++)
        if (k >> i & 1) {
            const int32_t x = v.lane[i] < -128 ? -128 : v.lane[i] > 127 ? 127 : v.lane[i];
            ((int8_t *)p)[i] = (int8_t)x;
        }
}

#define MODEL_LANEWISE32(name, expression)                   \
    static inline __m512i name(__m512i a, __m512i b) {       \
        __m512i r;                                           \
        for (int i = 0; i < 16; i++) {                       \
            const int32_t x = a.lane[i], y = b.lane[i];      \
            r.lane[i] = (expression);                        \
        }                                                    \
        return r;                                            \
    }
MODEL_LANEWISE32(_mm512_add_epi32, (int32_t)((uint32_t)x + (uint32_t)y))
MODEL_LANEWISE32(_mm512_sub_epi32, (int32_t)((uint32_t)x - (uint32_t)y))
MODEL_LANEWISE32(_mm512_and_si512, x & y)
MODEL_LANEWISE32(_mm512_min_epi32, x < y ? x : y)
MODEL_LANEWISE32(_mm512_max_epi32, x > y ? x : y)
// Shift counts of 32 or more give 0 (left) or the sign (arithmetic right).
MODEL_LANEWISE32(_mm512_sllv_epi32, (uint32_t)y > 31 ? 0 : (int32_t)((uint32_t)x << y))
MODEL_LANEWISE32(_mm512_srav_epi32, (uint32_t)y > 31 ? (x < 0 ? -1 : 0) : x >> y)
#undef MODEL_LANEWISE32

static inline __m512i _mm512_srai_epi32(__m512i a, unsigned count) {
    __m512i r;
    for (int i = 0; i < 16; i++) r.lane[i] = count > 31 ? (a.lane[i] < 0 ? -1 : 0) : a.lane[i] >> count;
    return r;
}
static inline __m512i _mm512_add_epi64(__m512i a, __m512i b) {
    __m512i r;
    for (int i = 0; i < 8; i++) model_set64(&r, i, (int64_t)((uint64_t)model_get64(a, i) + (uint64_t)model_get64(b, i)));
    return r;
}
static inline __m512i _mm512_srli_epi64(__m512i a, unsigned count) {
    __m512i r;
    for (int i = 0; i < 8; i++) model_set64(&r, i, count > 63 ? 0 : (int64_t)((uint64_t)model_get64(a, i) >> count));
    return r;
}
static inline __m512i _mm512_slli_epi64(__m512i a, unsigned count) {
    __m512i r;
    for (int i = 0; i < 8; i++) model_set64(&r, i, count > 63 ? 0 : (int64_t)((uint64_t)model_get64(a, i) << count));
    return r;
}
// The low signed 32 bits of each 64-bit lane, multiplied to a signed 64-bit product.
static inline __m512i _mm512_mul_epi32(__m512i a, __m512i b) {
    __m512i r;
    for (int i = 0; i < 8; i++) model_set64(&r, i, (int64_t)a.lane[2 * i] * (int64_t)b.lane[2 * i]);
    return r;
}
// Lanes of b where the mask is set, of a elsewhere.
static inline __m512i _mm512_mask_blend_epi32(__mmask16 k, __m512i a, __m512i b) {
    __m512i r;
    for (int i = 0; i < 16; i++) r.lane[i] = (k >> i & 1) ? b.lane[i] : a.lane[i];
    return r;
}
// a + b where the mask is set, src elsewhere.
static inline __m512i _mm512_mask_add_epi32(__m512i src, __mmask16 k, __m512i a, __m512i b) {
    __m512i r;
    for (int i = 0; i < 16; i++) r.lane[i] = (k >> i & 1) ? (int32_t)((uint32_t)a.lane[i] + (uint32_t)b.lane[i]) : src.lane[i];
    return r;
}
static inline __mmask16 _mm512_cmplt_epi32_mask(__m512i a, __m512i b) {
    __mmask16 k = 0;
    for (int i = 0; i < 16; i++) k |= (__mmask16)((a.lane[i] < b.lane[i]) << i);
    return k;
}
static inline __mmask16 _mm512_cmpgt_epi32_mask(__m512i a, __m512i b) {
    __mmask16 k = 0;
    for (int i = 0; i < 16; i++) k |= (__mmask16)((a.lane[i] > b.lane[i]) << i);
    return k;
}
// VPDPWSSD: each int32 lane of src plus the two products of the signed 16-bit pairs of a and b
// in that lane, wrapping (no saturation).
static inline __m512i _mm512_dpwssd_epi32(__m512i src, __m512i a, __m512i b) {
    __m512i r;
    for (int i = 0; i < 16; i++) {
        int16_t x[2], y[2];
        memcpy(x, &a.lane[i], sizeof x);
        memcpy(y, &b.lane[i], sizeof y);
        const uint32_t sum = (uint32_t)src.lane[i] + (uint32_t)((int32_t)x[0] * y[0]) + (uint32_t)((int32_t)x[1] * y[1]);
        r.lane[i] = (int32_t)sum;
    }
    return r;
}

#endif
