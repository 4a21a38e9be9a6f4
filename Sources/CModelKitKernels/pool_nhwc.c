// Inference max pooling over NHWC for any window, stride and padding, float and int8. The
// reference walks one channel at a time and builds a cell list per output; here each output
// pixel takes the max over its window clipped to the real input (padded cells are ignored), with
// the channels in SIMD lanes.
#include "modelkit_kernels.h"

#include <float.h>
#include <immintrin.h>
#include <math.h>

#include "pool_window.h"

// Float: a value replaces the best only when strictly greater, so NaN is skipped and ties keep
// the first, exactly like the reference (its start value is -infinity).
static void maxpool_f32_portable(const mk_pool_geometry *g, const float *x, float *y) {
    const long c = g->c;
    for (long s = 0; s < g->n; s++)
        for (long oy = 0; oy < g->oh; oy++)
            for (long ox = 0; ox < g->ow; ox++) {
                long y0, y1, x0, x1;
                clip_window(g, oy, ox, &y0, &y1, &x0, &x1);
                float *out = y + ((s * g->oh + oy) * g->ow + ox) * c;
                for (long ch = 0; ch < c; ch++) out[ch] = -INFINITY;
                for (long iy = y0; iy < y1; iy++)
                    for (long ix = x0; ix < x1; ix++) {
                        const float *cell = x + ((s * g->h + iy) * g->w + ix) * c;
                        for (long ch = 0; ch < c; ch++) out[ch] = cell[ch] > out[ch] ? cell[ch] : out[ch];
                    }
            }
}

// 2 x 2 windows at stride 2 that all lie inside the input, whole vectors of channels (a small
// CNN's pooling): four loads and maxes per vector, no window clipping or loop per cell. Same rule
// and cell order as below, from -infinity.
__attribute__((target("avx2,fma")))
static void maxpool_f32_avx2_2x2(const mk_pool_geometry *g, const float *x, float *y) {
    const long c = g->c, row = g->w * c;
    const __m256 start = _mm256_set1_ps(-INFINITY);
    for (long s = 0; s < g->n; s++)
        for (long oy = 0; oy < g->oh; oy++) {
            const float *in = x + (s * g->h + 2 * oy) * row;
            float *out = y + (s * g->oh + oy) * g->ow * c;
            for (long ox = 0; ox < g->ow; ox++, in += 2 * c, out += c)
                for (long ch = 0; ch < c; ch += 8) {
                    __m256 best = _mm256_max_ps(_mm256_loadu_ps(in + ch), start);
                    best = _mm256_max_ps(_mm256_loadu_ps(in + c + ch), best);
                    best = _mm256_max_ps(_mm256_loadu_ps(in + row + ch), best);
                    best = _mm256_max_ps(_mm256_loadu_ps(in + row + c + ch), best);
                    _mm256_storeu_ps(out + ch, best);
                }
        }
}

static int is_inner_2x2(const mk_pool_geometry *g) {
    return g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->pad_top == 0 && g->pad_left == 0 &&
           2 * g->oh <= g->h && 2 * g->ow <= g->w && g->c % 8 == 0;
}

// max_ps(v, best) returns its second operand when v is NaN or equal to best: the same rule.
__attribute__((target("avx2,fma")))
static void maxpool_f32_avx2(const mk_pool_geometry *g, const float *x, float *y) {
    const long c = g->c, cv = c & ~7L;
    for (long s = 0; s < g->n; s++)
        for (long oy = 0; oy < g->oh; oy++)
            for (long ox = 0; ox < g->ow; ox++) {
                long y0, y1, x0, x1;
                clip_window(g, oy, ox, &y0, &y1, &x0, &x1);
                float *out = y + ((s * g->oh + oy) * g->ow + ox) * c;
                const float *base = x + s * g->h * g->w * c;
                for (long ch = 0; ch < cv; ch += 8) {
                    __m256 best = _mm256_set1_ps(-INFINITY);
                    for (long iy = y0; iy < y1; iy++)
                        for (long ix = x0; ix < x1; ix++)
                            best = _mm256_max_ps(_mm256_loadu_ps(base + (iy * g->w + ix) * c + ch), best);
                    _mm256_storeu_ps(out + ch, best);
                }
                for (long ch = cv; ch < c; ch++) {
                    float best = -INFINITY;
                    for (long iy = y0; iy < y1; iy++)
                        for (long ix = x0; ix < x1; ix++) {
                            const float v = base[(iy * g->w + ix) * c + ch];
                            best = v > best ? v : best;
                        }
                    out[ch] = best;
                }
            }
}

