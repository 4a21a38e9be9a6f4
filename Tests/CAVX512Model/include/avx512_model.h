// Test support: the AVX-512 VNNI int8 GEMM path on scalar models of its intrinsics (avx512_model.c).
#ifndef MODELKIT_AVX512_MODEL_H
#define MODELKIT_AVX512_MODEL_H

#include "modelkit_kernels.h"

/// mk_igemm_requantize's VNNI path, run on the scalar intrinsic models: right shifts only.
void mk_igemm_requantize_vnni_model(long m, long n, long k, const int16_t *a, long lda, const int16_t *packed,
                                    const mk_requantization *r, int8_t *c, long ldc);

#endif
