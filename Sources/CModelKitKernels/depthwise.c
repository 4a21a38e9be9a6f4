// Depthwise 2-D convolution (one filter per channel, channel multiplier 1) on NHWC images, float
// and int8. Channels are contiguous in NHWC, so the SIMD lanes run over channels: each output
// pixel sums its valid taps, each tap a run of C input values times C weights stored [kh][kw][C].
// Work is split by output rows (over batch x output height) so callers can spread rows over
// threads.
#include "modelkit_kernels.h"

#include <immintrin.h>
#include <stdint.h>

#include "requantize.h"
#include "requantize_lanes.h"

// The taps of output coordinate `o` that land inside [0, size): [*first, *last).
static inline void valid_taps(long o, long stride, long pad, long dilation, long kernel, long size, long *first,
                              long *last) {
    const long start = o * stride - pad;
    long lo = 0, hi = kernel;
    while (lo < kernel && start + lo * dilation < 0) lo++;
    while (hi > lo && start + (hi - 1) * dilation >= size) hi--;
    *first = lo;
    *last = hi;
}

static inline float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

// The fast interior kernels keep the window's tap offsets on the stack (a 7x7 window is 49).
enum { MAX_FAST_TAPS = 64 };

// Output columns [*first, *last) whose whole window lies inside the image horizontally.
static void interior_columns(const mk_depthwise_geometry *g, long *first, long *last) {
    const long lo = (g->pad_left + g->stride_w - 1) / g->stride_w;
    const long reach = g->w - 1 - (g->kw - 1) * g->dilation_w + g->pad_left;  // largest ox * stride_w allowed
    long hi = reach < 0 ? 0 : reach / g->stride_w + 1;
    if (hi > g->ow) hi = g->ow;
    *first = lo < hi ? lo : g->ow;
    *last = lo < hi ? hi : g->ow;
}

// Element offsets of the taps [ky][kx] from a window's first tap, in weight order.
static void window_offsets(const mk_depthwise_geometry *g, long *offsets) {
    for (long ky = 0; ky < g->kh; ky++)
        for (long kx = 0; kx < g->kw; kx++)
            offsets[ky * g->kw + kx] = (ky * g->dilation_h * g->w + kx * g->dilation_w) * g->c;
}

// ---------------------------------------------------------------------------------------------
// Float, portable.

static void depthwise_row_portable(const mk_depthwise_geometry *g, long image, long oy, const float *x,
                                   const float *weight, const float *bias, float lo, float hi, float *y) {
    long ky0, ky1;
    valid_taps(oy, g->stride_h, g->pad_top, g->dilation_h, g->kh, g->h, &ky0, &ky1);
    const float *source = x + image * g->h * g->w * g->c;
    for (long ox = 0; ox < g->ow; ox++) {
        long kx0, kx1;
        valid_taps(ox, g->stride_w, g->pad_left, g->dilation_w, g->kw, g->w, &kx0, &kx1);
        float *out = y + ((image * g->oh + oy) * g->ow + ox) * g->c;
        for (long ch = 0; ch < g->c; ch++) out[ch] = bias ? bias[ch] : 0.0f;
        for (long ky = ky0; ky < ky1; ky++) {
            const long iy = oy * g->stride_h - g->pad_top + ky * g->dilation_h;
            for (long kx = kx0; kx < kx1; kx++) {
                const long ix = ox * g->stride_w - g->pad_left + kx * g->dilation_w;
                const float *in = source + (iy * g->w + ix) * g->c;
                const float *tap = weight + (ky * g->kw + kx) * g->c;
                for (long ch = 0; ch < g->c; ch++) out[ch] += in[ch] * tap[ch];
            }
        }
        for (long ch = 0; ch < g->c; ch++) out[ch] = clampf(out[ch], lo, hi);
    }
}

// ---------------------------------------------------------------------------------------------
// Float, AVX2 + FMA: 32 channels (4 accumulators) at a time, then 8, then a masked tail.

__attribute__((target("avx2,fma")))
static inline __m256i tail_mask(long count) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count), lanes);
}

