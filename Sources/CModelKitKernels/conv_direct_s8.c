// Direct int8 convolution: the packed int16-pair GEMM of igemm_packed.c with every left-matrix row
// read in place from the input, so there is no im2col matrix. The input rows a block of output
// pixels needs are widened once to (code - zero point) as int16 in a zero-bordered copy (padding
// becomes zeros, which add nothing), so every window lies inside it: a window is kh kernel rows of
// `segments` runs of contiguous values (one run of kw*c values without dilation along x, else kw
// runs of c). Each run is read as ceil(length/2) int16 pairs; after an odd run the pair's second
// value belongs to the next pixel and meets a zero weight. Sums are exact integers, so every path
// gives the same result; the requantization is the GEMM's.
#include "modelkit_kernels.h"
#include "requantize.h"
#include "requantize_lanes.h"
#include "widen_s8.h"

#include <immintrin.h>
#include <string.h>

enum { NR = 16, MR = 6 };

// How one window is walked through the widened rows (int16 offsets from the window's corner).
typedef struct {
    long kh, row_step;        // kernel rows, dh padded rows apart
    long segments, segment_step;  // runs per kernel row, dw * c apart (one run when dw == 1)
    long length, run_pairs;   // values per run and the pairs it is read as
    long pixel_row, sh, sw, c, ow;  // padded row length in values; the output walk
} window_walk;

long mk_conv_s8_direct_padded_height(const mk_conv_geometry *g) { return (g->oh - 1) * g->sh + (g->kh - 1) * g->dh + 1; }
long mk_conv_s8_direct_padded_width(const mk_conv_geometry *g) { return (g->ow - 1) * g->sw + (g->kw - 1) * g->dw + 1; }

static window_walk make_walk(const mk_conv_geometry *g) {
    window_walk w;
    const long width = mk_conv_s8_direct_padded_width(g);
    w.kh = g->kh;
    w.row_step = g->dh * width * g->c;
    w.segments = g->dw == 1 ? 1 : g->kw;
    w.segment_step = g->dw * g->c;
    w.length = g->dw == 1 ? g->kw * g->c : g->c;
    w.run_pairs = (w.length + 1) / 2;
    w.pixel_row = width * g->c;
    w.sh = g->sh, w.sw = g->sw, w.c = g->c, w.ow = g->ow;
    return w;
}

long mk_conv_s8_direct_pairs(const mk_conv_geometry *g) {
    const window_walk w = make_walk(g);
    return w.kh * w.segments * w.run_pairs;
}

long mk_conv_s8_direct_packed_count(const mk_conv_geometry *g, long n) {
    return ((n + NR - 1) / NR) * NR * 2 * mk_conv_s8_direct_pairs(g);
}

// The weight [n][kh][kw][c] in mk_igemm_pack_b's panel layout over the window walk's pairs: run s
// (in walk order) holds weight values s*length ... s*length + length - 1, a zero after an odd run.
void mk_conv_s8_direct_pack(const mk_conv_geometry *g, long n, const int8_t *weight, int16_t *packed) {
    const window_walk w = make_walk(g);
    const long runs = w.kh * w.segments, pairs = runs * w.run_pairs, depth = g->kh * g->kw * g->c;
    for (long j0 = 0; j0 < n; j0 += NR) {
        int16_t *panel = packed + j0 * 2 * pairs;
        for (long s = 0; s < runs; s++)
            for (long t = 0; t < w.run_pairs; t++)
                for (long j = 0; j < NR; j++)
                    for (long e = 0; e < 2; e++) {
                        const long position = 2 * t + e, q = s * w.run_pairs + t;
                        panel[(q * NR + j) * 2 + e] =
                            j0 + j < n && position < w.length ? weight[(j0 + j) * depth + s * w.length + position] : 0;
                    }
    }
}

long mk_conv_s8_direct_rows_count(const mk_conv_geometry *g, long rows) {
    return rows * mk_conv_s8_direct_padded_width(g) * g->c + 2;
}

