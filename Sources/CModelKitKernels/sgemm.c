// Packed single-precision GEMM (Goto/BLIS loop order) with register-blocked micro-kernels and
// runtime CPU dispatch. Loops: N in NC blocks -> K in KC blocks (pack op(B)) -> M in MC blocks
// (pack op(A)) -> NR column panels -> MR row panels -> micro-kernel. A KC x NR micro-panel of B
// stays in L1 while the MC x KC block of A streams from L2.
#include "modelkit_kernels.h"

#include <immintrin.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

// The micro-kernel reads op(A)[i][p] at a[i*ars + p*aks] and the NR contiguous values of op(B) row p
// at b + p*bks, so row-major A, transposed A and row-major B need no packing; packed panels are
// the special case ars = 1, aks = MR, bks = NR.
typedef void (*micro_kernel)(long kc, const float *a, long ars, long aks, const float *b, long bks, float *c,
                             long ldc, float alpha, float beta);

typedef struct {
    long mr, nr, kc, mc, nc;
    micro_kernel kernel;
} gemm_config;

// What the epilogue clamps to after the bias: [lo, hi] when `on` (ReLU is [0, +inf], ReLU6 [0, 6]).
typedef struct {
    int on;
    float lo, hi;
} clamp_bounds;

// Writes alpha * acc + beta * c for one row of `n` values; c is not read when beta == 0.
static inline void store_row(float *c, const float *acc, long n, float alpha, float beta) {
    if (beta == 0.0f) {
        for (long j = 0; j < n; j++) c[j] = alpha * acc[j];
    } else {
        for (long j = 0; j < n; j++) c[j] = alpha * acc[j] + beta * c[j];
    }
}

// ---------------------------------------------------------------------------------------------
// Portable: 4 x 16, plain C the compiler may vectorise for the baseline ISA.
enum { P_MR = 4, P_NR = 16 };

static void kernel_portable(long kc, const float *a, long ars, long aks, const float *b, long bks, float *c,
                            long ldc, float alpha, float beta) {
    float acc[P_MR][P_NR];
    memset(acc, 0, sizeof(acc));
    for (long p = 0; p < kc; p++) {
        for (int i = 0; i < P_MR; i++) {
            const float ai = a[i * ars];
            for (int j = 0; j < P_NR; j++) acc[i][j] += ai * b[j];
        }
        a += aks;
        b += bks;
    }
    for (int i = 0; i < P_MR; i++) store_row(c + i * ldc, acc[i], P_NR, alpha, beta);
}

// ---------------------------------------------------------------------------------------------
// AVX2 + FMA: 6 x 16 (12 ymm accumulators, 2 for B, 1 broadcast).
enum { A2_MR = 6, A2_NR = 16 };

// The body of all AVX2 kernels; with `fused` (a constant after inlining) the final store adds
// bias[0..16) and clamps, exactly as the separate epilogue would (same operations, same order).
// `rows` (a constant too, 1..6) is how many rows of A and C the tile has: each row's sums take the
// same operations in the same order whatever the tile height, so results do not depend on it.
// `ahead`, when not NULL, is the B micro-panel the next tiles will read (A2_NR floats a step, like
// b): one of its cache lines is prefetched per step, so a plan-time packed weight that comes from
// memory (ResNet-50's 100 MB at batch 1) arrives before the next tile needs it. Each panel is a
// separate 16 KB run (panels are the whole depth apart), too short for the hardware prefetcher.
// `masked` (a constant): an edge panel with `cols` < 16 valid columns, whose C, bias and (with
// `narrow`, cols <= 8) second 8 columns are never touched: C is read and written through lane masks
// (B's panel is zero-padded, so it is read whole).
__attribute__((target("avx2,fma"), always_inline))
static inline void kernel_avx2_core(long kc, const float *a, long ars, long aks, const float *b, long bks, float *c,
                                    long ldc, float alpha, float beta, const int fused, const float *bias,
                                    clamp_bounds clamp, const int rows, const float *ahead, const int masked,
                                    const int narrow, long cols) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mask0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(masked ? (int)cols : 8), lanes);
    const __m256i mask1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(masked ? (int)cols - 8 : 8), lanes);
    __m256 acc[A2_MR][2];
    for (int i = 0; i < rows; i++) {
        acc[i][0] = _mm256_setzero_ps();
        acc[i][1] = _mm256_setzero_ps();
    }
    // One pointer per row, indexed by p: with a + i * ars advanced by aks each step, clang chained
    // five dependent address additions through the loop (about the FMA work of a step); now only
    // the index advances: 4-8% faster over the ResNet-50 GEMM shapes in 7 of 7 alternating runs.
    const float *row[A2_MR];
    for (int i = 0; i < rows; i++) row[i] = a + i * ars;
    for (long p = 0; p < kc; p++) {
        if (ahead != NULL) _mm_prefetch((const char *)(ahead + p * A2_NR), _MM_HINT_T0);
        const __m256 b0 = _mm256_loadu_ps(b);
        const __m256 b1 = _mm256_loadu_ps(b + 8);
#pragma clang loop unroll(full)
        for (int i = 0; i < rows; i++) {
            const __m256 ai = _mm256_broadcast_ss(row[i] + p * aks);
            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
            if (!narrow) acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
        }
        b += bks;
    }
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    const __m256 lo = _mm256_set1_ps(clamp.lo), hi = _mm256_set1_ps(clamp.hi);
    const int with_bias = fused && bias != NULL, with_clamp = fused && clamp.on;
    const __m256 b0 = !with_bias ? _mm256_setzero_ps() : masked ? _mm256_maskload_ps(bias, mask0) : _mm256_loadu_ps(bias);
    const __m256 b1 = !with_bias || narrow ? _mm256_setzero_ps()
                      : masked ? _mm256_maskload_ps(bias + 8, mask1) : _mm256_loadu_ps(bias + 8);
