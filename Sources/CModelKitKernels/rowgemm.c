// A GEMM for the small layers of a small CNN: C = A * W^T + bias, clamped, where each row of A is
// read in place through its own pointer as `segments` runs of `length` contiguous floats,
// `stride` apart. A direct NHWC convolution (no padding, dilation 1 along the width) is exactly
// this: an output pixel's window is kh runs of kw*c adjacent input values, so im2col's copy and
// the GEMM's A packing disappear. A Dense layer is one run per row.
//
// The packed-B GEMM (sgemm.c) tiles 6 x 16 on AVX2, so 1 row (a Dense at batch 1) computes 6 and
// 9 rows compute 12; its edge rows are also packed per call. Here the tile width follows the rows
// that are left: 6 rows x 16 columns, 3 or 2 rows x 32, 1 row x 64, with 8-12 independent
// accumulators at every size; bias and clamp are applied in registers before the only store.
// Every output is one multiply-add chain over k in order, whatever the tile, so splitting the
// rows across threads does not change a bit.
#include "modelkit_kernels.h"

#include <immintrin.h>

enum { PANEL = 16, MAX_ROWS = 6 };

long mk_rowgemm_packed_count(long n, long k) { return ((n + PANEL - 1) / PANEL) * PANEL * k; }

void mk_rowgemm_pack(long n, long k, const float *w, long ldw, float *packed) {
    mk_pack_weight_panels(mk_kernels_active(), n, k, w, ldw, PANEL, packed);
}

typedef struct {
    long segments, length, stride, k, n;
    const float *packed, *bias;
    int clamp;
    float lo, hi;
} rowgemm_job;

// Bias, clamp (`v > lo ? v : lo`, then `v < hi ? v : hi`) and store of one output value.
static inline float finish(const rowgemm_job *job, float v, long j) {
    if (job->bias != NULL) v += job->bias[j];
    if (job->clamp) {
        v = v > job->lo ? v : job->lo;
        v = v < job->hi ? v : job->hi;
    }
    return v;
}

// ---------------------------------------------------------------------------------------------
// Portable: one row and one 16-column panel at a time.

