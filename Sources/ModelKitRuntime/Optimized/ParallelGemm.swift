/// How the GEMM-backed steps split across a `WorkerPool`. Every output element is computed by
/// exactly one task with the same kernel call shape along K as the single-thread path, so results
/// match it up to the GEMM's row/column tiling (int8: exactly).
enum ParallelGemm {
    /// Splits 0..<count into `parts` contiguous ranges whose bounds are multiples of `granule`.
    @inline(__always)
    static func chunk(_ task: Int, of parts: Int, count: Int, granule: Int) -> Range<Int> {
        let units = (count + granule - 1) / granule
        let lower = min(count, units * task / parts * granule)
        let upper = min(count, units * (task + 1) / parts * granule)
        return lower..<upper
    }

    /// How many tasks split `rows` rows of a GEMM step across `threads`, and the scratch values
    /// each task owns (task t uses [t * slot, (t + 1) * slot) of the plan's `threads` x
    /// `scratchStride`; `taskScratch` is what one task needs, 0 for none). Several tasks per thread
    /// of at least 48 rows when the scratch holds that many: the pool hands tasks out as threads
    /// ask, so a thread the scheduler delays (other processes on a 2-core machine) leaves a smaller
    /// task to wait for. Each task reads the whole weight, so one over 256 KB gets 2 per thread
    /// rather than 4. With no room for two slots per thread: one task per thread, a whole stride each.
    static func rowTasks(threads: Int, rows: Int, taskScratch: Int, scratchStride: Int,
                         weightBytes: Int) -> (tasks: Int, slot: Int) {
        let perThread = weightBytes <= 256 * 1024 ? 4 : 2
        let slotsPerThread = taskScratch > 0 ? min(perThread, scratchStride / taskScratch) : perThread
        guard slotsPerThread > 1 else { return (threads, scratchStride) }
        return (max(threads, min(threads * slotsPerThread, rows / 48)), taskScratch)
    }
}
