// int8 GEMM for inference with the requantization fused: C = requantize(A * B^T + bias) as int8.
// A holds (q - zero_point) as int16 (so padding is 0 and no zero-point correction is needed),
// B is the int8 weight packed once as int16 pairs: panels of 16 output channels, [k/2][16][2].
// One _mm256_madd_epi16 of a broadcast A pair with a B vector adds two products for 8 channels
// into int32 lanes: |a| <= 255, |w| <= 128, so a pair sum is far from overflowing. Integer sums
// are exact, so every path gives identical results; the requantization is gemmlowp/TFLite's, the
// same arithmetic as the Swift `QuantizedMultiplier.apply`.
#include "modelkit_kernels.h"
#include "igemm_vnni.h"
#include "requantize_lanes.h"
#include "widen_s8.h"

#include <immintrin.h>
#include <string.h>

enum { NR = 16, MR = 6 };

long mk_igemm_depth_pairs(long k) { return (k + 1) / 2; }

long mk_igemm_packed_b_count(long n, long k) { return ((n + NR - 1) / NR) * NR * 2 * mk_igemm_depth_pairs(k); }

void mk_igemm_pack_b(long n, long k, const int8_t *b, long ldb, int16_t *packed) {
    mk_pack_int8_pair_panels(mk_kernels_active(), n, k, b, ldb, NR, packed);
}

// The scalar requantization, exactly `QuantizedMultiplier.apply` then offset and clamp.
static inline int8_t requantize_one(int32_t acc, int32_t multiplier, int32_t shift, const mk_requantization *r) {
    const int32_t left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    int64_t shifted = (int64_t)acc * ((int64_t)1 << left);
    int32_t x = shifted > INT32_MAX ? INT32_MAX : shifted < INT32_MIN ? INT32_MIN : (int32_t)shifted;
    int32_t high;
    if (x == INT32_MIN && multiplier == INT32_MIN) {
        high = INT32_MAX;
    } else {
        const int64_t product = (int64_t)x * multiplier;
        const int64_t nudge = product >= 0 ? (1 << 30) : (1 - (1 << 30));
        high = (int32_t)((product + nudge) / ((int64_t)1 << 31));
    }
    if (right > 0) {
        const int32_t mask = (int32_t)((1u << right) - 1);
        const int32_t remainder = high & mask;
        const int32_t threshold = (mask >> 1) + (high < 0 ? 1 : 0);
        high = (high >> right) + (remainder > threshold ? 1 : 0);
    }
    int32_t value = high + r->output_zero_point;
    value = value < r->minimum ? r->minimum : value > r->maximum ? r->maximum : value;
    return (int8_t)value;
}

static void igemm_portable(long m, long n, long k, const int16_t *a, long lda, const int16_t *packed,
                           const mk_requantization *r, int8_t *c, long ldc) {
    const long pairs = mk_igemm_depth_pairs(k);
    for (long i = 0; i < m; i++)
        for (long j = 0; j < n; j++) {
            const int16_t *panel = packed + (j / NR) * NR * 2 * pairs + (j % NR) * 2;
            int32_t acc = r->bias != NULL ? r->bias[j] : 0;
            for (long q = 0; q < pairs; q++)
                acc += (int32_t)a[i * lda + 2 * q] * panel[q * NR * 2] + (int32_t)a[i * lda + 2 * q + 1] * panel[q * NR * 2 + 1];
            c[i * ldc + j] = requantize_one(acc, r->multiplier[j], r->shift[j], r);
        }
}

// ---------------------------------------------------------------------------------------------
// AVX2.

// A 16-column panel's output constants: the bias (the sums' start) and the requantization.
typedef struct {
    __m256i bias[2];
    requant_lanes lanes[2];
    __m128i lo, hi;
} panel_output;

