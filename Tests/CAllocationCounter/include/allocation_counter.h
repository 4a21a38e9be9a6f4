#ifndef MODELKIT_ALLOCATION_COUNTER_H
#define MODELKIT_ALLOCATION_COUNTER_H

/// Test support: counts heap allocations (malloc, calloc, realloc, posix_memalign,
/// aligned_alloc, memalign) made between begin and end by the threads that opted in with
/// mk_allocations_track_this_thread (other tests run concurrently in the same process). Linking this target
/// into a test binary interposes those functions for the whole process; they forward to
/// glibc's own allocator (__libc_*), so behaviour is unchanged when not counting.
void mk_allocations_begin(void);
/// Counts (on != 0) or ignores allocations of the calling thread; threads start untracked.
void mk_allocations_track_this_thread(int on);
/// The counter is process-wide and tests run concurrently: hold this lock from before the
/// first mk_allocations_track_this_thread(1) until after the last (0).
void mk_allocations_lock(void);
void mk_allocations_unlock(void);
/// Stops counting and returns the number of allocations since mk_allocations_begin.
long mk_allocations_end(void);
/// 1 when this build interposes the allocator (glibc), 0 when counting is unavailable.
int mk_allocations_supported(void);

#endif