void mk_conv_s8_direct_widen(int path, const mk_conv_geometry *g, const int8_t *image, int32_t zero_point, long y0,
                             long y1, int16_t *rows) {
    const long c = g->c, width = mk_conv_s8_direct_padded_width(g), line = width * c;
    // The image columns the padded width covers: [first, last) at padded columns from pad_left.
    const long before = g->pad_left < width ? g->pad_left : width;
    long inside = g->w < width - before ? g->w : width - before;
    if (inside < 0) inside = 0;
    const int avx2 = mk_kernels_clamp(path) >= MK_KERNELS_AVX2;
    for (long y = y0; y < y1; y++) {
        int16_t *dst = rows + (y - y0) * line;
        const long iy = y - g->pad_top;
        if (iy < 0 || iy >= g->h) {
            memset(dst, 0, (size_t)line * sizeof(int16_t));
            continue;
        }
        memset(dst, 0, (size_t)(before * c) * sizeof(int16_t));
        const int8_t *src = image + iy * g->w * c;
        if (avx2) widen_avx2(src, inside * c, zero_point, dst + before * c);
        else widen_portable(src, inside * c, zero_point, dst + before * c);
        memset(dst + (before + inside) * c, 0, (size_t)((width - before - inside) * c) * sizeof(int16_t));
    }
    // The pair read after an odd last run may pass the last row by one value.
    rows[(y1 - y0) * line] = rows[(y1 - y0) * line + 1] = 0;
}

// Pixel p's window corner in rows that start at padded row y0.
static inline const int16_t *corner(const window_walk *w, const int16_t *rows, long y0, long p) {
    const long oy = p / w->ow, ox = p - oy * w->ow;
    return rows + (oy * w->sh - y0) * w->pixel_row + ox * w->sw * w->c;
}

static int8_t finish_one(int32_t acc, long j, const mk_requantization *r) {
    int32_t value = requantize_one(acc, r->multiplier[j], r->shift[j]) + r->output_zero_point;
    value = value < r->minimum ? r->minimum : value > r->maximum ? r->maximum : value;
    return (int8_t)value;
}

// Channel j's sum (bias included) over the window at x.
static int32_t window_sum(const window_walk *w, const int16_t *x, const int16_t *packed, long pairs, long j,
                          const mk_requantization *r) {
    const int16_t *b = packed + (j / NR) * NR * 2 * pairs + (j % NR) * 2;
    int32_t acc = r->bias != NULL ? r->bias[j] : 0;
    for (long ky = 0; ky < w->kh; ky++)
        for (long s = 0; s < w->segments; s++) {
            const int16_t *a = x + ky * w->row_step + s * w->segment_step;
            for (long t = 0; t < w->run_pairs; t++, b += 2 * NR)
                acc += (int32_t)a[2 * t] * b[0] + (int32_t)a[2 * t + 1] * b[1];
        }
    return acc;
}

static void direct_portable(const window_walk *w, const int16_t *rows, long y0, long p0, long p1, long n,
                            const int16_t *packed, const mk_requantization *r, int8_t *out, long ldc) {
    const long pairs = w->kh * w->segments * w->run_pairs;
    for (long p = p0; p < p1; p++)
        for (long j = 0; j < n; j++)
            out[(p - p0) * ldc + j] = finish_one(window_sum(w, corner(w, rows, y0, p), packed, pairs, j, r), j, r);
}

