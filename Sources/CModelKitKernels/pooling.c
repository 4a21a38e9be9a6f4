// 2x2 stride-2 max pooling over NHWC, the case every CNN here uses, in one pass with its argmax,
// and its backward writing every input gradient value (no zero-fill pass, no scatter). The
// generic Swift loops handle every other window.
#include "modelkit_kernels.h"

#include <immintrin.h>
#include <string.h>

// Ties go to the first maximum in scan order (row by row), matching the generic path: strict >.
#define DEFINE_POOL_FORWARD(NAME, ATTR)                                                                  \
    ATTR static void NAME(long n0, long n1, long h, long w, long c, const float *x, float *y,             \
                          int32_t *arg) {                                                                 \
        const long oh = h / 2, ow = w / 2;                                                                \
        for (long s = n0; s < n1; s++) {                                                                  \
            for (long oy = 0; oy < oh; oy++) {                                                            \
                for (long ox = 0; ox < ow; ox++) {                                                        \
                    const long i00 = ((s * h + 2 * oy) * w + 2 * ox) * c;                                 \
                    const long i01 = i00 + c, i10 = i00 + w * c, i11 = i10 + c;                           \
                    const long o = ((s * oh + oy) * ow + ox) * c;                                         \
                    for (long ch = 0; ch < c; ch++) {                                                     \
                        float best = x[i00 + ch];                                                         \
                        int32_t at = (int32_t)(i00 + ch);                                                 \
                        const float v01 = x[i01 + ch], v10 = x[i10 + ch], v11 = x[i11 + ch];             \
                        at = v01 > best ? (int32_t)(i01 + ch) : at;                                       \
                        best = v01 > best ? v01 : best;                                                   \
                        at = v10 > best ? (int32_t)(i10 + ch) : at;                                       \
                        best = v10 > best ? v10 : best;                                                   \
                        at = v11 > best ? (int32_t)(i11 + ch) : at;                                       \
                        best = v11 > best ? v11 : best;                                                   \
                        y[o + ch] = best;                                                                 \
                        if (arg != NULL) arg[o + ch] = at;                                                \
                    }                                                                                     \
                }                                                                                         \
            }                                                                                             \
        }                                                                                                 \
    }

DEFINE_POOL_FORWARD(pool_forward_portable, )
DEFINE_POOL_FORWARD(pool_forward_avx2, __attribute__((target("avx2,fma"))))

#define DEFINE_POOL_BACKWARD(NAME, ATTR)                                                                 \
    ATTR static void NAME(long n0, long n1, long h, long w, long c, const float *dy, const int32_t *arg,  \
                          float *dx) {                                                                    \
        const long oh = h / 2, ow = w / 2;                                                                \
        for (long s = n0; s < n1; s++) {                                                                  \
            for (long oy = 0; oy < oh; oy++) {                                                            \
                for (long ox = 0; ox < ow; ox++) {                                                        \
                    const long i00 = ((s * h + 2 * oy) * w + 2 * ox) * c;                                 \
                    const long i01 = i00 + c, i10 = i00 + w * c, i11 = i10 + c;                           \
                    const long o = ((s * oh + oy) * ow + ox) * c;                                         \
                    for (long ch = 0; ch < c; ch++) {                                                     \
                        const float g = dy[o + ch];                                                       \
                        const int32_t at = arg[o + ch];                                                   \
                        dx[i00 + ch] = at == (int32_t)(i00 + ch) ? g : 0.0f;                              \
                        dx[i01 + ch] = at == (int32_t)(i01 + ch) ? g : 0.0f;                              \
                        dx[i10 + ch] = at == (int32_t)(i10 + ch) ? g : 0.0f;                              \
                        dx[i11 + ch] = at == (int32_t)(i11 + ch) ? g : 0.0f;                              \
                    }                                                                                     \
                }                                                                                         \
                if (w % 2 != 0) { /* The last column of both rows is in no window. */                     \
                    memset(dx + ((s * h + 2 * oy) * w + w - 1) * c, 0, (size_t)c * sizeof(float));        \
                    memset(dx + ((s * h + 2 * oy + 1) * w + w - 1) * c, 0, (size_t)c * sizeof(float));    \
                }                                                                                         \
            }                                                                                             \
            if (h % 2 != 0) memset(dx + (s * h + h - 1) * w * c, 0, (size_t)(w * c) * sizeof(float));     \
        }                                                                                                 \
    }

DEFINE_POOL_BACKWARD(pool_backward_portable, )
DEFINE_POOL_BACKWARD(pool_backward_avx2, __attribute__((target("avx2,fma"))))