// One rows x 16 tile (rows <= MR, a constant after inlining so the accumulators stay in registers).
__attribute__((target("avx2"), always_inline))
static inline void tile_avx2(const long rows, long pairs, const int16_t *a, long lda, const int16_t *panel,
                             const panel_output *o, int8_t *c, long ldc, long cols) {
    __m256i acc[MR][2];
    for (long i = 0; i < rows; i++) acc[i][0] = o->bias[0], acc[i][1] = o->bias[1];
    for (long q = 0; q < pairs; q++) {
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(panel + q * 2 * NR));
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(panel + q * 2 * NR + 16));
        for (long i = 0; i < rows; i++) {
            int32_t pair;
            memcpy(&pair, a + i * lda + 2 * q, sizeof(pair));
            const __m256i x = _mm256_set1_epi32(pair);
            acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(x, b0));
            acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(x, b1));
        }
    }
    for (long i = 0; i < rows; i++)
        requant_store16(c + i * ldc, requant_lanes_apply(acc[i][0], &o->lanes[0]),
                        requant_lanes_apply(acc[i][1], &o->lanes[1]), o->lo, o->hi, cols);
}

__attribute__((target("avx2")))
static void igemm_avx2(long m, long n, long k, const int16_t *a, long lda, const int16_t *packed,
                       const mk_requantization *r, int8_t *c, long ldc) {
    const long pairs = mk_igemm_depth_pairs(k);
    for (long j0 = 0; j0 < n; j0 += NR) {
        const long cols = n - j0 < NR ? n - j0 : NR;
        panel_output o;
        int32_t bias[NR] = {0};
        for (long j = 0; j < cols && r->bias != NULL; j++) bias[j] = r->bias[j0 + j];
        for (int h = 0; h < 2; h++) {
            o.bias[h] = _mm256_loadu_si256((const __m256i *)(bias + 8 * h));
            const long count = cols - 8 * h;
            requant_lanes_make(&o.lanes[h], r->multiplier + j0 + 8 * h, r->shift + j0 + 8 * h, r->output_zero_point,
                               count < 0 ? 0 : count);
        }
        o.lo = _mm_set1_epi8((char)r->minimum), o.hi = _mm_set1_epi8((char)r->maximum);
        const int16_t *panel = packed + j0 * 2 * pairs;
        long i = 0;
        for (; i + MR <= m; i += MR) tile_avx2(MR, pairs, a + i * lda, lda, panel, &o, c + i * ldc + j0, ldc, cols);
        switch (m - i) {
        case 5: tile_avx2(5, pairs, a + i * lda, lda, panel, &o, c + i * ldc + j0, ldc, cols); break;
        case 4: tile_avx2(4, pairs, a + i * lda, lda, panel, &o, c + i * ldc + j0, ldc, cols); break;
        case 3: tile_avx2(3, pairs, a + i * lda, lda, panel, &o, c + i * ldc + j0, ldc, cols); break;
        case 2: tile_avx2(2, pairs, a + i * lda, lda, panel, &o, c + i * ldc + j0, ldc, cols); break;
        case 1: tile_avx2(1, pairs, a + i * lda, lda, panel, &o, c + i * ldc + j0, ldc, cols); break;
        default: break;
        }
    }
}

// The vector requantization covers right shifts only (multipliers below 1, the normal case).
static int right_shifts_only(long n, const int32_t *shift) {
    for (long j = 0; j < n; j++)
        if (shift[j] > 0) return 0;
    return 1;
}

void mk_igemm_requantize_path(int path, long m, long n, long k, const int16_t *a, long lda, const int16_t *packed_b,
                              const mk_requantization *r, int8_t *c, long ldc) {
    if (m <= 0 || n <= 0) return;
    const int clamped = mk_kernels_clamp(path);
    if (clamped >= MK_KERNELS_AVX512 && mk_cpu_has_avx512_vnni() && right_shifts_only(n, r->shift))
        mk_igemm_requantize_vnni(m, n, k, a, lda, packed_b, r, c, ldc);
    else if (clamped >= MK_KERNELS_AVX2 && right_shifts_only(n, r->shift))
        igemm_avx2(m, n, k, a, lda, packed_b, r, c, ldc);
    else
        igemm_portable(m, n, k, a, lda, packed_b, r, c, ldc);
}

void mk_igemm_requantize(long m, long n, long k, const int16_t *a, long lda, const int16_t *packed_b,
                         const mk_requantization *r, int8_t *c, long ldc) {
    mk_igemm_requantize_path(mk_kernels_active(), m, n, k, a, lda, packed_b, r, c, ldc);
}

// ---------------------------------------------------------------------------------------------
// Left-matrix preparation: int8 codes minus the zero point, widened, rows padded to an even depth.

