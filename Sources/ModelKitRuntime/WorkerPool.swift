#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A fixed set of threads that run one parallel job at a time, created once per session so a
/// run starts no threads and allocates nothing.
///
/// `run(tasks:context:_:)` hands task indices to the caller's thread (worker 0) and `threadCount - 1`
/// pool threads, then waits for all of them. Invariants that make the unchecked `Sendable`
/// sound: `job` and `taskCount` are written only by the caller while no job is in flight and
/// read by workers only between a wake-up and their `pending` decrement, both under `mutex`;
/// `run` is never called from two threads at once (a session runs on one thread at a time).
final class WorkerPool: @unchecked Sendable {
    let threadCount: Int
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let finished = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var generation = 0
    private var pending = 0
    private var stopping = false
    private var taskCount = 0
    /// The running job (nil between jobs).
    private var job: (function: Task, context: UnsafeMutableRawPointer?)?
    private var threads: [pthread_t] = []

    /// `threads` counts the caller: 1 starts no threads and runs every task inline.
    init(threads: Int) {
        threadCount = max(1, threads)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        pthread_cond_init(finished, nil)
        for worker in 1..<threadCount {
            let start = UnsafeMutablePointer<(Unmanaged<WorkerPool>, Int)>.allocate(capacity: 1)
            start.initialize(to: (Unmanaged.passUnretained(self), worker))
            var thread = pthread_t()
            let created = pthread_create(&thread, nil, { raw in
                let start = raw!.assumingMemoryBound(to: (Unmanaged<WorkerPool>, Int).self)
                let (pool, worker) = start.pointee
                start.deinitialize(count: 1)
                start.deallocate()
                pool.takeUnretainedValue().workerLoop(worker)
                return nil
            }, start)
            precondition(created == 0, "pthread_create failed (\(created))")
            self.threads.append(thread)
        }
    }

    deinit {
        pthread_mutex_lock(mutex)
        stopping = true
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(mutex)
        for thread in threads { pthread_join(thread, nil) }
        pthread_cond_destroy(wake)
        pthread_cond_destroy(finished)
        pthread_mutex_destroy(mutex)
        wake.deallocate()
        finished.deallocate()
        mutex.deallocate()
    }

    /// A task function: C calling convention, so it captures nothing and calling it through
    /// the pool allocates nothing (a stored Swift closure allocates in unoptimised builds).
    typealias Task = @convention(c) (_ context: UnsafeMutableRawPointer?, _ task: Int) -> Void

    /// Runs `function(context, task)` for every task in 0..<tasks across the pool and returns when
    /// all are done. Worker w runs tasks w, w + threadCount, ...; the caller is worker 0.
    func run(tasks: Int, context: UnsafeMutableRawPointer?, _ function: Task) {
        guard threadCount > 1, tasks > 1 else {
            for task in 0..<tasks { function(context, task) }
            return
        }
        pthread_mutex_lock(mutex)
        job = (function, context)
        taskCount = tasks
        pending = threadCount - 1
        generation &+= 1
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(mutex)

        var task = 0
        while task < tasks {
            function(context, task)
            task += threadCount
        }

        pthread_mutex_lock(mutex)
        while pending > 0 { pthread_cond_wait(finished, mutex) }
        job = nil
        pthread_mutex_unlock(mutex)
    }

    /// The same with a Swift closure (convenient; allocates per call in unoptimised builds).
    func run(tasks: Int, _ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            var closure = body
            withUnsafeMutablePointer(to: &closure) { closure in
                run(tasks: tasks, context: UnsafeMutableRawPointer(closure)) { context, task in
                    context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(task)
                }
            }
        }
    }

    private func workerLoop(_ worker: Int) {
        var seen = 0
        pthread_mutex_lock(mutex)
        while true {
            while generation == seen && !stopping { pthread_cond_wait(wake, mutex) }
            if stopping { break }
            seen = generation
            let tasks = taskCount
            pthread_mutex_unlock(mutex)
            runTasks(worker: worker, tasks: tasks)
            pthread_mutex_lock(mutex)
            pending -= 1
            if pending == 0 { pthread_cond_signal(finished) }
        }
        pthread_mutex_unlock(mutex)
    }

    /// Kept out of `workerLoop` so the worker's reference to `job` ends before it reports done.
    @inline(never)
    private func runTasks(worker: Int, tasks: Int) {
        guard let job else { return }
        var task = worker
        while task < tasks {
            job.function(job.context, task)
            task += threadCount
        }
    }
}
