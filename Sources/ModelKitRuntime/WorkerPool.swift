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
/// `run(tasks:context:_:)` publishes a job; the caller and the `threadCount - 1` pool threads
/// then claim task indices from an atomic counter, so a worker the scheduler runs late simply
/// claims fewer (or no) tasks instead of stalling the job. Joining and leaving a job are single
/// atomic operations on `state` (generation, open flag, active count in one word), so a job in
/// steady state costs no lock and no system call: at batch 1 a model runs ~60 jobs of tens of
/// microseconds, where a mutex hand-off with a futex sleep and wake per job was a visible share.
/// Workers poll for the next job briefly, then sleep on `wake`.
///
/// Invariants that make the unchecked `Sendable` sound: `job` and `taskCount` are written by the
/// caller only between jobs (before the releasing store that opens a job, after the close that
/// sees no active worker); a worker reads them only after its acquiring join succeeded on an open
/// job, and leaves before the caller can see `active` reach zero. `run` is never called from two
/// threads at once (a session runs on one thread at a time).
final class WorkerPool: @unchecked Sendable {
    let threadCount: Int
    /// Layers with fewer multiply-adds than this run on the caller's thread.
    let minimumWork: Int
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// generation << 32 | open << 31 | workers inside the job. A worker joins a job by
    /// incrementing the count while the generation is new to it and the job is open.
    private let state = Atomic<Int>(0)
    private static let openFlag = 1 << 31
    private static let activeMask = (1 << 31) - 1
    /// The caller's generation counter (31 bits, wrapping).
    private var generation = 0
    /// Workers about to sleep or sleeping on `wake` (so the caller signals only when needed).
    private let sleepers = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    /// The next unclaimed task, and the number of finished tasks, of the current job.
    private let nextTask = Atomic<Int>(0)
    private let finishedTasks = Atomic<Int>(0)
    private var taskCount = 0
    /// The running job (nil between jobs).
    private var job: (function: JobFunction, context: UnsafeMutableRawPointer?)?
    private var threads: [pthread_t] = []

    /// Polls of the job word (with a pause each, roughly 50-150 us in all) before a worker sleeps.
    static let spinRounds = 5000

    /// `threads` counts the caller: 1 starts no threads and runs every task inline.
    init(threads: Int, minimumWork: Int = SessionOptions.defaultParallelMinimumWork) {
        threadCount = max(1, threads)
        self.minimumWork = max(0, minimumWork)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
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
        stopping.store(true, ordering: .sequentiallyConsistent)
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(mutex)
        for thread in threads { pthread_join(thread, nil) }
        pthread_cond_destroy(wake)
        pthread_mutex_destroy(mutex)
        wake.deallocate()
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
        job = (function, context)
        taskCount = tasks
        nextTask.store(0, ordering: .relaxed)
        finishedTasks.store(0, ordering: .relaxed)
        generation = (generation &+ 1) & WorkerPool.activeMask
        // Opens the job (no worker is inside: the last close saw the count at zero). Sequentially
        // consistent with the `sleepers` load, pairing with a sleeping worker's increment then
        // load: either the caller sees the sleeper and wakes it, or the worker sees the job.
        state.store(generation << 32 | WorkerPool.openFlag, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            pthread_mutex_lock(mutex)
            pthread_cond_broadcast(wake)
            pthread_mutex_unlock(mutex)
        }

        WorkerPool.claimTasks(function, context, tasks, 0, nextTask, finishedTasks)
        // Every task is claimed; wait for the ones other threads are running.
        var polls = 0
        while finishedTasks.load(ordering: .acquiring) < tasks {
            polls += 1
            if polls < 64 { mk_cpu_relax() } else { sched_yield() }
        }
        // Close: no worker joins from now on; wait for those inside to leave (they have found no
        // task left, so they are at most a few instructions from leaving unless preempted).
        state.bitwiseAnd(~WorkerPool.openFlag, ordering: .acquiringAndReleasing)
        polls = 0
        while state.load(ordering: .acquiring) & WorkerPool.activeMask != 0 {
            polls += 1
            if polls < 64 { mk_cpu_relax() } else { sched_yield() }
        }
        job = nil
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
        while true {
            // Wait for an open job of a generation this worker has not seen, and join it.
            var current = state.load(ordering: .acquiring)
            var rounds = 0
            while true {
                if stopping.load(ordering: .relaxed) { return }
                if current >> 32 != seen {
                    if current & WorkerPool.openFlag != 0 {
                        let (joined, found) = state.compareExchange(expected: current, desired: current + 1,
                                                                    ordering: .acquiringAndReleasing)
                        if joined { break }
                        current = found
                        continue
                    }
                    seen = current >> 32  // closed before this worker came: skip it
                }
                if rounds < WorkerPool.spinRounds {
                    // The next job usually follows within microseconds (the next layer of the same
                    // run, or the next run): poll for it briefly before paying a futex sleep and wake.
                    rounds += 1
                    mk_cpu_relax()
                } else {
                    pthread_mutex_lock(mutex)
                    sleepers.wrappingAdd(1, ordering: .sequentiallyConsistent)
                    let now = state.load(ordering: .sequentiallyConsistent)
                    if now >> 32 == seen && !stopping.load(ordering: .sequentiallyConsistent) {
                        pthread_cond_wait(wake, mutex)
                    }
                    sleepers.wrappingSubtract(1, ordering: .sequentiallyConsistent)
                    pthread_mutex_unlock(mutex)
                    rounds = 0
                }
                current = state.load(ordering: .acquiring)
            }
            seen = current >> 32
            let (function, context) = job!
            let tasks = taskCount
            WorkerPool.claimTasks(function, context, tasks, worker, nextTask, finishedTasks)
            state.wrappingSubtract(1, ordering: .releasing)
        }
    }
}