#pragma clang loop unroll(full)
    for (int i = 0; i < rows; i++) {
        float *row = c + i * ldc;
        __m256 v0 = _mm256_mul_ps(va, acc[i][0]), v1 = _mm256_mul_ps(va, acc[i][1]);
        if (beta != 0.0f) {
            v0 = _mm256_fmadd_ps(vb, masked ? _mm256_maskload_ps(row, mask0) : _mm256_loadu_ps(row), v0);
            if (!narrow)
                v1 = _mm256_fmadd_ps(vb, masked ? _mm256_maskload_ps(row + 8, mask1) : _mm256_loadu_ps(row + 8), v1);
        }
        if (with_bias) v0 = _mm256_add_ps(v0, b0), v1 = _mm256_add_ps(v1, b1);
        if (with_clamp) {
            v0 = _mm256_min_ps(_mm256_max_ps(v0, lo), hi);
            v1 = _mm256_min_ps(_mm256_max_ps(v1, lo), hi);
        }
        if (masked) {
            _mm256_maskstore_ps(row, mask0, v0);
            if (!narrow) _mm256_maskstore_ps(row + 8, mask1, v1);
        } else {
            _mm256_storeu_ps(row, v0);
            _mm256_storeu_ps(row + 8, v1);
        }
    }
}

__attribute__((target("avx2,fma"), always_inline))
static inline void kernel_avx2_body(long kc, const float *a, long ars, long aks, const float *b, long bks, float *c,
                                    long ldc, float alpha, float beta, const int fused, const float *bias,
                                    clamp_bounds clamp, const int rows, const float *ahead) {
    kernel_avx2_core(kc, a, ars, aks, b, bks, c, ldc, alpha, beta, fused, bias, clamp, rows, ahead, 0, 0, A2_NR);
}

// An edge panel's tile (1-15 columns, `n` rows) straight to C with masked loads and stores, the bias
// and clamp fused when `fused`: computing all 16 columns into a scratch tile, copying the valid ones
// with a scalar loop and a separate epilogue pass took MobileNetV2's 24-output 1x1 convolutions as
// long as 32 outputs. With at most 8 columns only the first 8 are computed. Same operations per
// element as the scratch path (alpha is 1 and beta 0 or 1 on the packed-weight path that calls it).
#define MK_AVX2_EDGE_KERNEL(n)                                                                                    \
    __attribute__((target("avx2,fma"))) static void kernel_avx2_edge##n(                                         \
        long kc, const float *a, long ars, long aks, const float *b, long bks, float *c, long ldc, float alpha,  \
        float beta, int fused, const float *bias, clamp_bounds clamp, long cols) {                               \
        if (cols <= 8) {                                                                                          \
            if (fused) kernel_avx2_core(kc, a, ars, aks, b, bks, c, ldc, alpha, beta, 1, bias, clamp, n, NULL, 1, 1, cols); \
            else kernel_avx2_core(kc, a, ars, aks, b, bks, c, ldc, alpha, beta, 0, NULL, clamp, n, NULL, 1, 1, cols);       \
        } else {                                                                                                  \
            if (fused) kernel_avx2_core(kc, a, ars, aks, b, bks, c, ldc, alpha, beta, 1, bias, clamp, n, NULL, 1, 0, cols); \
            else kernel_avx2_core(kc, a, ars, aks, b, bks, c, ldc, alpha, beta, 0, NULL, clamp, n, NULL, 1, 0, cols);       \
        }                                                                                                         \
    }