static void maxpool_i8_portable(const mk_pool_geometry *g, const int8_t *x, int8_t *y) {
    const long c = g->c;
    for (long s = 0; s < g->n; s++)
        for (long oy = 0; oy < g->oh; oy++)
            for (long ox = 0; ox < g->ow; ox++) {
                long y0, y1, x0, x1;
                clip_window(g, oy, ox, &y0, &y1, &x0, &x1);
                int8_t *out = y + ((s * g->oh + oy) * g->ow + ox) * c;
                for (long ch = 0; ch < c; ch++) out[ch] = INT8_MIN;
                for (long iy = y0; iy < y1; iy++)
                    for (long ix = x0; ix < x1; ix++) {
                        const int8_t *cell = x + ((s * g->h + iy) * g->w + ix) * c;
                        for (long ch = 0; ch < c; ch++) out[ch] = cell[ch] > out[ch] ? cell[ch] : out[ch];
                    }
            }
}

__attribute__((target("avx2")))
static void maxpool_i8_avx2(const mk_pool_geometry *g, const int8_t *x, int8_t *y) {
    const long c = g->c, cv = c & ~31L;
    for (long s = 0; s < g->n; s++)
        for (long oy = 0; oy < g->oh; oy++)
            for (long ox = 0; ox < g->ow; ox++) {
                long y0, y1, x0, x1;
                clip_window(g, oy, ox, &y0, &y1, &x0, &x1);
                int8_t *out = y + ((s * g->oh + oy) * g->ow + ox) * c;
                const int8_t *base = x + s * g->h * g->w * c;
                for (long ch = 0; ch < cv; ch += 32) {
                    __m256i best = _mm256_set1_epi8(INT8_MIN);
                    for (long iy = y0; iy < y1; iy++)
                        for (long ix = x0; ix < x1; ix++)
                            best = _mm256_max_epi8(best, _mm256_loadu_si256((const __m256i *)(base + (iy * g->w + ix) * c + ch)));
                    _mm256_storeu_si256((__m256i *)(out + ch), best);
                }
                for (long ch = cv; ch < c; ch++) {
                    int8_t best = INT8_MIN;
                    for (long iy = y0; iy < y1; iy++)
                        for (long ix = x0; ix < x1; ix++) {
                            const int8_t v = base[(iy * g->w + ix) * c + ch];
                            best = v > best ? v : best;
                        }
                    out[ch] = best;
                }
            }
}

void mk_maxpool_f32_path(int path, const mk_pool_geometry *g, const float *x, float *y) {
    if (mk_kernels_clamp(path) >= MK_KERNELS_AVX2) {
        if (is_inner_2x2(g)) maxpool_f32_avx2_2x2(g, x, y);
        else maxpool_f32_avx2(g, x, y);
    } else {
        maxpool_f32_portable(g, x, y);
    }
}

void mk_maxpool_f32(const mk_pool_geometry *g, const float *x, float *y) {
    mk_maxpool_f32_path(mk_kernels_active(), g, x, y);
}

// The int8 counterpart of maxpool_f32_avx2_2x2 for channel counts that are a multiple of 16:
// four 16-code loads and three maxes per vector (max is exact, so the order is free).
__attribute__((target("avx2")))
static void maxpool_i8_avx2_2x2(const mk_pool_geometry *g, const int8_t *x, int8_t *y) {
    const long c = g->c, row = g->w * c;
    for (long s = 0; s < g->n; s++)
        for (long oy = 0; oy < g->oh; oy++) {
            const int8_t *in = x + (s * g->h + 2 * oy) * row;
            int8_t *out = y + (s * g->oh + oy) * g->ow * c;
            for (long ox = 0; ox < g->ow; ox++, in += 2 * c, out += c)
                for (long ch = 0; ch < c; ch += 16) {
                    const __m128i top = _mm_max_epi8(_mm_loadu_si128((const __m128i *)(in + ch)),
                                                     _mm_loadu_si128((const __m128i *)(in + c + ch)));
                    const __m128i bottom = _mm_max_epi8(_mm_loadu_si128((const __m128i *)(in + row + ch)),
                                                        _mm_loadu_si128((const __m128i *)(in + row + c + ch)));
                    _mm_storeu_si128((__m128i *)(out + ch), _mm_max_epi8(top, bottom));
                }
        }
}

void mk_maxpool_i8_path(int path, const mk_pool_geometry *g, const int8_t *x, int8_t *y) {
    if (mk_kernels_clamp(path) >= MK_KERNELS_AVX2) {
        if (is_inner_2x2(g) && g->c % 16 == 0) maxpool_i8_avx2_2x2(g, x, y);
        else maxpool_i8_avx2(g, x, y);
    } else {
        maxpool_i8_portable(g, x, y);
    }
}

void mk_maxpool_i8(const mk_pool_geometry *g, const int8_t *x, int8_t *y) {
    mk_maxpool_i8_path(mk_kernels_active(), g, x, y);
}
