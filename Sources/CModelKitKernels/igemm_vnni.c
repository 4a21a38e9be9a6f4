// The AVX-512 VNNI path of the packed int8 GEMM (igemm_packed.c). It keeps that file's layouts
// (A as int16 codes minus the zero point, B as int16 pairs in 16-channel panels), so the plan and
// the other paths are untouched: VPDPWSSD multiplies a broadcast A pair by 16 channels' B pairs
// and adds both products to the int32 lanes in one instruction, where AVX2 needs VPMADDWD+VPADDD
// on half the lanes. A tile is up to 12 rows x 2 panels (32 channels): 24 accumulators of the 32
// zmm registers. Integer sums are exact and the requantization is the AVX2 one on 16 lanes with
// mask registers for the tails, so the results are identical to the portable path's.
#include "igemm_vnni.h"

#include <string.h>

#ifdef MK_AVX512_INTRINSICS_MODEL
// Tests compile this file with scalar models of the intrinsics (Tests/CAVX512Model), so the path
// runs, and is checked against the portable one, on CPUs without AVX-512.
#include "avx512_intrinsics_model.h"
#define VNNI_TARGET
#else
#include <immintrin.h>
#define VNNI_TARGET __attribute__((target("avx512f,avx512vnni")))
#endif

enum { NR = 16, MR = 12 };

// (x * m + 2^30) >> 31 per int32 lane, as the AVX2 path computes it (see igemm_packed.c).
VNNI_TARGET static inline __m512i doubling_high_mul(__m512i x, __m512i m) {
    const __m512i half = _mm512_set1_epi64((int64_t)1 << 30);
    const __m512i even = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epi32(x, m), half), 31);
    const __m512i odd = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), _mm512_srli_epi64(m, 32)), half);
    return _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(_mm512_srli_epi64(odd, 31), 32));
}

// Rounding right shift by `right` (>= 0) per lane, ties away from zero.
VNNI_TARGET static inline __m512i rounding_shift(__m512i x, __m512i right) {
    const __m512i one = _mm512_set1_epi32(1);
    const __m512i mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, right), one);
    const __m512i remainder = _mm512_and_si512(x, mask);
    const __m512i half_mask = _mm512_srai_epi32(mask, 1);
    const __mmask16 negative = _mm512_cmplt_epi32_mask(x, _mm512_setzero_si512());
    const __m512i threshold = _mm512_mask_add_epi32(half_mask, negative, half_mask, one);
    const __m512i shifted = _mm512_srav_epi32(x, right);
    return _mm512_mask_add_epi32(shifted, _mm512_cmpgt_epi32_mask(remainder, threshold), shifted, one);
}

typedef struct {
    __m512i bias, multiplier, right;
    __mmask16 columns;  // the panel's channels that exist (n need not be a multiple of 16)
} panel_params;

typedef struct {
    __m512i zero_point, minimum, maximum;
} output_params;

VNNI_TARGET static inline void store16(int8_t *dst, __m512i acc, const panel_params *p, const output_params *o) {
    __m512i v = rounding_shift(doubling_high_mul(_mm512_add_epi32(acc, p->bias), p->multiplier), p->right);
    v = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(v, o->zero_point), o->minimum), o->maximum);
    _mm512_mask_cvtsepi32_storeu_epi8(dst, p->columns, v);
}

