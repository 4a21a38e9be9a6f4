#ifndef MODELKIT_KERNELS_H
#define MODELKIT_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Micro-kernel families. The numeric order is the order of preference.
typedef enum {
    MK_KERNELS_PORTABLE = 0,
    MK_KERNELS_AVX2 = 1,
    MK_KERNELS_AVX512 = 2,
} mk_kernel_path;

/// The best path this CPU supports (ignores MODELKIT_KERNELS).
int mk_kernels_best_supported(void);

/// `requested` clamped to what the CPU supports (a request above the best supported path
/// falls back to the best supported one).
int mk_kernels_clamp(int requested);

/// The path `mk_sgemm` uses: chosen once, on first use, from the CPU and the environment
/// variable MODELKIT_KERNELS=portable|avx2|avx512 (clamped to what the CPU supports).
int mk_kernels_active(void);

/// The path named by a MODELKIT_KERNELS value ("portable", "avx2", "avx512"), unclamped;
/// -1 for NULL or any other text (which leaves automatic selection in place).
int mk_kernels_from_name(const char *name);

/// "portable", "avx2" or "avx512".
const char *mk_kernels_path_name(int path);

/// Row-major single-precision GEMM: C = alpha * op(A) * op(B) + beta * C, where op(A) is
/// M x K and op(B) is K x N. `trans_a` != 0 means A is stored K x M (op(A) = A^T);
/// `trans_b` != 0 means B is stored N x K. lda/ldb/ldc are row strides in elements of the
/// matrices as stored. When beta == 0, C is not read (NaNs in C do not propagate).
/// Any of M, N, K may be 0. Thread-safe: packing buffers are per thread.
void mk_sgemm(int trans_a, int trans_b, long m, long n, long k, float alpha,
              const float *a, long lda, const float *b, long ldb, float beta, float *c, long ldc);

/// The same with an explicit path (clamped to what the CPU supports), for tests and benchmarks.
void mk_sgemm_path(int path, int trans_a, int trans_b, long m, long n, long k, float alpha,
                   const float *a, long lda, const float *b, long ldb, float beta, float *c, long ldc);

/// Row-major int8 GEMM with int32 results: C[i][j] = sum_p A[i][p] * B[j][p] for A stored M x K
/// and B stored N x K (one row per output channel). Exact integer arithmetic: every path gives
/// identical results. lda/ldb/ldc are row strides in elements; M, N or K may be 0.
void mk_igemm(long m, long n, long k, const int8_t *a, long lda, const int8_t *b, long ldb, int32_t *c, long ldc);

/// The same with an explicit path (clamped to what the CPU supports), for tests and benchmarks.
void mk_igemm_path(int path, long m, long n, long k, const int8_t *a, long lda, const int8_t *b, long ldb,
                   int32_t *c, long ldc);

/// glibc only: keep freed blocks below 32 MB in the heap (no mmap/munmap, no trimming), so a
/// training loop's per-step activation buffers stop costing page faults. Process-wide; returns 1
/// when applied, 0 elsewhere.
int mk_retain_freed_memory(void);

#ifdef __cplusplus
}
#endif

#endif