MK_AVX2_EDGE_KERNEL(1)
MK_AVX2_EDGE_KERNEL(2)
MK_AVX2_EDGE_KERNEL(3)
MK_AVX2_EDGE_KERNEL(4)
MK_AVX2_EDGE_KERNEL(5)
MK_AVX2_EDGE_KERNEL(6)
#undef MK_AVX2_EDGE_KERNEL

typedef void (*edge_tile_kernel)(long kc, const float *a, long ars, long aks, const float *b, long bks, float *c,
                                 long ldc, float alpha, float beta, int fused, const float *bias, clamp_bounds clamp,
                                 long cols);
static const edge_tile_kernel avx2_edge_tiles[A2_MR + 1] = {
    NULL, kernel_avx2_edge1, kernel_avx2_edge2, kernel_avx2_edge3, kernel_avx2_edge4, kernel_avx2_edge5, kernel_avx2_edge6,
};

__attribute__((target("avx2,fma")))
static void kernel_avx2(long kc, const float *a, long ars, long aks, const float *b, long bks, float *c, long ldc,
                        float alpha, float beta) {
    static const clamp_bounds none = {0, 0.0f, 0.0f};
    kernel_avx2_body(kc, a, ars, aks, b, bks, c, ldc, alpha, beta, 0, NULL, none, A2_MR, NULL);
}

// A full AVX2 tile of the last K block with the bias and clamp applied before its one store: the
// separate epilogue pass re-read and re-wrote every tile (~4% of a ResNet-50 run).
__attribute__((target("avx2,fma")))
static void kernel_avx2_fused(long kc, const float *a, long ars, long aks, const float *b, long bks, float *c,
                              long ldc, float alpha, float beta, const float *bias, clamp_bounds clamp) {
    kernel_avx2_body(kc, a, ars, aks, b, bks, c, ldc, alpha, beta, 1, bias, clamp, A2_MR, NULL);
}

// The last full-height tile over a packed-weight panel: as kernel_avx2 / kernel_avx2_fused, prefetching
// the next panel (`ahead`) as it goes.
__attribute__((target("avx2,fma")))
static void kernel_avx2_ahead(long kc, const float *a, long ars, long aks, const float *b, long bks, float *c,
                              long ldc, float alpha, float beta, int fused, const float *bias, clamp_bounds clamp,
                              const float *ahead) {
    if (fused) kernel_avx2_body(kc, a, ars, aks, b, bks, c, ldc, alpha, beta, 1, bias, clamp, A2_MR, ahead);
    else kernel_avx2_body(kc, a, ars, aks, b, bks, c, ldc, alpha, beta, 0, NULL, clamp, A2_MR, ahead);
}

// The last 1-5 rows of an M that is not a multiple of 6, as a tile of that height written straight
// to C (bias and clamp fused when `fused`): a 6-row tile through a scratch tile did up to 6x the
// multiply-adds, then a scalar store and a separate epilogue pass. ResNet-50's 7x7 maps have
// M = 49 = 8 x 6 + 1, its Winograd GEMMs 16 and 49 tiles: the padded tile was ~10% of those GEMMs.
#define MK_AVX2_ROWS_KERNEL(n)                                                                                   \
    __attribute__((target("avx2,fma"))) static void kernel_avx2_rows##n(                                        \
        long kc, const float *a, long ars, long aks, const float *b, long bks, float *c, long ldc, float alpha,  \
        float beta, int fused, const float *bias, clamp_bounds clamp, const float *ahead) {                      \
        if (fused) kernel_avx2_body(kc, a, ars, aks, b, bks, c, ldc, alpha, beta, 1, bias, clamp, n, ahead);     \
        else kernel_avx2_body(kc, a, ars, aks, b, bks, c, ldc, alpha, beta, 0, NULL, clamp, n, ahead);           \
    }
MK_AVX2_ROWS_KERNEL(1)
MK_AVX2_ROWS_KERNEL(2)
MK_AVX2_ROWS_KERNEL(3)
MK_AVX2_ROWS_KERNEL(4)
MK_AVX2_ROWS_KERNEL(5)
#undef MK_AVX2_ROWS_KERNEL

