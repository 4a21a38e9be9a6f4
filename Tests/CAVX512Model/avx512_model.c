// The AVX-512 VNNI int8 GEMM's own source (Sources/CModelKitKernels/igemm_vnni.c), compiled with
// scalar models of its intrinsics, under a name of its own, so tests can run it on any CPU.
#define MK_AVX512_INTRINSICS_MODEL 1
#define mk_igemm_requantize_vnni mk_igemm_requantize_vnni_model
#define mk_cpu_has_avx512_vnni mk_cpu_has_avx512_vnni_model
#include "../../Sources/CModelKitKernels/igemm_vnni.c"