void mk_widen_rows_i8(long rows, long k, const int8_t *x, long ldx, int32_t zero_point, int16_t *y, long ldy) {
    for (long i = 0; i < rows; i++) {
        long p = 0;
        for (; p < k; p++) y[i * ldy + p] = (int16_t)(x[i * ldx + p] - zero_point);
        for (; p < ldy; p++) y[i * ldy + p] = 0;
    }
}

typedef void (*widen_fn)(const int8_t *, long, int32_t, int16_t *);

// The rows of im2col. With no dilation along x, a kernel row whose window lies inside the image
// is kw*c consecutive codes in NHWC, so it is widened in one call (the Fashion CNN's conv2: 96
// codes) rather than cell by cell; the per-cell walk remains for edges and dilation.
// Inlined into one function per path, so `widen` is a direct (inlined) call: conv1's single
// channel makes 3-code spans, where a call per span would cost more than the copy.
static inline __attribute__((always_inline)) void im2col_widen(widen_fn widen, const mk_conv_geometry *g, const int8_t *image, long p0, long p1,
                         int32_t zero_point, int16_t *columns, long ldc) {
    const long c = g->c, span = g->kw * c;
    if (g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pad_top == 0 && g->pad_left == 0 && g->oh == g->h &&
        g->ow == g->w && ldc == c) {
        // A 1x1 convolution's rows are the image's pixels, back to back: one widening pass, with
        // no per-pixel call or short tail (24 channels left 8 codes per pixel to scalar code).
        widen(image + p0 * c, (p1 - p0) * c, zero_point, columns);
        return;
    }
    for (long p = p0; p < p1; p++) {
        const long oy = p / g->ow, ox = p - oy * g->ow;
        const long top = oy * g->sh - g->pad_top, left = ox * g->sw - g->pad_left;
        const int row_inside = left >= 0 && left + (g->kw - 1) * g->dw < g->w;
        int16_t *row = columns + (p - p0) * ldc;
        for (long ky = 0; ky < g->kh; ky++) {
            const long iy = top + ky * g->dh;
            int16_t *cells = row + ky * span;
            if (iy < 0 || iy >= g->h) {
                memset(cells, 0, (size_t)span * sizeof(int16_t));
            } else if (row_inside && g->dw == 1) {
                widen(image + (iy * g->w + left) * c, span, zero_point, cells);
            } else {
                for (long kx = 0; kx < g->kw; kx++) {
                    const long ix = left + kx * g->dw;
                    int16_t *cell = cells + kx * c;
                    if (ix < 0 || ix >= g->w)
                        memset(cell, 0, (size_t)c * sizeof(int16_t));
                    else
                        widen(image + (iy * g->w + ix) * c, c, zero_point, cell);
                }
            }
        }
        for (long q = g->kh * span; q < ldc; q++) row[q] = 0;
    }
}

__attribute__((target("avx2"))) static void im2col_widen_avx2(const mk_conv_geometry *g, const int8_t *image, long p0,
                                                               long p1, int32_t zero_point, int16_t *columns, long ldc) {
    im2col_widen(widen_avx2, g, image, p0, p1, zero_point, columns, ldc);
}

static void im2col_widen_portable(const mk_conv_geometry *g, const int8_t *image, long p0, long p1, int32_t zero_point,
                                  int16_t *columns, long ldc) {
    im2col_widen(widen_portable, g, image, p0, p1, zero_point, columns, ldc);
}

void mk_im2col_i8_widen_path(int path, const mk_conv_geometry *g, const int8_t *image, long p0, long p1,
                             int32_t zero_point, int16_t *columns, long ldc) {
    if (mk_kernels_clamp(path) >= MK_KERNELS_AVX2)
        im2col_widen_avx2(g, image, p0, p1, zero_point, columns, ldc);
    else
        im2col_widen_portable(g, image, p0, p1, zero_point, columns, ldc);
}

void mk_im2col_i8_widen(const mk_conv_geometry *g, const int8_t *image, long p0, long p1, int32_t zero_point,
                        int16_t *columns, long ldc) {
    mk_im2col_i8_widen_path(mk_kernels_active(), g, image, p0, p1, zero_point, columns, ldc);
}