// One output pixel, every channel: the general case (edges, dilation, any channel count).
__attribute__((target("avx2,fma")))
static void depthwise_pixel_avx2(const mk_depthwise_geometry *g, const float *source, long oy, long ox, long ky0, long ky1,
                                 const float *weight, const float *bias, __m256 vlo, __m256 vhi, float *out) {
    const long c = g->c;
    long kx0, kx1;
    valid_taps(ox, g->stride_w, g->pad_left, g->dilation_w, g->kw, g->w, &kx0, &kx1);
    // An offset, not a pointer: it may point before the image when the first taps are padding.
    const long first = ((oy * g->stride_h - g->pad_top) * g->w + ox * g->stride_w - g->pad_left) * c;
    const long row_step = g->dilation_h * g->w * c, column_step = g->dilation_w * c;
    long ch = 0;
    for (; ch + 32 <= c; ch += 32) {
        __m256 a0, a1, a2, a3;
        if (bias) {
            a0 = _mm256_loadu_ps(bias + ch);
            a1 = _mm256_loadu_ps(bias + ch + 8);
            a2 = _mm256_loadu_ps(bias + ch + 16);
            a3 = _mm256_loadu_ps(bias + ch + 24);
        } else {
            a0 = a1 = a2 = a3 = _mm256_setzero_ps();
        }
        for (long ky = ky0; ky < ky1; ky++) {
            for (long kx = kx0; kx < kx1; kx++) {
                const float *in = source + first + ky * row_step + kx * column_step + ch;
                const float *tap = weight + (ky * g->kw + kx) * c + ch;
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(in), _mm256_loadu_ps(tap), a0);
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(in + 8), _mm256_loadu_ps(tap + 8), a1);
                a2 = _mm256_fmadd_ps(_mm256_loadu_ps(in + 16), _mm256_loadu_ps(tap + 16), a2);
                a3 = _mm256_fmadd_ps(_mm256_loadu_ps(in + 24), _mm256_loadu_ps(tap + 24), a3);
            }
        }
        _mm256_storeu_ps(out + ch, _mm256_min_ps(_mm256_max_ps(a0, vlo), vhi));
        _mm256_storeu_ps(out + ch + 8, _mm256_min_ps(_mm256_max_ps(a1, vlo), vhi));
        _mm256_storeu_ps(out + ch + 16, _mm256_min_ps(_mm256_max_ps(a2, vlo), vhi));
        _mm256_storeu_ps(out + ch + 24, _mm256_min_ps(_mm256_max_ps(a3, vlo), vhi));
    }
    for (; ch < c; ch += 8) {
        const __m256i mask = tail_mask(c - ch);
        __m256 acc = bias ? _mm256_maskload_ps(bias + ch, mask) : _mm256_setzero_ps();
        for (long ky = ky0; ky < ky1; ky++) {
            for (long kx = kx0; kx < kx1; kx++) {
                const float *in = source + first + ky * row_step + kx * column_step + ch;
                const float *tap = weight + (ky * g->kw + kx) * c + ch;
                acc = _mm256_fmadd_ps(_mm256_maskload_ps(in, mask), _mm256_maskload_ps(tap, mask), acc);
            }
        }
        _mm256_maskstore_ps(out + ch, mask, _mm256_min_ps(_mm256_max_ps(acc, vlo), vhi));
    }
}

// Four neighbouring output pixels whose windows lie wholly inside the image, 16 channels at a
// time: each tap's weights are loaded once for the four pixels (8 accumulators), so a
// multiply-add costs about one load instead of two. `in` is the first pixel's first tap.
__attribute__((target("avx2,fma")))
static void depthwise_interior4_avx2(const float *in, long pixel_step, const long *tap_offsets, long taps,
                                     const float *weight, const float *bias, long c, __m256 vlo, __m256 vhi, float *out) {
    for (long ch = 0; ch < c; ch += 16) {
        __m256 acc[4][2];
        const __m256 b0 = bias ? _mm256_loadu_ps(bias + ch) : _mm256_setzero_ps();
        const __m256 b1 = bias ? _mm256_loadu_ps(bias + ch + 8) : _mm256_setzero_ps();
        for (int j = 0; j < 4; j++) acc[j][0] = b0, acc[j][1] = b1;
        for (long t = 0; t < taps; t++) {
            const __m256 w0 = _mm256_loadu_ps(weight + t * c + ch), w1 = _mm256_loadu_ps(weight + t * c + ch + 8);
            const float *p = in + tap_offsets[t] + ch;
            for (int j = 0; j < 4; j++) {
                acc[j][0] = _mm256_fmadd_ps(_mm256_loadu_ps(p + j * pixel_step), w0, acc[j][0]);
                acc[j][1] = _mm256_fmadd_ps(_mm256_loadu_ps(p + j * pixel_step + 8), w1, acc[j][1]);
            }
        }
        for (int j = 0; j < 4; j++) {
            _mm256_storeu_ps(out + j * c + ch, _mm256_min_ps(_mm256_max_ps(acc[j][0], vlo), vhi));
            _mm256_storeu_ps(out + j * c + ch + 8, _mm256_min_ps(_mm256_max_ps(acc[j][1], vlo), vhi));
        }
    }
}