typedef void (*short_tile_kernel)(long kc, const float *a, long ars, long aks, const float *b, long bks, float *c,
                                  long ldc, float alpha, float beta, int fused, const float *bias, clamp_bounds clamp,
                                  const float *ahead);
static const short_tile_kernel avx2_short_tiles[A2_MR] = {
    NULL, kernel_avx2_rows1, kernel_avx2_rows2, kernel_avx2_rows3, kernel_avx2_rows4, kernel_avx2_rows5,
};

// ---------------------------------------------------------------------------------------------
// AVX-512F: 12 x 32 (24 zmm accumulators, 2 for B, broadcasts folded into the FMAs).
enum { A5_MR = 12, A5_NR = 32 };

__attribute__((target("avx512f")))
static void kernel_avx512(long kc, const float *a, long ars, long aks, const float *b, long bks, float *c,
                          long ldc, float alpha, float beta) {
    __m512 acc[A5_MR][2];
#pragma clang loop unroll(full)
    for (int i = 0; i < A5_MR; i++) {
        acc[i][0] = _mm512_setzero_ps();
        acc[i][1] = _mm512_setzero_ps();
    }
    for (long p = 0; p < kc; p++) {
        const __m512 b0 = _mm512_loadu_ps(b);
        const __m512 b1 = _mm512_loadu_ps(b + 16);
#pragma clang loop unroll(full)
        for (int i = 0; i < A5_MR; i++) {
            const __m512 ai = _mm512_set1_ps(a[i * ars]);
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
        }
        a += aks;
        b += bks;
    }
    const __m512 va = _mm512_set1_ps(alpha);
    if (beta == 0.0f) {
#pragma clang loop unroll(full)
        for (int i = 0; i < A5_MR; i++) {
            _mm512_storeu_ps(c + i * ldc, _mm512_mul_ps(va, acc[i][0]));
            _mm512_storeu_ps(c + i * ldc + 16, _mm512_mul_ps(va, acc[i][1]));
        }
    } else {
        const __m512 vb = _mm512_set1_ps(beta);
#pragma clang loop unroll(full)
        for (int i = 0; i < A5_MR; i++) {
            float *row = c + i * ldc;
            _mm512_storeu_ps(row, _mm512_fmadd_ps(vb, _mm512_loadu_ps(row), _mm512_mul_ps(va, acc[i][0])));
            _mm512_storeu_ps(row + 16, _mm512_fmadd_ps(vb, _mm512_loadu_ps(row + 16), _mm512_mul_ps(va, acc[i][1])));
        }
    }
}

static const gemm_config configs[3] = {
    {P_MR, P_NR, 256, P_MR * 32, 2048, kernel_portable},
    {A2_MR, A2_NR, 256, A2_MR * 24, 2048, kernel_avx2},
    {A5_MR, A5_NR, 256, A5_MR * 16, 2048, kernel_avx512},
};

// ---------------------------------------------------------------------------------------------
// Dispatch.

int mk_kernels_best_supported(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return MK_KERNELS_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return MK_KERNELS_AVX2;
    return MK_KERNELS_PORTABLE;
}

int mk_kernels_clamp(int requested) {
    const int best = mk_kernels_best_supported();
    if (requested < MK_KERNELS_PORTABLE) return MK_KERNELS_PORTABLE;
    return requested > best ? best : requested;
}

static atomic_int active_path = -1;

int mk_kernels_active(void) {
    int path = atomic_load_explicit(&active_path, memory_order_relaxed);
    if (path >= 0) return path;
    path = mk_kernels_best_supported();
    const int forced = mk_kernels_from_name(getenv("MODELKIT_KERNELS"));
    if (forced >= 0) path = mk_kernels_clamp(forced);
    // Every thread computes the same value, so a race only repeats the work.
    atomic_store_explicit(&active_path, path, memory_order_relaxed);
    return path;
}

int mk_kernels_from_name(const char *name) {
    if (name == NULL) return -1;
    if (strcmp(name, "portable") == 0) return MK_KERNELS_PORTABLE;
    if (strcmp(name, "avx2") == 0) return MK_KERNELS_AVX2;
    if (strcmp(name, "avx512") == 0) return MK_KERNELS_AVX512;
    return -1;
}

const char *mk_kernels_path_name(int path) {
    switch (path) {
    case MK_KERNELS_AVX512: return "avx512";
    case MK_KERNELS_AVX2: return "avx2";
    default: return "portable";
    }
}

