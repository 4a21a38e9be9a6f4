#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CModelKitKernels
import Synchronization

/// A fixed set of threads that run one parallel job at a time, created once per session so a
/// run starts no threads and allocates nothing.
///
/// `run(tasks:context:_:)` wakes the `threadCount - 1` pool threads; the caller and the workers
/// then claim task indices from an atomic counter, so a worker the scheduler runs late simply
/// claims fewer (or no) tasks instead of stalling the job. Invariants that make the unchecked
/// `Sendable` sound: `job`, `taskCount` and `open` are written by the caller under `mutex`;
/// a worker reads `job` only while counted in `active` (joined under `mutex` while `open`), and
/// the caller clears `job` only after closing the job and seeing `active` drop to zero. `run`
/// is never called from two threads at once (a session runs on one thread at a time).
final class WorkerPool: @unchecked Sendable {
    let threadCount: Int
    /// Layers with fewer multiply-adds than this run on the caller's thread.
    let minimumWork: Int
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let finished = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var generation = 0
    /// `generation` published outside the mutex, for workers spinning before they sleep.
    private let publishedGeneration = Atomic<Int>(0)
    /// Workers inside the current job (under `mutex`).
    private var active = 0
    /// Whether workers may still join the current job (under `mutex`).
    private var open = false
    /// The next unclaimed task, and the number of finished tasks, of the current job.
    private let nextTask = Atomic<Int>(0)
    private let finishedTasks = Atomic<Int>(0)
    private var stopping = false
    private var taskCount = 0
    /// The running job (nil between jobs).
    private var job: (function: JobFunction, context: UnsafeMutableRawPointer?)?
    private var threads: [pthread_t] = []

    /// Polls of the job counter (with a pause each, roughly 50-150 us in all) before a worker sleeps.
    static let spinRounds = 5000

    /// `threads` counts the caller: 1 starts no threads and runs every task inline.
    init(threads: Int, minimumWork: Int = SessionOptions.defaultParallelMinimumWork) {
        threadCount = max(1, threads)
        self.minimumWork = max(0, minimumWork)
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
    /// A task function also told which pool thread runs it (0 is the caller, then 1..<threadCount),
    /// so a job may split into more tasks than threads and still give each thread its own scratch.
    typealias ThreadTask = @convention(c) (_ context: UnsafeMutableRawPointer?, _ task: Int, _ thread: Int) -> Void

    private enum JobFunction {
        case plain(Task)
        case withThread(ThreadTask)
    }

    /// Runs `function(context, task)` for every task in 0..<tasks across the pool and returns when
    /// all are done. The caller runs tasks too; which thread runs which task is not fixed.
    func run(tasks: Int, context: UnsafeMutableRawPointer?, _ function: Task) {
        guard threadCount > 1, tasks > 1 else {
            for task in 0..<tasks { function(context, task) }
            return
        }
        run(tasks: tasks, context: context, .plain(function))
    }

    /// The same with the running thread's index passed to each task.
    func run(tasks: Int, context: UnsafeMutableRawPointer?, threadTask function: ThreadTask) {
        guard threadCount > 1, tasks > 1 else {
            for task in 0..<tasks { function(context, task, 0) }
            return
        }
        run(tasks: tasks, context: context, .withThread(function))
    }

    private func run(tasks: Int, context: UnsafeMutableRawPointer?, _ function: JobFunction) {
        pthread_mutex_lock(mutex)
        job = (function, context)
        taskCount = tasks
        nextTask.store(0, ordering: .relaxed)
        finishedTasks.store(0, ordering: .relaxed)
        open = true
        generation &+= 1
        publishedGeneration.store(generation, ordering: .releasing)
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(mutex)

        WorkerPool.claimTasks(function, context, tasks, 0, nextTask, finishedTasks)
        // Every task is claimed; wait for the ones other threads are running.
        while finishedTasks.load(ordering: .acquiring) < tasks { sched_yield() }

        pthread_mutex_lock(mutex)
        open = false
        while active > 0 { pthread_cond_wait(finished, mutex) }
        job = nil
        pthread_mutex_unlock(mutex)
    }

    /// Runs unclaimed tasks until none is left.
    private static func claimTasks(_ function: JobFunction, _ context: UnsafeMutableRawPointer?, _ tasks: Int,
                                   _ thread: Int, _ next: borrowing Atomic<Int>, _ finished: borrowing Atomic<Int>) {
        while true {
            let task = next.wrappingAdd(1, ordering: .relaxed).oldValue
            if task >= tasks { return }
            switch function {
            case .plain(let function): function(context, task)
            case .withThread(let function): function(context, task, thread)
            }
            finished.wrappingAdd(1, ordering: .releasing)
        }
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
            var spun = false
            while (generation == seen || !open) && !stopping {
                if spun {
                    pthread_cond_wait(wake, mutex)
                    continue
                }
                // The next job usually follows within microseconds (the next layer of the same
                // run, or the next run): poll for it briefly before paying a futex sleep and wake.
                spun = true
                pthread_mutex_unlock(mutex)
                var rounds = 0
                while publishedGeneration.load(ordering: .acquiring) == seen && rounds < WorkerPool.spinRounds {
                    mk_cpu_relax()
                    rounds += 1
                }
                pthread_mutex_lock(mutex)
            }
            if stopping { break }
            seen = generation
            active += 1
            let (function, context) = job!
            let tasks = taskCount
            pthread_mutex_unlock(mutex)
            WorkerPool.claimTasks(function, context, tasks, worker, nextTask, finishedTasks)
            pthread_mutex_lock(mutex)
            active -= 1
            if active == 0 { pthread_cond_signal(finished) }
        }
        pthread_mutex_unlock(mutex)
    }
}
