#include "modelkit_kernels.h"

#include <stdlib.h>  // Defines __GLIBC__ (through features.h) on glibc systems.

#if defined(__GLIBC__)
#include <malloc.h>
#endif

int mk_retain_freed_memory(void) {
#if defined(__GLIBC__)
    // 32 MB is the largest threshold glibc accepts on 64-bit (a larger value makes mallopt fail).
    const int mmap_ok = mallopt(M_MMAP_THRESHOLD, 32 << 20);  // Blocks below 32 MB come from the heap.
    const int trim_ok = mallopt(M_TRIM_THRESHOLD, 1 << 30);    // Keep up to 1 GB of freed heap.
    return mmap_ok == 1 && trim_ok == 1;
#else
    return 0;
#endif
}