// AVX2 versions for channel counts that are multiples of 8 (every conv layer here): the
// auto-vectorised loops above stayed scalar (measured ~10% of a step in the backward alone).
// Same selection rule: a later window element wins only when strictly greater.
__attribute__((target("avx2,fma")))
static void pool_forward_avx2_c8(long n0, long n1, long h, long w, long c, const float *x, float *y, int32_t *arg) {
    const long oh = h / 2, ow = w / 2;
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (long s = n0; s < n1; s++) {
        for (long oy = 0; oy < oh; oy++) {
            for (long ox = 0; ox < ow; ox++) {
                const long i00 = ((s * h + 2 * oy) * w + 2 * ox) * c;
                const long offsets[3] = {c, w * c, w * c + c};
                const long o = ((s * oh + oy) * ow + ox) * c;
                for (long ch = 0; ch < c; ch += 8) {
                    __m256 best = _mm256_loadu_ps(x + i00 + ch);
                    __m256i at = _mm256_add_epi32(_mm256_set1_epi32((int32_t)(i00 + ch)), iota);
                    for (int e = 0; e < 3; e++) {
                        const long i = i00 + offsets[e] + ch;
                        const __m256 v = _mm256_loadu_ps(x + i);
                        const __m256 better = _mm256_cmp_ps(v, best, _CMP_GT_OQ);
                        best = _mm256_blendv_ps(best, v, better);
                        const __m256i index = _mm256_add_epi32(_mm256_set1_epi32((int32_t)i), iota);
                        at = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(at), _mm256_castsi256_ps(index),
                                                                  better));
                    }
                    _mm256_storeu_ps(y + o + ch, best);
                    if (arg != NULL) _mm256_storeu_si256((__m256i *)(arg + o + ch), at);
                }
            }
        }
    }
}

__attribute__((target("avx2,fma")))
static void pool_backward_avx2_c8(long n0, long n1, long h, long w, long c, const float *dy, const int32_t *arg,
                                  float *dx) {
    const long oh = h / 2, ow = w / 2;
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (long s = n0; s < n1; s++) {
        for (long oy = 0; oy < oh; oy++) {
            for (long ox = 0; ox < ow; ox++) {
                const long i00 = ((s * h + 2 * oy) * w + 2 * ox) * c;
                const long starts[4] = {i00, i00 + c, i00 + w * c, i00 + w * c + c};
                const long o = ((s * oh + oy) * ow + ox) * c;
                for (long ch = 0; ch < c; ch += 8) {
                    const __m256 g = _mm256_loadu_ps(dy + o + ch);
                    const __m256i at = _mm256_loadu_si256((const __m256i *)(arg + o + ch));
                    for (int e = 0; e < 4; e++) {
                        const long i = starts[e] + ch;
                        const __m256i index = _mm256_add_epi32(_mm256_set1_epi32((int32_t)i), iota);
                        const __m256 hit = _mm256_castsi256_ps(_mm256_cmpeq_epi32(at, index));
                        _mm256_storeu_ps(dx + i, _mm256_and_ps(g, hit));
                    }
                }
            }
            if (w % 2 != 0) {  // The last column of both rows is in no window.
                memset(dx + ((s * h + 2 * oy) * w + w - 1) * c, 0, (size_t)c * sizeof(float));
                memset(dx + ((s * h + 2 * oy + 1) * w + w - 1) * c, 0, (size_t)c * sizeof(float));
            }
        }
        if (h % 2 != 0) memset(dx + (s * h + h - 1) * w * c, 0, (size_t)(w * c) * sizeof(float));
    }
}

void mk_maxpool2x2_forward(long n0, long n1, long h, long w, long c, const float *x, float *y, int32_t *arg) {
    if (mk_kernels_active() >= MK_KERNELS_AVX2 && c % 8 == 0) pool_forward_avx2_c8(n0, n1, h, w, c, x, y, arg);
    else if (mk_kernels_active() >= MK_KERNELS_AVX2) pool_forward_avx2(n0, n1, h, w, c, x, y, arg);
    else pool_forward_portable(n0, n1, h, w, c, x, y, arg);
}

void mk_maxpool2x2_backward(long n0, long n1, long h, long w, long c, const float *dy, const int32_t *arg,
                            float *dx) {
    if (mk_kernels_active() >= MK_KERNELS_AVX2 && c % 8 == 0) pool_backward_avx2_c8(n0, n1, h, w, c, dy, arg, dx);
    else if (mk_kernels_active() >= MK_KERNELS_AVX2) pool_backward_avx2(n0, n1, h, w, c, dy, arg, dx);
    else pool_backward_portable(n0, n1, h, w, c, dy, arg, dx);
}