static void rows_portable(const rowgemm_job *job, long rows, const float *const *a, float *c, long ldc) {
    for (long i = 0; i < rows; i++) {
        for (long j0 = 0; j0 < job->n; j0 += PANEL) {
            float acc[PANEL] = {0};
            const float *b = job->packed + j0 * job->k;
            for (long s = 0; s < job->segments; s++) {
                const float *x = a[i] + s * job->stride;
                for (long p = 0; p < job->length; p++, b += PANEL)
                    for (int j = 0; j < PANEL; j++) acc[j] += x[p] * b[j];
            }
            const long cols = job->n - j0 < PANEL ? job->n - j0 : PANEL;
            for (long j = 0; j < cols; j++) c[i * ldc + j0 + j] = finish(job, acc[j], j0 + j);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// AVX2 + FMA. Written out per tile shape: a generic ROWS x GROUP template spilled accumulators.
// Each kernel writes its raw sums to `t` (ldt apart); store_avx2 finishes them into C.

// 6 rows x 16 columns: 12 accumulators, 2 B vectors, 1 broadcast.
__attribute__((target("avx2,fma")))
static void kernel_6x16(const rowgemm_job *job, const float *const *a, const float *b, float *t, long ldt) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (long s = 0; s < job->segments; s++) {
        const long offset = s * job->stride;
        const float *x0 = a[0] + offset, *x1 = a[1] + offset, *x2 = a[2] + offset;
        const float *x3 = a[3] + offset, *x4 = a[4] + offset, *x5 = a[5] + offset;
        for (long p = 0; p < job->length; p++, b += PANEL) {
            const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
            __m256 x = _mm256_broadcast_ss(x0 + p);
            c00 = _mm256_fmadd_ps(x, b0, c00), c01 = _mm256_fmadd_ps(x, b1, c01);
            x = _mm256_broadcast_ss(x1 + p);
            c10 = _mm256_fmadd_ps(x, b0, c10), c11 = _mm256_fmadd_ps(x, b1, c11);
            x = _mm256_broadcast_ss(x2 + p);
            c20 = _mm256_fmadd_ps(x, b0, c20), c21 = _mm256_fmadd_ps(x, b1, c21);
            x = _mm256_broadcast_ss(x3 + p);
            c30 = _mm256_fmadd_ps(x, b0, c30), c31 = _mm256_fmadd_ps(x, b1, c31);
            x = _mm256_broadcast_ss(x4 + p);
            c40 = _mm256_fmadd_ps(x, b0, c40), c41 = _mm256_fmadd_ps(x, b1, c41);
            x = _mm256_broadcast_ss(x5 + p);
            c50 = _mm256_fmadd_ps(x, b0, c50), c51 = _mm256_fmadd_ps(x, b1, c51);
        }
    }
    _mm256_storeu_ps(t, c00), _mm256_storeu_ps(t + 8, c01);
    _mm256_storeu_ps(t + ldt, c10), _mm256_storeu_ps(t + ldt + 8, c11);
    _mm256_storeu_ps(t + 2 * ldt, c20), _mm256_storeu_ps(t + 2 * ldt + 8, c21);
    _mm256_storeu_ps(t + 3 * ldt, c30), _mm256_storeu_ps(t + 3 * ldt + 8, c31);
    _mm256_storeu_ps(t + 4 * ldt, c40), _mm256_storeu_ps(t + 4 * ldt + 8, c41);
    _mm256_storeu_ps(t + 5 * ldt, c50), _mm256_storeu_ps(t + 5 * ldt + 8, c51);
}

// 3 rows x 32 columns (two panels): 12 accumulators, 3 broadcasts, B one vector at a time.
__attribute__((target("avx2,fma")))
static void kernel_3x32(const rowgemm_job *job, const float *const *a, const float *b, float *t, long ldt) {
    const long next = PANEL * job->k;
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00;
    __m256 c12 = c00, c13 = c00, c20 = c00, c21 = c00, c22 = c00, c23 = c00;
    for (long s = 0; s < job->segments; s++) {
        const long offset = s * job->stride;
        const float *x0 = a[0] + offset, *x1 = a[1] + offset, *x2 = a[2] + offset;
        for (long p = 0; p < job->length; p++, b += PANEL) {
            const __m256 y0 = _mm256_broadcast_ss(x0 + p), y1 = _mm256_broadcast_ss(x1 + p);
            const __m256 y2 = _mm256_broadcast_ss(x2 + p);
            __m256 v = _mm256_loadu_ps(b);
            c00 = _mm256_fmadd_ps(y0, v, c00), c10 = _mm256_fmadd_ps(y1, v, c10), c20 = _mm256_fmadd_ps(y2, v, c20);
            v = _mm256_loadu_ps(b + 8);
            c01 = _mm256_fmadd_ps(y0, v, c01), c11 = _mm256_fmadd_ps(y1, v, c11), c21 = _mm256_fmadd_ps(y2, v, c21);
            v = _mm256_loadu_ps(b + next);
            c02 = _mm256_fmadd_ps(y0, v, c02), c12 = _mm256_fmadd_ps(y1, v, c12), c22 = _mm256_fmadd_ps(y2, v, c22);
            v = _mm256_loadu_ps(b + next + 8);
            c03 = _mm256_fmadd_ps(y0, v, c03), c13 = _mm256_fmadd_ps(y1, v, c13), c23 = _mm256_fmadd_ps(y2, v, c23);
        }
    }
    _mm256_storeu_ps(t, c00), _mm256_storeu_ps(t + 8, c01), _mm256_storeu_ps(t + 16, c02), _mm256_storeu_ps(t + 24, c03);
    t += ldt;
    _mm256_storeu_ps(t, c10), _mm256_storeu_ps(t + 8, c11), _mm256_storeu_ps(t + 16, c12), _mm256_storeu_ps(t + 24, c13);
    t += ldt;
    _mm256_storeu_ps(t, c20), _mm256_storeu_ps(t + 8, c21), _mm256_storeu_ps(t + 16, c22), _mm256_storeu_ps(t + 24, c23);
}

// 1 row x 64 columns (four panels): 8 accumulators, B straight from memory into the FMAs.
__attribute__((target("avx2,fma")))
static void kernel_1x64(const rowgemm_job *job, const float *const *a, const float *b, float *t) {
    const long next = PANEL * job->k;
    __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    for (long s = 0; s < job->segments; s++) {
        const float *x0 = a[0] + s * job->stride;
        for (long p = 0; p < job->length; p++, b += PANEL) {
            const __m256 y = _mm256_broadcast_ss(x0 + p);
            c0 = _mm256_fmadd_ps(y, _mm256_loadu_ps(b), c0), c1 = _mm256_fmadd_ps(y, _mm256_loadu_ps(b + 8), c1);
            c2 = _mm256_fmadd_ps(y, _mm256_loadu_ps(b + next), c2);
            c3 = _mm256_fmadd_ps(y, _mm256_loadu_ps(b + next + 8), c3);
            c4 = _mm256_fmadd_ps(y, _mm256_loadu_ps(b + 2 * next), c4);
            c5 = _mm256_fmadd_ps(y, _mm256_loadu_ps(b + 2 * next + 8), c5);
            c6 = _mm256_fmadd_ps(y, _mm256_loadu_ps(b + 3 * next), c6);
            c7 = _mm256_fmadd_ps(y, _mm256_loadu_ps(b + 3 * next + 8), c7);
        }
    }
    _mm256_storeu_ps(t, c0), _mm256_storeu_ps(t + 8, c1), _mm256_storeu_ps(t + 16, c2), _mm256_storeu_ps(t + 24, c3);
    _mm256_storeu_ps(t + 32, c4), _mm256_storeu_ps(t + 40, c5), _mm256_storeu_ps(t + 48, c6), _mm256_storeu_ps(t + 56, c7);
}

// 1 row x 16 columns: 2 chains of 4 partial sums each would change the order of the sums, so the
// two accumulators stay (latency-bound, but only for the last panel or two of a lone row).
__attribute__((target("avx2,fma")))
static void kernel_1x16(const rowgemm_job *job, const float *const *a, const float *b, float *t) {
    __m256 c0 = _mm256_setzero_ps(), c1 = c0;
    for (long s = 0; s < job->segments; s++) {
        const float *x0 = a[0] + s * job->stride;
        for (long p = 0; p < job->length; p++, b += PANEL) {
            const __m256 y = _mm256_broadcast_ss(x0 + p);
            c0 = _mm256_fmadd_ps(y, _mm256_loadu_ps(b), c0), c1 = _mm256_fmadd_ps(y, _mm256_loadu_ps(b + 8), c1);
        }
    }
    _mm256_storeu_ps(t, c0), _mm256_storeu_ps(t + 8, c1);
}

// Adds the bias, clamps and stores `rows` x `cols` raw sums of `t` (ldt apart) to C at column j0.
// max(v, lo) returns lo for NaN and min(v, hi) returns hi: the same as `finish`.
__attribute__((target("avx2,fma")))
static void store_avx2(const rowgemm_job *job, const float *t, long ldt, long rows, long j0, long cols, float *c,
                       long ldc) {
    const __m256 lo = _mm256_set1_ps(job->lo), hi = _mm256_set1_ps(job->hi);
    for (long j = 0; j < cols; j += 8) {
        if (j + 8 > cols) {
            for (long i = 0; i < rows; i++)
                for (long q = j; q < cols; q++) c[i * ldc + j0 + q] = finish(job, t[i * ldt + q], j0 + q);
            break;
        }
        const __m256 bias = job->bias != NULL ? _mm256_loadu_ps(job->bias + j0 + j) : _mm256_setzero_ps();
        for (long i = 0; i < rows; i++) {
            __m256 v = _mm256_add_ps(_mm256_loadu_ps(t + i * ldt + j), bias);
            if (job->clamp) v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
            _mm256_storeu_ps(c + i * ldc + j0 + j, v);
        }
    }
}

// One block of up to 6 rows, its panels in the widest tile the row count fills. Rows short of a
// tile repeat the last row's pointer; their sums are computed and dropped.
__attribute__((target("avx2,fma")))
static void rows_avx2(const rowgemm_job *job, long rows, const float *const *a, float *c, long ldc) {
    const long panels = (job->n + PANEL - 1) / PANEL;
    const float *x[MAX_ROWS];
    for (long i = 0; i < MAX_ROWS; i++) x[i] = a[i < rows ? i : rows - 1];
    float t[MAX_ROWS * 4 * PANEL];
    for (long q = 0; q < panels;) {
        const long j0 = q * PANEL, left = panels - q;
        const float *b = job->packed + j0 * job->k;
        long width;
        if (rows == 1 && left >= 4) {
            kernel_1x64(job, x, b, t);
            width = 4;
        } else if (rows == 1) {
            kernel_1x16(job, x, b, t);
            width = 1;
        } else if (rows <= 3 && left >= 2) {
            kernel_3x32(job, x, b, t, 2 * PANEL);
            width = 2;
        } else {
            kernel_6x16(job, x, b, t, PANEL);
            width = 1;
        }
        const long cols = job->n - j0 < width * PANEL ? job->n - j0 : width * PANEL;
        store_avx2(job, t, width * PANEL, rows, j0, cols, c, ldc);
        q += width;
    }
}

static void rows_block(int path, const rowgemm_job *job, long rows, const float *const *a, float *c, long ldc) {
    if (path >= MK_KERNELS_AVX2) rows_avx2(job, rows, a, c, ldc);
    else rows_portable(job, rows, a, c, ldc);
}

// ---------------------------------------------------------------------------------------------
// Drivers.

void mk_rowgemm_dense(int path, long m, long n, long k, const float *a, long lda, const float *packed,
                      const float *bias, int clamp, float lo, float hi, float *c, long ldc) {
    if (m <= 0 || n <= 0) return;
    const rowgemm_job job = {1, k, 0, k, n, packed, bias, clamp != 0, lo, hi};
    const int clamped = mk_kernels_clamp(path);
    for (long i0 = 0; i0 < m; i0 += MAX_ROWS) {
        const long rows = m - i0 < MAX_ROWS ? m - i0 : MAX_ROWS;
        const float *x[MAX_ROWS];
        for (long i = 0; i < rows; i++) x[i] = a + (i0 + i) * lda;
        rows_block(clamped, &job, rows, x, c + i0 * ldc, ldc);
    }
}

int mk_conv_direct_supported(const mk_conv_geometry *g) {
    return g->pad_top == 0 && g->pad_left == 0 && g->dw == 1 && g->oh >= 1 && g->ow >= 1 && g->sh >= 1 && g->sw >= 1 &&
           g->dh >= 1 && (g->oh - 1) * g->sh + (g->kh - 1) * g->dh < g->h && (g->ow - 1) * g->sw + g->kw - 1 < g->w;
}

void mk_conv_direct_f32(int path, const mk_conv_geometry *g, const float *image, long p0, long p1, long n,
                        const float *packed, const float *bias, int clamp, float lo, float hi, float *out) {
    if (p1 <= p0 || n <= 0) return;
    const long c = g->c, length = g->kw * c;
    const rowgemm_job job = {g->kh, length, g->dh * g->w * c, g->kh * length, n, packed, bias, clamp != 0, lo, hi};
    const int clamped = mk_kernels_clamp(path);
    long oy = p0 / g->ow, ox = p0 - oy * g->ow;
    for (long i0 = p0; i0 < p1; i0 += MAX_ROWS) {
        const long rows = p1 - i0 < MAX_ROWS ? p1 - i0 : MAX_ROWS;
        const float *x[MAX_ROWS];
        for (long i = 0; i < rows; i++) {
            x[i] = image + (oy * g->sh * g->w + ox * g->sw) * c;
            if (++ox == g->ow) ox = 0, oy++;
        }
        rows_block(clamped, &job, rows, x, out + (i0 - p0) * n, n);
    }
}
