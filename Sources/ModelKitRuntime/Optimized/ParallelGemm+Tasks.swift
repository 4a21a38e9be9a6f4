extension ParallelGemm {
    /// Rows a GEMM task should have at least when a step splits into more tasks than threads:
    /// each task streams the whole packed weight again, which pays only over enough rows.
    static let minimumRowsPerExtraTask = 96

    /// Tasks per thread a column split aims for.
    static let tasksPerThread = 4

    /// Tasks for a GEMM split by output columns (`panel` wide packed panels) on `threads`
    /// threads: up to `tasksPerThread` per thread of at least two panels each, so a thread the
    /// scheduler runs late leaves its share to the others (with exactly one task per thread, the
    /// layer waited for it); never fewer than one per thread while each has a panel. The tasks
    /// read the same rows, which stay in cache; each streams only its own columns' weights.
    static func columnTaskCount(columns: Int, panel: Int, threads: Int) -> Int {
        max(min(threads, columns / panel), min(threads * tasksPerThread, columns / (2 * panel)))
    }

    /// Tasks for an elementwise step over `count` values on `threads` threads: 1 (the caller's
    /// thread) below `minimumCount`, else up to `tasksPerThread` per thread of at least a
    /// `tasksPerThread`-th of `minimumCount` values each, never fewer than one per thread.
    static func elementwiseTaskCount(count: Int, threads: Int, minimumCount: Int) -> Int {
        guard threads > 1, count >= minimumCount else { return 1 }
        return max(threads, min(threads * tasksPerThread, count / max(1, minimumCount / tasksPerThread)))
    }

    /// Tasks for a row-split GEMM step on `threads` threads: up to 4 per thread (2 when the
    /// weight, which every task streams, passes 256 KB) while each keeps `minimumRowsPerExtraTask`
    /// rows, and never fewer than one per thread. With tasks claimed dynamically, a thread the
    /// scheduler runs late (a loaded machine) then leaves its share to the others instead of
    /// holding up the step with half of it.
    static func taskCount(rows: Int, threads: Int, weightBytes: Int) -> Int {
        let perThread = weightBytes <= 256 * 1024 ? 4 : 2
        return max(threads, min(threads * perThread, rows / minimumRowsPerExtraTask))
    }

    /// A GEMM's multiply-adds weighed for the pool's minimum work: with fewer rows than a
    /// register tile (a Dense at batch 1), every weight is loaded from memory for a row or two,
    /// so a multiply-add costs several of a full tile's. (MobileNetV2's 1280x1000 classifier at
    /// batch 1 is 1.3M multiply-adds, yet about 0.5 ms on one core.)
    static func weightedWork(multiplyAdds: Int, rows: Int) -> Int {
        rows < 6 ? multiplyAdds * 4 : multiplyAdds
    }
}
