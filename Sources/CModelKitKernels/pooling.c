// 2x2 stride-2 max pooling over NHWC, the case every CNN here uses, in one pass with its argmax,
// and its backward writing every input gradient value (no zero-fill pass, no scatter). The
// generic Swift loops handle every other window.
#include "modelkit_kernels.h"

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

void mk_maxpool2x2_forward(long n0, long n1, long h, long w, long c, const float *x, float *y, int32_t *arg) {
    if (mk_kernels_active() >= MK_KERNELS_AVX2) pool_forward_avx2(n0, n1, h, w, c, x, y, arg);
    else pool_forward_portable(n0, n1, h, w, c, x, y, arg);
}

void mk_maxpool2x2_backward(long n0, long n1, long h, long w, long c, const float *dy, const int32_t *arg,
                            float *dx) {
    if (mk_kernels_active() >= MK_KERNELS_AVX2) pool_backward_avx2(n0, n1, h, w, c, dy, arg, dx);
    else pool_backward_portable(n0, n1, h, w, c, dy, arg, dx);
}