// rows x (16 * panels) outputs; rows and panels are constants after inlining, so the
// accumulators stay in registers.
VNNI_TARGET __attribute__((always_inline)) static inline void tile(const long rows, const long panels, long pairs,
                                                                  const int16_t *a, long lda, const int16_t *panel0,
                                                                  const int16_t *panel1, const panel_params p[2],
                                                                  const output_params *o, int8_t *c, long ldc) {
    __m512i acc[MR][2];
    for (long i = 0; i < rows; i++) acc[i][0] = acc[i][1] = _mm512_setzero_si512();
    for (long q = 0; q < pairs; q++) {
        const __m512i b0 = _mm512_loadu_si512(panel0 + q * 2 * NR);
        const __m512i b1 = panels == 2 ? _mm512_loadu_si512(panel1 + q * 2 * NR) : _mm512_setzero_si512();
        for (long i = 0; i < rows; i++) {
            int32_t pair;
            memcpy(&pair, a + i * lda + 2 * q, sizeof(pair));
            const __m512i x = _mm512_set1_epi32(pair);
            acc[i][0] = _mm512_dpwssd_epi32(acc[i][0], x, b0);
            if (panels == 2) acc[i][1] = _mm512_dpwssd_epi32(acc[i][1], x, b1);
        }
    }
    for (long i = 0; i < rows; i++) {
        store16(c + i * ldc, acc[i][0], &p[0], o);
        if (panels == 2) store16(c + i * ldc + NR, acc[i][1], &p[1], o);
    }
}

#define TILE_CASE(rows)                                                                                   \
    case rows:                                                                                            \
        if (panels == 2)                                                                                  \
            tile(rows, 2, pairs, a, lda, panel0, panel1, p, o, c, ldc);                                   \
        else                                                                                              \
            tile(rows, 1, pairs, a, lda, panel0, panel1, p, o, c, ldc);                                   \
        break;

// `rows` (1...MR) rows of one column block.
VNNI_TARGET static void tile_rows(long rows, long panels, long pairs, const int16_t *a, long lda, const int16_t *panel0,
                                  const int16_t *panel1, const panel_params p[2], const output_params *o, int8_t *c,
                                  long ldc) {
    switch (rows) {
        TILE_CASE(12) TILE_CASE(11) TILE_CASE(10) TILE_CASE(9) TILE_CASE(8) TILE_CASE(7)
        TILE_CASE(6) TILE_CASE(5) TILE_CASE(4) TILE_CASE(3) TILE_CASE(2) TILE_CASE(1)
    default: break;
    }
}

VNNI_TARGET static panel_params load_panel_params(const mk_requantization *r, long j0, long count) {
    panel_params p;
    p.columns = count >= NR ? (__mmask16)0xFFFF : (__mmask16)((1u << count) - 1);
    p.bias = r->bias != NULL ? _mm512_maskz_loadu_epi32(p.columns, r->bias + j0) : _mm512_setzero_si512();
    p.multiplier = _mm512_maskz_loadu_epi32(p.columns, r->multiplier + j0);
    p.right = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_maskz_loadu_epi32(p.columns, r->shift + j0));
    return p;
}

VNNI_TARGET void mk_igemm_requantize_vnni(long m, long n, long k, const int16_t *a, long lda, const int16_t *packed,
                                          const mk_requantization *r, int8_t *c, long ldc) {
    const long pairs = mk_igemm_depth_pairs(k);
    const output_params o = {_mm512_set1_epi32(r->output_zero_point), _mm512_set1_epi32(r->minimum),
                             _mm512_set1_epi32(r->maximum)};
    for (long j0 = 0; j0 < n; j0 += 2 * NR) {
        const long cols = n - j0 < 2 * NR ? n - j0 : 2 * NR;
        const long panels = cols > NR ? 2 : 1;
        panel_params p[2];
        p[0] = load_panel_params(r, j0, cols < NR ? cols : NR);
        p[1] = load_panel_params(r, j0 + NR, panels == 2 ? cols - NR : 0);
        const int16_t *panel0 = packed + j0 * 2 * pairs;
        const int16_t *panel1 = panels == 2 ? panel0 + NR * 2 * pairs : panel0;
        for (long i = 0; i < m; i += MR) {
            const long rows = m - i < MR ? m - i : MR;
            tile_rows(rows, panels, pairs, a + i * lda, lda, panel0, panel1, p, &o, c + i * ldc + j0, ldc);
        }
    }
}

int mk_cpu_has_avx512_vnni(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni");
}
