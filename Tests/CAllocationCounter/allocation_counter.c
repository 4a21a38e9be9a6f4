#include "allocation_counter.h"

#include <stdlib.h>  // Defines __GLIBC__ through features.h.

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MK_UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define MK_UNDER_ASAN 1
#endif

// Under AddressSanitizer the interposer would hand ASan's allocations to glibc's free: off there.
#if defined(__GLIBC__) && !defined(MK_UNDER_ASAN)
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void __libc_free(void *pointer);

static atomic_int counting;
static atomic_long allocations;
static _Thread_local int tracked;

static inline void count_one(void) {
    if (tracked && atomic_load_explicit(&counting, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    }
}

void *malloc(size_t size) { count_one(); return __libc_malloc(size); }
void *calloc(size_t count, size_t size) { count_one(); return __libc_calloc(count, size); }
void *realloc(void *pointer, size_t size) { count_one(); return __libc_realloc(pointer, size); }
void free(void *pointer) { __libc_free(pointer); }
void *memalign(size_t alignment, size_t size) { count_one(); return __libc_memalign(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { count_one(); return __libc_memalign(alignment, size); }

int posix_memalign(void **out, size_t alignment, size_t size) {
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    count_one();
    void *pointer = __libc_memalign(alignment, size);
    if (!pointer && size) return ENOMEM;
    *out = pointer;
    return 0;
}

void mk_allocations_begin(void) {
    atomic_store(&allocations, 0);
    atomic_store(&counting, 1);
}

long mk_allocations_end(void) {
    atomic_store(&counting, 0);
    return atomic_load(&allocations);
}

void mk_allocations_track_this_thread(int on) { tracked = on; }

static pthread_mutex_t exclusive = PTHREAD_MUTEX_INITIALIZER;
void mk_allocations_lock(void) { pthread_mutex_lock(&exclusive); }
void mk_allocations_unlock(void) { pthread_mutex_unlock(&exclusive); }

int mk_allocations_supported(void) { return 1; }
#else
void mk_allocations_track_this_thread(int on) { (void)on; }
void mk_allocations_lock(void) {}
void mk_allocations_unlock(void) {}
void mk_allocations_begin(void) {}
long mk_allocations_end(void) { return -1; }
int mk_allocations_supported(void) { return 0; }
#endif