__attribute__((target("avx2,fma")))
static void depthwise_row_avx2(const mk_depthwise_geometry *g, long image, long oy, const float *x,
                               const float *weight, const float *bias, float lo, float hi, float *y) {
    long ky0, ky1;
    valid_taps(oy, g->stride_h, g->pad_top, g->dilation_h, g->kh, g->h, &ky0, &ky1);
    const long c = g->c;
    const float *source = x + image * g->h * g->w * c;
    float *row = y + (image * g->oh + oy) * g->ow * c;
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    long first = g->ow, last = g->ow;
    // The window rows [ky0, ky1) inside the image: all of them away from the top and bottom edges,
    // fewer on the first and last output rows, which the 4-pixel kernel serves too with the
    // taps of those rows only (contiguous in weight order).
    long tap_offsets[MAX_FAST_TAPS];
    const long first_tap = ky0 * g->kw, row_taps = (ky1 - ky0) * g->kw;
    if (ky1 > ky0 && c % 16 == 0 && g->kh * g->kw <= MAX_FAST_TAPS) {
        interior_columns(g, &first, &last);
        window_offsets(g, tap_offsets);
        for (long t = 0; t < row_taps; t++) tap_offsets[t] = tap_offsets[first_tap + t] - tap_offsets[first_tap];
    }
    long ox = 0;
    for (; ox < first; ox++)
        depthwise_pixel_avx2(g, source, oy, ox, ky0, ky1, weight, bias, vlo, vhi, row + ox * c);
    // The first valid row of the window, as an offset (the window's first row may be padding).
    const long top = (oy * g->stride_h - g->pad_top + ky0 * g->dilation_h) * g->w;
    for (; ox + 4 <= last; ox += 4)
        depthwise_interior4_avx2(source + (top + ox * g->stride_w - g->pad_left) * c, g->stride_w * c, tap_offsets, row_taps,
                                 weight + first_tap * c, bias, c, vlo, vhi, row + ox * c);
    for (; ox < g->ow; ox++)
        depthwise_pixel_avx2(g, source, oy, ox, ky0, ky1, weight, bias, vlo, vhi, row + ox * c);
}

void mk_depthwise_conv2d(int path, const mk_depthwise_geometry *g, long row0, long row1, const float *x,
                         const float *weight, const float *bias, float lo, float hi, float *y) {
    const int avx2 = mk_kernels_clamp(path) >= MK_KERNELS_AVX2;
    for (long row = row0; row < row1; row++) {
        const long image = row / g->oh, oy = row % g->oh;
        if (avx2) depthwise_row_avx2(g, image, oy, x, weight, bias, lo, hi, y);
        else depthwise_row_portable(g, image, oy, x, weight, bias, lo, hi, y);
    }
}

// ---------------------------------------------------------------------------------------------
// int8: exact int32 sums of (x - x_zero) * w over the valid taps (padding contributes nothing),
// plus the bias, requantized per channel in gemmlowp's rounding (the scheme of ModelKitRuntime's
// QuantizedMultiplier) and clamped. |x - x_zero| <= 255 and |w| <= 127, so each product fits
// int16 (255 * 127 = 32385): the AVX2 path multiplies in int16 and widens to int32 before adding.

static inline int8_t finish_one(int32_t acc, long ch, const mk_depthwise_s8_output *r) {
    const int32_t sum = acc + (r->bias ? r->bias[ch] : 0);
    int32_t value = requantize_one(sum, r->multiplier[ch], r->shift[ch]) + r->output_zero_point;
    value = value < r->minimum ? r->minimum : (value > r->maximum ? r->maximum : value);
    return (int8_t)value;
}