// ---------------------------------------------------------------------------------------------
// Packing. Per-thread buffers, grown on demand and kept for the thread's lifetime.

static _Thread_local float *packed_a_buffer;
static _Thread_local size_t packed_a_capacity;
static _Thread_local float *packed_b_buffer;
static _Thread_local size_t packed_b_capacity;

static float *reserve(float **buffer, size_t *capacity, size_t count) {
    if (count <= *capacity) return *buffer;
    free(*buffer);
    const size_t bytes = ((count * sizeof(float)) + 63) & ~(size_t)63;
    *buffer = aligned_alloc(64, bytes);
    *capacity = *buffer ? count : 0;
    return *buffer;
}

// Interleaves `count` row streams (a constant at each call site, so the inner loop unrolls).
static inline __attribute__((always_inline)) void gather_rows(float *dst, const float *const *src, long kc, long count) {
    for (long p = 0; p < kc; p++)
        for (long i = 0; i < count; i++) *dst++ = src[i][p];
}

// op(A)[i0.., k0..] block of mc x kc into MR-row panels: panel-major, then k, then the MR rows.
static void pack_a(int trans, const float *a, long lda, long i0, long k0, long mc, long kc, long mr, float *dst) {
    for (long ip = 0; ip < mc; ip += mr) {
        const long rows = mc - ip < mr ? mc - ip : mr;
        if (trans) {
            for (long p = 0; p < kc; p++) {
                const float *src = a + (k0 + p) * lda + i0 + ip;
                float *out = dst + p * mr;
                long i = 0;
                for (; i < rows; i++) out[i] = src[i];
                for (; i < mr; i++) out[i] = 0.0f;
            }
        } else {
            // Read the MR row streams in step and write the panel contiguously.
            const float *src[A5_MR];
            for (long i = 0; i < mr; i++) src[i] = i < rows ? a + (i0 + ip + i) * lda + k0 : NULL;
            if (rows == mr && mr == A2_MR) {
                gather_rows(dst, src, kc, A2_MR);
            } else if (rows == mr && mr == P_MR) {
                gather_rows(dst, src, kc, P_MR);
            } else if (rows == mr && mr == A5_MR) {
                gather_rows(dst, src, kc, A5_MR);
            } else {
                for (long p = 0; p < kc; p++)
                    for (long i = 0; i < mr; i++) dst[p * mr + i] = i < rows ? src[i][p] : 0.0f;
            }
        }
        dst += mr * kc;
    }
}

// op(B)[k0.., j0..] block of kc x nc into NR-column panels: panel-major, then k, then the NR columns.
static void pack_b(int trans, const float *b, long ldb, long k0, long j0, long kc, long nc, long nr, float *dst) {
    for (long jp = 0; jp < nc; jp += nr) {
        const long cols = nc - jp < nr ? nc - jp : nr;
        if (trans) {
            for (long j = 0; j < cols; j++) {
                const float *src = b + (j0 + jp + j) * ldb + k0;
                for (long p = 0; p < kc; p++) dst[p * nr + j] = src[p];
            }
            for (long j = cols; j < nr; j++)
                for (long p = 0; p < kc; p++) dst[p * nr + j] = 0.0f;
        } else {
            for (long p = 0; p < kc; p++) {
                const float *src = b + (k0 + p) * ldb + j0 + jp;
                float *out = dst + p * nr;
                // Constant-size copies for full panels: inline vector moves, no memcpy call.
                if (cols == 32 && nr == 32) {
                    memcpy(out, src, 32 * sizeof(float));
                } else if (cols == 16 && nr == 16) {
                    memcpy(out, src, 16 * sizeof(float));
                } else {
                    long j = 0;
                    for (; j < cols; j++) out[j] = src[j];
                    for (; j < nr; j++) out[j] = 0.0f;
                }
            }
        }
        dst += nr * kc;
    }
}

// ---------------------------------------------------------------------------------------------
// Driver.

static void scale_c(long m, long n, float beta, float *c, long ldc) {
    for (long i = 0; i < m; i++) {
        float *row = c + i * ldc;
        if (beta == 0.0f) memset(row, 0, (size_t)n * sizeof(float));
        else if (beta != 1.0f)
            for (long j = 0; j < n; j++) row[j] *= beta;
    }
}

static const clamp_bounds no_clamp = {0, 0.0f, 0.0f};
static const clamp_bounds relu_clamp = {1, 0.0f, INFINITY};

