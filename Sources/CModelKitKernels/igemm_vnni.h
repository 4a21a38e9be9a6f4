// Private to the kernels: the AVX-512 VNNI path of mk_igemm_requantize (igemm_vnni.c).
#ifndef MODELKIT_IGEMM_VNNI_H
#define MODELKIT_IGEMM_VNNI_H

#include "modelkit_kernels.h"

/// Whether the CPU has AVX-512F and AVX-512 VNNI (VPDPWSSD).
int mk_cpu_has_avx512_vnni(void);

/// mk_igemm_requantize on AVX-512 VNNI; right shifts only (shift[j] <= 0), like the AVX2 path.
void mk_igemm_requantize_vnni(long m, long n, long k, const int16_t *a, long lda, const int16_t *packed,
                              const mk_requantization *r, int8_t *c, long ldc);

#endif