// Channel by channel, so no row of sums is needed (the AVX2 path keeps its sums in registers).
static void depthwise_s8_row_portable(const mk_depthwise_geometry *g, long image, long oy, const int8_t *x,
                                      int32_t x_zero, const int8_t *weight, const mk_depthwise_s8_output *r,
                                      int8_t *y) {
    long ky0, ky1;
    valid_taps(oy, g->stride_h, g->pad_top, g->dilation_h, g->kh, g->h, &ky0, &ky1);
    const int8_t *source = x + image * g->h * g->w * g->c;
    for (long ox = 0; ox < g->ow; ox++) {
        long kx0, kx1;
        valid_taps(ox, g->stride_w, g->pad_left, g->dilation_w, g->kw, g->w, &kx0, &kx1);
        int8_t *out = y + ((image * g->oh + oy) * g->ow + ox) * g->c;
        for (long ch = 0; ch < g->c; ch++) {
            int32_t acc = 0;
            for (long ky = ky0; ky < ky1; ky++) {
                const long iy = oy * g->stride_h - g->pad_top + ky * g->dilation_h;
                for (long kx = kx0; kx < kx1; kx++) {
                    const long ix = ox * g->stride_w - g->pad_left + kx * g->dilation_w;
                    acc += ((int32_t)source[(iy * g->w + ix) * g->c + ch] - x_zero) *
                           (int32_t)weight[(ky * g->kw + kx) * g->c + ch];
                }
            }
            out[ch] = finish_one(acc, ch, r);
        }
    }
}

// Requantizes 16 channels' sums (adding the bias when `add_bias`) and stores them as int8.
__attribute__((target("avx2")))
static inline void finish16(__m256i lo, __m256i hi, long ch, const mk_depthwise_s8_output *r, int add_bias, int8_t *out) {
    __m256i parts[2] = {lo, hi};
    const __m256i zero_point = _mm256_set1_epi32(r->output_zero_point);
    const __m256i minimum = _mm256_set1_epi32(r->minimum), maximum = _mm256_set1_epi32(r->maximum);
    for (int half = 0; half < 2; half++) {
        const long at = ch + half * 8;
        __m256i v = parts[half];
        if (add_bias && r->bias) v = _mm256_add_epi32(v, _mm256_loadu_si256((const __m256i *)(r->bias + at)));
        const __m256i right = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_loadu_si256((const __m256i *)(r->shift + at)));
        v = requantize8(v, _mm256_loadu_si256((const __m256i *)(r->multiplier + at)), right);
        parts[half] = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(v, zero_point), minimum), maximum);
    }
    // Values are within [-128, 127] now, so the saturating packs are exact.
    const __m256i words = _mm256_permute4x64_epi64(_mm256_packs_epi32(parts[0], parts[1]), 0xD8);
    const __m128i bytes = _mm_packs_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
    _mm_storeu_si128((__m128i *)out, bytes);
}