// Adds bias[j] to every row of a finished rows x cols tile and/or clamps it, while the tile is
// still in L1: this replaces a separate bias broadcast and activation pass over the whole output.
// The clamp is `v > lo ? v : lo`, then `v < hi ? v : hi` (NaN becomes lo, like ReLU's 0).
static void epilogue_portable(float *tile, long ldc, long rows, long cols, const float *bias, clamp_bounds clamp) {
    for (long i = 0; i < rows; i++) {
        float *row = tile + i * ldc;
        if (bias != NULL)
            for (long j = 0; j < cols; j++) row[j] += bias[j];
        if (clamp.on)
            for (long j = 0; j < cols; j++) {
                const float v = row[j] > clamp.lo ? row[j] : clamp.lo;
                row[j] = v < clamp.hi ? v : clamp.hi;
            }
    }
}

// The auto-vectorised loop stayed scalar (bias and tile may alias as far as the compiler knows;
// measured ~4% of a step), so the AVX2 path is written out. max(v, lo) returns its second operand
// for NaN and for ±0 against 0, i.e. lo, exactly like `v > lo ? v : lo`; min(v, hi) likewise.
__attribute__((target("avx2,fma")))
static void epilogue_avx2(float *tile, long ldc, long rows, long cols, const float *bias, clamp_bounds clamp) {
    const __m256 lo = _mm256_set1_ps(clamp.lo), hi = _mm256_set1_ps(clamp.hi);
    for (long i = 0; i < rows; i++) {
        float *row = tile + i * ldc;
        long j = 0;
        for (; j + 8 <= cols; j += 8) {
            __m256 v = _mm256_loadu_ps(row + j);
            if (bias != NULL) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + j));
            if (clamp.on) v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
            _mm256_storeu_ps(row + j, v);
        }
        for (; j < cols; j++) {
            float v = row[j];
            if (bias != NULL) v += bias[j];
            if (clamp.on) {
                v = v > clamp.lo ? v : clamp.lo;
                v = v < clamp.hi ? v : clamp.hi;
            }
            row[j] = v;
        }
    }
}

static void epilogue(int path, float *tile, long ldc, long rows, long cols, const float *bias, clamp_bounds clamp) {
    if (path >= MK_KERNELS_AVX2) epilogue_avx2(tile, ldc, rows, cols, bias, clamp);
    else epilogue_portable(tile, ldc, rows, cols, bias, clamp);
}

// The K block size: at most cfg_kc, but split evenly (rounded up to 8) so that e.g. k = 288 runs as
// 2 x 144 instead of 256 + a 32-deep tail block that re-reads and re-writes all of C for little work.
// A k only slightly above cfg_kc (up to 1.25x) stays one block: its B micro-panel still fits L1.
static long block_k(long k, long cfg_kc) {
    if (k <= cfg_kc + cfg_kc / 4) return k;
    const long blocks = (k + cfg_kc - 1) / cfg_kc;
    const long kc = (k + blocks - 1) / blocks;
    return (kc + 7) & ~7L;
}

// The packed micro-panel read after column panel `j0` of K block [pc, pc + kc): the next column
// panel of the same block, else the first panel of the next block; NULL after the last. Only ever
// prefetched (which cannot fault), so a shorter next block read kc steps deep does no harm.
static inline const float *next_packed_panel(const float *packed, long n, long k, long j0, long pc, long kc, long nr) {
    const long panels = (n + nr - 1) / nr * nr;
    if (j0 + nr < panels) return packed + (j0 + nr) * k + pc * nr;
    if (pc + kc < k) return packed + (pc + kc) * nr;
    return NULL;
}

