// A persistent worker pool for the training kernels. DispatchQueue.concurrentPerform wakes its
// workers through libdispatch for every call; a training step makes a few dozen parallel calls of
// 50-500 us each, so the hand-off latency mattered (measured: a 2-thread ReLU pass took 1 ms where
// one thread needed 0.1 ms). Here workers spin briefly on a generation counter (the next call
// usually comes within microseconds), then sleep on a futex so an idle process costs no CPU.
//
// Parts are claimed dynamically with an atomic counter, which is fine for determinism: every part
// computes a fixed function of its index, whichever thread runs it.
#include "modelkit_kernels.h"

#include <stdatomic.h>
#include <stdlib.h>

#if defined(__linux__)
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#define MK_HAVE_POOL 1
#else
#define MK_HAVE_POOL 0
#endif

#if MK_HAVE_POOL

// ~5000 pause instructions is roughly 50-150 us: long enough to bridge the gap between the parallel
// calls of one training step, short enough not to steal much from other work on shared cores.
enum { MAX_WORKERS = 63, SPIN_ROUNDS = 5000 };

// The one job in flight. It is static (not on the caller's stack) and tagged with its generation,
// so a worker that wakes late can never touch a finished call's memory or run its parts.
typedef struct {
    mk_parallel_body body;
    void *context;
    long parts;
    atomic_long next;      // Next unclaimed part.
    atomic_long finished;  // Parts completed.
    atomic_uint tag;       // Generation of the call this job belongs to; 0 once finished.
} job_t;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;  // One caller at a time uses the pool.
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static int requested_workers;
static int worker_count;
static job_t the_job;
static atomic_uint generation;  // Bumped per call; workers sleep on it (a futex word).
static atomic_int active;       // Workers between waking and leaving a job.
static atomic_int sleepers;     // Workers in (or about to enter) futex_wait: only then is a wake needed.
static _Thread_local int inside_pool_work;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void futex_wait(atomic_uint *word, unsigned expected) {
    syscall(SYS_futex, (unsigned *)word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake_all(atomic_uint *word) {
    syscall(SYS_futex, (unsigned *)word, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}

static void run_parts(job_t *job) {
    long done = 0;
    for (;;) {
        const long part = atomic_fetch_add_explicit(&job->next, 1, memory_order_relaxed);
        if (part >= job->parts) break;
        job->body(job->context, part);
        done++;
    }
    if (done) atomic_fetch_add_explicit(&job->finished, done, memory_order_release);
}

static void *worker_main(void *unused) {
    (void)unused;
    inside_pool_work = 1;  // Nested parallel calls from a part run inline.
    unsigned seen = atomic_load(&generation);
    for (;;) {
        unsigned now = atomic_load_explicit(&generation, memory_order_acquire);
        for (int spin = 0; now == seen && spin < SPIN_ROUNDS; spin++) {
            cpu_relax();
            now = atomic_load_explicit(&generation, memory_order_acquire);
        }
        while (now == seen) {
            // seq_cst on both sides: either the caller sees this sleeper and wakes it, or the
            // futex sees the new generation and returns at once.
            atomic_fetch_add(&sleepers, 1);
            futex_wait(&generation, seen);
            atomic_fetch_sub(&sleepers, 1);
            now = atomic_load(&generation);
        }
        seen = now;
        // Announce before looking at the job: the caller waits for `active` to drain before it
        // returns, so the job cannot be rewritten while this worker reads it.
        atomic_fetch_add(&active, 1);
        if (atomic_load(&the_job.tag) == now) run_parts(&the_job);
        atomic_fetch_sub(&active, 1);
    }
    return NULL;
}

static void start_workers(void) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < requested_workers && i < MAX_WORKERS; i++) {
        pthread_t thread;
        if (pthread_create(&thread, &attr, worker_main, NULL) != 0) break;
        worker_count++;
    }
    pthread_attr_destroy(&attr);
}

static void run_inline(long parts, mk_parallel_body body, void *context) {
    for (long part = 0; part < parts; part++) body(context, part);
}

static void wait_until(atomic_long *counter, long target) {
    for (long spin = 0; atomic_load_explicit(counter, memory_order_acquire) < target; spin++) {
        if (spin < SPIN_ROUNDS) cpu_relax();
        else sched_yield();  // A worker was descheduled (shared cores): let it run.
    }
}

void mk_parallel_run(int threads, long parts, mk_parallel_body body, void *context) {
    if (parts <= 0) return;
    // Inline when there is nothing to share, when called from a part (nested), or when another
    // caller holds the pool (concurrent training runs, e.g. tests): same results, no deadlock.
    if (parts == 1 || threads <= 1 || inside_pool_work || pthread_mutex_trylock(&pool_lock) != 0) {
        run_inline(parts, body, context);
        return;
    }
    if (requested_workers == 0) requested_workers = threads - 1;  // Fixed by the first call.
    pthread_once(&pool_once, start_workers);
    if (worker_count == 0) {
        pthread_mutex_unlock(&pool_lock);
        run_inline(parts, body, context);
        return;
    }
    unsigned tag = atomic_load(&generation) + 1;
    if (tag == 0) tag = 1;  // 0 means "no job".
    the_job.body = body;
    the_job.context = context;
    the_job.parts = parts;
    atomic_store(&the_job.next, 0);
    atomic_store(&the_job.finished, 0);
    atomic_store(&the_job.tag, tag);
    atomic_store(&generation, tag);
    if (atomic_load(&sleepers) > 0) futex_wake_all(&generation);  // Spinning workers need no syscall.
    inside_pool_work = 1;
    run_parts(&the_job);
    inside_pool_work = 0;
    wait_until(&the_job.finished, parts);
    atomic_store(&the_job.tag, 0);
    for (long spin = 0; atomic_load(&active) != 0; spin++) {
        if (spin < SPIN_ROUNDS) cpu_relax();
        else sched_yield();
    }
    pthread_mutex_unlock(&pool_lock);
}

#else

void mk_parallel_run(int threads, long parts, mk_parallel_body body, void *context) {
    (void)threads;
    for (long part = 0; part < parts; part++) body(context, part);
}

#endif