// One output pixel, every channel: the general case (edges, dilation, any channel count).
__attribute__((target("avx2")))
static void depthwise_s8_pixel_avx2(const mk_depthwise_geometry *g, const int8_t *source, long oy, long ox, long ky0,
                                    long ky1, int32_t x_zero, const int8_t *weight, const mk_depthwise_s8_output *r,
                                    int vector_requantize, int8_t *out) {
    const long c = g->c;
    const __m256i zero = _mm256_set1_epi16((short)x_zero);
    long kx0, kx1;
    valid_taps(ox, g->stride_w, g->pad_left, g->dilation_w, g->kw, g->w, &kx0, &kx1);
    // An offset, not a pointer: it may point before the image when the first taps are padding.
    const long first = ((oy * g->stride_h - g->pad_top) * g->w + ox * g->stride_w - g->pad_left) * c;
    const long row_step = g->dilation_h * g->w * c, column_step = g->dilation_w * c;
    long ch = 0;
    for (; ch + 16 <= c; ch += 16) {
        __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
        for (long ky = ky0; ky < ky1; ky++) {
            for (long kx = kx0; kx < kx1; kx++) {
                const int8_t *in = source + first + ky * row_step + kx * column_step + ch;
                const int8_t *tap = weight + (ky * g->kw + kx) * c + ch;
                const __m256i xv = _mm256_sub_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)in)), zero);
                const __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)tap));
                const __m256i product = _mm256_mullo_epi16(xv, wv);
                lo = _mm256_add_epi32(lo, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(product)));
                hi = _mm256_add_epi32(hi, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(product, 1)));
            }
        }
        if (vector_requantize) {
            finish16(lo, hi, ch, r, 1, out + ch);
        } else {
            int32_t sums[16];
            _mm256_storeu_si256((__m256i *)sums, lo);
            _mm256_storeu_si256((__m256i *)(sums + 8), hi);
            for (int i = 0; i < 16; i++) out[ch + i] = finish_one(sums[i], ch + i, r);
        }
    }
    for (; ch < c; ch++) {
        int32_t sum = 0;
        for (long ky = ky0; ky < ky1; ky++) {
            for (long kx = kx0; kx < kx1; kx++) {
                const int8_t *in = source + first + ky * row_step + kx * column_step + ch;
                sum += ((int32_t)*in - x_zero) * (int32_t)weight[(ky * g->kw + kx) * c + ch];
            }
        }
        out[ch] = finish_one(sum, ch, r);
    }
}

// One output pixel whose window lies wholly inside the image, c a multiple of 16. Two taps at a
// time: their codes interleaved byte by byte, widened, and multiplied with the interleaved
// weight pairs by _mm256_madd_epi16, which adds both products into the int32 lane of their
// channel. The codes go in without the zero point: the interior bias holds bias - x_zero * sum(w)
// (exact integers, so the total equals the reference's sum of (x - x_zero) * w plus the bias).
__attribute__((target("avx2")))
static void depthwise_s8_interior_avx2(const int8_t *in, const long *tap_offsets, long taps,
                                       const mk_depthwise_s8_interior *interior, long c, const mk_depthwise_s8_output *r,
                                       int8_t *out) {
    const long pairs = (taps + 1) / 2;
    const requant_lanes *lanes = (const requant_lanes *)interior->lanes;
    const __m128i minimum = _mm_set1_epi8((char)r->minimum), maximum = _mm_set1_epi8((char)r->maximum);
    for (long ch = 0; ch < c; ch += 16) {
        __m256i lo = _mm256_loadu_si256((const __m256i *)(interior->bias + ch));
        __m256i hi = _mm256_loadu_si256((const __m256i *)(interior->bias + ch + 8));
        for (long p = 0; p < pairs; p++) {
            // An odd last tap pairs with itself: its partner weight is 0.
            const long second = 2 * p + 1 < taps ? 2 * p + 1 : 2 * p;
            const __m128i a = _mm_loadu_si128((const __m128i *)(in + tap_offsets[2 * p] + ch));
            const __m128i b = _mm_loadu_si128((const __m128i *)(in + tap_offsets[second] + ch));
            const int16_t *w = interior->pairs + (p * c + ch) * 2;
            lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_unpacklo_epi8(a, b)),
                                                        _mm256_loadu_si256((const __m256i *)w)));
            hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_unpackhi_epi8(a, b)),
                                                        _mm256_loadu_si256((const __m256i *)(w + 16))));
        }
        if (lanes != NULL)
            requant_store16(out + ch, requant_lanes_apply(lo, lanes + ch / 8), requant_lanes_apply(hi, lanes + ch / 8 + 1),
                            minimum, maximum, 16);
        else
            finish16(lo, hi, ch, r, 0, out + ch);
    }
}

