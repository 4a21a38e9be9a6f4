// int8 average pooling over NHWC (also global average pooling: one window over the whole image).
// Exact integer arithmetic like Int8ReferenceKernels.averagePool2D: the sum of (q - x_zero) over
// the window's real cells, divided by the cell count (or the count including padding) rounded to
// nearest with ties away from zero, plus y_zero, clamped. The AVX2 path sums 8 channels per
// register; both paths give identical results.
#include "modelkit_kernels.h"

#include <immintrin.h>

#include "pool_window.h"

// Divisor of output (oy, ox): its real cells, or its cells inside the padded input.
static inline long window_divisor(const mk_pool_geometry *g, long pad_bottom, long pad_right, int count_include_pad,
                                  long oy, long ox, long real_rows, long real_columns) {
    if (!count_include_pad) return real_rows * real_columns;
    const long top = oy * g->sh - g->pad_top, left = ox * g->sw - g->pad_left;
    long y0 = top < -g->pad_top ? -g->pad_top : top;
    long y1 = top + g->kh > g->h + pad_bottom ? g->h + pad_bottom : top + g->kh;
    long x0 = left < -g->pad_left ? -g->pad_left : left;
    long x1 = left + g->kw > g->w + pad_right ? g->w + pad_right : left + g->kw;
    return (y1 - y0) * (x1 - x0);
}

static inline int8_t rounded_average(int32_t sum, long divisor, int32_t y_zero) {
    // A window with no cell cannot come out of shape inference; keep the output defined anyway.
    if (divisor <= 0) divisor = 1;
    const int32_t d = (int32_t)divisor;
    const int32_t q = sum >= 0 ? (sum + d / 2) / d : -((-sum + d / 2) / d);
    const int32_t v = q + y_zero;
    return (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
}

// Channels [ch0, ch1) of one output pixel, one channel at a time.
static inline void average_channels(const mk_pool_geometry *g, const int8_t *base, long y0, long y1, long x0,
                                    long x1, long ch0, long ch1, int32_t x_zero, int32_t y_zero, long divisor,
                                    int8_t *out) {
    const int32_t correction = (int32_t)((y1 - y0) * (x1 - x0)) * x_zero;
    for (long ch = ch0; ch < ch1; ch++) {
        int32_t sum = 0;
        for (long iy = y0; iy < y1; iy++)
            for (long ix = x0; ix < x1; ix++) sum += base[(iy * g->w + ix) * g->c + ch];
        out[ch] = rounded_average(sum - correction, divisor, y_zero);
    }
}

static void avgpool_s8_portable(const mk_pool_geometry *g, long pad_bottom, long pad_right, int count_include_pad,
                                int32_t x_zero, int32_t y_zero, const int8_t *x, int8_t *y) {
    for (long s = 0; s < g->n; s++)
        for (long oy = 0; oy < g->oh; oy++)
            for (long ox = 0; ox < g->ow; ox++) {
                long y0, y1, x0, x1;
                clip_window(g, oy, ox, &y0, &y1, &x0, &x1);
                const long divisor = window_divisor(g, pad_bottom, pad_right, count_include_pad, oy, ox, y1 - y0, x1 - x0);
                average_channels(g, x + s * g->h * g->w * g->c, y0, y1, x0, x1, 0, g->c, x_zero, y_zero, divisor,
                                 y + ((s * g->oh + oy) * g->ow + ox) * g->c);
            }
}

__attribute__((target("avx2")))
static void avgpool_s8_avx2(const mk_pool_geometry *g, long pad_bottom, long pad_right, int count_include_pad,
                            int32_t x_zero, int32_t y_zero, const int8_t *x, int8_t *y) {
    const long c = g->c, cv = c & ~7L;
    for (long s = 0; s < g->n; s++)
        for (long oy = 0; oy < g->oh; oy++)
            for (long ox = 0; ox < g->ow; ox++) {
                long y0, y1, x0, x1;
                clip_window(g, oy, ox, &y0, &y1, &x0, &x1);
                const long divisor = window_divisor(g, pad_bottom, pad_right, count_include_pad, oy, ox, y1 - y0, x1 - x0);
                const int32_t correction = (int32_t)((y1 - y0) * (x1 - x0)) * x_zero;
                const int8_t *base = x + s * g->h * g->w * c;
                int8_t *out = y + ((s * g->oh + oy) * g->ow + ox) * c;
                for (long ch = 0; ch < cv; ch += 8) {
                    __m256i sum = _mm256_setzero_si256();
                    for (long iy = y0; iy < y1; iy++)
                        for (long ix = x0; ix < x1; ix++) {
                            const __m128i codes = _mm_loadl_epi64((const __m128i *)(base + (iy * g->w + ix) * c + ch));
                            sum = _mm256_add_epi32(sum, _mm256_cvtepi8_epi32(codes));
                        }
                    int32_t sums[8];
                    _mm256_storeu_si256((__m256i *)sums, sum);
                    for (int lane = 0; lane < 8; lane++)
                        out[ch + lane] = rounded_average(sums[lane] - correction, divisor, y_zero);
                }
                average_channels(g, base, y0, y1, x0, x1, cv, c, x_zero, y_zero, divisor, out);
            }
}

void mk_avgpool_s8_path(int path, const mk_pool_geometry *g, long pad_bottom, long pad_right, int count_include_pad,
                        int32_t x_zero, int32_t y_zero, const int8_t *x, int8_t *y) {
    if (mk_kernels_clamp(path) >= MK_KERNELS_AVX2) avgpool_s8_avx2(g, pad_bottom, pad_right, count_include_pad, x_zero, y_zero, x, y);
    else avgpool_s8_portable(g, pad_bottom, pad_right, count_include_pad, x_zero, y_zero, x, y);
}

void mk_avgpool_s8(const mk_pool_geometry *g, long pad_bottom, long pad_right, int count_include_pad,
                   int32_t x_zero, int32_t y_zero, const int8_t *x, int8_t *y) {
    mk_avgpool_s8_path(mk_kernels_active(), g, pad_bottom, pad_right, count_include_pad, x_zero, y_zero, x, y);
}