static void sgemm_driver(int path, int trans_a, int trans_b, long m, long n, long k, float alpha,
                         const float *a, long lda, const float *b, long ldb, float beta, float *c, long ldc,
                         const float *bias, clamp_bounds clamp, const float *packed_b) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0 || alpha == 0.0f) {
        scale_c(m, n, beta, c, ldc);
        if (bias != NULL || clamp.on) epilogue(mk_kernels_clamp(path), c, ldc, m, n, bias, clamp);
        return;
    }
    const int clamped = mk_kernels_clamp(path);
    gemm_config cfg = configs[clamped];
    cfg.kc = block_k(k, cfg.kc);
    const int has_epilogue = bias != NULL || clamp.on;
    const long mr = cfg.mr, nr = cfg.nr;
    const long kc_max = k < cfg.kc ? k : cfg.kc;
    const long nc_max = n < cfg.nc ? ((n + nr - 1) / nr) * nr : cfg.nc;
    // Packing costs a pass over the block; it pays when the panel is reused often (B across M,
    // A across N) or when a power-of-two row stride would make the kernel's reads alias in cache.
    // Otherwise panels are read in place; edge panels are always packed (zero padding).
    const int pack_all_b = packed_b == NULL && (trans_b || m >= 32 * mr || (ldb % 1024) == 0);
    const int pack_all_a = !trans_a && (n >= 32 * nr || (lda % 1024) == 0);
    const long mc_max = m < cfg.mc ? ((m + mr - 1) / mr) * mr : cfg.mc;
    float *pa = reserve(&packed_a_buffer, &packed_a_capacity, (size_t)(mc_max * kc_max));
    float *pb = packed_b != NULL ? NULL : reserve(&packed_b_buffer, &packed_b_capacity, (size_t)(nc_max * kc_max));
    if (pa == NULL || (pb == NULL && packed_b == NULL)) abort();  // Out of memory for a few hundred KB: nothing sane to do.
    float edge[A5_MR * A5_NR];               // Largest MR x NR of all paths.

    for (long jc = 0; jc < n; jc += cfg.nc) {
        const long nc = n - jc < cfg.nc ? n - jc : cfg.nc;
        const long full_cols = (nc / nr) * nr;
        for (long pc = 0; pc < k; pc += cfg.kc) {
            const long kc = k - pc < cfg.kc ? k - pc : cfg.kc;
            const float beta_block = pc == 0 ? beta : 1.0f;
            if (pack_all_b) {
                pack_b(trans_b, b, ldb, pc, jc, kc, nc, nr, pb);
            } else if (full_cols < nc && packed_b == NULL) {
                pack_b(trans_b, b, ldb, pc, jc + full_cols, kc, nc - full_cols, nr, pb + full_cols * kc);
            }
            for (long ic = 0; ic < m; ic += cfg.mc) {
                const long mc = m - ic < cfg.mc ? m - ic : cfg.mc;
                const long full_rows = (mc / mr) * mr;
                if (pack_all_a) {
                    pack_a(trans_a, a, lda, ic, pc, mc, kc, mr, pa);
                } else if (full_rows < mc) {
                    pack_a(trans_a, a, lda, ic + full_rows, pc, mc - full_rows, kc, mr, pa + full_rows * kc);
                }
                for (long jr = 0; jr < nc; jr += nr) {
                    const long cols = nc - jr < nr ? nc - jr : nr;
                    const int direct_b = !pack_all_b && cols == nr;
                    const float *panel_b = packed_b != NULL ? packed_b + (jc + jr) * k + pc * nr
                                           : direct_b ? b + pc * ldb + jc + jr : pb + jr * kc;
                    const long bks = direct_b && packed_b == NULL ? ldb : nr;
                    for (long ir = 0; ir < mc; ir += mr) {
                        const long rows = mc - ir < mr ? mc - ir : mr;
                        float *tile = c + (ic + ir) * ldc + jc + jr;
                        const float *panel_a;
                        long ars, aks;
                        if (rows < mr || pack_all_a) {
                            panel_a = pa + ir * kc, ars = 1, aks = mr;
                        } else if (trans_a) {
                            panel_a = a + pc * lda + ic + ir, ars = 1, aks = lda;
                        } else {
                            panel_a = a + (ic + ir) * lda + pc, ars = lda, aks = 1;
                        }
                        const int last_block = pc + kc >= k;
                        const int avx2 = cfg.kernel == kernel_avx2;
                        const int fused = has_epilogue && last_block && cols == nr && avx2;
                        // The last full-height tile over a plan-time packed panel prefetches the panel
                        // after it: the panel is nearly dead then, so the prefetch evicts little that
                        // later tiles read (from the first tile, L1's 32 KB could not hold both panels
                        // and the A tiles), and a full tile's steps give it time to arrive (a 1-row
                        // last tile's were too short for memory: ResNet-50's 49-row GEMMs lost 15%).
                        const long ahead_row = full_rows >= mr ? full_rows - mr : 0;
                        const float *ahead = avx2 && packed_b != NULL && ir == ahead_row && cols == nr
                                             ? next_packed_panel(packed_b, n, k, jc + jr, pc, kc, nr) : NULL;
                        if (avx2 && cols < nr && packed_b != NULL) {
                            // Fused like a full tile; the separate epilogue below is skipped.
                            avx2_edge_tiles[rows](kc, panel_a, ars, aks, panel_b, bks, tile, ldc, alpha, beta_block,
                                                  has_epilogue && last_block, bias == NULL ? NULL : bias + jc + jr, clamp,
                                                  cols);
                            continue;
                        }
                        if (avx2 && rows < mr && cols == nr) {
                            avx2_short_tiles[rows](kc, panel_a, ars, aks, panel_b, bks, tile, ldc, alpha, beta_block,
                                                   fused, bias == NULL ? NULL : bias + jc + jr, clamp, ahead);
                        } else if (ahead != NULL) {
                            kernel_avx2_ahead(kc, panel_a, ars, aks, panel_b, bks, tile, ldc, alpha, beta_block, fused,
                                              bias == NULL ? NULL : bias + jc + jr, clamp, ahead);
                        } else if (fused) {
                            kernel_avx2_fused(kc, panel_a, ars, aks, panel_b, bks, tile, ldc, alpha, beta_block,
                                              bias == NULL ? NULL : bias + jc + jr, clamp);
                        } else if (rows == mr && cols == nr) {
                            cfg.kernel(kc, panel_a, ars, aks, panel_b, bks, tile, ldc, alpha, beta_block);
                        } else {
                            cfg.kernel(kc, panel_a, ars, aks, panel_b, bks, edge, nr, 1.0f, 0.0f);
                            for (long i = 0; i < rows; i++)
                                store_row(tile + i * ldc, edge + i * nr, cols, alpha, beta_block);
                        }
                        if (has_epilogue && last_block && !fused)
                            epilogue(clamped, tile, ldc, rows, cols, bias == NULL ? NULL : bias + jc + jr, clamp);
                    }
                }
            }
        }
    }
}