__attribute__((target("avx2")))
static void depthwise_s8_row_avx2(const mk_depthwise_geometry *g, long image, long oy, const int8_t *x,
                                  int32_t x_zero, const int8_t *weight, const mk_depthwise_s8_output *r,
                                  const mk_depthwise_s8_interior *interior, int vector_requantize, int8_t *y) {
    long ky0, ky1;
    valid_taps(oy, g->stride_h, g->pad_top, g->dilation_h, g->kh, g->h, &ky0, &ky1);
    const long c = g->c;
    const int8_t *source = x + image * g->h * g->w * c;
    int8_t *row = y + (image * g->oh + oy) * g->ow * c;
    long first = g->ow, last = g->ow;
    long tap_offsets[MAX_FAST_TAPS];
    const long taps = g->kh * g->kw;
    if (interior != NULL && vector_requantize && ky0 == 0 && ky1 == g->kh && c % 16 == 0 && taps <= MAX_FAST_TAPS) {
        interior_columns(g, &first, &last);
        window_offsets(g, tap_offsets);
    }
    long ox = 0;
    for (; ox < first; ox++)
        depthwise_s8_pixel_avx2(g, source, oy, ox, ky0, ky1, x_zero, weight, r, vector_requantize, row + ox * c);
    const long top = (oy * g->stride_h - g->pad_top) * g->w;
    for (; ox < last; ox++)
        depthwise_s8_interior_avx2(source + (top + ox * g->stride_w - g->pad_left) * c, tap_offsets, taps, interior, c, r,
                                   row + ox * c);
    for (; ox < g->ow; ox++)
        depthwise_s8_pixel_avx2(g, source, oy, ox, ky0, ky1, x_zero, weight, r, vector_requantize, row + ox * c);
}

long mk_depthwise_s8_pairs_count(long taps, long c) { return (taps + 1) / 2 * c * 2; }

// The interior kernel's requantization with its per-channel constants prepared once (one rounding,
// requantize_lanes.h), instead of loading multipliers and shifts and rounding twice per pixel.
long mk_depthwise_s8_lanes_bytes(long c) { return (c + 7) / 8 * (long)sizeof(requant_lanes); }

__attribute__((target("avx2")))
static void prepare_lanes_avx2(long c, const mk_depthwise_s8_output *r, requant_lanes *lanes) {
    for (long ch = 0; ch < c; ch += 8)
        requant_lanes_make(lanes + ch / 8, r->multiplier + ch, r->shift + ch, r->output_zero_point, c - ch < 8 ? c - ch : 8);
}

int mk_depthwise_s8_prepare_lanes(long c, const mk_depthwise_s8_output *r, void *lanes) {
    if (mk_kernels_best_supported() < MK_KERNELS_AVX2) return 0;
    for (long ch = 0; ch < c; ch++)
        if (r->shift[ch] > 0 || r->shift[ch] < -31 || r->multiplier[ch] < 0) return 0;
    prepare_lanes_avx2(c, r, (requant_lanes *)lanes);
    return 1;
}

void mk_depthwise_s8_pack_interior(long taps, long c, const int8_t *weight, const int32_t *bias, int32_t x_zero,
                                   int16_t *pairs, int32_t *interior_bias) {
    for (long p = 0; p < (taps + 1) / 2; p++)
        for (long ch = 0; ch < c; ch++)
            for (long e = 0; e < 2; e++) {
                const long tap = 2 * p + e;
                pairs[(p * c + ch) * 2 + e] = tap < taps ? weight[tap * c + ch] : 0;
            }
    for (long ch = 0; ch < c; ch++) {
        int32_t sum = 0;
        for (long tap = 0; tap < taps; tap++) sum += weight[tap * c + ch];
        // Wrapping like the vector adds: only the total (the reference's exact sum) must fit.
        interior_bias[ch] = (int32_t)((uint32_t)(bias ? bias[ch] : 0) - (uint32_t)x_zero * (uint32_t)sum);
    }
}

void mk_depthwise_conv2d_s8(int path, const mk_depthwise_geometry *g, long row0, long row1, const int8_t *x,
                            int32_t x_zero, const int8_t *weight, const mk_depthwise_s8_output *r,
                            const mk_depthwise_s8_interior *interior, int8_t *y) {
    const int avx2 = mk_kernels_clamp(path) >= MK_KERNELS_AVX2;
    int vector_requantize = 1;
    for (long ch = 0; ch < g->c; ch++) vector_requantize &= r->shift[ch] <= 0;
    for (long row = row0; row < row1; row++) {
        const long image = row / g->oh, oy = row % g->oh;
        if (avx2) depthwise_s8_row_avx2(g, image, oy, x, x_zero, weight, r, interior, vector_requantize, y);
        else depthwise_s8_row_portable(g, image, oy, x, x_zero, weight, r, y);
    }
}
