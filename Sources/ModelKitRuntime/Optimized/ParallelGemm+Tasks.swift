extension ParallelGemm {
    /// Rows a GEMM task should have at least when a step splits into more tasks than threads:
    /// each task streams the whole packed weight again, which pays only over enough rows.
    static let minimumRowsPerExtraTask = 96

    /// Tasks for a row-split GEMM step on `threads` threads: up to 4 per thread while each keeps
    /// `minimumRowsPerExtraTask` rows, and never fewer than one per thread. With tasks claimed
    /// dynamically, a thread the scheduler runs late (a loaded machine) then leaves its share to
    /// the others instead of holding up the step with half of it.
    static func taskCount(rows: Int, threads: Int) -> Int {
        max(threads, min(threads * 4, rows / minimumRowsPerExtraTask))
    }
}