void mk_sgemm_path(int path, int trans_a, int trans_b, long m, long n, long k, float alpha,
                   const float *a, long lda, const float *b, long ldb, float beta, float *c, long ldc) {
    sgemm_driver(path, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, NULL, no_clamp, NULL);
}

void mk_sgemm_bias_relu(int path, int trans_a, int trans_b, long m, long n, long k, const float *a, long lda,
                        const float *b, long ldb, float *c, long ldc, const float *bias, int relu) {
    sgemm_driver(path, trans_a, trans_b, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc, bias, relu ? relu_clamp : no_clamp, NULL);
}

// Packed weights: NR-column panels of the whole depth, [panel][k][NR], the last panel zero-padded,
// so a K block starting at pc of panel j is at packed + j*NR*k + pc*NR with stride NR: the layout
// pack_b builds per call, built once.
long mk_sgemm_packed_b_count(int path, long n, long k) {
    const long nr = configs[mk_kernels_clamp(path)].nr;
    return ((n + nr - 1) / nr) * nr * k;
}

void mk_sgemm_pack_b(int path, long n, long k, const float *b, long ldb, float *packed) {
    mk_pack_weight_panels(path, n, k, b, ldb, configs[mk_kernels_clamp(path)].nr, packed);
}

void mk_sgemm_packed(int path, long m, long n, long k, const float *a, long lda, const float *packed_b, float *c,
                     long ldc, const float *bias, int relu) {
    sgemm_driver(path, 0, 1, m, n, k, 1.0f, a, lda, NULL, k, 0.0f, c, ldc, bias, relu ? relu_clamp : no_clamp, packed_b);
}

void mk_sgemm_packed_clamp(int path, long m, long n, long k, const float *a, long lda, const float *packed_b, float *c,
                           long ldc, const float *bias, int clamp, float lo, float hi) {
    const clamp_bounds bounds = {clamp != 0, lo, hi};
    sgemm_driver(path, 0, 1, m, n, k, 1.0f, a, lda, NULL, k, 0.0f, c, ldc, bias, bounds, packed_b);
}

// beta = 1: the first K block's tiles add the residual C holds (the micro-kernels' beta store, the
// path later K blocks take anyway); the bias and clamp follow in the same epilogue as without it.
void mk_sgemm_packed_accumulate_clamp(int path, long m, long n, long k, const float *a, long lda, const float *packed_b,
                                      float *c, long ldc, const float *bias, int clamp, float lo, float hi) {
    const clamp_bounds bounds = {clamp != 0, lo, hi};
    sgemm_driver(path, 0, 1, m, n, k, 1.0f, a, lda, NULL, k, 1.0f, c, ldc, bias, bounds, packed_b);
}

void mk_sgemm(int trans_a, int trans_b, long m, long n, long k, float alpha,
              const float *a, long lda, const float *b, long ldb, float beta, float *c, long ldc) {
    mk_sgemm_path(mk_kernels_active(), trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