// The pooled form: the requantization is monotonic (non-decreasing), so the max of requantized
// values is the requantized max of the sums; each window is requantized once.
static void direct_maxpool_portable(const window_walk *w, const mk_pool_window *pool, const int16_t *rows, long y0,
                                    long q0, long q1, long n, const int16_t *packed, const mk_requantization *r,
                                    int8_t *out, long ldc) {
    const long pairs = w->kh * w->segments * w->run_pairs;
    for (long q = q0; q < q1; q++) {
        const long py = q / pool->ow, px = q - py * pool->ow;
        for (long j = 0; j < n; j++) {
            int32_t best = INT32_MIN;
            for (long a = 0; a < pool->kh; a++)
                for (long b = 0; b < pool->kw; b++) {
                    const long p = (py * pool->sh + a) * w->ow + px * pool->sw + b;
                    const int32_t sum = window_sum(w, corner(w, rows, y0, p), packed, pairs, j, r);
                    best = sum > best ? sum : best;
                }
            out[(q - q0) * ldc + j] = finish_one(best, j, r);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// AVX2: 6 pixels x 16 channels per tile, as in igemm_packed.c, with a pointer per pixel.

// One pixel's pair at `at` times both weight vectors, into its two accumulators.
// A 16-channel panel's output constants.
typedef struct {
    __m256i bias[2];
    requant_lanes lanes[2];
    __m128i lo, hi;
} tile_output;

#define MADD_ROW(i)                                                                                   \
    if (rows > i) {                                                                               \
        int32_t pair;                                                                             \
        memcpy(&pair, x[i] + at, sizeof(pair));                                                   \
        const __m256i v = _mm256_set1_epi32(pair);                                                \
        c##i##0 = _mm256_add_epi32(c##i##0, _mm256_madd_epi16(v, b0));                            \
        c##i##1 = _mm256_add_epi32(c##i##1, _mm256_madd_epi16(v, b1));                            \
    }

// `rows` (<= MR, a constant after inlining) pixels whose windows start at x[0..rows) by 16 columns.
// Named accumulators: an array of them was kept in memory across the run loop.
__attribute__((target("avx2"), always_inline))
static inline void tile_avx2(const long rows, const window_walk *w, const int16_t *const *x, const int16_t *panel,
                             const tile_output *o, int8_t *c, long ldc, long cols, __m256i *best, const long *slot) {
    // The sums start from the bias.
    const __m256i bias0 = o->bias[0], bias1 = o->bias[1];
    __m256i c00 = bias0, c01 = bias1, c10 = bias0, c11 = bias1, c20 = bias0, c21 = bias1;
    __m256i c30 = bias0, c31 = bias1, c40 = bias0, c41 = bias1, c50 = bias0, c51 = bias1;
    const int16_t *b = panel;
    const long runs = w->kh * w->segments;
    long offset = 0, segment = 0;
    for (long run = 0; run < runs; run++) {
        for (long t = 0; t < w->run_pairs; t++, b += 2 * NR) {
            const __m256i b0 = _mm256_loadu_si256((const __m256i *)b);
            const __m256i b1 = _mm256_loadu_si256((const __m256i *)(b + NR));
            const long at = offset + 2 * t;
            MADD_ROW(0) MADD_ROW(1) MADD_ROW(2) MADD_ROW(3) MADD_ROW(4) MADD_ROW(5)
        }
        if (++segment == w->segments) {
            segment = 0;
            offset += w->row_step - (w->segments - 1) * w->segment_step;
        } else {
            offset += w->segment_step;
        }
    }
    const __m256i sums[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    if (best != NULL) {
        // Pooling: each pixel's sums raise its window's running maximum instead.
        for (long i = 0; i < rows; i++) {
            __m256i *m = best + 2 * slot[i];
            m[0] = _mm256_max_epi32(m[0], sums[i][0]);
            m[1] = _mm256_max_epi32(m[1], sums[i][1]);
        }
        return;
    }
    for (long i = 0; i < rows; i++)
        requant_store16(c + i * ldc, requant_lanes_apply(sums[i][0], &o->lanes[0]),
                        requant_lanes_apply(sums[i][1], &o->lanes[1]), o->lo, o->hi, cols);
}
#undef MADD_ROW

__attribute__((target("avx2")))
static void make_output(tile_output *o, const mk_requantization *r, long j0, long cols) {
    int32_t bias[NR] = {0};
    for (long j = 0; j < cols && r->bias != NULL; j++) bias[j] = r->bias[j0 + j];
    for (int h = 0; h < 2; h++) {
        o->bias[h] = _mm256_loadu_si256((const __m256i *)(bias + 8 * h));
        const long count = cols - 8 * h;
        requant_lanes_make(&o->lanes[h], r->multiplier + j0 + 8 * h, r->shift + j0 + 8 * h, r->output_zero_point,
                           count < 0 ? 0 : count);
    }
    o->lo = _mm_set1_epi8((char)r->minimum), o->hi = _mm_set1_epi8((char)r->maximum);
}

// One tile of `count` (<= MR) pixels, rows a constant per call.
__attribute__((target("avx2")))
static void tile_any(long count, const window_walk *w, const int16_t *const *x, const int16_t *panel,
                     const tile_output *o, int8_t *c, long ldc, long cols, __m256i *best, const long *slot) {
    switch (count) {
    case 6: tile_avx2(6, w, x, panel, o, c, ldc, cols, best, slot); break;
    case 5: tile_avx2(5, w, x, panel, o, c, ldc, cols, best, slot); break;
    case 4: tile_avx2(4, w, x, panel, o, c, ldc, cols, best, slot); break;
    case 3: tile_avx2(3, w, x, panel, o, c, ldc, cols, best, slot); break;
    case 2: tile_avx2(2, w, x, panel, o, c, ldc, cols, best, slot); break;
    default: tile_avx2(1, w, x, panel, o, c, ldc, cols, best, slot); break;
    }
}

__attribute__((target("avx2")))
static void direct_avx2(const window_walk *w, const int16_t *rows, long y0, long p0, long p1, long n,
                        const int16_t *packed, const mk_requantization *r, int8_t *out, long ldc) {
    const long pairs = w->kh * w->segments * w->run_pairs;
    // Panel by panel: a panel's weights (2 * pairs * 16 int16) stay in L1 while every pixel uses them.
    for (long j0 = 0; j0 < n; j0 += NR) {
        const long cols = n - j0 < NR ? n - j0 : NR;
        tile_output o;
        make_output(&o, r, j0, cols);
        const int16_t *panel = packed + j0 * 2 * pairs;
        long oy = p0 / w->ow, ox = p0 - oy * w->ow;
        for (long i0 = p0; i0 < p1; i0 += MR) {
            const long count = p1 - i0 < MR ? p1 - i0 : MR;
            const int16_t *x[MR];
            for (long i = 0; i < count; i++) {
                x[i] = rows + (oy * w->sh - y0) * w->pixel_row + ox * w->sw * w->c;
                if (++ox == w->ow) ox = 0, oy++;
            }
            int8_t *c = out + (i0 - p0) * ldc + j0;
            switch (count) {
            case 6: tile_avx2(6, w, x, panel, &o, c, ldc, cols, NULL, NULL); break;
            case 5: tile_avx2(5, w, x, panel, &o, c, ldc, cols, NULL, NULL); break;
            case 4: tile_avx2(4, w, x, panel, &o, c, ldc, cols, NULL, NULL); break;
            case 3: tile_avx2(3, w, x, panel, &o, c, ldc, cols, NULL, NULL); break;
            case 2: tile_avx2(2, w, x, panel, &o, c, ldc, cols, NULL, NULL); break;
            default: tile_avx2(1, w, x, panel, &o, c, ldc, cols, NULL, NULL); break;
            }
        }
    }
}

// Pooled pixels per pass: their running maxima (16 channels each) stay in L1.
enum { POOLED = 16 };

__attribute__((target("avx2")))
static void direct_maxpool_avx2(const window_walk *w, const mk_pool_window *pool, const int16_t *rows, long y0,
                                long q0, long q1, long n, const int16_t *packed, const mk_requantization *r,
                                int8_t *out, long ldc) {
    const long pairs = w->kh * w->segments * w->run_pairs;
    __m256i best[2 * POOLED];
    for (long j0 = 0; j0 < n; j0 += NR) {
        const long cols = n - j0 < NR ? n - j0 : NR;
        tile_output o;
        make_output(&o, r, j0, cols);
        const int16_t *panel = packed + j0 * 2 * pairs;
        for (long c0 = q0; c0 < q1; c0 += POOLED) {
            const long count = q1 - c0 < POOLED ? q1 - c0 : POOLED;
            for (long k = 0; k < 2 * count; k++) best[k] = _mm256_set1_epi32(INT32_MIN);
            // Tiles of any MR window cells, each cell's sums going to its pooled pixel's slot.
            const int16_t *x[MR];
            long slot[MR], filled = 0;
            for (long q = c0; q < c0 + count; q++) {
                const long py = q / pool->ow, px = q - py * pool->ow;
                for (long a = 0; a < pool->kh; a++)
                    for (long b = 0; b < pool->kw; b++) {
                        const long oy = py * pool->sh + a, ox = px * pool->sw + b;
                        x[filled] = rows + (oy * w->sh - y0) * w->pixel_row + ox * w->sw * w->c;
                        slot[filled] = q - c0;
                        if (++filled == MR) {
                            tile_any(MR, w, x, panel, &o, NULL, 0, cols, best, slot);
                            filled = 0;
                        }
                    }
            }
            if (filled > 0) tile_any(filled, w, x, panel, &o, NULL, 0, cols, best, slot);
            for (long k = 0; k < count; k++)
                requant_store16(out + (c0 + k - q0) * ldc + j0, requant_lanes_apply(best[2 * k], &o.lanes[0]),
                                requant_lanes_apply(best[2 * k + 1], &o.lanes[1]), o.lo, o.hi, cols);
        }
    }
}

// The vector requantization covers right shifts only (multipliers below 1, the normal case).
static int right_shifts_only(long n, const int32_t *shift) {
    for (long j = 0; j < n; j++)
        if (shift[j] > 0) return 0;
    return 1;
}

void mk_conv_s8_direct(int path, const mk_conv_geometry *g, const int16_t *rows, long y0, long p0, long p1, long n,
                       const int16_t *packed, const mk_requantization *r, int8_t *out, long ldc) {
    if (p1 <= p0 || n <= 0) return;
    const window_walk w = make_walk(g);
    if (mk_kernels_clamp(path) >= MK_KERNELS_AVX2 && right_shifts_only(n, r->shift))
        direct_avx2(&w, rows, y0, p0, p1, n, packed, r, out, ldc);
    else
        direct_portable(&w, rows, y0, p0, p1, n, packed, r, out, ldc);
}

int mk_conv_s8_direct_maxpool_supported(const mk_conv_geometry *g, const mk_pool_window *pool) {
    return pool->kh >= 1 && pool->kw >= 1 && pool->sh >= pool->kh && pool->sw >= pool->kw && pool->oh >= 1 &&
           pool->ow >= 1 && (pool->oh - 1) * pool->sh + pool->kh <= g->oh && (pool->ow - 1) * pool->sw + pool->kw <= g->ow;
}

void mk_conv_s8_direct_maxpool(int path, const mk_conv_geometry *g, const mk_pool_window *pool, const int16_t *rows,
                               long y0, long q0, long q1, long n, const int16_t *packed, const mk_requantization *r,
                               int8_t *out, long ldc) {
    if (q1 <= q0 || n <= 0) return;
    const window_walk w = make_walk(g);
    if (mk_kernels_clamp(path) >= MK_KERNELS_AVX2 && right_shifts_only(n, r->shift))
        direct_maxpool_avx2(&w, pool, rows, y0, q0, q1, n, packed, r, out, ldc);
    else
        direct_maxpool_portable(&w, pool, rows, y0, q0, q1, n, packed, r, out, ldc);
}
